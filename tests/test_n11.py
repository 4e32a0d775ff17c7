"""The N11 connector against the sandbox's N11 over HTTP, its reading of packages, and every call it makes
checked against specs/n11.openapi.yml with openapi-core."""

from __future__ import annotations

import copy
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

from connectors.base import InvalidAnswer, Permanent, RateLimited, Retryable
from connectors.http import Guard
from connectors.n11 import N11Connector, UnreadablePackage, parse_package
from connectors.payload import split_name
from sandbox.n11 import ISTANBUL_MS, n11_now, public
from sandbox.state import World
from sync.statuses import CanonicalStatus
from tests.contract import Contract, Recording
from tests.sandbox_server import Sandbox, serve_sandbox

CREDENTIALS = {"app_key": "n11-sandbox-key", "app_secret": "n11-sandbox-secret"}
HEADERS = {"appKey": "n11-sandbox-key", "appSecret": "n11-sandbox-secret"}
# The sandbox listens on a loopback port: allowlisted, as in development.
LOCAL = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), timeout=5)
SPEC_FILE = Path(__file__).resolve().parents[1] / "specs" / "n11.openapi.yml"
PACKAGES = "/rest/delivery/v1/shipmentPackages"
UPDATE = "/rest/order/v1/update"
SPLIT = "/rest/delivery/v1/splitPackageByQuantity"
SHIRT, OIL, MUG = "8680001000011", "8680001000097", "8680001000059"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with serve_sandbox(World()) as sandbox:
        yield sandbox


def n11(sandbox: Sandbox, transport: httpx.BaseTransport | None = None, **credentials: str) -> N11Connector:
    return N11Connector(sandbox.n11_url, {**CREDENTIALS, **credentials}, LOCAL, transport=transport)


def order(sandbox: Sandbox, **spec: Any) -> dict[str, Any]:
    """A new package on the sandbox's N11."""
    return sandbox.world.n11.create_package(spec)


def lines_of(package: dict[str, Any]) -> list[tuple[str, int]]:
    return [(str(line["orderLineId"]), line["quantity"]) for line in package["lines"]]


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(minutes=1)


def n11_calls(sandbox: Sandbox) -> list[tuple[str, str, int]]:
    return [call for call in sandbox.world.requests if call[1].startswith("/n11/")]


def test_reads_every_field_of_a_package(sandbox: Sandbox) -> None:
    """Money exact from the invoice amounts, times in UTC, the one fullName split, the neighbourhood kept."""
    package = order(
        sandbox,
        lines=[
            {"barcode": SHIRT, "quantity": 3, "sellerDiscount": "30.00", "mallDiscount": "15.00"},
            {"barcode": OIL, "quantity": 1},
        ],
        fullName="Ayşe Nur Yılmaz",
    )
    page = n11(sandbox).list_packages(*window(), page=0, size=50)
    assert page.total_pages == 1 and page.unreadable == ()
    (read,) = page.orders
    assert read.package_id == str(package["id"]) and read.package_id.isdigit()
    assert read.order_number == package["orderNumber"] and len(read.order_number) == 13
    assert (read.status, read.native_status) == (CanonicalStatus.CREATED, "Created")
    shirt, oil = read.lines
    assert (shirt.line_id, shirt.barcode, shirt.stock_code) == (
        str(package["lines"][0]["orderLineId"]),
        SHIRT,
        "TS-BEYAZ-M",
    )
    assert (
        shirt.name == "Pamuklu Basic Tişört Beyaz" and shirt.quantity == 3 and shirt.vat_rate == Decimal(10)
    )
    # 3 × 149.90 = 449.70 less the seller's 30.00: 419.70 invoiced, 139.90 a unit. N11's own 15.00 is N11's
    # money (the seller is paid as if there were none): not taken off.
    assert shirt.unit_price == Decimal("139.90")
    assert (oil.unit_price, oil.vat_rate) == (Decimal("389.00"), Decimal(1))
    assert read.total == Decimal("808.70") and package["totalAmount"] == 793.70
    assert read.currency == "TRY"
    # N11 writes Istanbul wall-clock time: 3 hours ahead of the moment in epoch form.
    written = datetime.fromtimestamp(package["lastModifiedDate"] / 1000, UTC)
    assert read.modified_at == written - timedelta(hours=3) == read.ordered_at
    assert abs(read.modified_at - datetime.now(UTC)) < timedelta(seconds=10)
    shipping = read.shipping_address
    source = package["shippingAddress"]
    assert (shipping.first_name, shipping.last_name) == ("Ayşe Nur", "Yılmaz")
    assert shipping.address1 == f"{source['neighborhood']} {source['address']}"
    assert (shipping.city, shipping.district, shipping.postcode, shipping.phone, shipping.country) == (
        source["city"],
        source["district"],
        source["postalCode"],
        source["gsm"],
        "TR",
    )
    assert read.billing_address == shipping
    assert (read.customer_name, read.customer_email) == ("Ayşe Nur Yılmaz", package["customerEmail"])
    assert read.raw == public(package)


def test_the_campaign_code_is_no_tracking_number(sandbox: Sandbox) -> None:
    """cargoTrackingNumber is N11's campaign code for the label: kept as the shipment barcode; the
    carrier's own number (cargoSenderNumber) is the tracking number."""
    package = order(sandbox)
    market = sandbox.world.n11
    market.set_status(package, "Picking")
    accepted = n11(sandbox).get_package(str(package["id"]))
    assert accepted is not None and accepted.shipment.tracking_number == ""
    assert accepted.shipment.shipment_barcode == package["cargoTrackingNumber"] != ""
    market.set_status(package, "Shipped")
    shipped = n11(sandbox).get_package(str(package["id"]))
    assert shipped is not None and shipped.status is CanonicalStatus.SHIPPED
    shipment = shipped.shipment
    assert shipment.tracking_number == package["cargoSenderNumber"] != package["cargoTrackingNumber"]
    assert shipment.shipment_barcode == package["cargoTrackingNumber"]
    assert (shipment.tracking_link, shipment.carrier, shipment.package_number) == (
        package["cargoTrackingLink"],
        package["cargoProviderName"],
        str(package["id"]),
    )


def test_pages_oldest_first_at_most_a_hundred(sandbox: Sandbox) -> None:
    made = [order(sandbox) for _ in range(3)]
    connector = n11(sandbox)
    first = connector.list_packages(*window(), page=0, size=2)
    second = connector.list_packages(*window(), page=1, size=2)
    assert (first.total_pages, len(first.orders), len(second.orders)) == (2, 2, 1)
    assert [o.package_id for o in first.orders + second.orders] == [str(p["id"]) for p in made]
    # More than N11's 100 is asked for as 100 (the sandbox, as N11, answers 400 to more).
    assert len(connector.list_packages(*window(), page=0, size=500).orders) == 3
    assert all(status == 200 for _, _, status in n11_calls(sandbox))


def test_lists_only_the_packages_the_seller_ships(sandbox: Sandbox) -> None:
    """sender=SELLER: packages N11 ships from its own warehouse (n11depom) are not the seller's."""
    own = order(sandbox)
    order(sandbox, sender="N11")
    page = n11(sandbox).list_packages(*window(), page=0, size=50)
    assert [o.package_id for o in page.orders] == [str(own["id"])]


def test_a_package_without_id_is_unreadable_and_says_why(sandbox: Sandbox) -> None:
    """A 'Konuma Özel Teslimat' package comes with id null: filed by its order, the page read on."""
    located = order(sandbox, noId=True)
    order(sandbox)
    connector = n11(sandbox)
    page = connector.list_packages(*window(), page=0, size=50)
    assert len(page.orders) == 1
    ((filed_as, reason, raw),) = page.unreadable
    assert filed_as == f"no-id-{located['orderNumber']}" and raw["id"] is None
    assert "Konuma Özel Teslimat" in reason and "n11 seller panel" in reason
    assert connector.packages_of(located["orderNumber"]) == []  # not a broken answer either


def test_a_window_over_fifteen_days_is_refused_before_any_call(sandbox: Sandbox) -> None:
    now = datetime.now(UTC)
    connector = n11(sandbox)
    with pytest.raises(ValueError, match="at most 15 days"):
        connector.list_packages(now - timedelta(days=15, seconds=1), now, page=0, size=10)
    assert n11_calls(sandbox) == []
    connector.list_packages(now - timedelta(days=15), now, page=0, size=10)
    assert len(n11_calls(sandbox)) == 1


def test_n11_cuts_a_longer_window_without_a_word(sandbox: Sandbox) -> None:
    """Why the connector refuses: N11 (and the sandbox) answers 200 to a 20-day window, keeping its first 15
    days, so a package changed just now is simply not there."""
    package = order(sandbox)
    url = f"{sandbox.n11_url}{PACKAGES}"
    now = n11_now()
    asked: dict[str, Any] = {"endDate": now + 60_000, "orderByField": "true", "size": 100}
    long = httpx.get(url, params={**asked, "startDate": now - 20 * 86_400_000}, headers=HEADERS)
    assert long.status_code == 200 and long.json()["content"] == []
    short = httpx.get(url, params={**asked, "startDate": now - 15 * 86_400_000}, headers=HEADERS)
    assert [p["id"] for p in short.json()["content"]] == [package["id"]]


def test_the_sandbox_keeps_n11s_limits(sandbox: Sandbox) -> None:
    url = f"{sandbox.n11_url}{PACKAGES}"
    order(sandbox)
    assert httpx.get(url, params={"size": 101}, headers=HEADERS).status_code == 400
    assert httpx.get(url, params={"status": "Created,Picking"}, headers=HEADERS).status_code == 400
    one = httpx.get(url, params={"status": " created ", "orderByField": "true"}, headers=HEADERS)
    assert one.status_code == 200 and one.json()["totalElements"] == 1
    refused = httpx.get(url, headers={**HEADERS, "appSecret": "nope"})
    assert refused.status_code == 403 and refused.text == "Authentication failed"
    assert refused.headers["Content-Type"].startswith("text/plain")
    assert httpx.get(url, headers={"appkey": "n11-sandbox-key", "appsecret": "n11-sandbox-secret"}).is_success


def test_wrong_keys_are_an_auth_failure_in_words(sandbox: Sandbox) -> None:
    with pytest.raises(Permanent) as caught:
        n11(sandbox, app_secret="nope").list_packages(*window(), page=0, size=10)
    assert (caught.value.category, caught.value.status) == ("auth", 403)
    assert "Authentication failed" in str(caught.value) and "API Hesapları" in str(caught.value)


def test_rate_limits_and_outages_reach_n11_too(sandbox: Sandbox) -> None:
    sandbox.world.faults.update({"rate_limit_rate": 1, "retry_after": 7})
    with pytest.raises(RateLimited) as caught:
        n11(sandbox).list_packages(*window(), page=0, size=10)
    assert caught.value.retry_after == 7
    sandbox.world.faults.update({"rate_limit_rate": 0, "error_rate": 1})
    with pytest.raises(Retryable, match="503"):
        n11(sandbox).approve("1", [("1", 1)])


def test_approve_takes_the_lines_to_picking(sandbox: Sandbox) -> None:
    package = order(sandbox, lines=[{"barcode": SHIRT, "quantity": 2}, {"barcode": MUG}])
    connector = n11(sandbox)
    connector.approve(str(package["id"]), lines_of(package))
    assert package["shipmentPackageStatus"] == "Picking" and package["cargoTrackingNumber"]
    now = connector.get_package(str(package["id"]))
    assert now is not None and (now.status, now.native_status) == (CanonicalStatus.PICKING, "Picking")


def test_a_line_n11_refuses_raises_with_its_words(sandbox: Sandbox) -> None:
    """N11 answers 200 with a result per line: a refused one is found there, not in the status."""
    package = order(sandbox)
    connector = n11(sandbox)
    with pytest.raises(Permanent) as caught:
        connector.approve(str(package["id"]), [*lines_of(package), ("999", 1)])
    assert str(caught.value) == "N11 accepted 1 of 2 lines and refused line 999: Sipariş kalemi bulunamadı"
    assert caught.value.code == "line_refused" and caught.value.category == "refused"
    assert n11_calls(sandbox)[-1] == ("PUT", f"/n11{UPDATE}", 200)
    # Asked again (a retry), the line N11 accepted is not sent again, which N11 would refuse for ever.
    connector.approve(str(package["id"]), lines_of(package))
    assert n11_calls(sandbox)[-1] == ("GET", f"/n11{PACKAGES}", 200)


def test_cancels_units_in_picking_and_the_rest_goes_on_in_a_new_package(sandbox: Sandbox) -> None:
    package = order(sandbox, lines=[{"barcode": SHIRT, "quantity": 3}, {"barcode": MUG}])
    shirt, mug = (line["orderLineId"] for line in package["lines"])
    connector = n11(sandbox)
    connector.approve(str(package["id"]), lines_of(package))
    connector.push_status(str(package["id"]), [(str(shirt), 2)], CanonicalStatus.UNSUPPLIED)
    assert package["shipmentPackageStatus"] == "Cancelled"
    assert [(line["orderLineId"], line["quantity"]) for line in package["lines"]] == [(shirt, 2)]
    (successor,) = (p for p in sandbox.world.n11.packages.values() if p is not package)
    assert (
        successor["shipmentPackageStatus"] == "Picking" and successor["orderNumber"] == package["orderNumber"]
    )
    assert [(line["orderLineId"], line["quantity"]) for line in successor["lines"]] == [(shirt, 1), (mug, 1)]
    both = connector.packages_of(package["orderNumber"])
    assert {(o.package_id, o.status) for o in both} == {
        (str(package["id"]), CanonicalStatus.CANCELLED),
        (str(successor["id"]), CanonicalStatus.PICKING),
    }
    cancelled = next(o for o in both if o.status is CanonicalStatus.CANCELLED)
    assert cancelled.total == Decimal("299.80")  # what it still holds: the two shirts
    # Asked again (its answer lost): the package is cancelled already, so nothing more is sent.
    calls = len(n11_calls(sandbox))
    connector.push_status(str(package["id"]), [(str(shirt), 2)], CanonicalStatus.CANCELLED)
    assert [method for method, _, _ in n11_calls(sandbox)[calls:]] == ["GET"]


def test_a_cancellation_before_picking_is_refused_clearly(sandbox: Sandbox) -> None:
    package = order(sandbox)
    with pytest.raises(Permanent) as caught:
        n11(sandbox).push_status(str(package["id"]), lines_of(package), CanonicalStatus.CANCELLED)
    assert "only while the package is Picking" in str(caught.value) and "is Created" in str(caught.value)
    assert caught.value.code == "not_cancellable"
    assert [method for method, _, _ in n11_calls(sandbox)] == ["GET"]  # asked, nothing sent
    assert package["shipmentPackageStatus"] == "Created"


def test_the_sandbox_refuses_a_split_outside_picking(sandbox: Sandbox) -> None:
    """N11's rule, played by the sandbox too (the connector asks first and never sends one)."""
    package = order(sandbox)
    line = package["lines"][0]
    item = {"orderLineId": line["orderLineId"], "quantity": 1, "cancelReasonId": 61}
    answer = httpx.post(f"{sandbox.n11_url}{SPLIT}", json={"cancelledItems": [item]}, headers=HEADERS)
    assert answer.status_code == 400 and "yalnız Picking" in answer.json()["message"]
    wrong = {**item, "cancelReasonId": 500}
    sandbox.world.n11.set_status(package, "Picking")
    answer = httpx.post(f"{sandbox.n11_url}{SPLIT}", json={"cancelledItems": [wrong]}, headers=HEADERS)
    assert answer.status_code == 400 and package["shipmentPackageStatus"] == "Picking"


def test_sets_picking_only(sandbox: Sandbox) -> None:
    package = order(sandbox)
    connector = n11(sandbox)
    with pytest.raises(Permanent, match="N11 sets Shipped itself"):
        connector.push_status(str(package["id"]), lines_of(package), CanonicalStatus.SHIPPED)
    connector.push_status(str(package["id"]), lines_of(package), CanonicalStatus.PICKING)
    assert package["shipmentPackageStatus"] == "Picking"


def test_a_tracking_number_is_not_supported(sandbox: Sandbox) -> None:
    package = order(sandbox)
    with pytest.raises(Permanent) as caught:
        n11(sandbox).push_tracking(str(package["id"]), "7261234567", "Aras Kargo")
    assert caught.value.code == "not_supported" and "n11 seller panel" in str(caught.value)
    assert n11_calls(sandbox) == []


def test_times_outside_the_window_asked_for_stop_the_page() -> None:
    """What a wrong GMT+3 reading looks like: an N11 that wrote lastModifiedDate in plain UTC while reading
    the window in Istanbul time would list a package three hours before the window asked for."""
    package = public(World().n11.create_package())
    package["lastModifiedDate"] -= ISTANBUL_MS

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"content": [package], "totalPages": 1})

    connector = N11Connector(
        "https://api.n11.com", CREDENTIALS, Guard(timeout=5), transport=httpx.MockTransport(answer)
    )
    now = datetime.now(UTC)
    with pytest.raises(InvalidAnswer, match="outside the window asked for"):
        connector.list_packages(now - timedelta(minutes=10), now, page=0, size=10)


def edited(change: dict[str, Any], line: dict[str, Any] | None = None) -> dict[str, Any]:
    package = copy.deepcopy(
        public(World().n11.create_package({"lines": [{"barcode": SHIRT, "quantity": 3}]}))
    )
    package.update(change)
    if line is not None:
        package["lines"][0].update(line)
    return package


@pytest.mark.parametrize(
    ("change", "line", "reason"),
    [
        ({"shipmentPackageStatus": "Teleported"}, None, "unknown package status 'Teleported'"),
        ({"lines": []}, None, "the package has no lines"),
        ({"orderNumber": None}, None, "orderNumber is missing"),
        ({"lastModifiedDate": "dün"}, None, "lastModifiedDate 'dün' is not a time"),
        ({"lastModifiedDate": n11_now() + 2 * 3_600_000}, None, "lastModifiedDate is in the future"),
        ({"shippingAddress": None}, None, "the package has no shippingAddress"),
        ({}, {"orderLineId": None}, "orderLineId is missing"),
        ({}, {"quantity": 0}, "quantity 0 is not a count"),
        ({}, {"price": "lots"}, "price is not an amount"),
        ({}, {"vatRate": 0.1}, r"vatRate 0\.10 is not a whole percentage"),
        # A unit's amount where the line's is meant: caught, not priced a third.
        ({}, {"sellerInvoiceAmount": 149.90}, r"sellerInvoiceAmount 149\.90 is not price × quantity"),
    ],
)
def test_an_unreadable_package_says_why(
    change: dict[str, Any], line: dict[str, Any] | None, reason: str
) -> None:
    with pytest.raises(UnreadablePackage, match=reason):
        parse_package(edited(change, line))


def test_reads_what_n11_may_write_otherwise() -> None:
    """A number as the order number, a decimal comma, no billing address; the first step dates the order."""
    package = edited(
        {"orderNumber": 2611000000042, "billingAddress": None},
        {"price": "149,90", "sellerInvoiceAmount": "449,70", "totalSellerDiscountPrice": None},
    )
    first = package["packageHistories"][0]["createdDate"]
    package["packageHistories"].append({"createdDate": first + 60_000, "status": "Picking"})
    package["lastModifiedDate"] = first + 60_000
    read = parse_package(package)
    assert read.order_number == "2611000000042"
    assert read.lines[0].unit_price == Decimal("149.90") and read.total == Decimal("449.70")
    assert read.billing_address == read.shipping_address
    assert read.modified_at - read.ordered_at == timedelta(minutes=1)


def test_a_unit_price_never_comes_to_more_than_the_invoice() -> None:
    """100.00 for three: 33.33 a unit (rounded down), the total stays the invoice's."""
    package = edited({}, {"price": 40, "sellerInvoiceAmount": 100, "totalSellerDiscountPrice": 20})
    read = parse_package(package)
    assert read.lines[0].unit_price == Decimal("33.33") and read.total == Decimal("100.00")


@pytest.mark.parametrize(
    ("full", "split"),
    [
        ("Ayşe Nur Yılmaz", ("Ayşe Nur", "Yılmaz")),
        ("Mehmet  Kaya ", ("Mehmet", "Kaya")),
        ("Cem", ("Cem", "")),
    ],
)
def test_a_full_name_splits_at_the_surname(full: str, split: tuple[str, str]) -> None:
    assert split_name(full) == split


def test_the_sandbox_keeps_n11_across_a_restart() -> None:
    world = World()
    package = world.n11.create_package({"noId": True})
    kept = World()
    kept.restore(json.loads(json.dumps(world.snapshot())))
    assert [public(p) for p in kept.n11.packages.values()] == [public(package)]
    assert kept.n11.create_package()["id"] == world.n11.create_package()["id"]


# -- the contract ------------------------------------------------------------------------------------


def spec_path(request: httpx.Request) -> str:
    """The request's path as N11's spec names it: what follows the sandbox's /n11."""
    path = request.url.path
    assert path.startswith("/n11/"), f"not an N11 path: {path}"
    return path.removeprefix("/n11")


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract(
        OpenAPI.from_dict(yaml.safe_load(SPEC_FILE.read_text())), "https://api.n11.com", spec_path
    )


@pytest.fixture
def recording() -> Iterator[Recording]:
    recording = Recording()
    yield recording
    recording.close()


def test_every_call_of_the_connector_keeps_to_the_spec(
    sandbox: Sandbox, recording: Recording, contract: Contract
) -> None:
    """Both ways, every call the connector makes: the listing (with a package without id among them),
    the lookups, an approval with a refused line, a cancellation, and a wrong key."""
    package = order(
        sandbox, lines=[{"barcode": SHIRT, "quantity": 2, "sellerDiscount": 10}, {"barcode": MUG}]
    )
    order(sandbox, noId=True)
    waiting = order(sandbox)
    connector = n11(sandbox, transport=recording)
    assert len(connector.list_packages(*window(), page=0, size=50).orders) == 2
    connector.approve(str(package["id"]), lines_of(package))
    with pytest.raises(Permanent, match="refused line 999"):
        connector.approve(str(waiting["id"]), [("999", 1)])
    connector.push_status(str(package["id"]), [lines_of(package)[0]], CanonicalStatus.UNSUPPLIED)
    assert len(connector.packages_of(package["orderNumber"])) == 2
    with pytest.raises(Permanent, match="only while the package is Picking"):
        connector.push_status(str(waiting["id"]), lines_of(waiting), CanonicalStatus.CANCELLED)
    with pytest.raises(Permanent, match="Authentication failed"):
        n11(sandbox, transport=recording, app_key="wrong").get_package(str(package["id"]))
    with httpx.Client(transport=recording, headers=HEADERS) as client:  # N11's refusal, which the
        # connector never draws (it asks first)
        line = waiting["lines"][0]["orderLineId"]
        item = {"orderLineId": line, "quantity": 1, "cancelReasonId": 61}
        client.post(f"{sandbox.n11_url}{SPLIT}", json={"cancelledItems": [item]})

    assert contract.operations(recording.calls) == {
        ("GET", 200, PACKAGES),
        ("PUT", 200, UPDATE),
        ("POST", 200, SPLIT),
        ("GET", 403, PACKAGES),
        ("POST", 400, SPLIT),
    }
    assert contract.violations(recording.calls) == []


def test_a_call_off_the_spec_is_caught(sandbox: Sandbox, recording: Recording, contract: Contract) -> None:
    """The check itself: a status the update call does not take, and a listing without the keys."""
    with httpx.Client(transport=recording) as client:
        client.put(
            f"{sandbox.n11_url}{UPDATE}",
            json={"lines": [{"lineId": 1}], "status": "Shipped"},
            headers=HEADERS,
        )
        client.get(f"{sandbox.n11_url}{PACKAGES}")
    first, second = contract.violations(recording.calls)
    assert first.startswith("PUT") and "request" in first and "'Shipped' is not one of" in first
    assert second.startswith("GET") and "Security not found" in second
