"""The Hepsiburada connector against the sandbox's HB over HTTP, its reading of orders, and every call it
makes checked against specs/hepsiburada.openapi.yml with openapi-core."""

from __future__ import annotations

import copy
import itertools
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_core import OpenAPI

from connectors.base import InvalidAnswer, Permanent, RateLimited, Retryable
from connectors.hepsiburada import (
    MASKED_KEYS,
    HepsiburadaConnector,
    UnreadablePackage,
    addresses,
    parse_order,
    rate_limit_reset,
)
from connectors.http import Guard
from sandbox.hepsiburada import hb_time, public
from sandbox.state import World
from sync.statuses import CanonicalStatus
from tests.contract import Contract, Recording
from tests.sandbox_server import Sandbox, serve_sandbox

MERCHANT = "6d2a7b6e-4b52-4d0f-9a4c-1f0e9e3c2b11"
KEY = "Hb5aNdb0xK3y"
CREDENTIALS = {"merchant_id": MERCHANT, "service_key": KEY}
AGENT = {"User-Agent": "tests"}
# The sandbox listens on a loopback port: allowlisted, as in development.
LOCAL = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), timeout=5)
SPEC_FILE = Path(__file__).resolve().parents[1] / "specs" / "hepsiburada.openapi.yml"
OPEN_LINES = f"/orders/merchantid/{MERCHANT}"
PACKAGES = f"/packages/merchantid/{MERCHANT}"
SHIRT, OIL, MUG = "8680001000011", "8680001000097", "8680001000059"
S = CanonicalStatus


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with serve_sandbox(World()) as sandbox:
        yield sandbox


def hb(
    sandbox: Sandbox, transport: httpx.BaseTransport | None = None, **credentials: str
) -> HepsiburadaConnector:
    return HepsiburadaConnector(
        sandbox.hepsiburada_url, {**CREDENTIALS, **credentials}, LOCAL, transport=transport
    )


def order(sandbox: Sandbox, **spec: Any) -> dict[str, Any]:
    """A new paid order on the sandbox's HB."""
    return sandbox.world.hepsiburada.create_order(spec)


def lines_of(placed: dict[str, Any]) -> list[tuple[str, int]]:
    return [(line["id"], line["quantity"]) for line in placed["items"]]


def package_of(sandbox: Sandbox, placed: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return sandbox.world.hepsiburada.packages[placed["items"][index]["packageNumber"]]


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(minutes=1)


def hb_calls(sandbox: Sandbox) -> list[tuple[str, str, int]]:
    return [call for call in sandbox.world.requests if call[1].startswith("/hepsiburada/")]


def methods_since(sandbox: Sandbox, count: int) -> list[str]:
    return [method for method, _, _ in hb_calls(sandbox)[count:]]


def aged(placed: dict[str, Any], seconds: float) -> None:
    """The order as if it had been placed `seconds` ago (its times as HB writes them)."""
    moment = hb_time(time.time() - seconds)
    placed["orderDate"] = moment
    for line in placed["items"]:
        line["orderDate"] = line["lastStatusUpdateDate"] = moment
        line["_changed"] = time.time() - seconds


def listed(sandbox: Sandbox) -> dict[str, Any]:
    page = hb(sandbox).list_packages(*window(), page=0, size=100)
    assert page.unreadable == ()
    return {read.order_number: read for read in page.orders}


def test_reads_every_field_of_an_order(sandbox: Sandbox) -> None:
    """Money after the seller's and HB's discounts, times in UTC, the neighbourhood and the ilçe, the
    customer, the whole payload kept."""
    placed = order(
        sandbox,
        lines=[
            {"barcode": SHIRT, "quantity": 3, "merchantDiscount": "30.00", "hbDiscount": "15.00"},
            {"barcode": OIL, "quantity": 1},
        ],
        name="Ayşe Nur Yılmaz",
    )
    (read,) = listed(sandbox).values()
    assert read.package_id == read.order_number == placed["orderNumber"]
    assert (read.status, read.native_status) == (S.CREATED, "Open")
    shirt, oil = read.lines
    assert (shirt.line_id, shirt.barcode, shirt.stock_code, shirt.quantity) == (
        placed["items"][0]["id"],
        SHIRT,
        "TS-BEYAZ-M",
        3,
    )
    assert shirt.name == "Pamuklu Basic Tişört Beyaz" and shirt.vat_rate == Decimal(10)
    # 3 × 149.90 = 449.70, less 30.00 (the seller's) and 15.00 (HB's): 404.70 paid, 134.90 a unit.
    assert shirt.unit_price == Decimal("134.90")
    assert (oil.unit_price, oil.vat_rate) == (Decimal("389.00"), Decimal(1))
    assert (read.total, read.currency) == (Decimal("793.70"), "TRY")
    # The sandbox writes Istanbul wall clock without an offset: three hours ahead of UTC.
    written = datetime.fromisoformat(placed["items"][0]["lastStatusUpdateDate"]).replace(tzinfo=UTC)
    assert read.modified_at == written - timedelta(hours=3) >= read.ordered_at
    assert abs(read.modified_at - datetime.now(UTC)) < timedelta(seconds=10)
    shipping, source = read.shipping_address, placed["deliveryAddress"]
    assert (shipping.first_name, shipping.last_name) == ("Ayşe Nur", "Yılmaz")
    assert shipping.address1 == f"{source['district']} {source['address']}"
    assert (shipping.city, shipping.district, shipping.postcode, shipping.phone, shipping.country) == (
        source["city"],
        source["town"],
        source["postalCode"],
        source["phoneNumber"],
        "TR",
    )
    assert read.billing_address == shipping and shipping.company == ""
    assert (read.customer_name, read.customer_email) == ("Ayşe Nur Yılmaz", source["email"])
    assert read.raw == {"order": public(placed), "packages": []}
    assert read.origin_package_ids == () and read.shipment.package_number == ""
    assert addresses(read.raw) == (read.billing_address, read.shipping_address)


def test_a_corporate_invoice_names_the_company(sandbox: Sandbox) -> None:
    placed = order(sandbox, corporate=True, name="Deniz Ticaret")
    read = hb(sandbox).get_package(placed["orderNumber"])
    assert read is not None and read.billing_address.company == "Deniz Ticaret"


def test_follows_the_order_through_packing_shipping_and_delivery(sandbox: Sandbox) -> None:
    """Packed → Picking; HB's carrier's tracking once in transit; delivered; not delivered."""
    packed, shipped, delivered, missed = (
        order(sandbox, status=status) for status in ("Packaged", "InTransit", "Delivered", "Undelivered")
    )
    read = listed(sandbox)
    assert [read[o["orderNumber"]].status for o in (packed, shipped, delivered, missed)] == [
        S.PICKING,
        S.SHIPPED,
        S.DELIVERED,
        S.UNDELIVERED,
    ]
    assert read[packed["orderNumber"]].native_status == "Packaged"
    assert read[packed["orderNumber"]].shipment.tracking_number == ""
    package = package_of(sandbox, shipped)
    shipment = read[shipped["orderNumber"]].shipment
    assert (shipment.carrier, shipment.tracking_number, shipment.tracking_link) == (
        package["cargoCompany"],
        package["trackingInfoCode"],
        package["trackingInfoUrl"],
    )
    assert shipment.tracking_number != "" and shipment.tracking_link.startswith("https://")
    assert (shipment.package_number, shipment.shipment_barcode) == (
        package["packageNumber"],
        package["barcode"],
    )


def test_a_half_shipped_order_is_not_shipped(sandbox: Sandbox) -> None:
    """The least advanced live line wins: one line in transit, the other still open → Created."""
    placed = order(sandbox, lines=[{"barcode": SHIRT}, {"barcode": MUG}])
    market = sandbox.world.hepsiburada
    first = market.pack(None, [lines_of(placed)[0]])
    market.set_package_status(first["packageNumber"], "InTransit")
    read = hb(sandbox).get_package(placed["orderNumber"])
    assert read is not None and read.status is S.CREATED
    assert read.native_status in ("1 InTransit, 1 Open", "1 Open, 1 InTransit")
    assert read.shipment.tracking_number == first["trackingInfoCode"] != ""
    second = market.pack(None, [lines_of(placed)[1]])
    read = hb(sandbox).get_package(placed["orderNumber"])
    assert read is not None and read.status is S.PICKING
    assert read.shipment.package_number == ", ".join(
        sorted([first["packageNumber"], second["packageNumber"]])
    )


def test_a_cancelled_line_stays_listed_with_no_units(sandbox: Sandbox) -> None:
    placed = order(sandbox, lines=[{"barcode": SHIRT, "quantity": 2}, {"barcode": MUG}])
    sandbox.world.hepsiburada.cancel_lines(placed["orderNumber"], [placed["items"][0]["id"]])
    read = listed(sandbox)[placed["orderNumber"]]
    assert [line.quantity for line in read.lines] == [0, 1]
    assert read.lines[0].unit_price == Decimal("149.90")  # the line keeps its price, for the record
    assert read.status is S.CREATED and read.total == Decimal("89.99")
    assert read.native_status in ("1 Cancelled, 1 Open", "1 Open, 1 Cancelled")
    sandbox.world.hepsiburada.cancel_lines(
        placed["orderNumber"], [placed["items"][1]["id"]], by="Hepsiburada"
    )
    read = listed(sandbox)[placed["orderNumber"]]
    assert (read.status, read.native_status, read.total) == (S.CANCELLED, "Cancelled", Decimal(0))
    assert [line.quantity for line in read.lines] == [0, 0]


def test_pages_oldest_change_first_and_reads_hb_once_per_pull(sandbox: Sandbox) -> None:
    """The pull goes on from the newest change read: later calls are answered from what the first read."""
    first, second, third = (order(sandbox) for _ in range(3))
    for age, placed in ((3, first), (2, second), (1, third)):
        aged(placed, seconds=age)  # a millisecond apart at least, as HB writes its times
    sandbox.world.hepsiburada.pack(None, lines_of(first))  # the oldest order changes last
    start, end = window()
    connector = hb(sandbox)
    page = connector.list_packages(start, end, page=0, size=2)
    assert [o.order_number for o in page.orders] == [second["orderNumber"], third["orderNumber"]]
    assert page.total_pages == 2
    calls = len(hb_calls(sandbox))
    # 6 lists (one page each, a 24-hour window) and the three orders, one with a package.
    assert calls == 6 + 3 + 1
    newest = page.orders[-1].modified_at
    rest = connector.list_packages(newest, end, page=0, size=2)
    assert [o.order_number for o in rest.orders] == [third["orderNumber"], first["orderNumber"]]
    assert rest.total_pages == 1 and len(hb_calls(sandbox)) == calls
    assert connector.list_packages(start, end, page=1, size=2).orders == (rest.orders[-1],)
    # A new connector (the next pull) reads HB again.
    hb(sandbox).list_packages(start, end, page=0, size=2)
    assert len(hb_calls(sandbox)) == 2 * calls


def test_pages_through_hbs_lists_at_their_caps(sandbox: Sandbox) -> None:
    """More packages than the packages list's 10 a page: the Offset walks on until a short page."""
    made = [order(sandbox, status="Packaged") for _ in range(12)]
    connector = hb(sandbox)
    page = connector.list_packages(*window(), page=0, size=100)
    assert sorted(o.order_number for o in page.orders) == sorted(o["orderNumber"] for o in made)
    listing = [call for call in hb_calls(sandbox) if call[1] == f"/hepsiburada{PACKAGES}"]
    assert len(listing) == 2


def test_asks_hb_at_most_24_hours_at_a_time(sandbox: Sandbox) -> None:
    recording = Recording()
    now = datetime.now(UTC)
    try:
        hb(sandbox, transport=recording).list_packages(now - timedelta(hours=50), now, page=0, size=10)
    finally:
        recording.close()
    windows = set()
    for request, _ in recording.calls:
        params = request.url.params
        begin = datetime.strptime(params["begindate"], "%Y-%m-%d %H:%M")
        end = datetime.strptime(params["enddate"], "%Y-%m-%d %H:%M")
        assert timedelta(0) < end - begin <= timedelta(hours=24)
        windows.add((begin, end))
    assert len(recording.calls) == 3 * 6 and len(windows) == 3
    ordered = sorted(windows)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ordered))
    # Istanbul wall clock: the last window ends a minute past now, three hours ahead of UTC.
    last_end = (now + timedelta(hours=3, minutes=1)).replace(second=0, microsecond=0, tzinfo=None)
    assert ordered[-1][1] == last_end


def test_hb_cuts_a_longer_window_without_a_word(sandbox: Sandbox) -> None:
    """Why the connector asks a day at a time: a 30-hour window keeps its first 24 hours only."""
    placed = order(sandbox)
    now = datetime.now(UTC) + timedelta(hours=3)
    asked: dict[str, Any] = {
        "offset": 0,
        "limit": 100,
        "enddate": f"{now + timedelta(minutes=1):%Y-%m-%d %H:%M}",
    }
    url = f"{sandbox.hepsiburada_url}{OPEN_LINES}"
    long = httpx.get(
        url,
        params={**asked, "begindate": f"{now - timedelta(hours=30):%Y-%m-%d %H:%M}"},
        auth=(MERCHANT, KEY),
        headers=AGENT,
    )
    assert long.status_code == 200 and long.json()["items"] == []
    short = httpx.get(
        url,
        params={**asked, "begindate": f"{now - timedelta(hours=23):%Y-%m-%d %H:%M}"},
        auth=(MERCHANT, KEY),
        headers=AGENT,
    )
    assert [line["orderNumber"] for line in short.json()["items"]] == [placed["orderNumber"]] * len(
        placed["items"]
    )


def test_the_sandbox_keeps_hbs_rules(sandbox: Sandbox) -> None:
    order(sandbox)
    url = sandbox.hepsiburada_url
    auth = (MERCHANT, KEY)

    def get(path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{url}{path}", params=params, auth=auth, headers=AGENT)

    assert get(OPEN_LINES, offset=0, limit=100).status_code == 200
    assert get(OPEN_LINES, offset=0, limit=101).status_code == 400
    assert get(OPEN_LINES, offset=0).status_code == 400  # limit is mandatory
    assert get(OPEN_LINES, limit=10).status_code == 400  # offset too
    assert get(f"{OPEN_LINES}/cancelled", offset=0, limit=51).status_code == 400
    assert get(PACKAGES, Offset=0, limit=11).status_code == 400
    assert get(PACKAGES, Offset=0, limit=10).status_code == 200
    assert get(OPEN_LINES, offset=0, limit=10, begindate="2026-12-06T10:00").status_code == 400
    missing = httpx.get(
        f"{url}{OPEN_LINES}", params={"offset": 0, "limit": 10}, auth=auth, headers={"User-Agent": ""}
    )
    assert missing.status_code == 400 and missing.json() == "User-Agent header is required"
    wrong = httpx.get(
        f"{url}{OPEN_LINES}", params={"offset": 0, "limit": 10}, auth=(MERCHANT, "nope"), headers=AGENT
    )
    assert wrong.status_code == 401
    other = f"/orders/merchantid/{MERCHANT.replace('6', '7')}"
    assert (
        httpx.get(f"{url}{other}", params={"offset": 0, "limit": 10}, auth=auth, headers=AGENT).status_code
        == 401
    )


def test_the_connector_sends_its_user_agent_and_basic_auth(sandbox: Sandbox) -> None:
    recording = Recording()
    try:
        hb(sandbox, transport=recording).get_package("1")
    finally:
        recording.close()
    ((request, response),) = recording.calls
    assert request.headers["User-Agent"].startswith("OrderHub") and response.status_code == 404
    assert request.headers["Authorization"] == httpx.BasicAuth(MERCHANT, KEY)._auth_header


def test_wrong_credentials_are_an_auth_failure_in_words(sandbox: Sandbox) -> None:
    with pytest.raises(Permanent) as caught:
        hb(sandbox, service_key="WrongKey1234").list_packages(*window(), page=0, size=10)
    assert (caught.value.category, caught.value.status) == ("auth", 401)
    message = str(caught.value)
    assert "merchant id and service key" in message and "Servis Anahtarı" in message
    assert KEY not in message and "WrongKey1234" not in message


def test_hbs_429_waits_as_x_ratelimit_reset_says(sandbox: Sandbox) -> None:
    market = sandbox.world.hepsiburada
    market.rate_limited, market.reset_after = 1, 42
    with pytest.raises(RateLimited) as caught:
        hb(sandbox).list_packages(*window(), page=0, size=10)
    assert caught.value.retry_after == 42 and caught.value.category == "rate_limited"
    hb(sandbox).list_packages(*window(), page=0, size=10)  # the next call goes through


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"X-RateLimit-Reset": "7"}, 7.0),
        ({"X-RateLimit-Reset": "7", "Retry-After": "99"}, 7.0),
        ({"Retry-After": "12"}, 12.0),
        ({"X-RateLimit-Reset": "soon"}, 10.0),
        ({"X-RateLimit-Reset": "99999"}, 3600.0),
    ],
)
def test_reads_the_wait_of_a_429(headers: dict[str, str], wait: float) -> None:
    assert rate_limit_reset(httpx.Response(429, headers=headers)) == wait


def test_reads_an_epoch_reset_as_the_moment_of_the_reset() -> None:
    epoch = time.time() + 20
    for value in (f"{epoch:.0f}", f"{epoch * 1000:.0f}"):
        assert 15 < rate_limit_reset(httpx.Response(429, headers={"X-RateLimit-Reset": value})) <= 21


def test_outages_are_retryable(sandbox: Sandbox) -> None:
    sandbox.world.faults.update({"error_rate": 1})
    with pytest.raises(Retryable, match="503"):
        hb(sandbox).get_package("1")


def test_approve_packs_the_open_lines_once(sandbox: Sandbox) -> None:
    placed = order(sandbox, lines=[{"barcode": SHIRT, "quantity": 2}, {"barcode": MUG}])
    connector = hb(sandbox)
    connector.approve(placed["orderNumber"], lines_of(placed))
    package = package_of(sandbox, placed)
    assert package["status"] == "Packaged" and package["lines"] == [line["id"] for line in placed["items"]]
    assert (package["parcelQuantity"], package["deci"]) == (1, 1.0)
    read = connector.get_package(placed["orderNumber"])
    assert (
        read is not None
        and read.status is S.PICKING
        and read.shipment.package_number == package["packageNumber"]
    )
    # Asked again (a retry after a lost answer): read, nothing sent.
    calls = len(hb_calls(sandbox))
    connector.approve(placed["orderNumber"], lines_of(placed))
    assert methods_since(sandbox, calls) == ["GET"]
    assert len(sandbox.world.hepsiburada.packages) == 1


def test_approve_sends_only_the_lines_still_open(sandbox: Sandbox) -> None:
    placed = order(sandbox, lines=[{"barcode": SHIRT}, {"barcode": MUG}])
    first = sandbox.world.hepsiburada.pack(None, [lines_of(placed)[0]])
    hb(sandbox).push_status(placed["orderNumber"], lines_of(placed), S.PICKING)
    assert placed["items"][0]["packageNumber"] == first["packageNumber"]
    assert placed["items"][1]["packageNumber"] not in ("", first["packageNumber"])


def test_approve_refuses_a_line_of_another_order(sandbox: Sandbox) -> None:
    placed = order(sandbox)
    with pytest.raises(Permanent, match="is not a line of Hepsiburada order"):
        hb(sandbox).approve(placed["orderNumber"], [("not-a-line", 1)])
    with pytest.raises(Permanent, match="has no order 42"):
        hb(sandbox).approve("42", [("x", 1)])


def test_a_change_of_address_in_progress_is_retried(sandbox: Sandbox) -> None:
    placed = order(sandbox)
    sandbox.world.hepsiburada.address_demands.add(placed["orderNumber"])
    with pytest.raises(Retryable) as caught:
        hb(sandbox).approve(placed["orderNumber"], lines_of(placed))
    assert caught.value.code == "address_change" and "changes its delivery address" in str(caught.value)
    assert not isinstance(caught.value, RateLimited)


def test_cancels_an_open_line_by_merchant(sandbox: Sandbox) -> None:
    placed = order(sandbox, lines=[{"barcode": SHIRT}, {"barcode": MUG}])
    shirt = placed["items"][0]
    connector = hb(sandbox)
    connector.push_status(placed["orderNumber"], [(shirt["id"], 1)], S.UNSUPPLIED)
    assert shirt["status"] == "Cancelled"
    (entry,) = sandbox.world.hepsiburada.cancellations
    assert (entry["cancelledBy"], entry["cancelReasonCode"], entry["lineItemId"]) == (
        "Merchant",
        "83",
        shirt["id"],
    )
    read = connector.get_package(placed["orderNumber"])
    assert read is not None and [line.quantity for line in read.lines] == [0, 1] and read.status is S.CREATED
    calls = len(hb_calls(sandbox))
    connector.push_status(placed["orderNumber"], [(shirt["id"], 1)], S.CANCELLED)
    assert methods_since(sandbox, calls) == ["GET"]  # cancelled already: nothing sent


def test_cancels_a_packed_line_by_splitting_its_package(sandbox: Sandbox) -> None:
    placed = order(sandbox, lines=[{"barcode": SHIRT, "quantity": 2}, {"barcode": MUG}])
    connector = hb(sandbox)
    connector.approve(placed["orderNumber"], lines_of(placed))
    old = package_of(sandbox, placed)
    connector.push_status(placed["orderNumber"], [lines_of(placed)[0]], S.CANCELLED)
    assert old["status"] == "Unpacked" and placed["items"][0]["status"] == "Cancelled"
    new = package_of(sandbox, placed, 1)
    assert new["status"] == "Packaged" and new["lines"] == [placed["items"][1]["id"]]
    assert [method for method, path, _ in hb_calls(sandbox) if path.endswith("/split")] == ["POST"]
    read = connector.get_package(placed["orderNumber"])
    assert read is not None and (read.status, [line.quantity for line in read.lines]) == (S.PICKING, [0, 1])
    assert read.shipment.package_number == new["packageNumber"] and read.total == Decimal("89.99")


def test_cancelling_every_packed_line_leaves_no_package(sandbox: Sandbox) -> None:
    placed = order(sandbox, status="Packaged")
    hb(sandbox).push_status(placed["orderNumber"], lines_of(placed), S.CANCELLED)
    read = hb(sandbox).get_package(placed["orderNumber"])
    assert read is not None and read.status is S.CANCELLED and read.shipment.package_number == ""


def test_a_shipped_line_cannot_be_cancelled(sandbox: Sandbox) -> None:
    placed = order(sandbox, status="InTransit")
    calls = len(hb_calls(sandbox))
    with pytest.raises(Permanent) as caught:
        hb(sandbox).push_status(placed["orderNumber"], lines_of(placed), S.CANCELLED)
    assert (
        "already with the carrier (intransit)" in str(caught.value) and caught.value.code == "not_cancellable"
    )
    assert set(methods_since(sandbox, calls)) == {"GET"}


def test_part_of_a_line_cannot_be_cancelled(sandbox: Sandbox) -> None:
    placed = order(sandbox, lines=[{"barcode": SHIRT, "quantity": 3}])
    with pytest.raises(Permanent, match="whole lines only"):
        hb(sandbox).push_status(placed["orderNumber"], [(placed["items"][0]["id"], 1)], S.CANCELLED)
    assert placed["items"][0]["status"] == "Open"


def test_the_sandbox_refuses_what_hb_refuses(sandbox: Sandbox) -> None:
    """A packed line cannot be cancelled by cancelbymerchant; a shipped package cannot split."""
    placed = order(sandbox, status="Packaged")
    line = placed["items"][0]
    base = f"{sandbox.hepsiburada_url}/lineitems/merchantid/{MERCHANT}/id/{line['id']}/cancelbymerchant"
    answer = httpx.post(base, json={"reasonId": 83}, auth=(MERCHANT, KEY), headers=AGENT)
    assert answer.status_code == 400 and "paketlenmemiş" in answer.json()
    sandbox.world.hepsiburada.set_package_status(line["packageNumber"], "InTransit")
    split = f"{sandbox.hepsiburada_url}{PACKAGES}/packagenumber/{line['packageNumber']}/split"
    item = {"orderLineId": line["id"], "quantity": line["quantity"], "cancelReasonId": 83}
    answer = httpx.post(split, json={"cancelledItems": [item]}, auth=(MERCHANT, KEY), headers=AGENT)
    assert answer.status_code == 400 and line["status"] == "InTransit"


def test_sets_picking_only(sandbox: Sandbox) -> None:
    placed = order(sandbox)
    with pytest.raises(Permanent, match="HB's carrier sets In transit, Delivered and Undelivered"):
        hb(sandbox).push_status(placed["orderNumber"], lines_of(placed), S.SHIPPED)
    assert hb_calls(sandbox) == []


def test_an_own_carriers_tracking_number_puts_the_parcel_in_transit(sandbox: Sandbox) -> None:
    placed = order(sandbox, status="Packaged")
    connector = hb(sandbox)
    connector.push_tracking(placed["orderNumber"], "ARS123456", "Aras Kargo")
    package = package_of(sandbox, placed)
    assert (package["status"], package["trackingInfoCode"]) == ("InTransit", "ARS123456")
    assert package["trackingInfoUrl"] == "https://kargotakip.araskargo.com.tr/mainpage.aspx?code=ARS123456"
    read = connector.get_package(placed["orderNumber"])
    assert read is not None and read.status is S.SHIPPED and read.shipment.tracking_number == "ARS123456"
    calls = len(hb_calls(sandbox))
    connector.push_tracking(placed["orderNumber"], "ARS123456", "Aras Kargo")
    assert set(methods_since(sandbox, calls)) == {"GET"}  # in transit already: nothing sent


def test_a_tracking_number_needs_a_package(sandbox: Sandbox) -> None:
    placed = order(sandbox)
    with pytest.raises(Permanent, match="pack the order first") as caught:
        hb(sandbox).push_tracking(placed["orderNumber"], "ARS123456", "Aras Kargo")
    assert caught.value.code == "not_packed"


def test_the_sandbox_refuses_a_shipping_date_older_than_a_week(sandbox: Sandbox) -> None:
    placed = order(sandbox, status="Packaged")
    number = placed["items"][0]["packageNumber"]
    old = datetime.now(UTC) + timedelta(hours=3) - timedelta(days=8)
    answer = httpx.post(
        f"{sandbox.hepsiburada_url}{PACKAGES}/packagenumber/{number}/intransit",
        json={"trackingNumber": "X1", "shippedDate": f"{old:%Y-%m-%d %H:%M}"},
        auth=(MERCHANT, KEY),
        headers=AGENT,
    )
    assert answer.status_code == 400 and "7 günden eski" in answer.json()


def test_an_unknown_order_is_none(sandbox: Sandbox) -> None:
    connector = hb(sandbox)
    assert connector.get_package("4276999999") is None and connector.packages_of("4276999999") == []
    placed = order(sandbox)
    assert [o.order_number for o in connector.packages_of(placed["orderNumber"])] == [placed["orderNumber"]]


def test_an_unreadable_order_is_filed_and_the_page_read_on(sandbox: Sandbox) -> None:
    broken = order(sandbox, lines=[{"barcode": SHIRT}])
    broken["items"][0]["vatRate"] = 0.2
    fine = order(sandbox)
    connector = hb(sandbox)
    start, end = window()
    page = connector.list_packages(start, end, page=0, size=10)
    assert [o.order_number for o in page.orders] == [fine["orderNumber"]]
    ((filed_as, reason, _),) = page.unreadable
    assert filed_as == broken["orderNumber"] and "vatRate 0.20 is not a whole percentage" in reason
    # Handed out once per pull, not with every page the pull asks for.
    assert connector.list_packages(page.orders[0].modified_at, end, page=0, size=10).unreadable == ()
    with pytest.raises(InvalidAnswer, match="cannot be read: line"):
        connector.get_package(broken["orderNumber"])


def test_an_order_whose_lists_and_lines_disagree_on_its_time_is_filed_and_the_rest_goes_on(
    sandbox: Sandbox,
) -> None:
    """What a wrong reading looks like: lines whose lastStatusUpdateDate did not move with their package
    (or times not in Istanbul wall clock) would file a shipment hours before it happened. The order says
    so, in error; the others are read (one odd order must not stop every pull)."""
    placed = order(sandbox, status="InTransit")
    fine = order(sandbox)
    earlier = hb_time(time.time() - 3 * 3600)
    placed["orderDate"] = earlier
    for line in placed["items"]:
        line["lastStatusUpdateDate"] = line["orderDate"] = earlier
    page = hb(sandbox).list_packages(*window(), page=0, size=10)
    assert [listed.order_number for listed in page.orders] == [fine["orderNumber"]]
    ((filed_as, reason, _),) = page.unreadable
    assert filed_as == placed["orderNumber"] and "not read as HB writes them" in reason


def test_a_shipment_hb_dates_after_the_lines_stamp_is_not_left_out(sandbox: Sandbox) -> None:
    """Two of HB's clocks a little apart: the shipped list's date counts as the order's newest change, so
    the order is read in the window the shipment happened in, not taken as changed before it."""
    placed = order(sandbox, status="InTransit")
    aged(placed, seconds=120)
    shipped_at = datetime.fromtimestamp(package_of(sandbox, placed)["_moved"], UTC)
    now = datetime.now(UTC)
    page = hb(sandbox).list_packages(now - timedelta(minutes=1), now + timedelta(minutes=1), page=0, size=10)
    (read,) = page.orders
    assert read.status is S.SHIPPED and abs(read.modified_at - shipped_at) < timedelta(milliseconds=2)
    later = hb(sandbox).get_package(placed["orderNumber"])
    assert later is not None and later.modified_at < now - timedelta(minutes=1)  # the lines' own stamp


def test_the_masked_keys_are_the_identity_and_tax_fields_hb_sends(sandbox: Sandbox) -> None:
    placed = order(sandbox, corporate=True, status="Packaged")
    listed_package = httpx.get(
        f"{sandbox.hepsiburada_url}{PACKAGES}",
        params={"Offset": 0, "limit": 10},
        auth=(MERCHANT, KEY),
        headers=AGENT,
    ).json()[0]

    def keys(value: Any) -> set[str]:
        if isinstance(value, dict):
            return set(value) | {key for item in value.values() for key in keys(item)}
        if isinstance(value, list):
            return {key for item in value for key in keys(item)}
        return set()

    sent = keys(public(placed)) | keys(listed_package)
    personal = {key for key in sent if re.search(r"identity|taxnumber", key, re.IGNORECASE)}
    assert personal == {"turkishIdentityNumber", "taxNumber", "identityNo"} == set(MASKED_KEYS)


def edited(change: dict[str, Any], line: dict[str, Any] | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "order": copy.deepcopy(
            public(World().hepsiburada.create_order({"lines": [{"barcode": SHIRT, "quantity": 3}]}))
        ),
        "packages": [],
    }
    raw["order"].update(change)
    if line is not None:
        raw["order"]["items"][0].update(line)
    return raw


@pytest.mark.parametrize(
    ("change", "line", "reason"),
    [
        ({"items": []}, None, r"the order has no lines \(items\)"),
        ({"orderNumber": None}, None, "orderNumber is missing"),
        ({}, {"id": None}, "id is missing"),
        ({}, {"quantity": 0}, "quantity 0 is not a count"),
        ({}, {"status": ""}, "status is missing"),
        ({}, {"unitPrice": 149.9}, "unitPrice is not an amount with a currency"),
        (
            {},
            {"totalPrice": {"amount": 149.9, "currency": "TRY"}},
            "totalPrice 149.90 is not unitPrice × quantity",
        ),
        ({}, {"hbDiscount": {"totalPrice": {"amount": 500, "currency": "TRY"}}}, "the discounts"),
        ({}, {"vatRate": "lots"}, "vatRate is not an amount"),
        ({}, {"status": "Packaged"}, "is 'Packaged' but in no package"),
        ({}, {"status": "Packaged", "packageNumber": "5000000001"}, "package 5000000001 was not read"),
        ({}, {"lastStatusUpdateDate": "dün"}, "lastStatusUpdateDate 'dün' is not an ISO-8601 time"),
        ({}, {"lastStatusUpdateDate": hb_time(time.time() + 7200)}, "lastStatusUpdateDate is in the future"),
        ({"deliveryAddress": None}, {"shippingAddress": None}, "the order has no deliveryAddress"),
    ],
)
def test_an_unreadable_order_says_why(
    change: dict[str, Any], line: dict[str, Any] | None, reason: str
) -> None:
    with pytest.raises(UnreadablePackage, match=reason):
        parse_order(edited(change, line))


def test_reads_times_with_an_offset_and_hbs_seven_digits() -> None:
    raw = edited(
        {"orderDate": "2026-12-01T09:00:00Z"}, {"lastStatusUpdateDate": "2026-12-01T12:12:09.5595657Z"}
    )
    read = parse_order(raw)
    assert read.modified_at == datetime(2026, 12, 1, 12, 12, 9, 559565, tzinfo=UTC)
    assert read.ordered_at == datetime(2026, 12, 1, 9, tzinfo=UTC)
    raw = edited({"orderDate": "2026-12-01T09:00:00"}, {"lastStatusUpdateDate": "2026-12-01T12:00:00+03:00"})
    read = parse_order(raw)
    assert (read.ordered_at, read.modified_at) == (
        datetime(2026, 12, 1, 6, tzinfo=UTC),
        datetime(2026, 12, 1, 9, tzinfo=UTC),
    )


def test_an_unknown_package_status_is_packed() -> None:
    raw = edited({}, {"status": "ReadyToShip", "packageNumber": "5000000001"})
    raw["packages"] = [{"packageNumber": "5000000001", "status": "ReadyToShip", "cargoCompany": "Aras Kargo"}]
    read = parse_order(raw)
    assert (read.status, read.native_status, read.shipment.carrier) == (
        S.PICKING,
        "ReadyToShip",
        "Aras Kargo",
    )


def test_the_sandbox_keeps_hepsiburada_across_a_restart() -> None:
    world = World()
    placed = world.hepsiburada.create_order({"status": "Packaged"})
    world.hepsiburada.cancel_lines(placed["orderNumber"], [placed["items"][0]["id"]])
    kept = World()
    kept.restore(json.loads(json.dumps(world.snapshot())))
    assert [public(o) for o in kept.hepsiburada.orders.values()] == [public(placed)]
    assert kept.hepsiburada.cancellations == world.hepsiburada.cancellations
    assert kept.hepsiburada.create_order()["orderNumber"] == world.hepsiburada.create_order()["orderNumber"]


def test_the_demo_moves_packed_parcels_on_with_hbs_carrier() -> None:
    market = World().hepsiburada
    placed = market.create_order({"status": "Packaged"})
    package = market.packages[placed["items"][0]["packageNumber"]]
    package["_packed"] -= 10
    for _ in range(50):
        market.advance()
        if package["status"] == "InTransit":
            break
    assert package["status"] == "InTransit" and package["trackingInfoCode"] and package["trackingInfoUrl"]
    assert placed["items"][0]["status"] == "InTransit"
    market.create_order()  # a new order waits for the seller: advance leaves it open
    market.advance()
    assert all(line["status"] == "Open" for o in list(market.orders.values())[1:] for line in o["items"])


# -- the contract ------------------------------------------------------------------------------------


def spec_path(request: httpx.Request) -> str:
    """The request's path as HB's spec names it: what follows the sandbox's /hepsiburada."""
    path = request.url.path
    assert path.startswith("/hepsiburada/"), f"not a Hepsiburada path: {path}"
    return path.removeprefix("/hepsiburada")


def template(path: str) -> str:
    """A path with its ids as the spec's parameters."""
    path = path.replace(f"/merchantid/{MERCHANT}", "/merchantid/{merchantId}")
    path = re.sub(r"/ordernumber/[^/]+", "/ordernumber/{orderNumber}", path)
    path = re.sub(r"/packagenumber/[^/]+", "/packagenumber/{packagenumber}", path)
    return re.sub(r"/id/[^/]+", "/id/{lineId}", path)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def contract(spec: dict[str, Any]) -> Contract:
    return Contract(OpenAPI.from_dict(spec), "https://oms-external.hepsiburada.com", spec_path)


@pytest.fixture
def recording() -> Iterator[Recording]:
    recording = Recording()
    yield recording
    recording.close()


def test_every_call_of_the_connector_keeps_to_the_spec(
    sandbox: Sandbox, recording: Recording, contract: Contract, spec: dict[str, Any]
) -> None:
    """Both ways, every call the connector makes, and every operation of the spec made: the listing of
    every kind of change, packing, both cancellations, the tracking push, an unknown order, a wrong key,
    HB's 429, and a refusal."""
    market = sandbox.world.hepsiburada
    fresh = order(
        sandbox, lines=[{"barcode": SHIRT, "quantity": 2, "merchantDiscount": 10}, {"barcode": MUG}]
    )
    packed = order(sandbox, status="Packaged", corporate=True)
    order(sandbox, status="Delivered")
    order(sandbox, status="Undelivered")
    shipped = order(sandbox, status="InTransit")
    cancelled = order(sandbox)
    market.cancel_lines(cancelled["orderNumber"], [cancelled["items"][0]["id"]])
    connector = hb(sandbox, transport=recording)
    assert len(connector.list_packages(*window(), page=0, size=50).orders) == 6
    connector.push_status(fresh["orderNumber"], [lines_of(fresh)[1]], S.CANCELLED)  # cancelbymerchant
    connector.approve(fresh["orderNumber"], lines_of(fresh))
    connector.push_status(packed["orderNumber"], lines_of(packed), S.UNSUPPLIED)  # split
    connector.push_tracking(fresh["orderNumber"], "ARS1", "Aras Kargo")
    assert connector.get_package("4276999999") is None
    with pytest.raises(Permanent, match="already with the carrier"):
        connector.push_status(shipped["orderNumber"], lines_of(shipped), S.CANCELLED)
    with pytest.raises(Permanent, match="service key"):
        hb(sandbox, transport=recording, service_key="WrongKey1234").get_package(fresh["orderNumber"])
    market.rate_limited = 1
    with pytest.raises(RateLimited):
        connector.get_package(fresh["orderNumber"])
    with httpx.Client(transport=recording, auth=(MERCHANT, KEY), headers=AGENT) as client:
        # HB's refusal of a cancellation of a packed line, which the connector never draws (it splits)
        line = shipped["items"][0]["id"]
        client.post(
            f"{sandbox.hepsiburada_url}/lineitems/merchantid/{MERCHANT}/id/{line}/cancelbymerchant",
            json={"reasonId": 83},
        )

    made = {(request.method, template(spec_path(request))) for request, _ in recording.calls}
    in_spec = {(method.upper(), path) for path, operations in spec["paths"].items() for method in operations}
    assert made == in_spec
    statuses = {(request.method, response.status_code) for request, response in recording.calls}
    assert {
        ("GET", 200),
        ("POST", 201),
        ("POST", 200),
        ("GET", 404),
        ("GET", 401),
        ("GET", 429),
        ("POST", 400),
    } <= statuses
    assert contract.violations(recording.calls) == []


def test_a_call_off_the_spec_is_caught(sandbox: Sandbox, recording: Recording, contract: Contract) -> None:
    """The check itself: a list without its mandatory limit, a package without lines, no User-Agent."""
    with httpx.Client(transport=recording, auth=(MERCHANT, KEY)) as client:
        client.get(f"{sandbox.hepsiburada_url}{OPEN_LINES}", params={"offset": 0}, headers=AGENT)
        client.post(f"{sandbox.hepsiburada_url}{PACKAGES}", json={"parcelQuantity": 1}, headers=AGENT)
        client.get(
            f"{sandbox.hepsiburada_url}{OPEN_LINES}",
            params={"offset": 0, "limit": 10},
            headers={"User-Agent": ""},
        )
    first, second, third = contract.violations(recording.calls)
    assert first.startswith("GET") and "limit" in first
    assert second.startswith("POST") and "'lineItemRequests' is a required property" in second
    assert third.startswith("GET") and "User-Agent" in third


class FailingOnce(httpx.BaseTransport):
    """The real transport, but the `fail_at`-th request answers 503 once (a bad day's answer)."""

    def __init__(self, fail_at: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.fail_at = fail_at
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(str(request.url))
        if len(self.sent) == self.fail_at:
            return httpx.Response(503, request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_a_pull_asked_again_after_a_failure_goes_on_from_what_it_read(sandbox: Sandbox) -> None:
    """HB is read through many requests per window: one failing late must not send the pull back to the
    first, or a day when one answer in five fails would never get through."""
    for _ in range(3):
        order(sandbox)
    transport = FailingOnce(fail_at=8)  # past the six lists, while reading the orders
    connector = hb(sandbox, transport=transport)
    start, end = window()
    with pytest.raises(Retryable):
        connector.list_packages(start, end, 0)
    sent_before = list(transport.sent)
    page = connector.list_packages(start, end, 0)
    assert len(page.orders) == 3
    again = transport.sent[len(sent_before) :]
    assert again[0] == sent_before[-1]  # the failed request first
    assert not set(again) & set(sent_before[:-1])  # nothing read before is read again
