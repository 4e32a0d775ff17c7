"""Test connection on the integration form: what is typed, tried against the (sandbox) platforms over
HTTP, answered in plain words, and nothing saved."""

from __future__ import annotations

import re

from connectors.registry import Side
from extensions import db
from models import Account, Integration
from tests.conftest import Client, join_sandbox, make_account
from tests.sandbox_server import Sandbox
from tests.test_integrations import NEW, count


def typed(sandbox: Sandbox, **fields: str) -> dict[str, str]:
    """The new-integration form, filled in with the sandbox's addresses and keys."""
    return {
        **NEW,
        "marketplace_base_url": sandbox.marketplace_url,
        "marketplace_seller_id": "100200",
        "marketplace_api_key": "sandbox-key",
        "marketplace_api_secret": "sandbox-secret",
        "shop_base_url": sandbox.shop_url,
        "shop_consumer_key": "ck_sandbox",
        "shop_consumer_secret": "cs_sandbox",
        **fields,
    }


def answers(response_text: str) -> list[str]:
    """Each side's line of the answer, as the seller reads it."""
    return [
        " ".join(re.sub(r"<[^>]+>", " ", line).split()) for line in re.findall(r"<li.*?</li>", response_text)
    ]


def test_the_form_offers_the_test_and_says_where_the_keys_are(seller: Client) -> None:
    page = seller.get("/integrations/new").get_data(as_text=True)
    assert 'hx-post="/integrations/connection"' in page and "Test connection" in page
    assert "Hesap Bilgilerim › Entegrasyon Bilgileri" in page and "WooCommerce › Settings › Advanced" in page
    page = seller.get("/integrations/new?marketplace_kind=n11").get_data(as_text=True)
    assert "Hesabım › API Hesapları" in page and "Entegrasyon Bilgileri" not in page


def test_right_keys_connect_both_sides_and_save_nothing(seller: Client, sandbox: Sandbox) -> None:
    response = seller.post("/integrations/connection", data=typed(sandbox), htmx=True)
    assert response.status_code == 200
    assert answers(response.get_data(as_text=True)) == [
        "✓ Trendyol Connected: Trendyol accepted the address and keys.",
        "✓ WooCommerce Connected: WooCommerce accepted the address and keys.",
    ]
    assert count(Integration) == 0
    # It really asked each platform.
    paths = [path for _, path, _ in sandbox.world.requests]
    assert any(path.startswith("/trendyol/") for path in paths)
    assert any(path.startswith("/woocommerce/") for path in paths)


def test_wrong_keys_say_which_side_and_what_to_do(seller: Client, sandbox: Sandbox) -> None:
    data = typed(sandbox, marketplace_api_secret="wrong-secret", shop_consumer_secret="cs_wrong")
    lines = answers(seller.post("/integrations/connection", data=data, htmx=True).get_data(as_text=True))
    assert lines[0].startswith("✗ Trendyol Trendyol refused the keys. Check them and enter them again. (")
    assert lines[1].startswith(
        "✗ WooCommerce WooCommerce refused the keys. Check them and enter them again. ("
    )
    assert "wrong-secret" not in " ".join(lines) and "cs_wrong" not in " ".join(lines)


def test_a_missing_key_or_a_refused_address_is_said_before_anything_is_sent(
    seller: Client, sandbox: Sandbox
) -> None:
    data = typed(sandbox, marketplace_api_key="", shop_base_url="http://10.0.0.8/shop")
    lines = answers(seller.post("/integrations/connection", data=data, htmx=True).get_data(as_text=True))
    assert lines == [
        "✗ Trendyol Enter API Key first.",
        "✗ WooCommerce This address is not on the public internet, so the hub cannot call it.",
    ]
    assert sandbox.world.requests == []


def test_a_pinned_marketplace_is_tried_only_at_its_own_host(seller: Client, sandbox: Sandbox) -> None:
    data = typed(sandbox, marketplace_kind="n11", marketplace_base_url="https://n11.example.com")
    lines = answers(seller.post("/integrations/connection", data=data, htmx=True).get_data(as_text=True))
    assert lines[0] == "✗ N11 This marketplace is reached only at its own API address: api.n11.com."


def test_an_unreachable_platform_is_said_plainly(seller: Client, sandbox: Sandbox) -> None:
    sandbox.world.faults.update({"error_rate": 1.0})
    lines = answers(
        seller.post("/integrations/connection", data=typed(sandbox), htmx=True).get_data(as_text=True)
    )
    assert lines[0].startswith(
        "✗ Trendyol Trendyol did not answer properly. Check the address, or try again later."
    )


def test_editing_tries_the_stored_secret_when_it_is_left_blank(
    seller: Client, account: Account, sandbox: Sandbox
) -> None:
    integration = join_sandbox(account, sandbox)
    data = typed(sandbox, marketplace_api_secret="", shop_consumer_secret="")
    response = seller.post(f"/integrations/{integration.id}/connection", data=data, htmx=True)
    assert [line[:1] for line in answers(response.get_data(as_text=True))] == ["✓", "✓"]
    # A secret is never sent to another host than the one it was entered for.
    data["shop_base_url"] = "http://127.0.0.1:9/woocommerce"  # another port, another site
    response = seller.post(f"/integrations/{integration.id}/connection", data=data, htmx=True)
    assert answers(response.get_data(as_text=True))[1] == "✗ WooCommerce Enter Consumer secret (cs_…) first."
    db.session.refresh(integration)
    assert integration.credentials(Side.SHOP)["consumer_secret"] == "cs_sandbox"


def test_another_account_s_integration_is_not_found(client: Client, sandbox: Sandbox) -> None:
    owner = make_account("owner@example.com")
    integration = join_sandbox(owner, sandbox)
    make_account("intruder@example.com")
    client.login("intruder@example.com")
    response = client.post(f"/integrations/{integration.id}/connection", data=typed(sandbox), htmx=True)
    assert response.status_code == 404
    assert sandbox.world.requests == []


def test_it_needs_the_csrf_token_and_a_signed_in_seller(seller: Client, sandbox: Sandbox) -> None:
    assert seller.post("/integrations/connection", data=typed(sandbox), csrf=False).status_code == 400
    seller.post("/logout")
    response = seller.post("/integrations/connection", data=typed(sandbox), htmx=True)
    assert response.status_code in (302, 401) or response.headers.get("HX-Redirect")
    assert sandbox.world.requests == []
