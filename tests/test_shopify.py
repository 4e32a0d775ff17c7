"""The Shopify connector against the sandbox's Shopify over HTTP: the client credentials token and its
cache, orders created exact to the cent and found again while the search index lags, status, tracking
and note, listing by pages, throttling, userErrors, webhooks, and every document the connector sends
validated against the schema subset (specs/shopify-admin-graphql.graphql)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import graphql
import httpx
import pytest

from connectors import shopify
from connectors.base import (
    Address,
    Permanent,
    RateLimited,
    Retryable,
    ShippingCharge,
    ShopLine,
    ShopOrderPlan,
    WebhookRefused,
)
from connectors.http import Guard
from connectors.registry import SHOPIFY
from connectors.shopify import DOCUMENTS, ShopifyConnector, forget_tokens, read_webhook
from sandbox.shopify import ShopifyShop
from sandbox.state import World
from sync.statuses import CanonicalStatus
from tests.sandbox_server import Sandbox, serve_sandbox

CREDENTIALS = {"shopify_client_id": "shopify-sandbox-client", "shopify_client_secret": "shpss_sandbox_secret"}
SECRET = CREDENTIALS["shopify_client_secret"]
# The sandbox listens on a loopback port: allowlisted, as in development.
LOCAL = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), timeout=5)
SDL = Path(__file__).resolve().parents[1] / "specs" / "shopify-admin-graphql.graphql"
ADDRESS = Address(
    "Ayşe", "Yılmaz", "Caferağa Mah. Gül Sok. No:3", "İstanbul", "Kadıköy", "34710", phone="05321234567"
)


@pytest.fixture(autouse=True)
def fresh_tokens() -> Iterator[None]:
    forget_tokens()
    yield
    forget_tokens()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with serve_sandbox(World()) as served:
        yield served


def connect(
    sandbox: Sandbox, credentials: dict[str, str] | None = None, guard: Guard = LOCAL
) -> ShopifyConnector:
    return ShopifyConnector(sandbox.shopify_url, credentials or CREDENTIALS, guard)


def plan(reference: str, **changes: Any) -> ShopOrderPlan:
    """Awkward on purpose: 100.00 for three, 1 % and 0 % VAT, a SKU the shop lacks, shipping with VAT."""
    made = ShopOrderPlan(
        reference=reference,
        status="unfulfilled",
        marketplace="trendyol",
        order_number="10400000001",
        package_id="3100000001",
        currency="TRY",
        customer_email="ayse@example.com",
        billing=ADDRESS,
        shipping=ADDRESS,
        lines=(
            ShopLine("TS-BEYAZ-M", "Tişört", 3, Decimal("100.00"), Decimal(20)),
            ShopLine("ZEYTINYAGI-1L", "Zeytinyağı", 3, Decimal("100.02"), Decimal(1)),
            ShopLine("EL-YAPIMI-9", "El yapımı sabun", 2, Decimal("49.99"), Decimal(0)),
        ),
        shipping_charge=ShippingCharge("Yurtiçi Kargo", Decimal("29.16"), Decimal("5.83"), Decimal(20)),
        total=Decimal("285.00"),
    )
    return replace(made, **changes)


def simple(reference: str) -> ShopOrderPlan:
    line = ShopLine("KUPA-SERAMIK", "Kupa", 2, Decimal("179.98"), Decimal(20))
    charge = ShippingCharge("Kargo", Decimal(0), Decimal(0), Decimal(20))
    return plan(reference, lines=(line,), shipping_charge=charge, total=Decimal("179.98"))


def shop_of(sandbox: Sandbox) -> ShopifyShop:
    return sandbox.world.shopify


def graphql_calls(sandbox: Sandbox) -> int:
    return sum(1 for _, path, _ in sandbox.world.requests if path.endswith("/graphql.json"))


# -- the token ---------------------------------------------------------------------------------------


def test_one_token_serves_many_calls_and_a_new_one_comes_after_expiry(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = shop_of(sandbox)
    connector = connect(sandbox)
    for _ in range(3):
        assert connector.changed_since(datetime.now(UTC)) == []
    connect(sandbox).changed_since(datetime.now(UTC))  # another action of the same seller
    assert shop.token_requests == 1
    later = shopify.TOKENS.clock() + 86_400
    monkeypatch.setattr(shopify.TOKENS, "clock", lambda: later)
    connector.changed_since(datetime.now(UTC))
    assert shop.token_requests == 2
    # Shopify drops the token early (the app's secret rotated): a 401 fetches a new one once.
    shop.expire_tokens()
    connector.changed_since(datetime.now(UTC))
    assert shop.token_requests == 3


def test_a_wrong_secret_is_an_auth_error_that_names_no_secret(sandbox: Sandbox) -> None:
    wrong = {**CREDENTIALS, "shopify_client_secret": "shpss_not_it"}
    with pytest.raises(Permanent) as refused:
        connect(sandbox, wrong).changed_since(datetime.now(UTC))
    assert refused.value.category == "auth"
    assert "shpss" not in str(refused.value) and "client id and secret" in str(refused.value)


def test_an_unknown_api_version_and_a_missing_token_are_refused_as_shopify_does(sandbox: Sandbox) -> None:
    query = {"query": "{ orders(first: 1) { nodes { id } } }"}
    assert httpx.post(f"{sandbox.shopify_url}/admin/api/2019-04/graphql.json", json=query).status_code == 404
    answer = httpx.post(f"{sandbox.shopify_url}/admin/api/{shopify.API_VERSION}/graphql.json", json=query)
    assert answer.status_code == 401 and answer.json()["errors"].startswith("[API] Invalid API key")


# -- creating and finding ----------------------------------------------------------------------------


def test_an_order_is_created_exact_to_the_cent_with_the_hubs_reference(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    created = connector.create_order(plan("hub-7-1"))
    assert created.total == Decimal("285.00") and created.status == "unfulfilled"
    assert created.reference == "hub-7-1"
    order = shop_of(sandbox).order_for_reference("hub-7-1")
    assert order is not None and created.shop_id == order["id"]
    assert order["tags"] == ["hub", "hub-ref:hub-7-1", "hub:trendyol"]
    assert order["sourceIdentifier"] == "hub-7-1" and order["taxesIncluded"] is True
    assert "10400000001" in order["note"]
    lines = [
        (line["sku"], line["variantId"] is not None, line["quantity"], line["price"])
        for line in order["lineItems"]
    ]
    assert lines == [
        ("TS-BEYAZ-M", True, 2, "33.33"),  # 100.00 for three: split, one cent apart
        ("TS-BEYAZ-M", True, 1, "33.34"),
        ("ZEYTINYAGI-1L", True, 3, "33.34"),  # 100.02 divides
        ("EL-YAPIMI-9", False, 1, "24.99"),  # a SKU the shop lacks: a custom line, split too
        ("EL-YAPIMI-9", False, 1, "25.00"),
    ]
    assert order["lineItems"][3]["title"] == "El yapımı sabun"
    taxes = [
        [(tax["title"], tax["rate"], tax["amount"]) for tax in line["taxLines"]]
        for line in order["lineItems"]
    ]
    assert taxes[:3] == [[("KDV", "0.2", "11.11")], [("KDV", "0.2", "5.56")], [("KDV", "0.01", "0.99")]]
    assert taxes[3:] == [[], []]  # 0 % VAT: no tax line
    (shipping,) = order["shippingLines"]
    assert (shipping["title"], shipping["price"], shipping["taxLines"]) == (
        "Yurtiçi Kargo",
        "34.99",
        [{"title": "KDV", "rate": "0.2", "amount": "5.83"}],
    )
    assert order["transactions"] == [
        {"kind": "SALE", "status": "SUCCESS", "gateway": "trendyol", "amount": "285.00"}
    ]
    assert order["metafields"][0]["value"] == "hub-7-1" and order["inventoryBehaviour"] == "BYPASS"
    assert (
        order["shippingAddress"]["address2"] == "Kadıköy" and order["shippingAddress"]["countryCode"] == "TR"
    )
    assert connector.settle_total(created.shop_id, Decimal("285.00")) == created
    with pytest.raises(Permanent, match="editing the order"):
        connector.settle_total(created.shop_id, Decimal("285.01"))


def test_an_order_already_shipped_is_created_fulfilled(sandbox: Sandbox) -> None:
    created = connect(sandbox).create_order(replace(simple("hub-7-4"), status="fulfilled"))
    assert created.status == "fulfilled" and created.total == Decimal("179.98")
    assert len(shop_of(sandbox).orders[created.shop_id]["fulfillments"]) == 1


def test_a_sku_is_looked_up_once_per_connector(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    connector.create_order(simple("hub-7-2"))
    calls = graphql_calls(sandbox)
    connector.create_order(simple("hub-7-3"))
    assert graphql_calls(sandbox) == calls + 1  # the create only: the SKU's variant is known


def test_a_retry_after_a_lost_answer_finds_the_order_while_search_lags(sandbox: Sandbox) -> None:
    shop = shop_of(sandbox)
    shop.knobs({"search_lag_seconds": 60})
    since = datetime.now(UTC) - timedelta(seconds=2)
    impatient = connect(sandbox, guard=replace(LOCAL, timeout=0.5))
    impatient.changed_since(since)  # the token and the SKU, before answers get lost
    impatient._variant("KUPA-SERAMIK")
    faults = sandbox.world.faults
    faults.timeout_rate, faults.timeout_seconds, faults.timeout_method = 1.0, 1.0, "POST"
    with pytest.raises(Retryable):
        impatient.create_order(simple("hub-8-1"))
    faults.timeout_rate = 0.0
    connector = connect(sandbox)
    assert connector.find_order("hub-8-1") is None  # the search has not caught up
    found = connector.find_order("hub-8-1", since)
    assert found is not None and found.reference == "hub-8-1"
    assert shop.order_for_reference("hub-8-1") is not None  # and only one: it asserts so
    assert connector.find_order("hub-8-2", since) is None
    shop.knobs({"search_lag_seconds": 0})
    assert connector.find_order("hub-8-1") == found


# -- changing ----------------------------------------------------------------------------------------


def test_fulfilled_and_cancelled_are_idempotent(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    shop = shop_of(sandbox)
    first = connector.create_order(simple("hub-9-1"))
    assert connector.set_status(first.shop_id, "unfulfilled").status == "unfulfilled"  # nothing to do
    assert connector.set_status(first.shop_id, "fulfilled").status == "fulfilled"
    assert connector.set_status(first.shop_id, "fulfilled").status == "fulfilled"
    assert len(shop.orders[first.shop_id]["fulfillments"]) == 1
    with pytest.raises(Permanent, match="back to unfulfilled"):
        connector.set_status(first.shop_id, "unfulfilled")
    second = connector.create_order(simple("hub-9-2"))
    assert connector.set_status(second.shop_id, "cancelled").status == "cancelled"
    assert connector.set_status(second.shop_id, "cancelled").status == "cancelled"
    order = shop.orders[second.shop_id]
    assert order["cancelReason"] == "OTHER" and order["financialStatus"] == "PAID"  # the marketplace refunds
    with pytest.raises(Permanent, match="cancelled"):
        connector.set_status(second.shop_id, "fulfilled")
    with pytest.raises(Permanent, match="no order status"):
        connector.set_status(second.shop_id, "shipped")
    assert set(shopify.DEFAULT_STATUS_MAP) == set(CanonicalStatus)
    assert set(shopify.DEFAULT_STATUS_MAP.values()) <= set(shopify.STATUSES) == set(SHOPIFY.shop_statuses)
    assert connector.statuses() == {}  # a fixed set: the kind's names stand


def test_tracking_is_set_updated_and_read_back(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    shop = shop_of(sandbox)
    created = connector.create_order(simple("hub-10-1"))
    link = "https://kargotakip.example/YK1"
    tracked = connector.set_tracking(created.shop_id, "Yurtiçi Kargo", "YK1", link)
    assert (tracked.status, tracked.carrier, tracked.tracking_number, tracked.tracking_link) == (
        "fulfilled",
        "Yurtiçi Kargo",
        "YK1",
        link,
    )
    stamp = shop.orders[created.shop_id]["updatedAt"]
    assert connector.set_tracking(created.shop_id, "Yurtiçi Kargo", "YK1", link) == tracked
    assert shop.orders[created.shop_id]["updatedAt"] == stamp  # asked again: nothing done
    moved = connector.set_tracking(created.shop_id, "Aras Kargo", "AR2", "")
    assert (moved.carrier, moved.tracking_number, moved.tracking_link) == ("Aras Kargo", "AR2", "")
    assert len(shop.orders[created.shop_id]["fulfillments"]) == 1  # updated in place


def test_a_seller_fulfilling_in_shopify_is_read_back(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    created = connector.create_order(simple("hub-10-2"))
    answer = httpx.post(
        f"{sandbox.url}/_control/shopify/orders/{created.shop_id}/fulfil",
        json={"tracking_number": "MNG9", "company": "MNG Kargo", "url": "https://mng.example/MNG9"},
    )
    assert answer.status_code == 200
    order = connector.get_order(created.shop_id)
    assert (order.status, order.carrier, order.tracking_number) == ("fulfilled", "MNG Kargo", "MNG9")
    assert [o.shop_id for o in connector.changed_since(datetime.now(UTC) - timedelta(minutes=1))] == [
        created.shop_id
    ]


def test_a_seller_cancelling_in_shopify_is_read_back_and_the_control_endpoints_answer(
    sandbox: Sandbox,
) -> None:
    connector = connect(sandbox)
    created = connector.create_order(simple("hub-10-3"))
    assert httpx.post(f"{sandbox.url}/_control/shopify/orders/{created.shop_id}/cancel").status_code == 200
    assert connector.get_order(created.shop_id).status == "cancelled"
    assert httpx.post(f"{sandbox.url}/_control/shopify/orders/{created.shop_id}/cancel").status_code == 400
    assert httpx.post(f"{sandbox.url}/_control/shopify/orders/1/fulfil").status_code == 404
    knobs = httpx.post(f"{sandbox.url}/_control/shopify/knobs", json={"search_lag_seconds": 3}).json()
    assert knobs["search_lag_seconds"] == 3 and knobs["bucket_size"] == 2000
    assert httpx.post(f"{sandbox.url}/_control/shopify/knobs", json={"nope": 1}).status_code == 400
    state = httpx.get(f"{sandbox.url}/_control/shopify/state").json()
    assert [order["id"] for order in state["orders"]] == [created.shop_id] and state["token_requests"] == 1


def test_a_note_is_appended_once(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    created = connector.create_order(simple("hub-11-1"))
    connector.add_note(created.shop_id, "Kargo: Yurtiçi, takip YK1")
    connector.add_note(created.shop_id, "Kargo: Yurtiçi, takip YK1")
    note = shop_of(sandbox).orders[created.shop_id]["note"]
    assert note.splitlines() == [
        "Trendyol sipariş no: 10400000001 (paket 3100000001)",
        "Kargo: Yurtiçi, takip YK1",
    ]


# -- listing -----------------------------------------------------------------------------------------


def test_changed_since_reads_every_page_and_only_hub_orders(sandbox: Sandbox) -> None:
    shop = shop_of(sandbox)
    since = datetime.now(UTC) - timedelta(seconds=5)
    money = {"shopMoney": {"amount": "10.00", "currencyCode": "TRY"}}
    for number in range(5):
        reference = f"hub-12-{number}"
        shop.create_order(
            {
                "lineItems": [{"title": "Kupa", "quantity": 1, "priceSet": money}],
                "tags": ["hub", f"hub-ref:{reference}"],
                "metafields": [
                    {
                        "namespace": "hub",
                        "key": "external_ref",
                        "type": "single_line_text_field",
                        "value": reference,
                    }
                ],
            }
        )
    for _ in range(2):  # the shop's own orders
        shop.create_order({"lineItems": [{"title": "Kupa", "quantity": 1, "priceSet": money}]})
    connector = connect(sandbox)
    connector.page_size = 2
    calls = graphql_calls(sandbox)
    changed = connector.changed_since(since)
    assert sorted(order.reference for order in changed) == [f"hub-12-{n}" for n in range(5)]
    assert graphql_calls(sandbox) - calls == 3
    assert connector.changed_since(datetime.now(UTC) + timedelta(seconds=2)) == []


# -- what Shopify refuses ----------------------------------------------------------------------------


def test_a_throttled_query_waits_what_the_bucket_says_and_changes_nothing(sandbox: Sandbox) -> None:
    shop = shop_of(sandbox)
    connector = connect(sandbox)
    created = connector.create_order(simple("hub-13-1"))
    started = time.monotonic()
    shop.knobs({"restore_rate": 100, "currently_available": 5})
    with pytest.raises(RateLimited) as throttled:
        connector.find_order("hub-13-2")
    elapsed = time.monotonic() - started
    assert throttled.value.code == "THROTTLED"
    # The search asks for 25 orders, 2 + 25 × 26 points; 5 were there, and 100 come back a second
    # (so as many more as the time the call took, however loaded the machine).
    assert (652 - 5) / 100 - elapsed - 0.01 <= throttled.value.retry_after <= (652 - 5) / 100 + 0.01
    shop.knobs({"currently_available": 5})
    with pytest.raises(RateLimited):
        connector.create_order(simple("hub-13-2"))
    shop.knobs({"currently_available": 5})
    with pytest.raises(RateLimited):
        connector.set_status(created.shop_id, "cancelled")
    assert shop.order_for_reference("hub-13-2") is None
    assert shop.orders[created.shop_id]["cancelledAt"] is None


def test_user_errors_are_permanent_in_shopifys_words(sandbox: Sandbox) -> None:
    with pytest.raises(Permanent, match="Email is invalid"):
        connect(sandbox).create_order(replace(simple("hub-14-1"), customer_email="not-an-address"))
    assert shop_of(sandbox).orders == {}


def test_a_document_the_schema_refuses_is_permanent(sandbox: Sandbox) -> None:
    with pytest.raises(Permanent, match="Shopify refused the query"):
        connect(sandbox)._graphql('{ order(id: "gid://shopify/Order/1") { nope } }')


def test_every_document_the_connector_sends_is_valid_against_the_schema() -> None:
    schema = graphql.build_schema(SDL.read_text())
    for document in DOCUMENTS:
        assert graphql.validate(schema, graphql.parse(document)) == [], document
    typo = DOCUMENTS[0].replace("displayFulfillmentStatus", "displayFulfilmentStatus")
    assert graphql.validate(schema, graphql.parse(typo))


# -- webhooks ----------------------------------------------------------------------------------------


class Receiver(BaseHTTPRequestHandler):
    """A callback address: keeps every delivery."""

    deliveries: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.deliveries.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    deliveries: list[tuple[dict[str, str], bytes]] = []
    handler = type("Handler", (Receiver,), {"deliveries": deliveries})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/webhooks/shopify", deliveries
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_subscribing_twice_keeps_the_same_four_subscriptions(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    url = "https://hub.example/webhooks/shopify/7"
    assert connector.subscribe(url, "ignored") == f"4 webhooks registered at {url}"
    assert connector.subscribe(url, "ignored") == f"4 webhooks registered at {url}"
    subscriptions = shop_of(sandbox).subscriptions.values()
    assert sorted(sub["topic"] for sub in subscriptions) == sorted(shopify.TOPICS)


def test_webhooks_the_shop_sends_verify_and_a_forgery_does_not(
    sandbox: Sandbox, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, deliveries = receiver
    connector = connect(sandbox)
    connector.subscribe(url, "")
    created = connector.create_order(simple("hub-15-1"))
    connector.set_tracking(created.shop_id, "Yurtiçi Kargo", "YK1", "")
    assert sandbox.world.webhooks.wait(10)
    notices = [read_webhook(headers, body, SECRET) for headers, body in deliveries]
    topics = {notice.topic for notice in notices}
    assert {"orders/updated", "fulfillments/create"} <= topics
    assert {notice.subject for notice in notices} == {created.shop_id}
    assert len({notice.key for notice in notices}) == len(notices)
    headers, body = deliveries[0]
    lowered = {name.lower(): value for name, value in headers.items()}
    assert read_webhook(lowered, body, SECRET) == notices[0]  # any case of header names
    with pytest.raises(WebhookRefused):
        read_webhook(headers, body.replace(b"{", b"{ ", 1), SECRET)  # a byte more
    with pytest.raises(WebhookRefused):
        read_webhook(headers, body, "shpss_not_it")
    with pytest.raises(WebhookRefused):
        read_webhook({k: v for k, v in headers.items() if k.lower() != "x-shopify-hmac-sha256"}, body, SECRET)


def test_read_webhook_names_no_order_for_other_topics() -> None:
    body = json.dumps({"id": 5}).encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    notice = read_webhook(
        {"X-Shopify-Topic": "app/uninstalled", "X-Shopify-Hmac-Sha256": signature}, body, SECRET
    )
    assert (notice.topic, notice.subject, notice.key) == (
        "app/uninstalled",
        "",
        hashlib.sha256(body).hexdigest(),
    )


# -- the sandbox's own --------------------------------------------------------------------------------


def test_the_shop_survives_a_restart(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    connector.subscribe("https://hub.example/wh", "")
    created = connector.create_order(simple("hub-16-1"))
    state = json.loads(json.dumps(shop_of(sandbox).snapshot()))
    again = ShopifyShop()
    again.restore(state)
    assert again.order_for_reference("hub-16-1") == shop_of(sandbox).orders[created.shop_id]
    assert len(again.subscriptions) == 4
    made = again.create_order(
        {
            "lineItems": [
                {
                    "title": "Kupa",
                    "quantity": 1,
                    "priceSet": {"shopMoney": {"amount": "1", "currencyCode": "TRY"}},
                }
            ]
        }
    )
    assert int(made["id"]) > int(created.shop_id)  # the counters went on
