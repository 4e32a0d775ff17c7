"""A shop connected on its own consent page (IdeaSoft's OAuth2 authorisation code), from the panel:
the seller is sent to the sandbox's consent page and back, the code is traded for tokens kept on the
integration, and the tokens a worker refreshes are what every later connector reads."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectors.factory import shop_for
from connectors.registry import Side
from extensions import db
from models import Account, Integration
from models.crypto import decrypt_json
from tests.conftest import Client, make_integration
from tests.sandbox_server import Sandbox


@pytest.fixture
def hub(account: Account, sandbox: Sandbox) -> Integration:
    store = sandbox.world.ideasoft
    integration = make_integration(
        account,
        marketplace_base_url=sandbox.marketplace_url,
        shop_kind="ideasoft",
        shop_base_url=sandbox.ideasoft_url,
    )
    integration.set_credentials(
        Side.MARKETPLACE, {"seller_id": "100200", "api_key": "sandbox-key", "api_secret": "sandbox-secret"}
    )
    keys = {"ideasoft_client_id": store.client_id, "ideasoft_client_secret": store.client_secret}
    integration.set_credentials(Side.SHOP, keys)
    db.session.commit()
    return integration


def tried(seller: Client, integration: Integration) -> str:
    """Test connection on the integration's page, the secrets left blank (the stored ones)."""
    typed = {
        "name": integration.name,
        "marketplace_base_url": integration.marketplace_base_url,
        "marketplace_seller_id": "100200",
        "shop_base_url": integration.shop_base_url,
        "shop_ideasoft_client_id": integration.credentials(Side.SHOP)["ideasoft_client_id"],
    }
    answer = seller.post(f"/integrations/{integration.id}/connection", data=typed, htmx=True)
    return answer.get_data(as_text=True)


def consent(seller: Client, integration: Integration) -> str:
    """Press Connect, and let the sandbox's consent page answer: where it sends the seller back."""
    started = seller.post(f"/integrations/{integration.id}/oauth")
    assert started.status_code == 302
    page = started.headers["Location"]
    assert page.startswith(f"{integration.shop_base_url}/panel/auth?")
    back = httpx.get(page, follow_redirects=False)
    assert back.status_code == 302
    return back.headers["Location"]


def come_back(seller: Client, location: str) -> str:
    """The seller's browser at the hub's callback; the page it lands on."""
    address = urlsplit(location)
    assert f"{address.scheme}://{address.netloc}" == "http://hub.test"
    answer = seller.get(f"{address.path}?{address.query}")
    assert answer.status_code == 302
    return seller.get(answer.headers["Location"]).get_data(as_text=True)


def test_a_seller_connects_an_ideasoft_store_on_its_consent_page(
    seller: Client, hub: Integration, sandbox: Sandbox
) -> None:
    page = seller.get(f"/integrations/{hub.id}/edit").get_data(as_text=True)
    assert "Not connected" in page and "http://hub.test/integrations/oauth/callback" in page
    assert "connect the store on IdeaSoft" in tried(seller, hub)  # the keys alone do not reach the store

    page = come_back(seller, consent(seller, hub))
    assert "IdeaSoft is connected." in page and "✓ Connected" in page
    db.session.expire_all()
    assert hub.shop_connected_at is not None
    kept = decrypt_json(hub.shop_tokens_encrypted)
    assert kept["ideasoft_access_token"] in sandbox.world.ideasoft.access
    assert hub.credentials(Side.SHOP).keys() == {"ideasoft_client_id", "ideasoft_client_secret"}
    assert kept["ideasoft_access_token"] not in page and kept["ideasoft_refresh_token"] not in page
    with shop_for(hub) as shop:
        assert shop.changed_since(hub.created_at) == []
    assert "Connected: IdeaSoft accepted" in tried(seller, hub)


def test_an_answer_this_session_did_not_ask_for_is_not_traded(
    seller: Client, hub: Integration, sandbox: Sandbox
) -> None:
    location = consent(seller, hub)
    forged = location.replace("state=", "state=x")
    assert "did not match a connection you started" in come_back(seller, forged)
    # The state was spent on the forged answer: the real one is not traded either.
    assert "did not match a connection you started" in come_back(seller, location)
    sandbox.world.ideasoft.deny_consent = True
    refused = consent(seller, hub)
    assert parse_qs(urlsplit(refused).query)["error"] == ["access_denied"]
    assert "IdeaSoft did not connect the store (access_denied)" in come_back(seller, refused)
    db.session.expire_all()
    assert hub.shop_tokens_encrypted is None and hub.shop_connected_at is None


def test_tokens_a_worker_renews_are_the_ones_every_later_connector_reads(
    seller: Client, hub: Integration, sandbox: Sandbox
) -> None:
    come_back(seller, consent(seller, hub))
    store = sandbox.world.ideasoft
    db.session.expire_all()
    first = decrypt_json(hub.shop_tokens_encrypted)
    with shop_for(hub) as one, shop_for(hub) as other:  # two workers, the same tokens in hand
        one.changed_since(hub.created_at)
        other.changed_since(hub.created_at)
        store.expire_tokens()
        one.changed_since(hub.created_at)  # refused: renewed, the old refresh token now dead
        renewed = decrypt_json(db.session.scalar(db.select(Integration.shop_tokens_encrypted)))
        assert renewed["ideasoft_refresh_token"] != first["ideasoft_refresh_token"]
        # The other's refresh token is spent: it reads the renewed ones rather than failing.
        other.changed_since(hub.created_at)
    assert store.refreshes == 1
    with shop_for(hub) as later:
        later.changed_since(hub.created_at)
    assert store.refreshes == 1


def test_another_store_address_must_be_connected_again(
    seller: Client, hub: Integration, sandbox: Sandbox
) -> None:
    come_back(seller, consent(seller, hub))
    db.session.expire_all()
    hub.shop_base_url = sandbox.ideasoft_url + "/"
    hub.platform_changed(Side.SHOP)
    db.session.commit()
    assert hub.shop_tokens_encrypted is None and hub.shop_connected_at is None
