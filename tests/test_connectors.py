"""The Trendyol and WooCommerce connectors against the sandbox over HTTP, and their reading of payloads."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from connectors.base import (
    Address,
    Permanent,
    RateLimited,
    Retryable,
    ShippingCharge,
    ShopLine,
    ShopOrderPlan,
)
from connectors.http import Guard
from connectors.trendyol import TrendyolConnector, UnreadablePackage, parse_package
from connectors.woocommerce import WooCommerceConnector
from sandbox.state import World, shop_public
from sync.statuses import CanonicalStatus
from tests.sandbox_server import Sandbox, serve_sandbox

TRENDYOL_CREDENTIALS = {"seller_id": "100200", "api_key": "sandbox-key", "api_secret": "sandbox-secret"}
WOO_CREDENTIALS = {"consumer_key": "ck_sandbox", "consumer_secret": "cs_sandbox"}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with serve_sandbox(World()) as sandbox:
        yield sandbox


# The sandbox listens on a loopback port: allowlisted, as in development.
LOCAL = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), timeout=5)


def trendyol(sandbox: Sandbox, timeout: float = 5) -> TrendyolConnector:
    return TrendyolConnector(sandbox.marketplace_url, TRENDYOL_CREDENTIALS, replace(LOCAL, timeout=timeout))


def woo(sandbox: Sandbox) -> WooCommerceConnector:
    return WooCommerceConnector(sandbox.shop_url, WOO_CREDENTIALS, LOCAL)


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(minutes=1)


def test_lists_packages_in_the_current_field_names(sandbox: Sandbox) -> None:
    package = sandbox.order(
        lines=[{"barcode": "8680001000011", "quantity": 2}], firstName="Ayşe", lastName="Yılmaz"
    )
    page = trendyol(sandbox).list_packages(*window(), page=0, size=50)
    assert page.total_pages == 1 and page.unreadable == ()
    (order,) = page.orders
    assert order.package_id == str(package["shipmentPackageId"])
    assert order.status is CanonicalStatus.CREATED and order.customer_name == "Ayşe Yılmaz"
    (line,) = order.lines
    assert (line.barcode, line.stock_code, line.quantity) == ("8680001000011", "TS-BEYAZ-M", 2)
    assert line.unit_price == Decimal("149.90") and line.vat_rate == Decimal(10)
    assert order.total == Decimal("334.79")  # 299.80 of goods and the 34.99 cargo fee under 300


def test_reads_the_names_from_before_december_2025() -> None:
    current = World().create_package()
    legacy = copy.deepcopy(current)
    legacy["id"] = legacy.pop("shipmentPackageId")
    legacy["totalPrice"] = legacy.pop("packageTotalPrice")
    for line in legacy["lines"]:
        line["id"] = line.pop("lineId")
        line["merchantSku"] = line.pop("stockCode")
        line["price"] = line.pop("lineUnitPrice")
        line["vatBaseAmount"] = line.pop("vatRate")
    assert parse_package(legacy) == parse_package(current)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"shipmentPackageId": None}, "shipmentPackageId is missing"),
        ({"orderDate": "2026-11-27"}, "orderDate '2026-11-27' is not a time"),
        ({"status": "Teleported"}, "unknown package status 'Teleported'"),
        ({"lines": []}, "the package has no lines"),
        ({"packageTotalPrice": "lots"}, "packageTotalPrice is not an amount"),
    ],
)
def test_an_unreadable_package_says_why(change: dict[str, object], reason: str) -> None:
    package = {**World().create_package(), **change}
    with pytest.raises(UnreadablePackage, match=reason):
        parse_package(package)


def test_a_broken_package_does_not_spoil_the_page(sandbox: Sandbox) -> None:
    sandbox.order()
    broken = sandbox.order()
    broken["orderDate"] = "yesterday"
    page = trendyol(sandbox).list_packages(*window(), page=0, size=50)
    assert len(page.orders) == 1
    ((package_id, reason, raw),) = page.unreadable
    assert (
        package_id == str(broken["shipmentPackageId"])
        and "orderDate" in reason
        and raw["orderDate"] == "yesterday"
    )


def test_sends_the_mandatory_user_agent(sandbox: Sandbox) -> None:
    url = f"{sandbox.marketplace_url}/order/sellers/100200/orders"
    bare = httpx.get(url, auth=("sandbox-key", "sandbox-secret"), headers={"User-Agent": ""})
    assert bare.status_code == 403
    trendyol(sandbox).list_packages(*window(), page=0, size=10)
    assert sandbox.world.requests[-1][2] == 200


def test_wrong_credentials_are_permanent(sandbox: Sandbox) -> None:
    credentials = {**TRENDYOL_CREDENTIALS, "api_secret": "nope"}
    connector = TrendyolConnector(sandbox.marketplace_url, credentials, LOCAL)
    with pytest.raises(Permanent, match="401"):
        connector.list_packages(*window(), page=0, size=10)


def test_rate_limit_carries_retry_after(sandbox: Sandbox) -> None:
    sandbox.world.faults.update({"rate_limit_rate": 1, "retry_after": 7})
    with pytest.raises(RateLimited) as caught:
        trendyol(sandbox).list_packages(*window(), page=0, size=10)
    assert caught.value.retry_after == 7


def test_server_errors_and_timeouts_are_retryable(sandbox: Sandbox) -> None:
    sandbox.world.faults.update({"error_rate": 1})
    with pytest.raises(Retryable, match="503"):
        trendyol(sandbox).list_packages(*window(), page=0, size=10)
    sandbox.world.faults.update({"error_rate": 0, "timeout_rate": 1, "timeout_seconds": 1})
    with pytest.raises(Retryable, match="did not answer"):
        trendyol(sandbox, timeout=0.3).list_packages(*window(), page=0, size=10)


def test_approve_moves_the_package_to_picking_and_only_forward(sandbox: Sandbox) -> None:
    package = sandbox.order()
    lines = [(str(line["lineId"]), line["quantity"]) for line in package["lines"]]
    connector = trendyol(sandbox)
    connector.approve(str(package["shipmentPackageId"]), lines)
    assert sandbox.package(package["shipmentPackageId"])["status"] == "Picking"
    with pytest.raises(Permanent, match="cannot set Shipped"):
        connector.push_status(str(package["shipmentPackageId"]), lines, CanonicalStatus.SHIPPED)


def plan(reference: str, sku: str = "TS-BEYAZ-M") -> ShopOrderPlan:
    address = Address("Ayşe", "Yılmaz", "Caferağa Mah. Gül Sok. No:3", "İstanbul", "Kadıköy", "34710")
    return ShopOrderPlan(
        reference=reference,
        status="processing",
        marketplace="trendyol",
        order_number="10400000001",
        package_id="3100000001",
        currency="TRY",
        customer_email="ayse@example.com",
        billing=address,
        shipping=address,
        lines=(ShopLine(sku, "Tişört", 2, Decimal("299.80"), Decimal(10)),),
        shipping_charge=ShippingCharge("Trendyol Kargo", Decimal("29.16"), Decimal("5.83"), Decimal(20)),
        total=Decimal("334.79"),
    )


def test_woocommerce_creates_by_sku_and_finds_by_reference(sandbox: Sandbox) -> None:
    connector = woo(sandbox)
    assert connector.find_order("hub-1-1") is None
    created = connector.create_order(plan("hub-1-1"))
    assert connector.find_order("hub-1-1") == created
    assert connector.find_order("hub-1") is None  # a search hit is not a match
    (order,) = map(shop_public, sandbox.shop_orders())  # as WooCommerce answers it
    assert order["line_items"][0]["sku"] == "TS-BEYAZ-M" and order["status"] == "processing"
    item = order["line_items"][0]
    # 299.80 with 10 % VAT, split: before tax, at the store's 10 % class, which taxes it itself.
    assert (item["tax_class"], item["total"], item["total_tax"]) == ("reduced-rate", "272.55", "27.25")
    shipping = order["shipping_lines"][0]
    assert shipping["total"] == "29.16"  # the 34.99 fee before the 20 % VAT the hub chose
    # The store taxes shipping at the class its items have (WooCommerce's "inherit"): 10 %, not 20 %. The
    # difference is one fee line, so the order comes to the marketplace's total all the same.
    assert shipping["total_tax"] == "2.92"
    assert [(fee["name"], fee["total"], fee["total_tax"]) for fee in order["fee_lines"]] == [
        ("Pazaryeri tutar farkı", "2.91", "0.00")
    ]
    assert order["total"] == "334.79" and created.total == Decimal("334.79")


def test_woocommerce_refuses_an_unknown_sku(sandbox: Sandbox) -> None:
    with pytest.raises(Permanent, match="No product with SKU NOPE"):
        woo(sandbox).create_order(plan("hub-1-2", sku="NOPE"))
    assert sandbox.shop_orders() == []


def test_woocommerce_tracking_goes_in_meta_and_one_note(sandbox: Sandbox) -> None:
    connector = woo(sandbox)
    created = connector.create_order(plan("hub-1-3"))
    for _ in range(2):
        connector.set_tracking(created.shop_id, "Aras Kargo", "7261234567", "https://track/7261234567")
    (order,) = sandbox.world.shop_orders.values()
    meta = {entry["key"]: entry["value"] for entry in order["meta_data"]}
    assert (
        meta["hub_tracking_number"] == "7261234567" and meta["hub_tracking_url"] == "https://track/7261234567"
    )
    assert len(order["notes"]) == 1 and "7261234567" in order["notes"][0]["note"]
    assert order["notes"][0]["customer_note"] is True


def test_woocommerce_lists_what_changed(sandbox: Sandbox) -> None:
    connector = woo(sandbox)
    before = datetime.now(UTC) - timedelta(seconds=5)
    created = connector.create_order(plan("hub-1-4"))
    connector.set_status(created.shop_id, "completed")
    (changed,) = connector.changed_since(before)
    assert (changed.reference, changed.status) == ("hub-1-4", "completed")
    assert connector.changed_since(datetime.now(UTC) + timedelta(minutes=1)) == []


def test_woocommerce_tracking_finishes_a_half_done_attempt(sandbox: Sandbox) -> None:
    connector = woo(sandbox)
    created = connector.create_order(plan("hub-1-5"))
    (order,) = sandbox.world.shop_orders.values()
    # The meta was written, then the answer to the note was lost before it was sent.
    meta = [{"key": "hub_tracking_number", "value": "7261"}, {"key": "hub_tracking_url", "value": ""}]
    sandbox.world.update_shop_order(order, {"meta_data": [*meta, {"key": "hub_carrier", "value": "Aras"}]})
    connector.set_tracking(created.shop_id, "Aras", "7261", "")
    assert [note["note"] for note in order["notes"]] == ["Kargo: Aras. Takip no: 7261"]


def test_order_date_is_read_as_istanbul_time() -> None:
    package = World().create_package()
    order = parse_package(package)
    assert order.ordered_at == datetime.fromtimestamp(package["orderDate"] / 1000, UTC) - timedelta(hours=3)
    assert abs(order.ordered_at - order.modified_at) < timedelta(seconds=1)


def test_woocommerce_finds_by_reference_when_search_ignores_meta(sandbox: Sandbox) -> None:
    sandbox.world.faults.update({"search_covers_meta": False})
    connector = woo(sandbox)
    before = datetime.now(UTC) - timedelta(minutes=5)
    created = connector.create_order(plan("hub-1-6"))
    assert connector.find_order("hub-1-6") is None  # search alone misses it on such a store
    assert connector.find_order("hub-1-6", since=before) == created
    assert connector.find_order("hub-1-7", since=before) is None


def test_connectors_send_through_their_platforms_one_client(sandbox: Sandbox) -> None:
    """Built per action, they share the process's client, which outlives each of them."""
    first, second = woo(sandbox), woo(sandbox)
    assert first.http.client is second.http.client
    assert trendyol(sandbox).http.client is not first.http.client  # one per platform
    first.close()
    second.create_order(plan("hub-1-8"))
    assert len(sandbox.shop_orders()) == 1


def test_a_connector_on_a_transport_of_its_own_keeps_its_client_to_itself() -> None:
    """The seam for tests: a transport of their own gets a client of its own, closed with the connector."""
    paths: list[str] = []

    def shop(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200, json=[])

    guard = Guard(timeout=5)
    connector = WooCommerceConnector(
        "https://shop.example.com", WOO_CREDENTIALS, guard, transport=httpx.MockTransport(shop)
    )
    assert connector.find_order("hub-1-9") is None
    assert paths == ["/wp-json/wc/v3/orders"]
    connector.close()
    assert connector.http.client.is_closed
    assert not WooCommerceConnector("https://shop.example.com", WOO_CREDENTIALS, guard).http.client.is_closed
