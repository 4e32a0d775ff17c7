"""Orders > Integration List: create, edit, (de)activate, delete; credentials; tenant isolation; CSRF."""

from __future__ import annotations

import re

import sqlalchemy as sa

from connectors.registry import Side
from extensions import db
from models import Account, Integration, IntegrationSettings, SettingsChange
from sync.settings import DEFAULTS
from tests.conftest import Client, make_account, make_integration

NEW = {
    "name": "Main store",
    "marketplace_kind": "trendyol",
    "marketplace_base_url": "https://apigw.trendyol.com/integration",
    "marketplace_seller_id": "998877",
    "marketplace_api_key": "new-api-key",
    "marketplace_api_secret": "new-api-secret",
    "shop_kind": "woocommerce",
    "shop_base_url": "https://shop.example.com",
    "shop_consumer_key": "ck_new",
    "shop_consumer_secret": "cs_new",
    "own_shipping_agreement": "y",
    "active": "y",
    "pull_interval": "60",
}


def count(model: type) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def test_list_shows_the_accounts_integrations_only(seller: Client, integration: Integration) -> None:
    other = make_account("other@example.com")
    make_integration(other, name="Someone else's shop")
    page = seller.get("/integrations").get_data(as_text=True)
    assert integration.name in page
    assert "Trendyol" in page and "WooCommerce" in page and "Active" in page
    assert "Someone else" not in page


def test_create_stores_encrypted_credentials_and_default_settings(seller: Client, account: Account) -> None:
    response = seller.post("/integrations/new", data={**NEW, "pull_interval": "30"})
    assert response.status_code == 302
    integration = db.session.scalar(sa.select(Integration))
    assert integration is not None and integration.pull_interval == 30
    assert response.headers["Location"] == f"/integrations/{integration.id}/general"
    assert integration.account_id == account.id
    assert integration.own_shipping_agreement and integration.active
    assert integration.credentials(Side.MARKETPLACE) == {
        "seller_id": "998877",
        "api_key": "new-api-key",
        "api_secret": "new-api-secret",
    }
    assert integration.settings.to_domain() == DEFAULTS


def test_create_refuses_bad_input_and_creates_nothing(seller: Client, integration: Integration) -> None:
    cases = [
        ({"name": ""}, "This field is required."),
        ({"shop_base_url": "ftp://shop"}, "starts with https://"),
        ({"marketplace_api_secret": ""}, "Required."),
        ({"marketplace_kind": "etsy"}, "Not a valid choice"),
        ({"pull_interval": "5"}, "Enter a number of seconds from 10 to 3600."),
        ({"name": integration.name}, "already have an integration with this name"),
    ]
    for change, message in cases:
        response = seller.post("/integrations/new", data={**NEW, **change})
        assert response.status_code == 422, change
        assert message in response.get_data(as_text=True), change
    assert count(Integration) == 1


def test_a_refused_submit_shows_every_message_at_once_and_keeps_what_was_typed(
    seller: Client, integration: Integration
) -> None:
    data = {**NEW, "name": integration.name, "shop_base_url": "ftp://shop", "marketplace_api_secret": ""}
    response = seller.post("/integrations/new", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for message in ("starts with https://", "Required.", "already have an integration with this name"):
        assert message in page, message
    # The secrets typed in this submit come back (masked in the browser); the page is kept by no cache.
    for typed in ("new-api-key", "ck_new", "cs_new"):
        assert f'value="{typed}"' in page, typed
    assert response.headers["Cache-Control"] == "no-store"
    assert count(Integration) == 1


def test_saving_the_connection_stays_on_the_integration(seller: Client, integration: Integration) -> None:
    response = seller.post(f"/integrations/{integration.id}/edit", data={**NEW, "name": "Renamed"})
    assert response.headers["Location"] == f"/integrations/{integration.id}/edit"
    page = seller.get(response.headers["Location"]).get_data(as_text=True)
    assert "Integration “Renamed” is saved." in page


def test_secrets_are_never_rendered_back(seller: Client, integration: Integration) -> None:
    page = seller.get(f"/integrations/{integration.id}/edit").get_data(as_text=True)
    for secret in ("KEY-1", "S3CRET-1", "ck_abc", "cs_xyz"):
        assert secret not in page
    assert "1234" in page  # the seller id is not a secret
    assert page.count("Set. Leave blank to keep it.") == 4


def test_edit_keeps_blank_secrets_and_replaces_given_ones(seller: Client, integration: Integration) -> None:
    data = {
        **NEW,
        "name": "Renamed",
        "marketplace_api_key": "",
        "marketplace_api_secret": "rotated",
        "shop_consumer_key": "",
        "shop_consumer_secret": "",
    }
    response = seller.post(f"/integrations/{integration.id}/edit", data=data)
    assert response.status_code == 302
    db.session.expire_all()
    assert integration.name == "Renamed"
    assert integration.credentials(Side.MARKETPLACE) == {
        "seller_id": "998877",
        "api_key": "KEY-1",
        "api_secret": "rotated",
    }
    assert integration.credentials(Side.SHOP) == {"consumer_key": "ck_abc", "consumer_secret": "cs_xyz"}
    fields = {change.field for change in integration.latest_changes(10)}
    assert fields == {"name", "marketplace_credentials"}
    history = seller.get(f"/integrations/{integration.id}/general").get_data(as_text=True)
    assert "rotated" not in history and "Replaced" in history


def test_edit_cannot_change_the_kinds(seller: Client, integration: Integration) -> None:
    # The posted kinds are ignored (not even checked), the stored ones stay, the rest saves.
    data = {**NEW, "name": "Renamed", "marketplace_kind": "amazon", "shop_kind": "shopify"}
    response = seller.post(f"/integrations/{integration.id}/edit", data=data)
    assert response.status_code == 302
    db.session.expire_all()
    assert (integration.name, integration.marketplace_kind, integration.shop_kind) == (
        "Renamed",
        "trendyol",
        "woocommerce",
    )


def test_moving_to_another_host_asks_for_the_secrets_again(seller: Client, integration: Integration) -> None:
    data = {
        **NEW,
        "shop_base_url": "https://elsewhere.example.net",
        "shop_consumer_key": "",
        "shop_consumer_secret": "",
    }
    response = seller.post(f"/integrations/{integration.id}/edit", data=data)
    assert response.status_code == 422
    assert response.get_data(as_text=True).count("enter this secret again") == 2
    db.session.expire_all()
    assert integration.shop_base_url == "https://shop.example.com"
    # Another path on the same host keeps them; the new host with new secrets is saved.
    same_host = {**data, "shop_base_url": "https://shop.example.com/store"}
    assert seller.post(f"/integrations/{integration.id}/edit", data=same_host).status_code == 302
    new_host = {**data, "shop_consumer_key": "ck_new2", "shop_consumer_secret": "cs_new2"}
    assert seller.post(f"/integrations/{integration.id}/edit", data=new_host).status_code == 302
    db.session.expire_all()
    assert integration.credentials(Side.SHOP) == {"consumer_key": "ck_new2", "consumer_secret": "cs_new2"}


def test_clearing_the_seller_id_is_refused(seller: Client, integration: Integration) -> None:
    # A plain field is shown back, so a blank one means "none", not "keep the stored one".
    response = seller.post(f"/integrations/{integration.id}/edit", data={**NEW, "marketplace_seller_id": ""})
    assert response.status_code == 422
    assert "Required." in response.get_data(as_text=True)
    db.session.expire_all()
    assert integration.credentials(Side.MARKETPLACE)["seller_id"] == "1234"


def test_a_long_address_change_is_recorded(seller: Client, integration: Integration) -> None:
    address = "https://shop.example.com/" + "a" * 470
    response = seller.post(f"/integrations/{integration.id}/edit", data={**NEW, "shop_base_url": address})
    assert response.status_code == 302
    db.session.expire_all()
    assert integration.shop_base_url == address
    assert any(change.new_value == address for change in integration.latest_changes(10))


def test_a_name_that_reads_on_is_shown_as_it_is(seller: Client, integration: Integration) -> None:
    assert seller.post(f"/integrations/{integration.id}/edit", data={**NEW, "name": "on"}).status_code == 302
    page = seller.get(f"/integrations/{integration.id}/general").get_data(as_text=True)
    assert "Trendyol → Woo → on</td>" in page and "→ On</td>" not in page


def test_losing_own_shipping_switches_its_settings_off(seller: Client, integration: Integration) -> None:
    integration.settings.approval_feedback = True
    integration.settings.reverse_flow = True
    db.session.commit()
    data = {**NEW, "own_shipping_agreement": ""}
    assert seller.post(f"/integrations/{integration.id}/edit", data=data).status_code == 302
    db.session.expire_all()
    assert not integration.own_shipping_agreement
    assert not integration.settings.approval_feedback and not integration.settings.reverse_flow
    fields = {change.field for change in integration.latest_changes(10)}
    assert {"own_shipping_agreement", "approval_feedback", "reverse_flow"} <= fields


def test_deactivate_and_activate_with_htmx(seller: Client, integration: Integration) -> None:
    url = f"/integrations/{integration.id}/active"
    response = seller.post(url, data={"active": "off"}, htmx=True)
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith(f'<tr id="integration-{integration.id}"')
    assert "Passive" in fragment and "Activate" in fragment
    assert 'name="active" value="on"' in fragment
    db.session.expire_all()
    assert integration.active is False
    # A double click posts the same wish twice: still passive, one change on record.
    assert seller.post(url, data={"active": "off"}, htmx=True).status_code == 200
    db.session.expire_all()
    assert integration.active is False
    assert [change.field for change in integration.latest_changes(10)] == ["active"]
    response = seller.post(url, data={"active": "on"})  # without JavaScript
    assert response.status_code == 302
    db.session.expire_all()
    assert integration.active is True


def test_toggle_refuses_an_unknown_state(seller: Client, integration: Integration) -> None:
    url = f"/integrations/{integration.id}/active"
    assert seller.post(url, data={"active": "maybe"}).status_code == 400
    assert seller.post(url, data={}).status_code == 400
    db.session.expire_all()
    assert integration.active is True


def test_delete_asks_first_then_deletes_everything(seller: Client, integration: Integration) -> None:
    confirm = seller.get(f"/integrations/{integration.id}/delete")
    assert confirm.status_code == 200
    assert "cannot be undone" in confirm.get_data(as_text=True)
    assert count(Integration) == 1
    seller.post(f"/integrations/{integration.id}/general/stock", data={"decrease_stock": "y"}, htmx=True)
    assert seller.post(f"/integrations/{integration.id}/delete").status_code == 302
    assert count(Integration) == count(IntegrationSettings) == count(SettingsChange) == 0


def test_another_accounts_integration_answers_404(seller: Client) -> None:
    other = make_integration(make_account("other@example.com"), name="Not yours")
    base = f"/integrations/{other.id}"
    for page in (f"{base}/edit", f"{base}/general", f"{base}/delete"):
        assert seller.get(page).status_code == 404, page
    posts = {
        f"{base}/edit": NEW,
        f"{base}/general": {"decrease_stock": "y"},
        f"{base}/general/stock": {"decrease_stock": "y"},
        f"{base}/active": {"active": "off"},
        f"{base}/delete": {},
    }
    for page, data in posts.items():
        assert seller.post(page, data=data).status_code == 404, page
        assert seller.post(page, data=data, htmx=True).status_code == 404, page
    db.session.expire_all()
    assert other.name == "Not yours" and other.active and not other.settings.decrease_stock
    assert count(Integration) == 1


def test_missing_integration_and_section_answer_404(seller: Client, integration: Integration) -> None:
    assert seller.get("/integrations/999/general").status_code == 404
    for huge in ("2147483648", "99999999999999999999", "0"):  # past a 32-bit id: 404, not a database error
        assert seller.get(f"/integrations/{huge}/general").status_code == 404
        assert seller.post(f"/integrations/{huge}/general/stock", data={}, htmx=True).status_code == 404
    assert seller.post(f"/integrations/{integration.id}/general/nope", data={}).status_code == 404


def test_every_mutation_needs_the_csrf_token(seller: Client, integration: Integration) -> None:
    base = f"/integrations/{integration.id}"
    posts = {
        "/integrations/new": NEW,
        f"{base}/edit": {**NEW, "name": "Hijacked"},
        f"{base}/general": {"decrease_stock": "y"},
        f"{base}/general/stock": {"decrease_stock": "y"},
        f"{base}/active": {"active": "off"},
        f"{base}/delete": {},
        "/settings": {"notification_email": "attacker@example.com", "language": "en"},
    }
    for page, data in posts.items():
        for htmx in (False, True):
            response = seller.post(page, data=data, csrf=False, htmx=htmx)
            assert response.status_code == 400, (page, htmx)
            assert "CSRF" in response.get_data(as_text=True)
    db.session.expire_all()
    assert count(Integration) == 1
    assert integration.name != "Hijacked" and integration.active and not integration.settings.decrease_stock
    assert db.session.get(Account, integration.account_id).notification_email is None  # type: ignore[union-attr]


def test_security_headers(seller: Client) -> None:
    response = seller.get("/integrations")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"  # a seller's page, in no cache


def test_pages_have_no_inline_script(seller: Client, integration: Integration) -> None:
    for page in (
        "/integrations",
        "/settings",
        f"/integrations/{integration.id}/general",
        f"/integrations/{integration.id}/edit",
        f"/integrations/{integration.id}/delete",
    ):
        html = seller.get(page).get_data(as_text=True)
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert scripts and all(" src=" in tag for tag in scripts), page
        assert not re.search(r"<[^>]+\son\w+\s*=", html), page  # no inline event handlers
        assert not re.search(r"<script\b[^>]*>[^<]+</script>", html), page


def test_a_signed_out_htmx_request_redirects_the_whole_window(
    client: Client, integration: Integration
) -> None:
    response = client.post(
        f"/integrations/{integration.id}/general/stock",
        data={"decrease_stock": "y"},
        htmx=True,
        headers={"HX-Current-URL": f"http://localhost/integrations/{integration.id}/general"},
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login?next=")
    assert f"%2Fintegrations%2F{integration.id}%2Fgeneral" in response.headers["HX-Redirect"]
    db.session.expire_all()
    assert not integration.settings.decrease_stock
