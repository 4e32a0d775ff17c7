"""The IdeaSoft connector against the sandbox's IdeaSoft over HTTP: the consent page and the code, tokens
refreshed before they end or on a 401 and saved as they rotate, orders made exact to the cent and found
again by their referrer (a lost answer makes no second one), statuses, tracking, notes, the poll, the
webhook subscriptions and their signature; and every call checked against specs/ideasoft-admin.openapi.yml
with openapi-core."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import sqlalchemy as sa
import yaml
from flask import Flask
from openapi_core import OpenAPI

from connectors import ideasoft
from connectors.base import (
    Address,
    InvalidAnswer,
    Permanent,
    RateLimited,
    Retryable,
    ShippingCharge,
    ShopConnector,
    ShopLine,
    ShopOrderPlan,
    WebhookNotice,
    WebhookRefused,
)
from connectors.http import Guard
from connectors.ideasoft import IdeasoftConnector, MemoryTokens, Tokens
from extensions import db
from models import Account, Integration, Order
from sandbox.ideasoft import IdeasoftShop
from sandbox.state import World
from sandbox.webhooks import Delivery
from sync import webhooks
from tests.conftest import Client, join_sandbox
from tests.contract import Contract, Recording
from tests.pipeline import configure, drain
from tests.sandbox_server import Sandbox, serve_sandbox
from tests.shops import IDEASOFT

LOCAL = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), timeout=5)
SPEC_FILE = Path(__file__).resolve().parents[1] / "specs" / "ideasoft-admin.openapi.yml"
BACK = "https://hub.example/integrations/ideasoft/connected"
SHIRT, MUG = "TS-BEYAZ-M", "KUPA-SERAMIK"
ADDRESS = Address("Ayşe Nur", "Yılmaz", "Caferağa Mah. Gül Sok. No:3 D:5", "İstanbul", "Kadıköy", "34710")
BILLING = Address(
    "Mehmet", "Kaya", "Kızılay Mah. Atatürk Cad. 10", "Ankara", "Çankaya", "06420", company="Kaya"
)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with serve_sandbox(World()) as sandbox:
        yield sandbox


def store(sandbox: Sandbox) -> IdeasoftShop:
    return sandbox.world.ideasoft


def consent(
    sandbox: Sandbox, state: str = "s-1", transport: httpx.BaseTransport | None = None
) -> dict[str, str]:
    """The seller on the consent page: where IdeaSoft sends them back, as query values."""
    url = ideasoft.authorize_url(sandbox.ideasoft_url, store(sandbox).client_id, BACK, state)
    with httpx.Client(transport=transport) as client:
        answer = client.get(url, follow_redirects=False)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(BACK + "?")
    return dict(parse_qsl(urlsplit(location).query))


def connected(sandbox: Sandbox, transport: httpx.BaseTransport | None = None) -> Tokens:
    shop = store(sandbox)
    code = consent(sandbox, transport=transport)["code"]
    return ideasoft.exchange_code(
        LOCAL, sandbox.ideasoft_url, shop.client_id, shop.client_secret, code, BACK, transport=transport
    )


def connect(
    sandbox: Sandbox, tokens: ideasoft.TokenStore | None, transport: httpx.BaseTransport | None = None
) -> IdeasoftConnector:
    shop = store(sandbox)
    keys = {"ideasoft_client_id": shop.client_id, "ideasoft_client_secret": shop.client_secret}
    return IdeasoftConnector(sandbox.ideasoft_url, keys, LOCAL, tokens=tokens, transport=transport)


def plan(reference: str = "hub-7-1001", status: str = "approved", **changes: Any) -> ShopOrderPlan:
    """Three shirts at 10 % for 419.70 (139.90 each), a mug at 20 %, 29.99 shipping: 539.68."""
    lines = (
        ShopLine(SHIRT, "Pamuklu Basic Tişört Beyaz", 3, Decimal("419.70"), Decimal(10)),
        ShopLine(MUG, "El Yapımı Seramik Kupa", 1, Decimal("89.99"), Decimal(20)),
    )
    values: dict[str, Any] = {
        "reference": reference,
        "status": status,
        "marketplace": "trendyol",
        "order_number": "10293847",
        "package_id": reference.rsplit("-", 1)[-1],
        "currency": "TRY",
        "customer_email": "ayse@example.com",
        "billing": BILLING,
        "shipping": ADDRESS,
        "lines": lines,
        "shipping_charge": ShippingCharge("Kargo", Decimal("24.99"), Decimal("5.00"), Decimal(20)),
        "total": Decimal("539.68"),
    }
    return ShopOrderPlan(**{**values, **changes})


def calls(sandbox: Sandbox, method: str, suffix: str) -> int:
    """How many calls of `method` to a path ending so IdeaSoft took (2xx)."""
    return sum(
        1
        for verb, path, status in sandbox.world.requests
        if verb == method and path.endswith(suffix) and status < 300
    )


class LaggingStore(MemoryTokens):
    """A store whose next load still gives the pair it held before: another process's save lands between
    the connector's look at the store and its refresh."""

    def __init__(self, tokens: Tokens) -> None:
        super().__init__(tokens)
        self.stale: Tokens | None = None

    def load(self) -> Tokens | None:
        if self.stale is not None:
            stale, self.stale = self.stale, None
            return stale
        return self.tokens


# -- connecting -------------------------------------------------------------------------------------


def test_the_consent_page_comes_back_with_a_code_traded_once_for_tokens(sandbox: Sandbox) -> None:
    url = ideasoft.authorize_url(sandbox.ideasoft_url + "/", "app 1", BACK, "s-1")
    assert url.startswith(f"{sandbox.ideasoft_url}/panel/auth?")
    query = dict(parse_qsl(urlsplit(url).query))
    assert query == {"client_id": "app 1", "redirect_uri": BACK, "response_type": "code", "state": "s-1"}
    shop = store(sandbox)
    back = consent(sandbox, state="s-9")
    assert back["state"] == "s-9"
    before = datetime.now(UTC)
    tokens = ideasoft.exchange_code(
        LOCAL, sandbox.ideasoft_url, shop.client_id, shop.client_secret, back["code"], BACK
    )
    assert tokens.access_token in shop.access and tokens.refresh_token in shop.refresh
    assert before + timedelta(seconds=3590) < tokens.expires_at <= datetime.now(UTC) + timedelta(seconds=3600)
    # A code is single-use: IdeaSoft's own words come back.
    with pytest.raises(Permanent, match="invalid_grant") as refused:
        ideasoft.exchange_code(
            LOCAL, sandbox.ideasoft_url, shop.client_id, shop.client_secret, back["code"], BACK
        )
    assert refused.value.status == 400


def test_a_seller_who_refuses_consent_comes_back_without_a_code(sandbox: Sandbox) -> None:
    store(sandbox).deny_consent = True
    assert consent(sandbox, state="s-2") == {"error": "access_denied", "state": "s-2"}


def test_without_tokens_the_connector_asks_for_the_consent_page(sandbox: Sandbox) -> None:
    for tokens in (None, MemoryTokens()):
        with pytest.raises(Permanent, match="consent page") as refused:
            connect(sandbox, tokens).get_order("1001")
        assert refused.value.category == "auth"
    assert sandbox.world.requests == []


def test_tokens_kept_in_the_credentials_serve_until_a_store_is_wired(sandbox: Sandbox) -> None:
    shop = store(sandbox)
    keys = {"ideasoft_client_id": shop.client_id, "ideasoft_client_secret": shop.client_secret}
    keys |= ideasoft.credentials_of(connected(sandbox))
    connector = IdeasoftConnector(sandbox.ideasoft_url, keys, LOCAL)
    made = connector.create_order(plan())
    assert connector.get_order(made.shop_id) == made


# -- the tokens -------------------------------------------------------------------------------------


def test_tokens_are_refreshed_shortly_before_they_end_and_the_new_pair_saved(sandbox: Sandbox) -> None:
    first = connected(sandbox)
    tokens = MemoryTokens(first)
    connector = connect(sandbox, tokens)
    made = connector.create_order(plan())
    assert store(sandbox).refreshes == 0 and tokens.saved == 0
    connector.clock = lambda: first.expires_at - ideasoft.REFRESH_MARGIN + timedelta(seconds=1)
    connector.get_order(made.shop_id)
    assert store(sandbox).refreshes == 1 and tokens.saved == 1
    assert tokens.tokens is not None and tokens.tokens.refresh_token != first.refresh_token
    connector.get_order(made.shop_id)
    assert store(sandbox).refreshes == 1  # the new pair serves
    # Refresh tokens rotate: the old one is spent.
    with pytest.raises(Permanent, match="invalid_grant"):
        ideasoft._token_call(
            connector.http, sandbox.ideasoft_url, _refresh_form(sandbox, first), first.expires_at
        )


def _refresh_form(sandbox: Sandbox, tokens: Tokens) -> dict[str, str]:
    shop = store(sandbox)
    return {
        "grant_type": "refresh_token",
        "client_id": shop.client_id,
        "client_secret": shop.client_secret,
        "refresh_token": tokens.refresh_token,
    }


def test_an_access_token_refused_midway_gets_one_refresh_and_the_call_again(sandbox: Sandbox) -> None:
    tokens = MemoryTokens(connected(sandbox))
    connector = connect(sandbox, tokens)
    made = connector.create_order(plan())
    store(sandbox).expire_tokens()
    assert connector.get_order(made.shop_id) == made
    assert store(sandbox).refreshes == 1 and tokens.saved == 1
    assert calls(sandbox, "GET", f"/admin-api/orders/{made.shop_id}") == 2  # after the create, and again


def test_a_refresh_another_process_made_first_is_taken_from_the_store(sandbox: Sandbox) -> None:
    """IdeaSoft says invalid_grant to a spent refresh token: the store is read again once, and the pair
    the other process saved serves."""
    first = connected(sandbox)
    tokens = LaggingStore(first)
    connector = connect(sandbox, tokens)
    made = connector.create_order(plan())
    # Another process refreshes and saves; this one looks at the store before that save lands.
    other = ideasoft._token_call(
        connector.http, sandbox.ideasoft_url, _refresh_form(sandbox, first), datetime.now(UTC)
    )
    tokens.tokens, tokens.stale = other, first
    store(sandbox).expire_tokens()
    store(sandbox).access[other.access_token] = store(sandbox).clock() + 3600
    assert connector.get_order(made.shop_id) == made
    assert store(sandbox).refreshes == 1  # the other process's only
    assert tokens.tokens == other and tokens.saved == 0


def test_a_refresh_refused_for_good_asks_for_the_consent_page_again(sandbox: Sandbox) -> None:
    first = connected(sandbox)
    tokens = MemoryTokens(first)
    connector = connect(sandbox, tokens)
    store(sandbox).refresh.clear()  # the seller removed the app's access in the panel
    connector.clock = lambda: first.expires_at
    with pytest.raises(Permanent, match=r"Invalid refresh token.*consent page") as refused:
        connector.get_order("1001")
    assert refused.value.category == "auth"
    assert tokens.saved == 0


# -- orders -----------------------------------------------------------------------------------------


def test_an_order_is_made_at_the_marketplace_s_total_and_found_by_its_reference(sandbox: Sandbox) -> None:
    connector: ShopConnector = connect(sandbox, MemoryTokens(connected(sandbox)))
    since = datetime.now(UTC) - timedelta(minutes=1)
    made = connector.create_order(plan())
    assert (made.reference, made.status, made.total) == ("hub-7-1001", "approved", Decimal("539.68"))
    raw = store(sandbox).orders[int(made.shop_id)]
    assert raw["referrer"] == "hub-7-1001" and raw["shippingAmount"] == "29.99"
    assert [
        (item["productSku"], item["productQuantity"], item["productPrice"]) for item in raw["orderItems"]
    ] == [
        (SHIRT, 3, "139.90"),
        (MUG, 1, "89.99"),
    ]
    assert connector.find_order("hub-7-1001", since) == made
    assert connector.find_order("hub-7-100", since) is None  # exact: a prefix is another order
    assert connector.settle_total(made.shop_id, Decimal("539.68")) == made
    with pytest.raises(Permanent, match="IdeaSoft panel"):
        connector.settle_total(made.shop_id, Decimal("540.00"))


def test_a_lost_answer_to_the_create_makes_no_second_order(sandbox: Sandbox) -> None:
    """The create reached IdeaSoft but its answer was lost: the order is found by its reference."""
    tokens = MemoryTokens(connected(sandbox))
    slow = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), timeout=0.5)
    shop = store(sandbox)
    keys = {"ideasoft_client_id": shop.client_id, "ideasoft_client_secret": shop.client_secret}
    since = datetime.now(UTC) - timedelta(minutes=1)
    sandbox.world.faults.update({"timeout_rate": 1, "timeout_method": "POST", "timeout_seconds": 1})
    with pytest.raises(Retryable):
        IdeasoftConnector(sandbox.ideasoft_url, keys, slow, tokens=tokens).create_order(plan())
    sandbox.world.faults.update({"timeout_rate": 0})
    found = connect(sandbox, tokens).find_order("hub-7-1001", since)
    assert found is not None and found.total == Decimal("539.68")
    assert len(shop.orders) == 1


class SlowsDownAfterTheCreate(httpx.HTTPTransport):
    """IdeaSoft taking the create, then answering the next read with 429 (two calls back to back)."""

    def __init__(self) -> None:
        super().__init__()
        self.created = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.created and request.method == "GET":
            self.created = False
            return httpx.Response(429, json={"message": "Too many requests"}, request=request)
        self.created = self.created or (request.method == "POST" and request.url.path.endswith("/api/orders"))
        return super().handle_request(request)


def test_a_read_refused_after_the_create_does_not_read_as_nothing_made(sandbox: Sandbox) -> None:
    """The create was taken and the read after it refused: no status on the error, so the pipeline looks
    the order up before trying again (a 429 there would have told it nothing was made)."""
    tokens = MemoryTokens(connected(sandbox))
    with pytest.raises(InvalidAnswer, match="IdeaSoft took the order, then") as caught:
        connect(sandbox, tokens, transport=SlowsDownAfterTheCreate()).create_order(plan())
    assert caught.value.status is None
    assert connect(sandbox, tokens).find_order("hub-7-1001") is not None
    assert len(store(sandbox).orders) == 1


def test_a_create_ideasoft_refuses_stops_with_its_words(sandbox: Sandbox) -> None:
    connector = connect(sandbox, MemoryTokens(connected(sandbox)))
    with pytest.raises(Permanent, match="IdeaSoft answered 400: Geçersiz sipariş durumu: shipped") as refused:
        connector.create_order(plan(status="shipped"))
    assert refused.value.category == "refused"
    assert store(sandbox).orders == {}


def test_status_tracking_and_notes_are_written_once(sandbox: Sandbox) -> None:
    connector = connect(sandbox, MemoryTokens(connected(sandbox)))
    made = connector.create_order(plan())
    assert connector.set_status(made.shop_id, "being_prepared").status == "being_prepared"
    connector.set_status(made.shop_id, "being_prepared")
    with pytest.raises(Permanent, match="Geçersiz sipariş durumu: shipped"):
        connector.set_status(made.shop_id, "shipped")
    shipped = connector.set_tracking(
        made.shop_id, "Sürat Kargo Marketplace", "SRT1", "https://x.example/SRT1"
    )
    assert (shipped.tracking_number, shipped.carrier) == ("SRT1", "Sürat Kargo")
    assert store(sandbox).orders[int(made.shop_id)]["shippingProviderCode"] == "surat"
    connector.set_tracking(made.shop_id, "Sürat Kargo", "SRT1", "")
    own = connector.set_tracking(made.shop_id, "Kendi Kargom", "K1", "")  # no IdeaSoft code for it
    assert (own.tracking_number, own.carrier) == ("K1", "Sürat Kargo")
    assert calls(sandbox, "PUT", f"/admin-api/orders/{made.shop_id}") == 3  # status, Sürat, the own carrier
    connector.add_note(made.shop_id, "Trendyol paketi 10293847")
    connector.add_note(made.shop_id, "Trendyol paketi 10293847")
    assert [note["note"] for note in store(sandbox).notes] == ["Trendyol paketi 10293847"]
    with pytest.raises(Permanent, match="no order"):
        connector.get_order("hub-7-1001")


def test_the_poll_finds_the_hub_s_orders_the_seller_changed(sandbox: Sandbox) -> None:
    shop = store(sandbox)
    now = datetime.now(UTC)
    shop.clock = lambda: (now - timedelta(hours=2)).timestamp()
    connector = connect(sandbox, MemoryTokens(connected(sandbox)))
    made = connector.create_order(plan())
    shop.create({"referrer": "", "status": "approved", "orderItems": [_item()]})  # the store's own order
    assert connector.changed_since(now - timedelta(hours=1)) == []
    shop.clock = lambda: now.timestamp()
    shop.ship(int(made.shop_id), "aras", "ARAS1")
    (changed,) = connector.changed_since(now - timedelta(hours=1))
    assert (changed.shop_id, changed.tracking_number, changed.carrier) == (
        made.shop_id,
        "ARAS1",
        "Aras Kargo",
    )
    assert changed.modified_at == now.replace(microsecond=0)
    assert connector.changed_since(now + timedelta(seconds=1)) == []


def _item() -> dict[str, Any]:
    return {"productSku": MUG, "productQuantity": 1, "productPrice": "10.00"}


def test_statuses_are_ideasoft_s_fixed_set_with_the_personal_ones(sandbox: Sandbox) -> None:
    listed = connect(sandbox, MemoryTokens(connected(sandbox))).statuses()
    assert set(listed) == {
        "waiting_for_approval",
        "approved",
        "fulfilled",
        "cancelled",
        "delivered",
        "on_accumulation",
        "waiting_for_payment",
        "being_prepared",
        "refunded",
        "personal_status_1",
        "personal_status_2",
        "personal_status_3",
    }
    assert set(ideasoft.DEFAULT_STATUS_MAP.values()) <= set(listed)


def test_a_429_is_rate_limited(sandbox: Sandbox) -> None:
    connector = connect(sandbox, MemoryTokens(connected(sandbox)))
    store(sandbox).rate_limited = 1
    with pytest.raises(RateLimited) as limited:
        connector.find_order("hub-7-1")
    assert limited.value.retry_after == ideasoft.RATE_LIMIT_WAIT


# -- webhooks ---------------------------------------------------------------------------------------


def test_subscribing_again_keeps_what_is_there_and_remakes_what_ideasoft_deleted(sandbox: Sandbox) -> None:
    connector = connect(sandbox, MemoryTokens(connected(sandbox)))
    said = connector.subscribe("https://hub.example/wh/ideasoft/abc", "ignored")
    assert "order/create" in said and "order/update" in said
    connector.subscribe("https://hub.example/wh/ideasoft/abc", "ignored")
    shop = store(sandbox)
    assert sorted((s["topic"], s["address"], s["status"]) for s in shop.subscriptions) == [
        ("order/create", "https://hub.example/wh/ideasoft/abc", 1),
        ("order/update", "https://hub.example/wh/ideasoft/abc", 1),
    ]
    shop.drop_subscriptions()  # deliveries failed: IdeaSoft deleted them
    connector.subscribe("https://hub.example/wh/ideasoft/abc", "ignored")
    assert len(shop.subscriptions) == 2


def test_ideasoft_s_signed_deliveries_name_the_order_and_forgeries_are_refused(sandbox: Sandbox) -> None:
    shop = store(sandbox)
    connector = connect(sandbox, MemoryTokens(connected(sandbox)))
    connector.subscribe("https://hub.example/wh/ideasoft/abc", "")
    sender = sandbox.world.webhooks
    sender.hold = True
    made = connector.create_order(plan())
    shop.set_status(int(made.shop_id), "personal_status_1")
    notices: list[WebhookNotice] = []

    def receive(delivery: Delivery) -> int:
        notices.append(ideasoft.read_webhook(delivery.headers, delivery.body, shop.client_secret))
        return 200

    sender.release(receive)
    assert [notice.subject for notice in notices] == [made.shop_id, made.shop_id]
    assert len({notice.key for notice in notices}) == 2
    delivery_body = json.dumps({"id": int(made.shop_id), "status": "approved"}).encode()
    with pytest.raises(WebhookRefused):
        ideasoft.read_webhook({"X-Ideashop-Hmac-Sha256": "forged"}, delivery_body, shop.client_secret)
    with pytest.raises(WebhookRefused):
        ideasoft.read_webhook({}, delivery_body, shop.client_secret)


def test_ideasoft_s_webhooks_carry_the_seller_s_tracking_code_to_the_marketplace(
    app: Flask, seller: Client, client: Client, account: Account, sandbox: Sandbox
) -> None:
    """Registered from the panel, signed with the app's client secret, read by the hub's intake: the
    tracking code the seller enters in IdeaSoft reaches Trendyol without waiting for a poll."""
    sandbox.world.webhooks.hold = True
    hub = join_sandbox(account, sandbox)
    IDEASOFT.join(hub, sandbox)
    configure(hub, update_feedback=True, approval_feedback=True, reverse_flow=True)
    page = seller.post(f"/integrations/{hub.id}/webhooks", htmx=True).get_data(as_text=True)
    db.session.expire_all()
    assert hub.shop_webhooks_at is not None, page
    address = f"http://hub.test/webhooks/{hub.webhook_token}/shop"
    assert sorted((s["topic"], s["address"]) for s in store(sandbox).subscriptions) == [
        ("order/create", address),
        ("order/update", address),
    ]
    package = sandbox.order()
    for _ in range(2):  # Trendyol's delivery makes the IdeaSoft order; IdeaSoft's own say nothing new
        deliver(client, sandbox)
        handle(hub)
    order = db.session.scalar(sa.select(Order))
    assert order is not None and order.shop_id
    store(sandbox).ship(int(order.shop_id), "surat", "SELLER9")
    assert set(deliver(client, sandbox)) == {200}
    handle(hub)
    assert sandbox.package(package["shipmentPackageId"]).get("cargoSenderNumber") == "SELLER9"


def deliver(client: Client, sandbox: Sandbox) -> list[int]:
    """The deliveries the sandbox held, handed to the hub as the platforms send them; its answers."""

    def send(delivery: Delivery) -> int:
        path = urlsplit(delivery.url).path
        return client.open(
            path, method=delivery.method, data=delivery.body, headers=dict(delivery.headers)
        ).status_code

    return [sent.status for sent in sandbox.world.webhooks.release(send)]


def handle(integration: Integration) -> None:
    """The worker's turn: the waiting deliveries, then the actions they set off."""
    webhooks.handle(integration.id, lambda actions: None)
    drain()
    db.session.expire_all()


# -- the spec ---------------------------------------------------------------------------------------


def spec_path(request: httpx.Request) -> str:
    path = request.url.path
    assert path.startswith("/ideasoft/"), f"not an IdeaSoft path: {path}"
    return path.removeprefix("/ideasoft")


def template(path: str) -> str:
    return "/admin-api/orders/{id}" if path.startswith("/admin-api/orders/") else path


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def contract(spec: dict[str, Any]) -> Contract:
    return Contract(OpenAPI.from_dict(spec), "https://example.myideasoft.com", spec_path)


@pytest.fixture
def recording() -> Iterator[Recording]:
    recording = Recording()
    yield recording
    recording.close()


def test_every_call_of_the_connector_keeps_to_the_spec(
    sandbox: Sandbox, recording: Recording, contract: Contract, spec: dict[str, Any]
) -> None:
    """Both ways, every call the connector makes and every operation of the spec made: refusals (an ended
    token, an order IdeaSoft does not have) and a 429 too. (A status IdeaSoft lacks is refused by the spec
    itself before the store: test_a_call_off_the_spec_is_caught.)"""
    tokens = MemoryTokens(connected(sandbox, recording))
    connector = connect(sandbox, tokens, recording)
    made = connector.create_order(plan())
    connector.find_order("hub-7-2", datetime.now(UTC) - timedelta(minutes=1))
    connector.set_status(made.shop_id, "being_prepared")
    connector.set_tracking(made.shop_id, "Yurtiçi Kargo", "YK1", "")
    connector.add_note(made.shop_id, "not")
    connector.changed_since(datetime.now(UTC) - timedelta(hours=1))
    connector.subscribe("https://hub.example/wh/ideasoft/abc", "")
    store(sandbox).expire_tokens()
    connector.get_order(made.shop_id)
    with pytest.raises(Permanent):
        connector.get_order("999999")
    store(sandbox).rate_limited = 1
    with pytest.raises(RateLimited):
        connector.get_order(made.shop_id)

    made_calls = {(request.method, template(spec_path(request))) for request, _ in recording.calls}
    in_spec = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method != "parameters"
    }
    assert made_calls == in_spec
    assert contract.violations(recording.calls) == []


def test_a_call_off_the_spec_is_caught(sandbox: Sandbox, recording: Recording, contract: Contract) -> None:
    """The check itself: a page over 100, a field the order create does not take, a status IdeaSoft lacks."""
    token = connected(sandbox).access_token
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(transport=recording, headers=headers) as client:
        client.get(f"{sandbox.ideasoft_url}/admin-api/orders", params={"limit": "101"})
        body = {**ideasoft.order_body(plan()), "orderNumber": "x"}
        client.post(f"{sandbox.ideasoft_url}/api/orders", json=body)
        client.put(f"{sandbox.ideasoft_url}/admin-api/orders/1001", json={"status": "shipped"})
    first, second, third = contract.violations(recording.calls)
    assert first.startswith("GET /admin-api/orders 400 request") and "101" in first
    assert second.startswith("POST /api/orders 201 request")
    assert third.startswith("PUT /admin-api/orders/1001 400 request") and "shipped" in third
