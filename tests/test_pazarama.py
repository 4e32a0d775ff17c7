"""The Pazarama connector against the sandbox's Pazarama over HTTP: its token, its reading of orders, the
item statuses it sets; and every call it makes checked against specs/pazarama.openapi.yml with
openapi-core."""

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

from connectors import pazarama as connector_module
from connectors.base import InvalidAnswer, Permanent, RateLimited, Retryable
from connectors.http import Guard
from connectors.pazarama import PazaramaConnector, UnreadablePackage, parse_order, token_url
from sandbox.pazarama import CARRIERS, istanbul, public
from sandbox.state import World
from sync.statuses import CanonicalStatus
from tests.contract import Contract, Recording
from tests.sandbox_server import Sandbox, serve_sandbox

CREDENTIALS = {
    "pazarama_client_id": "pazarama-sandbox-id",
    "pazarama_client_secret": "pazarama-sandbox-secret",
}
# The sandbox listens on a loopback port: allowlisted, as in development.
LOCAL = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), timeout=5)
SPEC_FILE = Path(__file__).resolve().parents[1] / "specs" / "pazarama.openapi.yml"
TOKEN = "/connect/token"
ORDERS = "/order/getOrdersForApi"
UPDATE = "/order/updateOrderStatus"
DELIVERIES = "/sellerRegister/getSellerDelivery"
SHIRT, OIL, MUG = "8680001000011", "8680001000097", "8680001000059"
SURAT = next(company for company, name in CARRIERS if name == "Sürat Kargo")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    connector_module.forget_tokens()
    with serve_sandbox(World()) as sandbox:
        yield sandbox
    connector_module.forget_tokens()


def pazarama(
    sandbox: Sandbox, transport: httpx.BaseTransport | None = None, **credentials: str
) -> PazaramaConnector:
    return PazaramaConnector(sandbox.pazarama_url, {**CREDENTIALS, **credentials}, LOCAL, transport=transport)


def order(sandbox: Sandbox, **spec: Any) -> dict[str, Any]:
    """A new order on the sandbox's Pazarama."""
    return sandbox.world.pazarama.create_order(spec)


def lines_of(raw: dict[str, Any]) -> list[tuple[str, int]]:
    return [(item["orderItemId"], item["quantity"]) for item in raw["items"]]


def window(days: float = 0) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(days=days, hours=1), now


def calls(sandbox: Sandbox, path: str = "") -> list[tuple[str, str, int]]:
    return [call for call in sandbox.world.requests if call[1].startswith(f"/pazarama{path}")]


def item_statuses(sandbox: Sandbox, raw: dict[str, Any]) -> list[int]:
    return [item["orderItemStatus"] for item in sandbox.world.pazarama.orders[raw["orderNumber"]]["items"]]


def test_reads_every_field_of_an_order(sandbox: Sandbox) -> None:
    """Money exact from the items' totalPrice, the shipping fee on top, times in UTC, the name split, the
    neighbourhood kept, a company's invoice on the billing address."""
    raw = order(
        sandbox,
        lines=[{"barcode": SHIRT, "quantity": 3, "discount": "30.00"}, {"barcode": MUG}],
        nameSurname="Ayşe Nur Yılmaz",
        companyName="Yılmaz Ltd.",
    )
    page = pazarama(sandbox).list_packages(*window(), page=0, size=50)
    assert (page.total_pages, page.unreadable) == (1, ())
    (read,) = page.orders
    number = str(raw["orderNumber"])
    assert read.package_id == read.order_number == number
    assert (read.status, read.native_status) == (CanonicalStatus.CREATED, "3 Alındı")
    shirt, mug = read.lines
    assert (shirt.line_id, shirt.barcode, shirt.stock_code, shirt.quantity) == (
        raw["items"][0]["orderItemId"],
        SHIRT,
        "TS-BEYAZ-M",
        3,
    )
    # 3 × 149.90 = 449.70 less 30.00: 419.70 paid, 139.90 a unit; the mug 89.99; 509.69 is over the free
    # shipping line.
    assert (shirt.unit_price, shirt.vat_rate) == (Decimal("139.90"), Decimal(10))
    assert (mug.unit_price, mug.vat_rate, mug.name) == (
        Decimal("89.99"),
        Decimal(20),
        "El Yapımı Seramik Kupa",
    )
    assert (read.total, read.currency) == (Decimal("509.69"), "TRY")
    # The sandbox writes Istanbul wall clock without an offset: three hours ahead of UTC.
    assert read.ordered_at == read.modified_at
    assert abs(read.ordered_at - datetime.now(UTC)) < timedelta(seconds=10)
    assert istanbul(read.ordered_at) == raw["orderDate"]
    shipping, source = read.shipping_address, raw["shipmentAddress"]
    assert (shipping.first_name, shipping.last_name) == ("Ayşe Nur", "Yılmaz")
    assert shipping.address1 == f"{source['neighborhoodName']} {source['addressDetail']}"
    assert (shipping.city, shipping.district, shipping.phone, shipping.postcode) == (
        source["cityName"],
        source["districtName"],
        source["phoneNumber"],
        source["postalCode"],
    )
    assert read.billing_address.company == "Yılmaz Ltd." and read.billing_address.city == shipping.city
    assert (read.customer_name, read.customer_email) == ("Ayşe Nur Yılmaz", raw["customerEmail"])
    assert read.raw == public(raw)


def test_a_small_order_carries_the_shipping_fee(sandbox: Sandbox) -> None:
    order(sandbox, lines=[{"barcode": SHIRT}])
    (read,) = pazarama(sandbox).list_packages(*window(), page=0, size=50).orders
    assert read.total == Decimal("149.90") + Decimal("34.99")
    assert sum(line.unit_price * line.quantity for line in read.lines) == Decimal("149.90")


def test_the_token_is_fetched_once_and_sent_as_bearer(sandbox: Sandbox) -> None:
    order(sandbox)
    connector = pazarama(sandbox)
    connector.list_packages(*window(), page=0, size=10)
    connector.list_packages(*window(), page=0, size=10)
    pazarama(sandbox).check()  # another connector of the same seller: the same token
    assert [status for _, _, status in calls(sandbox, TOKEN)] == [200]
    assert len(sandbox.world.pazarama.tokens) == 1


def test_accepts_the_token_in_either_shape(sandbox: Sandbox) -> None:
    """data.accessToken (the portal's text) or access_token (some code): the notes are not sure."""
    sandbox.world.pazarama.token_shape = "oauth"
    order(sandbox)
    assert len(pazarama(sandbox).list_packages(*window(), page=0, size=10).orders) == 1


def test_a_token_pazarama_no_longer_takes_is_renewed_once(sandbox: Sandbox) -> None:
    """401 with an empty body: a new token, and the call again."""
    order(sandbox)
    connector = pazarama(sandbox)
    connector.check()
    sandbox.world.pazarama.tokens.clear()  # revoked (a new key made in the panel, say)
    connector.list_packages(*window(), page=0, size=10)
    assert [status for _, _, status in calls(sandbox, TOKEN)] == [200, 200]
    assert [status for _, _, status in calls(sandbox, ORDERS)] == [401, 200]


def test_a_token_refused_twice_is_the_seller_s_to_fix(sandbox: Sandbox) -> None:
    """A new token refused as well: no third try, an auth failure in words."""
    sandbox.world.pazarama.refuse_tokens = True
    with pytest.raises(Permanent, match="refused a new access token") as caught:
        pazarama(sandbox).check()
    assert (caught.value.category, caught.value.status) == ("auth", 401)
    assert [status for _, _, status in calls(sandbox, DELIVERIES)] == [401, 401]


def test_the_sandbox_keeps_pazarama_s_rules(sandbox: Sandbox) -> None:
    """Pages from 1, at most 100; a month at most; dates to the minute; the end exclusive."""
    raw = order(sandbox)
    token = pazarama(sandbox)._fetch_token()[0]
    wall = datetime.fromisoformat(raw["orderDate"]).replace(second=0)
    minute = wall.strftime("%Y-%m-%dT%H:%M")
    after = (wall + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    before = (wall - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")

    def listed(**body: Any) -> httpx.Response:
        asked = {"pageSize": 10, "pageNumber": 1, "startDate": before, "endDate": after, **body}
        url = f"{sandbox.pazarama_url}{ORDERS}"
        return httpx.post(url, json=asked, headers={"Authorization": f"Bearer {token}"})

    assert [o["orderNumber"] for o in listed().json()["data"]] == [raw["orderNumber"]]
    assert listed(endDate=minute).json()["data"] == []  # the end is exclusive
    for wrong in (
        {"pageNumber": 0},
        {"pageSize": 101},
        {"startDate": (wall - timedelta(days=32)).strftime("%Y-%m-%d")},
        {"endDate": f"{after}:00"},
    ):
        answer = listed(**wrong)
        assert answer.status_code == 400 and answer.json()["success"] is False, wrong
    assert httpx.post(f"{sandbox.pazarama_url}{ORDERS}", json={}).status_code == 401


def test_the_demo_moves_accepted_orders_on() -> None:
    world = World()
    market = world.pazarama
    accepted = market.create_order({"status": 12})
    for _ in range(200):
        market.advance()
    assert {item["orderItemStatus"] for item in accepted["items"]} == {11}
    assert accepted["items"][0]["cargo"]["trackingNumber"]


def test_wrong_keys_are_an_auth_failure_in_words(sandbox: Sandbox) -> None:
    with pytest.raises(Permanent) as caught:
        pazarama(sandbox, pazarama_client_secret="nope").check()
    assert (caught.value.category, caught.value.status) == ("auth", 400)
    assert "API Bilgileri" in str(caught.value) and "Geçersiz istemci bilgileri" in str(caught.value)
    assert calls(sandbox, DELIVERIES) == []


def test_the_token_comes_from_pazarama_s_login_host_in_production() -> None:
    assert (
        token_url("https://isortagimapi.pazarama.com") == "https://isortagimgiris.pazarama.com/connect/token"
    )
    assert token_url("http://127.0.0.1:5001/pazarama/") == "http://127.0.0.1:5001/pazarama/connect/token"


def test_pages_are_one_based_and_a_full_page_may_have_a_next(sandbox: Sandbox) -> None:
    made = [order(sandbox) for _ in range(3)]
    connector = pazarama(sandbox)
    first = connector.list_packages(*window(), page=0, size=2)
    second = connector.list_packages(*window(), page=1, size=2)
    assert (first.total_pages, len(first.orders), second.total_pages, len(second.orders)) == (2, 2, 2, 1)
    assert [o.package_id for o in first.orders + second.orders] == [str(raw["orderNumber"]) for raw in made]
    bodies = [json.loads(call) for call in sandbox_bodies(sandbox)]
    assert [body["pageNumber"] for body in bodies] == [1, 2]


def sandbox_bodies(sandbox: Sandbox) -> list[str]:
    """The bodies of the listing calls, as a Recording of a connector would see them."""
    recording = Recording()
    connector = pazarama(sandbox, transport=recording)
    connector.list_packages(*window(), page=0, size=2)
    connector.list_packages(*window(), page=1, size=2)
    recording.close()
    return [request.content.decode() for request, _ in recording.calls if request.url.path.endswith(ORDERS)]


def test_the_window_is_in_istanbul_minutes_and_its_end_is_taken_in(sandbox: Sandbox) -> None:
    """endDate is exclusive: the connector asks to the next minute, so an order at the window's very end
    is read; the start is taken down to its minute."""
    raw = order(sandbox)
    placed = pazarama(sandbox).list_packages(*window(), page=0, size=10).orders[0].ordered_at
    recording = Recording()
    connector = pazarama(sandbox, transport=recording)
    page = connector.list_packages(placed, placed, page=0, size=10)
    assert [o.package_id for o in page.orders] == [str(raw["orderNumber"])]
    ((request, _),) = [call for call in recording.calls if call[0].url.path.endswith(ORDERS)]
    body = json.loads(request.content)
    wall = placed + timedelta(hours=3)
    assert body["startDate"] == wall.strftime("%Y-%m-%dT%H:%M")
    assert body["endDate"] == (wall + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    recording.close()


def test_a_window_over_a_month_is_refused_before_any_call(sandbox: Sandbox) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    connector = pazarama(sandbox)
    with pytest.raises(ValueError, match="at most a month"):
        connector.list_packages(now - timedelta(days=29), now, page=0, size=10)
    assert calls(sandbox) == []
    connector.list_packages(now - timedelta(days=14), now, page=0, size=10)
    assert len(calls(sandbox, ORDERS)) == 1


def test_an_older_order_is_looked_up_by_its_number(sandbox: Sandbox) -> None:
    """The listing is by order date: an order placed three weeks ago is outside any recent window, but
    get_package finds it (and its new status) by its number."""
    raw = order(sandbox, daysAgo=21, status=12)
    connector = pazarama(sandbox)
    assert connector.list_packages(*window(days=13), page=0, size=10).orders == ()
    sandbox.world.pazarama.set_status(sandbox.world.pazarama.orders[raw["orderNumber"]], 5)
    found = connector.get_package(str(raw["orderNumber"]))
    assert found is not None and found.status is CanonicalStatus.SHIPPED
    assert found.shipment.tracking_number == raw["items"][0]["cargo"]["trackingNumber"] != ""
    assert connector.packages_of(str(raw["orderNumber"])) == [found]
    assert connector.get_package("999999") is None


def test_approve_takes_the_items_to_hazirlaniyor_once(sandbox: Sandbox) -> None:
    raw = order(sandbox, lines=[{"barcode": SHIRT, "quantity": 2}, {"barcode": MUG}])
    connector = pazarama(sandbox)
    connector.approve(str(raw["orderNumber"]), lines_of(raw))
    assert item_statuses(sandbox, raw) == [12, 12]
    connector.push_status(str(raw["orderNumber"]), lines_of(raw), CanonicalStatus.PICKING)  # again: nothing
    assert len(sandbox.world.pazarama.pushed) == 2
    read = connector.get_package(str(raw["orderNumber"]))
    assert read is not None and (read.status, read.native_status) == (
        CanonicalStatus.PICKING,
        "12 Hazırlanıyor",
    )


def test_an_own_carrier_s_code_ships_the_items(sandbox: Sandbox) -> None:
    """Status 5 with the seller's delivery option named like the carrier, the code and the carrier's
    page; a new item is accepted first. Sent again, nothing more goes."""
    raw = order(sandbox)
    connector = pazarama(sandbox)
    connector.push_tracking(str(raw["orderNumber"]), "SELLER123", "SÜRAT KARGO")
    assert item_statuses(sandbox, raw) == [5] * len(raw["items"])
    pushed = sandbox.world.pazarama.pushed[-1]["item"]
    assert (pushed["cargoCompanyId"], pushed["shippingTrackingNumber"], pushed["deliveryType"]) == (
        SURAT,
        "SELLER123",
        1,
    )
    assert pushed["trackingUrl"] == "https://suratkargo.com.tr/KargoTakip/?kargotakipno=SELLER123"
    taken = len(sandbox.world.pazarama.pushed)
    connector.push_tracking(str(raw["orderNumber"]), "SELLER123", "Sürat Kargo")
    assert len(sandbox.world.pazarama.pushed) == taken
    read = connector.get_package(str(raw["orderNumber"]))
    assert read is not None and read.status is CanonicalStatus.SHIPPED
    assert (read.shipment.tracking_number, read.shipment.carrier) == ("SELLER123", "Sürat Kargo")


@pytest.mark.parametrize("named", ["Sürat Kargo", "SÜRAT KARGO", "SURAT", "Sürat Kargo Marketplace", "sürat"])
def test_the_carrier_is_matched_as_sellers_write_it(sandbox: Sandbox, named: str) -> None:
    raw = order(sandbox, status=12)
    pazarama(sandbox).push_tracking(str(raw["orderNumber"]), "S1", named)
    assert sandbox.world.pazarama.pushed[-1]["item"]["cargoCompanyId"] == SURAT


def test_a_carrier_the_seller_has_not_is_refused_by_name(sandbox: Sandbox) -> None:
    raw = order(sandbox, status=12)
    with pytest.raises(Permanent, match=r"no carrier 'Horoz Lojistik'.*Sürat Kargo") as caught:
        pazarama(sandbox).push_tracking(str(raw["orderNumber"]), "X1", "Horoz Lojistik")
    assert caught.value.code == "unknown_carrier"
    assert sandbox.world.pazarama.pushed == []


def test_a_seller_s_cancellation_is_tedarik_edilemedi(sandbox: Sandbox) -> None:
    raw = order(sandbox, lines=[{"barcode": SHIRT, "quantity": 2}, {"barcode": MUG}])
    connector = pazarama(sandbox)
    number = str(raw["orderNumber"])
    with pytest.raises(Permanent, match="cancels an item whole"):
        connector.push_status(number, [(raw["items"][0]["orderItemId"], 1)], CanonicalStatus.UNSUPPLIED)
    connector.push_status(number, [lines_of(raw)[1]], CanonicalStatus.UNSUPPLIED)
    assert item_statuses(sandbox, raw) == [3, 13]
    read = connector.get_package(number)
    assert read is not None and read.status is CanonicalStatus.CREATED
    assert [line.quantity for line in read.lines] == [2, 0]  # the cancelled item: none of its units
    assert read.total == Decimal("299.80")  # the mug's 89.99 no more: the order was over the free shipping
    connector.push_status(number, lines_of(raw), CanonicalStatus.CANCELLED)
    read = connector.get_package(number)
    assert read is not None and read.status is CanonicalStatus.UNSUPPLIED


def test_a_shipped_order_is_not_cancelled(sandbox: Sandbox) -> None:
    raw = order(sandbox, status=5)
    with pytest.raises(Permanent, match="only before the parcel ships") as caught:
        pazarama(sandbox).push_status(str(raw["orderNumber"]), lines_of(raw), CanonicalStatus.UNSUPPLIED)
    assert caught.value.code == "not_cancellable"


def test_a_cancellation_refused_for_one_item_cancels_none(sandbox: Sandbox) -> None:
    """One item new, the other shipped: the refusal leaves both as they were, not the order half cancelled."""
    raw = order(sandbox, lines=[{"barcode": "8680001000011"}, {"barcode": "8680001000059"}])
    with sandbox.world.pazarama.lock:
        raw["items"][1]["orderItemStatus"] = 5
    with pytest.raises(Permanent, match="only before the parcel ships"):
        pazarama(sandbox).push_status(str(raw["orderNumber"]), lines_of(raw), CanonicalStatus.UNSUPPLIED)
    assert [item["orderItemStatus"] for item in raw["items"]] == [3, 5]


def test_sets_hazirlaniyor_only(sandbox: Sandbox) -> None:
    raw = order(sandbox)
    with pytest.raises(Permanent, match="cannot set Delivered"):
        pazarama(sandbox).push_status(str(raw["orderNumber"]), lines_of(raw), CanonicalStatus.DELIVERED)


def test_pazarama_s_refusal_comes_in_its_words(sandbox: Sandbox) -> None:
    """The sandbox refuses 5 from 3 (its rule): the envelope's messageCode and words reach the seller."""
    raw = order(sandbox)
    connector = pazarama(sandbox)
    item = raw["items"][0]
    with pytest.raises(Permanent, match=r"400: ORD103: Sipariş kalemi 3 durumundan 5"):
        connector._update(str(raw["orderNumber"]), item, 5, {"deliveryType": 1})


def test_rate_limits_and_outages_reach_pazarama_too(sandbox: Sandbox) -> None:
    sandbox.world.faults.update({"rate_limit_rate": 1, "retry_after": 7})
    with pytest.raises(RateLimited) as caught:
        pazarama(sandbox).list_packages(*window(), page=0, size=10)
    assert caught.value.retry_after == 7
    sandbox.world.faults.update({"rate_limit_rate": 0, "error_rate": 1})
    with pytest.raises(Retryable, match="503"):
        pazarama(sandbox).check()


def test_the_statuses_of_the_items_make_the_order_s() -> None:
    """The least advanced live item; cancelled items count for nothing; all cancelled by the seller is
    unsupplied, else cancelled; a return asked for is still delivered."""
    raw = _raw()
    assert parse_order(raw).status is CanonicalStatus.CREATED
    for statuses, expected in [
        ((12, 5), CanonicalStatus.PICKING),
        ((5, 6), CanonicalStatus.SHIPPED),
        ((16, 11), CanonicalStatus.AT_COLLECTION_POINT),
        ((13, 13), CanonicalStatus.UNSUPPLIED),
        ((13, 6), CanonicalStatus.CANCELLED),
        ((7, 11), CanonicalStatus.DELIVERED),
        ((10, 8), CanonicalStatus.RETURNED),
        ((14, 14), CanonicalStatus.UNDELIVERED),
    ]:
        for item, status in zip(raw["items"], statuses, strict=True):
            item["orderItemStatus"] = status
        assert parse_order(raw).status is expected, statuses


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda raw: raw["items"][0].update(orderItemStatus=4), "unknown orderItemStatus 4"),
        (lambda raw: raw["items"][0].update(totalPrice={"value": 10}), "is not salePrice × quantity"),
        (lambda raw: raw.update(orderDate="dün"), "orderDate 'dün' is not a time"),
        (lambda raw: raw.update(orderAmount=1.0), "orderAmount 1.00 is neither"),
        (lambda raw: raw.pop("shipmentAddress"), "no shipmentAddress"),
        (lambda raw: raw["items"][0]["product"].update(vatRate=0.2), "not a whole percentage"),
    ],
)
def test_an_unreadable_order_says_why(change: Any, reason: str) -> None:
    raw = _raw()
    change(raw)
    with pytest.raises(UnreadablePackage, match=reason):
        parse_order(raw)


def test_an_order_date_with_an_offset_is_read_with_it() -> None:
    raw = _raw()
    raw["orderDate"] = "2026-11-01T10:00:00+03:00"
    assert parse_order(raw).ordered_at == datetime(2026, 11, 1, 7, tzinfo=UTC)


def test_times_outside_the_window_asked_for_stop_the_page(sandbox: Sandbox) -> None:
    """What a wrong reading of Pazarama's times looks like: a Pazarama writing orderDate in UTC without an
    offset lists an order three hours before the window asked for, and the page stops, naming the constant."""
    order(sandbox)

    class InUtc(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            response.read()
            if not request.url.path.endswith(ORDERS):
                return response
            payload = response.json()
            for raw in payload["data"]:
                wall = datetime.fromisoformat(raw["orderDate"])
                raw["orderDate"] = (wall - timedelta(hours=3)).isoformat()
            return httpx.Response(200, json=payload)

    with pytest.raises(InvalidAnswer, match=r"outside the window asked for.*ISTANBUL"):
        pazarama(sandbox, transport=InUtc()).list_packages(*window(), page=0, size=10)


def test_the_sandbox_keeps_pazarama_across_a_restart() -> None:
    world = World()
    raw = world.pazarama.create_order()
    kept = World()
    kept.restore(json.loads(json.dumps(world.snapshot())))
    assert [public(o) for o in kept.pazarama.orders.values()] == [public(raw)]
    assert kept.pazarama.create_order()["orderNumber"] == world.pazarama.create_order()["orderNumber"]


def _raw() -> dict[str, Any]:
    world = World()
    raw = public(world.pazarama.create_order({"lines": [{"barcode": SHIRT}, {"barcode": OIL}]}))
    return json.loads(json.dumps(raw))


# -- the contract ------------------------------------------------------------------------------------


def spec_path(request: httpx.Request) -> str:
    """The request's path as Pazarama's spec names it: what follows the sandbox's /pazarama."""
    path = request.url.path
    assert path.startswith("/pazarama/"), f"not a Pazarama path: {path}"
    return path.removeprefix("/pazarama")


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract(
        OpenAPI.from_dict(yaml.safe_load(SPEC_FILE.read_text())),
        "https://isortagimapi.pazarama.com",
        spec_path,
    )


@pytest.fixture
def recording() -> Iterator[Recording]:
    recording = Recording()
    yield recording
    recording.close()


def test_every_call_of_the_connector_keeps_to_the_spec(
    sandbox: Sandbox, recording: Recording, contract: Contract
) -> None:
    """Both ways, every call the connector makes: the token, the listing, the lookup, an acceptance, a
    shipment, a cancellation, a refusal, a revoked token and wrong keys."""
    shipped, cancelled = order(sandbox), order(sandbox, lines=[{"barcode": SHIRT}, {"barcode": MUG}])
    connector = pazarama(sandbox, transport=recording)
    assert len(connector.list_packages(*window(), page=0, size=50).orders) == 2
    connector.approve(str(cancelled["orderNumber"]), lines_of(cancelled))
    connector.push_tracking(str(shipped["orderNumber"]), "SELLER1", "Aras Kargo")
    connector.push_status(str(cancelled["orderNumber"]), lines_of(cancelled), CanonicalStatus.UNSUPPLIED)
    with pytest.raises(Permanent, match="ORD103"):
        connector._update(str(shipped["orderNumber"]), shipped["items"][0], 12)
    sandbox.world.pazarama.tokens.clear()
    connector.check()
    with pytest.raises(Permanent, match="API Bilgileri"):
        pazarama(sandbox, transport=recording, pazarama_client_id="wrong").check()

    assert contract.operations(recording.calls) == {
        ("POST", 200, TOKEN),
        ("POST", 400, TOKEN),
        ("POST", 200, ORDERS),
        ("PUT", 200, UPDATE),
        ("PUT", 400, UPDATE),
        ("GET", 200, DELIVERIES),
        ("GET", 401, DELIVERIES),
    }
    assert contract.violations(recording.calls) == []


def test_a_call_off_the_spec_is_caught(sandbox: Sandbox, recording: Recording, contract: Contract) -> None:
    """The check itself: a status the update call does not take, and dates with seconds."""
    token = pazarama(sandbox)._fetch_token()[0]
    with httpx.Client(transport=recording, headers={"Authorization": f"Bearer {token}"}) as client:
        client.put(
            f"{sandbox.pazarama_url}{UPDATE}",
            json={
                "orderNumber": 1,
                "item": {"orderItemId": "00000000-0000-0000-0000-000000000000", "status": 11},
            },
        )
        client.post(
            f"{sandbox.pazarama_url}{ORDERS}",
            json={
                "pageSize": 1,
                "pageNumber": 1,
                "startDate": "2026-11-01T00:00:00",
                "endDate": "2026-11-02",
            },
        )
    first, second = contract.violations(recording.calls)
    assert first.startswith("PUT") and "request" in first and "11 is not one of" in first
    assert second.startswith("POST") and "request" in second and "does not match" in second
