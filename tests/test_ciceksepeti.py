"""The Çiçeksepeti connector against the sandbox's Çiçeksepeti over HTTP: its rows read as orders, its pace
and its two shipping paths, and every call it makes checked against specs/ciceksepeti.openapi.yml with
openapi-core. The connector's pacer and the sandbox's rate limits run on one stepped clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_core import OpenAPI

from connectors import ciceksepeti as cs
from connectors.base import InvalidAnswer, Permanent, RateLimited
from connectors.ciceksepeti import CiceksepetiConnector, Pacer, UnreadablePackage, addresses, parse_order
from connectors.http import Guard
from sandbox.ciceksepeti import WRONG_PATH, public, written
from sandbox.state import World
from sync.statuses import CanonicalStatus
from tests.contract import Contract, Recording
from tests.markets import SteppedClock, stepped
from tests.sandbox_server import Sandbox, serve_sandbox

SELLER, KEY = "50123", "cs-sandbox-key"
CREDENTIALS = {"ciceksepeti_seller_id": SELLER, "ciceksepeti_api_key": KEY}
HEADERS = {"x-api-key": KEY, "User-Agent": f"{SELLER}-OrderHub"}
LOCAL = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), timeout=5)
SPEC_FILE = Path(__file__).resolve().parents[1] / "specs" / "ciceksepeti.openapi.yml"
ORDERS, READY, SUPPLIER = cs.ORDERS, cs.READY_FOR_CARGO, cs.SUPPLIER_STATUS
SHIRT, OIL, MUG = "8680001000011", "8680001000097", "8680001000059"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with serve_sandbox(World()) as sandbox:
        yield sandbox


@pytest.fixture
def clock(sandbox: Sandbox) -> SteppedClock:
    return stepped(sandbox)


def connector(
    sandbox: Sandbox, transport: httpx.BaseTransport | None = None, **credentials: str
) -> CiceksepetiConnector:
    return CiceksepetiConnector(
        sandbox.ciceksepeti_url, {**CREDENTIALS, **credentials}, LOCAL, transport=transport
    )


def order(sandbox: Sandbox, **spec: Any) -> dict[str, Any]:
    """A new order on the sandbox's Çiçeksepeti, a T-shirt by default, on the seller's own cargo."""
    return sandbox.world.ciceksepeti.create_order({"lines": [{"barcode": SHIRT}], **spec})


def items(created: dict[str, Any]) -> list[tuple[str, int]]:
    return [(str(row["orderItemId"]), row["quantity"]) for row in created["rows"]]


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(minutes=1)


def calls(sandbox: Sandbox) -> list[tuple[str, str, int]]:
    return [call for call in sandbox.world.requests if call[1].startswith("/ciceksepeti/")]


def test_an_order_s_rows_are_one_order(sandbox: Sandbox, clock: SteppedClock) -> None:
    """Rows grouped by orderId; items as lines by orderItemId; money from invoicePrice; Turkish time as UTC;
    the receiver is the shipping address, the sender (who ordered) the billing one; the card kept in raw."""
    created = order(
        sandbox,
        lines=[{"barcode": SHIRT, "quantity": 3, "discount": "30.00"}, {"barcode": OIL}],
        cardMessage="İyi ki doğdun!",
    )
    order(sandbox)
    page = connector(sandbox).list_packages(*window(), page=0, size=50)
    assert page.total_pages == 1 and page.unreadable == ()
    read = next(found for found in page.orders if found.package_id == str(created["orderId"]))
    assert len(page.orders) == 2 and read.order_number == read.package_id
    assert (read.status, read.native_status) == (CanonicalStatus.CREATED, "1")
    shirt, oil = read.lines
    first = created["rows"][0]
    assert (shirt.line_id, shirt.barcode, shirt.stock_code, shirt.quantity) == (
        str(first["orderItemId"]),
        SHIRT,
        "TS-BEYAZ-M",
        3,
    )
    # 3 × 149.90 = 449.70 less the seller's 30.00: 419.70 paid, 139.90 a unit.
    assert shirt.unit_price == Decimal("139.90") and shirt.vat_rate == Decimal(10)
    assert (oil.unit_price, oil.vat_rate) == (Decimal("389.00"), Decimal(1))
    assert read.total == Decimal("808.70") and read.currency == "TRY"
    written = datetime.strptime(f"{first['orderCreateDate']} {first['orderCreateTime']}", "%d/%m/%Y %H:%M")
    assert read.ordered_at == written.replace(tzinfo=UTC) - timedelta(hours=3)
    assert abs(read.modified_at - datetime.now(UTC)) < timedelta(minutes=2)
    shipping, billing = read.shipping_address, read.billing_address
    assert f"{shipping.first_name} {shipping.last_name}" == first["receiverName"]
    assert shipping.address1 == f"{first['receiverRegion']} {first['receiverAddress']}"
    assert (shipping.city, shipping.district, shipping.phone) == (
        first["receiverCity"],
        first["receiverDistrict"],
        first["receiverPhone"],
    )
    assert f"{billing.first_name} {billing.last_name}" == first["senderName"] == read.customer_name
    assert billing.city == first["senderCity"] and read.customer_email == first["invoiceEmail"]
    assert [row["cardMessage"] for row in read.raw["rows"]] == ["İyi ki doğdun!"] * 2
    assert read.raw["rows"] == created["rows"]
    assert addresses(read.raw) == (billing, shipping)


def test_every_call_names_the_key_and_the_integrator(sandbox: Sandbox, clock: SteppedClock) -> None:
    recording = Recording()
    connector(sandbox, transport=recording).check()
    ((request, response),) = recording.calls
    assert response.status_code == 200
    assert request.headers["x-api-key"] == KEY and request.headers["User-Agent"] == f"{SELLER}-OrderHub"
    asked = json.loads(request.content)
    assert asked["pageSize"] == 1 and asked["isOrderStatusActive"] is True
    assert set(asked) == {"startDate", "endDate", "page", "pageSize", "isOrderStatusActive"}


def test_requests_keep_five_seconds_apart(sandbox: Sandbox, clock: SteppedClock) -> None:
    """Four requests (two pages of two kinds) take fifteen seconds of the seller's time, and Çiçeksepeti
    refuses none; a second process, which does not see this one's turns, gets its 429 as RateLimited."""
    created = order(sandbox)
    reader = connector(sandbox)
    before = clock.now()
    reader.list_packages(*window(), page=0, size=10)
    assert reader.get_package(str(created["orderId"])) is not None
    assert clock.now() - before >= 3 * cs.REQUEST_INTERVAL
    assert [status for _, _, status in calls(sandbox)] == [200] * 4
    other = CiceksepetiConnector(
        sandbox.ciceksepeti_url, CREDENTIALS, LOCAL, pacer=Pacer(clock=clock)
    )  # another worker
    with pytest.raises(RateLimited) as caught:
        other.check()
    assert caught.value.retry_after == cs.REQUEST_INTERVAL and "5 saniyede bir" in str(caught.value)


def test_a_turn_too_far_off_is_left_to_the_queue(sandbox: Sandbox, clock: SteppedClock) -> None:
    pacer = Pacer(clock=clock)
    seller = f"{sandbox.ciceksepeti_url} {SELLER}"
    pacer.next_turn[seller] = clock.now() + 100
    with pytest.raises(RateLimited) as caught:
        CiceksepetiConnector(sandbox.ciceksepeti_url, CREDENTIALS, LOCAL, pacer=pacer).check()
    assert caught.value.retry_after > cs.MAX_WAIT and calls(sandbox) == []


def test_an_identical_body_is_never_sent_twice_within_the_minute(
    sandbox: Sandbox, clock: SteppedClock
) -> None:
    """Çiçeksepeti takes an identical body once a minute: the sandbox refuses the second; the connector
    asks a window a second longer (a listing) or a page a row smaller (a lookup) instead."""
    created = order(sandbox)
    recording = Recording()
    reader = connector(sandbox, transport=recording)
    start, end = window()
    reader.list_packages(start, end, page=0, size=10)
    reader.list_packages(start, end, page=0, size=10)
    reader.get_package(str(created["orderId"]))
    reader.get_package(str(created["orderId"]))
    bodies = [json.loads(request.content) for request, _ in recording.calls]
    assert [response.status_code for _, response in recording.calls] == [200] * 8
    assert len({json.dumps(body, sort_keys=True) for body in bodies}) == 8
    first, again = bodies[0], bodies[2]
    assert datetime.fromisoformat(first["startDate"]) - datetime.fromisoformat(
        again["startDate"]
    ) == timedelta(seconds=1)
    assert (bodies[4]["pageSize"], bodies[6]["pageSize"]) == (100, 99)
    with httpx.Client(headers=HEADERS) as client:  # the sandbox's rule itself
        clock.sleep(10)
        refused = client.post(f"{sandbox.ciceksepeti_url}{ORDERS}", json=bodies[0])
    assert refused.status_code == 429 and "dakikada bir" in refused.json()["Message"]


def test_a_long_window_is_asked_for_in_parts_of_at_most_fourteen_days(
    sandbox: Sandbox, clock: SteppedClock
) -> None:
    market = sandbox.world.ciceksepeti
    old, new = order(sandbox), order(sandbox)
    stamp = datetime.now(UTC) - timedelta(days=17)
    for row in market.rows_of(old["orderId"]):
        row["_modified"] = stamp.timestamp()
        row["orderModifyDate"], row["orderModifyTime"] = (
            stamp.astimezone(cs.TURKEY).strftime("%d/%m/%Y"),
            stamp.astimezone(cs.TURKEY).strftime("%H:%M"),
        )
    recording = Recording()
    reader = connector(sandbox, transport=recording)
    now = datetime.now(UTC)
    first = reader.list_packages(now - timedelta(days=20), now + timedelta(minutes=1), page=0, size=10)
    assert [found.package_id for found in first.orders] == [str(old["orderId"])] and first.total_pages == 2
    second = reader.list_packages(now - timedelta(days=20), now + timedelta(minutes=1), page=1, size=10)
    assert [found.package_id for found in second.orders] == [str(new["orderId"])]
    assert second.total_pages == 2
    for request, response in recording.calls:
        asked = json.loads(request.content)
        span = datetime.fromisoformat(asked["endDate"]) - datetime.fromisoformat(asked["startDate"])
        assert span <= timedelta(days=14) and response.status_code == 200
    with httpx.Client(headers=HEADERS) as client:
        clock.sleep(10)
        body = {
            "startDate": "2026-11-01T00:00:00",
            "endDate": "2026-11-15T00:00:01",
            "page": 0,
            "pageSize": 10,
        }
        answer = client.post(f"{sandbox.ciceksepeti_url}{ORDERS}", json=body)
    assert answer.status_code == 400 and "14 gün" in answer.json()["Message"]


def test_the_own_cargo_path_prepares_ships_and_delivers(sandbox: Sandbox, clock: SteppedClock) -> None:
    """cargoModelType 2: approve is 1 → 2, the tracking code 2 → 5 with the carrier's cargoBusinessId, the
    number and the carrier's page; Delivered 5 → 7. Asked again, nothing more is sent."""
    created = order(sandbox, lines=[{"barcode": SHIRT}, {"barcode": MUG}])
    package_id, lines = str(created["orderId"]), items(created)
    seller = connector(sandbox)
    seller.approve(package_id, lines)
    rows = sandbox.world.ciceksepeti.rows_of(package_id)
    assert [row["orderItemStatusId"] for row in rows] == [2, 2]
    assert seller.get_package(package_id).status is CanonicalStatus.PICKING  # type: ignore[union-attr]
    seller.push_tracking(package_id, "SR123", "Sürat Kargo")
    assert {(row["orderItemStatusId"], row["cargoCompany"], row["cargoNumber"]) for row in rows} == {
        (5, "Sürat Kargo", "SR123")
    }
    assert rows[0]["shipmentTrackingUrl"] == "https://suratkargo.com.tr/KargoTakip/?kargotakipno=SR123"
    shipped = seller.get_package(package_id)
    assert shipped is not None and shipped.status is CanonicalStatus.SHIPPED
    assert (shipped.shipment.tracking_number, shipped.shipment.carrier) == ("SR123", "Sürat Kargo")
    sent = len(calls(sandbox))
    seller.push_tracking(package_id, "SR123", "Sürat Kargo")  # a retry after a lost answer
    seller.approve(package_id, lines)
    assert [path for _, path, _ in calls(sandbox)[sent:]] == [f"/ciceksepeti{ORDERS}"] * 4
    seller.push_status(package_id, lines, CanonicalStatus.DELIVERED)
    assert [row["orderItemStatusId"] for row in rows] == [7, 7]


def test_yurtici_goes_to_eleven_and_an_unknown_carrier_is_refused(
    sandbox: Sandbox, clock: SteppedClock
) -> None:
    created = order(sandbox)
    package_id = str(created["orderId"])
    seller = connector(sandbox)
    with pytest.raises(Permanent, match="no code for the carrier 'Hızlı Kargo'") as caught:
        seller.push_tracking(package_id, "X1", "Hızlı Kargo")
    assert caught.value.code == "unknown_carrier" and calls(sandbox) == []
    seller.push_tracking(package_id, "YK1", "Yurtiçi Kargo")  # new: set to preparing first
    (row,) = sandbox.world.ciceksepeti.rows_of(package_id)
    assert (row["orderItemStatusId"], row["cargoCompany"], row["cargoNumber"]) == (11, "Yurtiçi Kargo", "YK1")


def test_the_cs_cargo_path_makes_the_label_and_reads_the_tracking_back(
    sandbox: Sandbox, clock: SteppedClock
) -> None:
    """cargoModelType 1: approve is readyforcargo (1 → 11, the label's partialNumber); Çiçeksepeti ships
    and its tracking number comes back with the order; it takes no code nor status from the seller."""
    created = order(sandbox, cargoModelType=1)
    package_id, lines = str(created["orderId"]), items(created)
    seller = connector(sandbox)
    seller.approve(package_id, lines)
    (row,) = sandbox.world.ciceksepeti.rows_of(package_id)
    accepted = seller.get_package(package_id)
    assert row["orderItemStatusId"] == 11 and accepted is not None
    assert (accepted.status, accepted.native_status) == (CanonicalStatus.PICKING, "11")
    assert accepted.shipment.shipment_barcode == row["partialNumber"] != ""
    with pytest.raises(Permanent, match="contracted carrier and takes no tracking code"):
        seller.push_tracking(package_id, "AR1", "Aras Kargo")
    with pytest.raises(Permanent, match="sets Delivered itself"):
        seller.push_status(package_id, lines, CanonicalStatus.DELIVERED)
    sandbox.world.ciceksepeti.ship(package_id)
    shipped = seller.get_package(package_id)
    assert shipped is not None and shipped.status is CanonicalStatus.SHIPPED
    assert shipped.shipment.tracking_number == row["cargoNumber"] and shipped.shipment.tracking_link
    with httpx.Client(headers=HEADERS) as client:  # the other path's call: refused in Çiçeksepeti's words
        clock.sleep(10)
        body = {"orderItems": [{"orderItemId": row["orderItemId"], "orderItemStatusId": 7}]}
        refused = client.put(f"{sandbox.ciceksepeti_url}{SUPPLIER}", json=body)
    assert refused.status_code == 400 and refused.json() == {"Message": WRONG_PATH}


def test_no_cancel_api_a_cancellation_is_refused_by_name(sandbox: Sandbox, clock: SteppedClock) -> None:
    created = order(sandbox)
    for status in (CanonicalStatus.CANCELLED, CanonicalStatus.UNSUPPLIED):
        with pytest.raises(
            Permanent, match="no cancel API: cancel the order in the Çiçeksepeti seller panel"
        ) as caught:
            connector(sandbox).push_status(str(created["orderId"]), items(created), status)
        assert caught.value.code == "no_cancel_api"
    assert calls(sandbox) == []
    with pytest.raises(Permanent, match="cannot set Shipped on Çiçeksepeti"):
        connector(sandbox).push_status(str(created["orderId"]), items(created), CanonicalStatus.SHIPPED)


def test_cancelled_items_are_read_as_inactive(sandbox: Sandbox, clock: SteppedClock) -> None:
    """A whole order cancelled in the panel is Cancelled; a cancelled item of a live order stays listed
    with no units live, and nothing of it paid."""
    market = sandbox.world.ciceksepeti
    whole, part = order(sandbox), order(sandbox, lines=[{"barcode": SHIRT}, {"barcode": MUG}])
    market.cancel(whole["orderId"])
    market.cancel(part["orderId"], [part["rows"][1]["orderItemId"]])
    page = connector(sandbox).list_packages(*window(), page=0, size=10)
    read = {found.package_id: found for found in page.orders}
    cancelled = read[str(whole["orderId"])]
    assert cancelled.status is CanonicalStatus.CANCELLED and len(cancelled.lines) == 1
    partly = read[str(part["orderId"])]
    assert partly.status is CanonicalStatus.CREATED and partly.total == Decimal("149.90")
    assert [(line.barcode, line.quantity) for line in partly.lines] == [(SHIRT, 1), (MUG, 0)]
    assert cancelled.lines[0].quantity == 1
    assert connector(sandbox).packages_of(str(whole["orderId"]))[0].status is CanonicalStatus.CANCELLED


def test_an_item_cancelled_hours_after_its_sister_is_read_with_the_whole_order(
    sandbox: Sandbox, clock: SteppedClock
) -> None:
    """The lists hold one row per item, by the item's own change: the item cancelled now is in the window,
    its sister changed hours ago is not. The order is read whole by its number, not as cancelled."""
    market = sandbox.world.ciceksepeti
    part = order(sandbox, lines=[{"barcode": SHIRT}, {"barcode": MUG}])
    with market.lock:
        for row in market.rows_of(part["orderId"]):
            before = datetime.fromtimestamp(row["_modified"] - 7200, UTC)
            row["_modified"] = before.timestamp()
            row["orderModifyDate"], row["orderModifyTime"] = written(before)
    market.cancel(part["orderId"], [part["rows"][1]["orderItemId"]])
    now = datetime.now(UTC)
    [partly] = connector(sandbox).list_packages(now - timedelta(minutes=30), now, page=0, size=10).orders
    assert partly.status is CanonicalStatus.CREATED
    assert [(line.barcode, line.quantity) for line in partly.lines] == [(SHIRT, 1), (MUG, 0)]


def test_an_order_that_cannot_be_read_is_set_aside_by_name(sandbox: Sandbox, clock: SteppedClock) -> None:
    market = sandbox.world.ciceksepeti
    odd, fine, priced = order(sandbox), order(sandbox), order(sandbox)
    market.rows_of(odd["orderId"])[0]["orderItemStatusId"] = 99
    market.rows_of(priced["orderId"])[0]["invoicePrice"] = 999.0
    page = connector(sandbox).list_packages(*window(), page=0, size=10)
    assert [found.package_id for found in page.orders] == [str(fine["orderId"])]
    reasons = {package_id: reason for package_id, reason, _ in page.unreadable}
    assert reasons[str(odd["orderId"])] == "unknown orderItemStatusId 99"
    assert "invoicePrice 999.00 is not totalPrice − discount" in reasons[str(priced["orderId"])]
    with pytest.raises(InvalidAnswer, match="cannot be read: unknown orderItemStatusId 99"):
        connector(sandbox).get_package(str(odd["orderId"]))


def test_times_are_turkish_wall_clock() -> None:
    row = {
        **public(World().ciceksepeti.create_order({"lines": [{"barcode": SHIRT}]})["rows"][0]),
        "orderCreateDate": "01/11/2026",
        "orderCreateTime": "09:30",
        "orderModifyDate": "02/11/2026",
        "orderModifyTime": "00:15",
    }
    read = parse_order({"orderId": str(row["orderId"]), "rows": [row]})
    assert read.ordered_at == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert read.modified_at == datetime(2026, 11, 1, 21, 15, tzinfo=UTC)
    with pytest.raises(UnreadablePackage, match="is not dd/MM/yyyy HH:mm"):
        parse_order({"orderId": "1", "rows": [{**row, "orderCreateDate": "2026-11-01"}]})


def test_wrong_keys_and_cloudflare_are_told_apart(sandbox: Sandbox, clock: SteppedClock) -> None:
    with pytest.raises(Permanent, match="refused the API key") as caught:
        connector(sandbox, ciceksepeti_api_key="wrong").check()
    assert caught.value.category == "auth"

    def cloudflare(request: httpx.Request) -> httpx.Response:
        """Çiçeksepeti's front as seen from outside Turkey: a web page and 403 (next §4.1)."""
        return httpx.Response(403, text="<html><title>Attention Required! | Cloudflare</title></html>")

    with pytest.raises(Permanent, match="Cloudflare front refuses"):
        connector(sandbox, transport=httpx.MockTransport(cloudflare)).check()


def test_the_sandbox_keeps_its_orders_across_a_restart(clock: SteppedClock, sandbox: Sandbox) -> None:
    world = sandbox.world
    created = world.ciceksepeti.create_order()
    kept = World()
    kept.restore(json.loads(json.dumps(world.snapshot())))
    assert [public(row) for row in kept.ciceksepeti.rows.values()] == created["rows"]
    assert kept.ciceksepeti.create_order()["orderId"] == world.ciceksepeti.create_order()["orderId"]


# -- the contract ------------------------------------------------------------------------------------


def spec_path(request: httpx.Request) -> str:
    path = request.url.path
    assert path.startswith("/ciceksepeti/"), f"not a Çiçeksepeti path: {path}"
    return path.removeprefix("/ciceksepeti")


@pytest.fixture(scope="module")
def contract() -> Contract:
    spec = OpenAPI.from_dict(yaml.safe_load(SPEC_FILE.read_text()))
    return Contract(spec, "https://apis.ciceksepeti.com", spec_path, base="/api/v1")


def test_every_call_of_the_connector_keeps_to_the_spec(
    sandbox: Sandbox, clock: SteppedClock, contract: Contract
) -> None:
    """Both ways: the listing and lookups, both paths' status calls, a refusal, a wrong key, a 429."""
    recording = Recording()
    own = order(sandbox, lines=[{"barcode": SHIRT, "quantity": 2, "discount": 10}, {"barcode": MUG}])
    theirs = order(sandbox, cargoModelType=1)
    seller = connector(sandbox, transport=recording)
    assert len(seller.list_packages(*window(), page=0, size=50).orders) == 2
    seller.approve(str(own["orderId"]), items(own))
    seller.push_tracking(str(own["orderId"]), "SR1", "Sürat Kargo")
    seller.push_status(str(own["orderId"]), items(own), CanonicalStatus.DELIVERED)
    seller.approve(str(theirs["orderId"]), items(theirs))
    with pytest.raises(Permanent, match="refused the API key"):
        connector(sandbox, transport=recording, ciceksepeti_api_key="wrong").check()
    with httpx.Client(transport=recording, headers=HEADERS) as client:
        clock.sleep(10)
        item = theirs["rows"][0]["orderItemId"]
        client.put(f"{sandbox.ciceksepeti_url}{READY}", json={"orderItemsGroup": [{"orderItemIds": [item]}]})
        clock.sleep(10)
        body = {
            "startDate": "2026-11-01T00:00:00",
            "endDate": "2026-11-02T00:00:00",
            "page": 0,
            "pageSize": 5,
        }
        client.post(f"{sandbox.ciceksepeti_url}{ORDERS}", json=body)
        client.post(f"{sandbox.ciceksepeti_url}{ORDERS}", json=body)
    assert contract.operations(recording.calls) == {
        ("POST", 200, ORDERS),
        ("PUT", 200, SUPPLIER),
        ("PUT", 200, READY),
        ("POST", 401, ORDERS),
        ("PUT", 400, READY),
        ("POST", 429, ORDERS),
    }
    assert contract.violations(recording.calls) == []


def test_a_call_off_the_spec_is_caught(sandbox: Sandbox, clock: SteppedClock, contract: Contract) -> None:
    recording = Recording()
    with httpx.Client(transport=recording) as client:
        body = {"orderItems": [{"orderItemId": 1, "orderItemStatusId": 4}]}
        client.put(f"{sandbox.ciceksepeti_url}{SUPPLIER}", json=body, headers=HEADERS)
        client.post(f"{sandbox.ciceksepeti_url}{ORDERS}", json={"page": 0})
    first, second = contract.violations(recording.calls)
    assert first.startswith("PUT") and "request" in first and "4 is not one of" in first
    assert second.startswith("POST") and ("Security not found" in second or "User-Agent" in second)
