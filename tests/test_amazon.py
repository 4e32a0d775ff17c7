"""The Amazon connector against the sandbox's Amazon over HTTP (the LWA token and its cache, the listing read
whole and sorted, the lookups, the shipment confirmation), its reading of orders, and every SP-API call it
makes checked against Amazon's official models (specs/amazon-orders-*.json) with openapi-core.

openapi-core 0.23 reads OpenAPI 3.x only (a Swagger 2.0 file fails with "Validator class not found"), and
Amazon publishes its models as Swagger 2.0: `openapi3` converts them at load time, mechanically (body
parameter → requestBody, response schema → content, definitions → components, arrays as Swagger 2.0's
default csv), and nothing else is changed in them.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
import yaml
from flask import Flask
from openapi_core import OpenAPI

from connectors import amazon
from connectors.amazon import (
    ACCESS_DENIED,
    AmazonConnector,
    UnreadablePackage,
    addresses,
    forget_tokens,
    parse_order,
    token_url,
)
from connectors.base import InvalidAnswer, PackagePage, Permanent, RateLimited, Retryable
from connectors.http import Guard, recording
from sandbox.amazon import AmazonMarket, iso
from sandbox.state import World
from sync.pull import Budget, read
from sync.statuses import CanonicalStatus
from tests.contract import Contract, Recording
from tests.sandbox_server import Sandbox, serve_sandbox

CREDENTIALS = {
    "refresh_token": "Atzr|sandbox-refresh",
    "client_id": "amzn1.application-oa2-client.sandbox",
    "client_secret": "sandbox-secret",
}
# The sandbox listens on a loopback port: allowlisted, as in development.
LOCAL = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), timeout=5)
SPECS = Path(__file__).resolve().parents[1] / "specs"
ORDERS = "/orders/2026-01-01/orders"
TR = "A33AVAJ2PDY3EV"
SELLER_ID = "A1SANDBOXSELLER"  # the seller's Merchant Token, for a cancellation
SHIRT, OIL, MUG = "8680001000011", "8680001000097", "8680001000059"
REQUEST_ID = re.compile(r"x-amzn-RequestId [0-9a-f-]{36}")


@pytest.fixture(autouse=True)
def no_tokens() -> Iterator[None]:
    """Every test starts with this process's token cache empty (a new sandbox issues its own)."""
    forget_tokens()
    yield
    forget_tokens()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with serve_sandbox(World()) as sandbox:
        yield sandbox


def connector(
    sandbox: Sandbox, transport: httpx.BaseTransport | None = None, **credentials: str
) -> AmazonConnector:
    return AmazonConnector(sandbox.amazon_url, {**CREDENTIALS, **credentials}, LOCAL, transport=transport)


def market(sandbox: Sandbox) -> AmazonMarket:
    return sandbox.world.amazon


def ago(minutes: float) -> str:
    return iso(datetime.now(UTC) - timedelta(minutes=minutes))


def order(sandbox: Sandbox, minutes_ago: float = 10, **spec: Any) -> dict[str, Any]:
    """A new order on the sandbox's Amazon, changed `minutes_ago` (the listing sees nothing of the last two
    minutes)."""
    return market(sandbox).create_order({"at": ago(minutes_ago), **spec})


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now


def calls(sandbox: Sandbox, path: str = "") -> list[tuple[str, str, int]]:
    return [call for call in sandbox.world.requests if call[1].startswith(f"/amazon{path}")]


def searches(sandbox: Sandbox) -> int:
    return len([call for call in calls(sandbox) if call[1] == f"/amazon{ORDERS}"])


# -- the token ---------------------------------------------------------------------------------------


def test_the_token_is_fetched_once_and_shared_by_the_connectors_of_a_process(sandbox: Sandbox) -> None:
    made = order(sandbox)
    first, second = connector(sandbox), connector(sandbox)
    first.list_packages(*window(), page=0, size=100)
    second.get_package(made["orderId"])
    first.get_package(made["orderId"])
    assert market(sandbox).token_requests == 1
    (token_call,) = calls(sandbox, "/auth")
    assert token_call == ("POST", "/amazon/auth/o2/token", 200)
    # Another app's credentials are another token.
    market(sandbox).client_id = "amzn1.application-oa2-client.other"
    connector(sandbox, client_id="amzn1.application-oa2-client.other").get_package(made["orderId"])
    assert market(sandbox).token_requests == 2


def test_the_token_is_fetched_again_shortly_before_it_expires(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = order(sandbox)
    moment = [1000.0]
    monkeypatch.setattr(amazon.TOKENS, "clock", lambda: moment[0])
    one = connector(sandbox)
    one.get_package(made["orderId"])
    # An hour's token is used for 55 minutes, then fetched again.
    moment[0] += 3600 - 300 - 1
    one.get_package(made["orderId"])
    assert market(sandbox).token_requests == 1
    moment[0] += 2
    one.get_package(made["orderId"])
    assert market(sandbox).token_requests == 2


def test_a_token_amazon_no_longer_takes_is_fetched_again_once(sandbox: Sandbox) -> None:
    """Amazon's clock or a revocation: the cached token draws a 403, a new one is fetched and the call
    made again; a 403 with a new token is the seller's to fix."""
    made = order(sandbox)
    one = connector(sandbox)
    one.get_package(made["orderId"])
    market(sandbox).expire_tokens()
    assert one.get_package(made["orderId"]) is not None
    assert market(sandbox).token_requests == 2
    assert [status for _, path, status in calls(sandbox) if "/orders/" in path] == [200, 403, 200]
    market(sandbox).orders_role = False  # a new token is refused too
    market(sandbox).expire_tokens()
    with pytest.raises(Permanent) as caught:
        one.get_package(made["orderId"])
    assert caught.value.category == "auth" and str(caught.value).startswith(ACCESS_DENIED)
    assert "Unauthorized" in str(caught.value) and REQUEST_ID.search(str(caught.value))


@pytest.mark.parametrize(
    "wrong", [{"refresh_token": "Atzr|revoked"}, {"client_secret": "old-secret"}, {"client_id": "nope"}]
)
def test_refused_credentials_are_an_auth_failure_in_words(sandbox: Sandbox, wrong: dict[str, str]) -> None:
    with pytest.raises(Permanent) as caught:
        AmazonConnector(sandbox.amazon_url, {**CREDENTIALS, **wrong}, LOCAL).list_packages(
            *window(), page=0, size=100
        )
    message = str(caught.value)
    assert caught.value.category == "auth" and caught.value.status in (400, 401)
    assert "re-authorise the app in Seller Central" in message and "365 days" in message
    assert calls(sandbox, "/orders") == []
    assert amazon.TOKENS.tokens == {}


def test_the_lwa_request_is_a_form_with_the_refresh_token_grant(sandbox: Sandbox) -> None:
    with _recorded() as kept:
        connector(sandbox, transport=kept).get_package("404-0000000-0000000")
    token_request = kept.calls[0][0]
    assert token_request.url == f"{sandbox.amazon_url}/auth/o2/token"
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert dict(httpx.QueryParams(token_request.content.decode())) == {
        "grant_type": "refresh_token",
        **CREDENTIALS,
    }
    assert "x-amz-access-token" not in token_request.headers
    lookup = kept.calls[1][0]
    assert lookup.headers["x-amz-access-token"] in market(sandbox).tokens


def test_the_token_is_never_logged_nor_told(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    made = order(sandbox)
    one = connector(sandbox)
    told = []
    with recording() as exchanges:
        page = one.list_packages(*window(), page=0, size=100)
        market(sandbox).expire_tokens()
        one.get_package(made["orderId"])
        sandbox.world.faults.update({"rate_limit_rate": 1})
        for call in (lambda: one.get_package(made["orderId"]), lambda: one.list_packages(*window(), 0, 100)):
            with pytest.raises(RateLimited) as caught:
                call()
            told.append(str(caught.value))
        sandbox.world.faults.update({"rate_limit_rate": 0})
        with pytest.raises(Permanent) as refused:
            connector(sandbox, refresh_token="Atzr|revoked").list_packages(*window(), 0, 100)
        told.append(str(refused.value))
    secrets = [*market(sandbox).tokens, CREDENTIALS["refresh_token"], CREDENTIALS["client_secret"]]
    assert len(secrets) == 4
    kept = json.dumps([page.orders[0].raw, exchanges, told], default=str) + caplog.text
    assert "Atz" not in kept  # neither an access token (Atza|…) nor a refresh token (Atzr|…)
    assert not any(secret in kept for secret in secrets)


# -- the listing -------------------------------------------------------------------------------------


def test_reads_every_field_of_an_order(sandbox: Sandbox) -> None:
    """Prices with VAT from the proceeds, the VAT rate from the VAT inside them, the cargo fee in the total,
    the address as a Turkish one, the buyer; the payload as Amazon sent it."""
    made = order(sandbox, items=[{"barcode": SHIRT, "quantity": 1}, {"barcode": OIL, "quantity": 1}])
    page = connector(sandbox).list_packages(*window(), page=0, size=100)
    assert (page.total_pages, page.unreadable) == (1, ())
    (read,) = page.orders
    assert read.package_id == read.order_number == made["orderId"]
    assert (read.status, read.native_status) == (CanonicalStatus.CREATED, "UNSHIPPED")
    shirt, oil = read.lines
    items = made["orderItems"]
    assert (shirt.line_id, oil.line_id) == (items[0]["orderItemId"], items[1]["orderItemId"])
    assert (shirt.stock_code, shirt.name, shirt.quantity, shirt.barcode) == (
        "TS-BEYAZ-M",
        "Pamuklu Basic Tişört Beyaz",
        1,
        "",
    )
    assert (shirt.unit_price, shirt.vat_rate) == (Decimal("149.90"), Decimal(10))
    assert (oil.unit_price, oil.vat_rate) == (Decimal("389.00"), Decimal(1))
    # 538.90 of goods is above the 300 lira threshold: no cargo fee.
    assert read.total == Decimal("538.90") and read.currency == "TRY"
    assert read.modified_at == read.ordered_at == datetime.fromisoformat(made["lastUpdatedTime"])
    source = made["recipient"]["deliveryAddress"]
    shipping = read.shipping_address
    assert (shipping.first_name + " " + shipping.last_name) == source["name"] == made["buyer"]["buyerName"]
    assert (shipping.address1, shipping.city, shipping.district, shipping.postcode, shipping.phone) == (
        source["addressLine1"],
        source["stateOrRegion"],
        source["city"],
        source["postalCode"],
        source["phone"],
    )
    assert read.billing_address == shipping and addresses(read.raw) == (shipping, shipping)
    assert (read.customer_name, read.customer_email) == (source["name"], made["buyer"]["buyerEmail"])
    assert read.raw["orderId"] == made["orderId"] and "_vatRate" not in json.dumps(read.raw)


def test_a_cargo_fee_is_in_the_total(sandbox: Sandbox) -> None:
    order(sandbox, items=[{"barcode": MUG, "quantity": 1}])
    (read,) = connector(sandbox).list_packages(*window(), page=0, size=100).orders
    assert read.lines[0].unit_price == Decimal("89.99") and read.lines[0].vat_rate == Decimal(20)
    assert read.total == Decimal("89.99") + Decimal("34.99")


def test_lists_oldest_first_whatever_order_amazon_answers_in(sandbox: Sandbox) -> None:
    """Seven orders over four pages of two; the sandbox lists by order id, not by change."""
    made = [order(sandbox, minutes_ago=minutes) for minutes in (9, 3, 30, 12, 5, 20, 7)]
    page = connector(sandbox).list_packages(*window(), page=0, size=2)
    assert page.total_pages == 1 and searches(sandbox) == 4
    by_change = sorted(made, key=lambda placed: placed["lastUpdatedTime"])
    assert [read.package_id for read in page.orders] == [placed["orderId"] for placed in by_change]
    listed = sorted(placed["orderId"] for placed in made)
    assert listed != [placed["orderId"] for placed in by_change]  # the sandbox's order is not the answer's


def test_a_window_over_the_page_bound_is_narrowed_and_the_pull_misses_nothing(sandbox: Sandbox) -> None:
    """25 orders a minute apart, two a page: 13 pages, over the bound of 10. The pull reads the window in
    parts, each whole and sorted, and every order comes in once at least, in the order of the changes."""
    made = [order(sandbox, minutes_ago=40 - minute) for minute in range(25)]
    one = connector(sandbox)
    start, end = window()
    first = one.list_packages(start, end, page=0, size=2)
    assert first.total_pages == 2 and 0 < len(first.orders) < 25
    assert searches(sandbox) == 10 + -(-len(first.orders) // 2)  # the bound, then the narrowed part whole
    with pytest.raises(InvalidAnswer, match="held only orders the hub cannot read"):
        one.list_packages(start, end, page=1, size=2)  # asked only after a part without a readable order

    pages: list[PackagePage] = []
    app = Flask(__name__)
    app.config.update(PULL_PAGE_SIZE=2, PULL_PAGE_ATTEMPTS=1)
    with app.app_context():
        assert read(one, start, end, Budget(pages=50, seconds=60), pages.append)
    seen = [listed.package_id for page in pages for listed in page.orders]
    assert set(seen) == {placed["orderId"] for placed in made}
    moments = [listed.modified_at for page in pages for listed in page.orders]
    assert moments == sorted(moments)
    assert [page.total_pages for page in pages][-1] == 1 and len(pages) > 1


def test_orders_amazon_cannot_tell_apart_in_time_stop_the_listing(sandbox: Sandbox) -> None:
    """More than the bound changed in one second: no narrowing can order them, and the listing says so."""
    at = ago(10)
    for _ in range(21):
        market(sandbox).create_order({"at": at})
    with pytest.raises(InvalidAnswer, match="cannot read them in the order of their changes"):
        connector(sandbox).list_packages(*window(), page=0, size=2)


def test_the_window_ends_two_minutes_before_now(sandbox: Sandbox) -> None:
    """Amazon refuses a lastUpdatedBefore later than two minutes ago; the connector asks no later, and
    for a window inside the last two minutes asks nothing at all."""
    order(sandbox, minutes_ago=5)
    order(sandbox, minutes_ago=1)  # inside the last two minutes: the next pull's
    with _recorded() as kept:
        now = datetime.now(UTC)
        page = connector(sandbox, transport=kept).list_packages(
            now - timedelta(hours=1), now, page=0, size=100
        )
        assert len(page.orders) == 1
        (search,) = [request for request, _ in kept.calls if request.url.path.endswith(ORDERS)]
        before = datetime.fromisoformat(search.url.params["lastUpdatedBefore"])
        assert now - timedelta(minutes=3) < before <= now - timedelta(minutes=2)
        assert search.url.params["fulfilledBy"] == "MERCHANT" and search.url.params["marketplaceIds"] == TR
        empty = connector(sandbox).list_packages(now - timedelta(seconds=90), now, page=0, size=100)
    assert (empty.orders, empty.total_pages) == ((), 1) and searches(sandbox) == 1


def test_fast_tests_may_shorten_the_two_minutes_on_both_sides(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lag is a knob of the sandbox and a constant of the connector: a test of the whole pipeline
    may set both to nothing and see a change at once."""
    made = order(sandbox, minutes_ago=0)
    assert connector(sandbox).list_packages(*window(), page=0, size=100).orders == ()
    market(sandbox).listing_lag = 0
    monkeypatch.setattr(amazon, "LISTING_LAG", timedelta(0))
    end = datetime.now(UTC) + timedelta(seconds=1)  # Amazon's times are whole seconds
    (found,) = connector(sandbox).list_packages(end - timedelta(hours=1), end, page=0, size=100).orders
    assert found.package_id == made["orderId"]


def test_only_the_orders_the_seller_ships(sandbox: Sandbox) -> None:
    own = order(sandbox)
    order(sandbox, fulfilledBy="AMAZON")
    page = connector(sandbox).list_packages(*window(), page=0, size=100)
    assert [read.package_id for read in page.orders] == [own["orderId"]]


def test_get_package_and_packages_of(sandbox: Sandbox) -> None:
    made = order(sandbox)
    one = connector(sandbox)
    found = one.get_package(made["orderId"])
    assert found is not None and found.package_id == made["orderId"]
    assert one.packages_of(made["orderId"]) == [found]
    assert one.get_package("404-0000000-0000000") is None and one.packages_of("404-0000000-0000000") == []
    with pytest.raises(Permanent, match="not an Amazon order id"):
        one.get_package("../../auth/o2/token")
    assert calls(sandbox, "/orders")[-1] == ("GET", f"/amazon{ORDERS}/404-0000000-0000000", 404)


def test_an_order_to_ship_without_its_address_is_unreadable(sandbox: Sandbox) -> None:
    """Without the Direct-to-Consumer Shipping role Amazon leaves the address out: an order to ship is
    filed with a sentence naming the role; a pending one has no address yet and reads."""
    market(sandbox).pii_role = False
    unshipped = order(sandbox, minutes_ago=9)
    pending = order(sandbox, minutes_ago=8, status="PENDING")
    one = connector(sandbox)
    page = one.list_packages(*window(), page=0, size=100)
    ((filed_as, reason, raw),) = page.unreadable
    assert filed_as == unshipped["orderId"] and "recipient" not in raw
    assert '"Direct-to-Consumer Shipping" role' in reason
    (waiting,) = page.orders
    assert (waiting.package_id, waiting.status) == (pending["orderId"], CanonicalStatus.AWAITING)
    assert waiting.shipping_address.address1 == "" and waiting.customer_name == pending["buyer"]["buyerName"]
    with pytest.raises(UnreadablePackage, match="payment is confirmed"):
        addresses(waiting.raw)
    with pytest.raises(InvalidAnswer, match="Direct-to-Consumer Shipping"):
        one.get_package(unshipped["orderId"])


def test_a_pending_order_has_no_address_even_with_the_role(sandbox: Sandbox) -> None:
    pending = order(sandbox, status="PENDING")
    found = connector(sandbox).get_package(pending["orderId"])
    assert found is not None and found.status is CanonicalStatus.AWAITING and "recipient" not in found.raw
    market(sandbox).set_status(market(sandbox).orders[pending["orderId"]], "UNSHIPPED")
    found = connector(sandbox).get_package(pending["orderId"])
    assert found is not None and found.shipping_address.address1


def test_cancelled_units_come_as_fewer_units(sandbox: Sandbox) -> None:
    """A buyer cancels one of three shirts and the whole oil: quantityOrdered stays, the live units are
    what is fulfilled or still to fulfil."""
    made = order(sandbox, items=[{"barcode": SHIRT, "quantity": 3}, {"barcode": OIL, "quantity": 1}])
    shirt, oil = (item["orderItemId"] for item in made["orderItems"])
    market(sandbox).cancel(made["orderId"], {shirt: 1, oil: 1})
    found = connector(sandbox).get_package(made["orderId"])
    assert found is not None and found.status is CanonicalStatus.CREATED
    assert [(line.line_id, line.quantity) for line in found.lines] == [(shirt, 2), (oil, 0)]
    assert found.total == Decimal("299.80")
    assert found.raw["orderItems"][1]["cancellation"]["cancellationExecution"]["cancelledBy"] == "BUYER"


def test_a_cancelled_order(sandbox: Sandbox) -> None:
    made = order(sandbox, items=[{"barcode": SHIRT, "quantity": 2}])
    market(sandbox).cancel(made["orderId"], by="AMAZON")
    found = connector(sandbox).get_package(made["orderId"])
    assert found is not None and (found.status, found.native_status) == (
        CanonicalStatus.CANCELLED,
        "CANCELLED",
    )
    assert [line.quantity for line in found.lines] == [0] and found.total == 0
    created = connector(sandbox).get_package(order(sandbox, status="CANCELLED")["orderId"])
    assert created is not None and all(line.quantity == 0 for line in created.lines)


# -- the shipment ------------------------------------------------------------------------------------


def test_confirms_the_shipment_of_every_live_unit_once(sandbox: Sandbox) -> None:
    made = order(sandbox, items=[{"barcode": SHIRT, "quantity": 3}, {"barcode": MUG, "quantity": 1}])
    shirt, mug = (item["orderItemId"] for item in made["orderItems"])
    market(sandbox).cancel(made["orderId"], {shirt: 1})
    with _recorded() as kept:
        one = connector(sandbox, transport=kept)
        one.push_tracking(made["orderId"], " 7261234567 ", "Yurtiçi Kargo")
        (post,) = [
            request
            for request, _ in kept.calls
            if request.method == "POST" and "/orders/" in str(request.url)
        ]
    body = json.loads(post.content)
    sent_at = body["packageDetail"].pop("shipDate")
    assert body == {
        "marketplaceId": TR,
        "packageDetail": {
            "packageReferenceId": "1",
            "carrierCode": "Other",
            "carrierName": "Yurtiçi Kargo",
            "shippingMethod": "Standard",
            "trackingNumber": "7261234567",
            "orderItems": [{"orderItemId": shirt, "quantity": 2}, {"orderItemId": mug, "quantity": 1}],
        },
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sent_at)
    assert market(sandbox).orders[made["orderId"]]["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    shipped = one.get_package(made["orderId"])
    assert shipped is not None and shipped.status is CanonicalStatus.SHIPPED
    assert (shipped.shipment.tracking_number, shipped.shipment.carrier) == ("7261234567", "Yurtiçi Kargo")
    # Asked again (its answer lost): the order is shipped, so nothing more is sent.
    before = len(calls(sandbox))
    one.push_tracking(made["orderId"], "7261234567", "Yurtiçi Kargo")
    assert [method for method, _, _ in calls(sandbox)[before:]] == ["GET"]


def test_a_partly_shipped_order_ships_the_rest(sandbox: Sandbox) -> None:
    made = order(sandbox, items=[{"barcode": SHIRT, "quantity": 2}, {"barcode": MUG, "quantity": 1}])
    shirt, mug = (item["orderItemId"] for item in made["orderItems"])
    detail = {
        "packageReferenceId": "1",
        "carrierCode": "Other",
        "carrierName": "Aras Kargo",
        "trackingNumber": "A1",
        "shipDate": ago(0),
        "orderItems": [{"orderItemId": shirt, "quantity": 1}],
    }
    market(sandbox).confirm(made["orderId"], {"marketplaceId": TR, "packageDetail": detail})
    one = connector(sandbox)
    partly = one.get_package(made["orderId"])
    assert partly is not None and (partly.status, partly.native_status) == (
        CanonicalStatus.PICKING,
        "PARTIALLY_SHIPPED",
    )
    assert [line.quantity for line in partly.lines] == [2, 1]
    one.push_tracking(made["orderId"], "A2", "Aras Kargo")
    parcels = market(sandbox).orders[made["orderId"]]["packages"]
    assert [parcel["packageReferenceId"] for parcel in parcels] == ["1", "2"]
    assert parcels[1]["packageItems"] == [
        {"orderItemId": shirt, "quantity": 1},
        {"orderItemId": mug, "quantity": 1},
    ]
    assert market(sandbox).orders[made["orderId"]]["fulfillment"]["fulfillmentStatus"] == "SHIPPED"


def test_a_shipment_is_refused_clearly_before_anything_is_sent(sandbox: Sandbox) -> None:
    pending = order(sandbox, status="PENDING")
    cancelled = order(sandbox, status="CANCELLED")
    one = connector(sandbox)
    for made in (pending, cancelled):
        with pytest.raises(Permanent, match="only for an order to ship"):
            one.push_tracking(made["orderId"], "7261", "Aras Kargo")
    with pytest.raises(Permanent, match="carrier's name and the tracking number"):
        one.push_tracking(pending["orderId"], "7261", " ")
    with pytest.raises(Permanent, match="knows no order"):
        one.push_tracking("404-0000000-0000000", "7261", "Aras Kargo")
    assert [method for method, _, _ in calls(sandbox, "/orders")] == ["GET", "GET", "GET"]


def test_no_approval_and_no_status_of_the_hubs(sandbox: Sandbox) -> None:
    made = order(sandbox)
    one = connector(sandbox)
    with pytest.raises(Permanent, match="no approval step"):
        one.approve(made["orderId"], [])
    with pytest.raises(Permanent, match="turn on Update Feedback"):
        one.push_status(made["orderId"], [], CanonicalStatus.SHIPPED)
    for status in (CanonicalStatus.CANCELLED, CanonicalStatus.UNSUPPLIED):  # no Merchant Token given
        with pytest.raises(Permanent, match="without your Merchant Token") as caught:
            one.push_status(made["orderId"], [], status)
        assert "cancel the order in Seller Central" in str(caught.value)
    with pytest.raises(Permanent, match="cannot set Picking on Amazon"):
        one.push_status(made["orderId"], [], CanonicalStatus.PICKING)
    assert amazon.SETTABLE == {} and calls(sandbox) == []


# -- the seller's cancellation -----------------------------------------------------------------------


def lines_of(placed: dict[str, Any]) -> list[tuple[str, int]]:
    return [(item["orderItemId"], item["quantityOrdered"]) for item in placed["orderItems"]]


def feed_calls(kept: Recording) -> list[tuple[str, str]]:
    return [(request.method, request.url.path.removeprefix("/amazon")) for request, _ in kept.calls]


def uploaded(kept: Recording) -> ElementTree.Element:
    (upload,) = [request for request, _ in kept.calls if request.method == "PUT"]
    assert upload.headers["Content-Type"] == "text/xml; charset=UTF-8"
    assert "x-amz-access-token" not in upload.headers  # the upload goes to Amazon's storage, not the API
    return ElementTree.fromstring(upload.content)


def test_a_cancellation_goes_by_the_order_acknowledgement_feed(sandbox: Sandbox) -> None:
    made = order(sandbox, items=[{"barcode": SHIRT, "quantity": 2}, {"barcode": MUG, "quantity": 1}])
    with _recorded() as kept:
        one = connector(sandbox, transport=kept, merchant_token=SELLER_ID)
        one.push_status(made["orderId"], lines_of(made), CanonicalStatus.UNSUPPLIED)
        assert feed_calls(kept)[1:] == [
            ("GET", f"{ORDERS}/{made['orderId']}"),
            ("POST", "/feeds/2021-06-30/documents"),
            ("PUT", feed_calls(kept)[3][1]),
            ("POST", "/feeds/2021-06-30/feeds"),
        ]
        document = json.loads(kept.calls[2][0].content)
        feed = json.loads(kept.calls[4][0].content)
        envelope = uploaded(kept)
    assert document == {"contentType": "text/xml; charset=UTF-8"}
    assert feed == {
        "feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA",
        "marketplaceIds": [TR],
        "inputFeedDocumentId": feed["inputFeedDocumentId"],
    }
    assert feed["inputFeedDocumentId"] in market(sandbox).documents
    assert envelope.findtext("Header/MerchantIdentifier") == "A1SANDBOXSELLER"
    assert envelope.findtext("MessageType") == "OrderAcknowledgement"
    acknowledged = envelope.find("Message/OrderAcknowledgement")
    assert acknowledged is not None and acknowledged.findtext("AmazonOrderID") == made["orderId"]
    assert acknowledged.findtext("StatusCode") == "Failure"
    assert [
        (item.findtext("AmazonOrderItemCode"), item.findtext("CancelReason"))
        for item in acknowledged.findall("Item")
    ] == [(item_id, "NoInventory") for item_id, _ in lines_of(made)]
    assert market(sandbox).feeds[0]["errors"] == []
    cancelled = one.get_package(made["orderId"])
    assert cancelled is not None and cancelled.status is CanonicalStatus.CANCELLED
    # Asked again (its answer lost): the order is cancelled already, so nothing more is sent.
    before = len(calls(sandbox))
    one.push_status(made["orderId"], lines_of(made), CanonicalStatus.CANCELLED)
    assert [method for method, _, _ in calls(sandbox)[before:]] == ["GET"]


def test_cancelling_some_items_accepts_the_order_with_those_items_cancelled(sandbox: Sandbox) -> None:
    made = order(sandbox, items=[{"barcode": SHIRT, "quantity": 2}, {"barcode": MUG, "quantity": 1}])
    shirt, mug = (item["orderItemId"] for item in made["orderItems"])
    # The buyer asked to cancel the mug (Amazon waits for the seller): the reason says so.
    made["orderItems"][1]["cancellation"] = {
        "cancellationRequest": {"requester": "BUYER", "cancelReason": "x"}
    }
    with _recorded() as kept:
        one = connector(sandbox, transport=kept, merchant_token=SELLER_ID)
        one.push_status(made["orderId"], [(mug, 1)], CanonicalStatus.CANCELLED)
        acknowledged = uploaded(kept).find("Message/OrderAcknowledgement")
    assert acknowledged is not None and acknowledged.findtext("StatusCode") == "Success"
    assert [
        (item.findtext("AmazonOrderItemCode"), item.findtext("CancelReason"))
        for item in acknowledged.findall("Item")
    ] == [(mug, "BuyerCanceled")]
    found = one.get_package(made["orderId"])
    assert found is not None and found.status is CanonicalStatus.CREATED
    assert [(line.line_id, line.quantity) for line in found.lines] == [(shirt, 2), (mug, 0)]
    one.push_status(made["orderId"], [(mug, 1)], CanonicalStatus.CANCELLED)  # cancelled already: nothing
    assert len(market(sandbox).feeds) == 1


def test_a_cancellation_amazon_cannot_take_is_refused_before_anything_is_sent(sandbox: Sandbox) -> None:
    made = order(sandbox, items=[{"barcode": SHIRT, "quantity": 2}])
    shipped = order(sandbox, status="SHIPPED")
    pending = order(sandbox, status="PENDING")
    one = connector(sandbox, merchant_token=SELLER_ID)
    with pytest.raises(Permanent, match="whole items only") as caught:
        one.push_status(made["orderId"], [(lines_of(made)[0][0], 1)], CanonicalStatus.UNSUPPLIED)
    assert caught.value.code == "part_of_an_item"
    with pytest.raises(Permanent, match="has no item 999"):
        one.push_status(made["orderId"], [("999", 1)], CanonicalStatus.UNSUPPLIED)
    for placed in (shipped, pending):
        with pytest.raises(Permanent, match="only while the order is Unshipped") as caught:
            one.push_status(placed["orderId"], lines_of(placed), CanonicalStatus.CANCELLED)
        assert caught.value.code == "not_cancellable"
    assert {method for method, _, _ in calls(sandbox, "/orders")} == {"GET"}
    assert calls(sandbox, "/feeds") == [] and market(sandbox).feeds == []


def test_the_sandbox_processes_an_acknowledgement_as_amazon_is_read_to(sandbox: Sandbox) -> None:
    """What the feed refuses shows in its errors, and the order does not move."""
    made = order(sandbox)
    item = made["orderItems"][0]["orderItemId"]
    feed: dict[str, Any] = {"feedId": "1", "errors": []}
    cases = [
        (
            amazon.acknowledgement("A9OTHER", made["orderId"], {item: "NoInventory"}, whole=True),
            "MerchantIdentifier",
        ),
        (
            amazon.acknowledgement(SELLER_ID, made["orderId"], {"1": "NoInventory"}, whole=True),
            "has no item 1",
        ),
        (
            amazon.acknowledgement(SELLER_ID, made["orderId"], {item: "Bored"}, whole=True),
            "CancelReason 'Bored'",
        ),
        (b"<not xml", "not XML"),
    ]
    for content, error in cases:
        market(sandbox).process_feed(feed, content)
        assert error in feed["errors"][0]
    assert feed["processingStatus"] == "FATAL"
    assert made["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"


# -- rate limits and errors --------------------------------------------------------------------------


def test_a_429_waits_for_the_operations_rate_and_names_the_request(sandbox: Sandbox) -> None:
    made = order(sandbox)
    one = connector(sandbox)
    one.get_package(made["orderId"])  # the token first: the fault acts on LWA's endpoint too
    sandbox.world.faults.update({"rate_limit_rate": 1})
    with pytest.raises(RateLimited) as caught:
        one.list_packages(*window(), page=0, size=100)
    assert caught.value.retry_after == pytest.approx(1 / 0.0056)  # searchOrders: one request in 179 s
    assert caught.value.code == "QuotaExceeded" and "QuotaExceeded" in str(caught.value)
    assert REQUEST_ID.search(str(caught.value))
    market(sandbox).rate_limit_header = False
    with pytest.raises(RateLimited) as caught:
        one.get_package(made["orderId"])
    assert caught.value.retry_after == 2.0  # getOrder's default rate, 0.5 a second, from the model
    sandbox.world.faults.update({"rate_limit_rate": 0, "error_rate": 1})
    with pytest.raises(Retryable, match="503") as failed:
        one.get_package(made["orderId"])
    assert REQUEST_ID.search(str(failed.value))


def test_every_answer_names_its_request(sandbox: Sandbox) -> None:
    made = order(sandbox)
    connector(sandbox).push_tracking(made["orderId"], "1", "Aras Kargo")
    answers = [
        httpx.get(f"{sandbox.amazon_url}{ORDERS}"),
        httpx.post(f"{sandbox.amazon_url}/auth/o2/token", data={"grant_type": "password"}),
        httpx.get(f"{sandbox.amazon_url}/nothing-here"),
    ]
    assert all(re.fullmatch(r"[0-9a-f-]{36}", answer.headers["x-amzn-RequestId"]) for answer in answers)
    assert answers[0].status_code == 403 and answers[0].json()["errors"][0]["code"] == "Unauthorized"
    assert answers[1].status_code == 400 and answers[1].json()["error"] == "unsupported_grant_type"
    assert answers[2].status_code == 404 and answers[2].json()["errors"][0]["code"] == "NotFound"


def test_the_sandbox_keeps_amazons_rules(sandbox: Sandbox) -> None:
    made = order(sandbox)
    token = market(sandbox).issue_token({"grant_type": "refresh_token", **CREDENTIALS})[1]["access_token"]
    headers = {"x-amz-access-token": token}
    url = f"{sandbox.amazon_url}{ORDERS}"
    base = {"marketplaceIds": TR, "lastUpdatedAfter": ago(60)}

    def search(**params: Any) -> httpx.Response:
        return httpx.get(url, params={**base, **params}, headers=headers)

    assert search(lastUpdatedBefore=ago(1)).status_code == 400
    assert search(maxResultsPerPage=101).status_code == 400
    assert search(createdAfter=ago(60)).status_code == 400
    assert search(includedData="EVERYTHING").status_code == 400
    assert httpx.get(url, params={"lastUpdatedAfter": ago(60)}, headers=headers).status_code == 400
    plain = search(lastUpdatedBefore=ago(3)).json()
    assert "recipient" not in plain["orders"][0] and "fulfillment" not in plain["orders"][0]
    full = search(includedData="RECIPIENT,FULFILLMENT").json()["orders"][0]
    assert full["recipient"] and full["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    order(sandbox)
    first = search(maxResultsPerPage=1).json()
    next_token = first["pagination"]["nextToken"]
    assert search(maxResultsPerPage=2, paginationToken=next_token).status_code == 400  # other filters
    second = search(maxResultsPerPage=1, paginationToken=next_token).json()
    assert "pagination" not in second and second["orders"][0]["orderId"] != first["orders"][0]["orderId"]
    market(sandbox).expire_tokens()
    assert search().status_code == 403
    confirm = f"{sandbox.amazon_url}/orders/v0/orders/{made['orderId']}/shipmentConfirmation"
    item = made["orderItems"][0]
    detail: dict[str, Any] = {
        "packageReferenceId": "1",
        "carrierCode": "Other",
        "carrierName": "PTT Kargo",
        "trackingNumber": "P1",
        "shipDate": ago(0),
        "orderItems": [{"orderItemId": item["orderItemId"], "quantity": item["quantityOrdered"]}],
    }
    fresh = {
        "x-amz-access-token": market(sandbox).issue_token({"grant_type": "refresh_token", **CREDENTIALS})[1][
            "access_token"
        ]
    }
    for wrong in (
        {"marketplaceId": "A1PA6795UKMFR9", "packageDetail": detail},
        {
            "marketplaceId": TR,
            "packageDetail": {**detail, "orderItems": [{"orderItemId": "1", "quantity": 1}]},
        },
        {
            "marketplaceId": TR,
            "packageDetail": {**detail, "orderItems": [{**detail["orderItems"][0], "quantity": 99}]},
        },
        {"marketplaceId": TR, "packageDetail": {**detail, "carrierName": ""}},
    ):
        refused = httpx.post(confirm, json=wrong, headers=fresh)
        assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "InvalidInput"
    assert market(sandbox).orders[made["orderId"]]["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    assert (
        httpx.post(confirm, json={"marketplaceId": TR, "packageDetail": detail}, headers=fresh).status_code
        == 204
    )


def test_the_token_url_follows_the_base_url() -> None:
    """The real LWA for an SP-API host, live or sandbox; the same host otherwise (the sandbox plays LWA)."""
    assert token_url("https://sellingpartnerapi-eu.amazon.com") == "https://api.amazon.com/auth/o2/token"
    assert (
        token_url("https://sandbox.sellingpartnerapi-eu.amazon.com/")
        == "https://api.amazon.com/auth/o2/token"
    )
    assert token_url("http://127.0.0.1:5001/amazon/") == "http://127.0.0.1:5001/amazon/auth/o2/token"
    assert token_url("https://sellingpartnerapi-eu.amazon.com.evil.example") == (
        "https://sellingpartnerapi-eu.amazon.com.evil.example/auth/o2/token"
    )


def test_the_guard_lets_a_connector_on_the_sp_api_host_reach_lwa() -> None:
    """The pin is checked on the base URL only (connectors.factory); each request's URL goes through
    Guard.check_url, which lets a public https host through: api.amazon.com is reached as it is."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url).split("?")[0])
        if request.url.host == "api.amazon.com":
            return httpx.Response(
                200, json={"access_token": "Atza|x", "token_type": "bearer", "expires_in": 3600}
            )
        return httpx.Response(404, json={"errors": [{"code": "NotFound", "message": "no"}]})

    live = AmazonConnector(
        amazon.DEFAULT_BASE_URL, CREDENTIALS, Guard(timeout=5), transport=httpx.MockTransport(answer)
    )
    assert live.get_package("404-0000000-0000000") is None
    assert seen == [
        "https://api.amazon.com/auth/o2/token",
        "https://sellingpartnerapi-eu.amazon.com/orders/2026-01-01/orders/404-0000000-0000000",
    ]
    Guard().check_url(amazon.DEFAULT_BASE_URL, base=True, pinned=("sellingpartnerapi-eu.amazon.com",))


# -- reading an order --------------------------------------------------------------------------------


def edited(change: dict[str, Any], item: dict[str, Any] | None = None) -> dict[str, Any]:
    world = World()
    made = world.amazon.create_order({"items": [{"barcode": SHIRT, "quantity": 3}], "at": ago(10)})
    raw = copy.deepcopy(world.amazon.shown(made, set(amazon.INCLUDED_DATA)))
    raw.update(change)
    if item is not None:
        raw["orderItems"][0].update(item)
    return raw


def proceeds_on_top() -> dict[str, Any]:
    raw = edited({})
    grand = raw["proceeds"]["grandTotal"]
    tax = next(entry for entry in raw["proceeds"]["breakdowns"] if entry["type"] == "TAX")
    grand["amount"] = str(Decimal(grand["amount"]) + Decimal(tax["subtotal"]["amount"]))
    return raw


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (edited({"fulfillment": {"fulfillmentStatus": "SHIPPED_BY_DRONE"}}), "unknown fulfillmentStatus"),
        (edited({"fulfillment": None}), "has no fulfillment"),
        (edited({"fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "AMAZON"}}), "FBA"),
        (
            edited({"salesChannel": {"channelName": "AMAZON", "marketplaceId": "A1PA6795UKMFR9"}}),
            "not Amazon",
        ),
        (edited({"orderItems": []}), "has no orderItems"),
        (edited({"lastUpdatedTime": "dün"}), "lastUpdatedTime 'dün' is not a time"),
        (edited({"lastUpdatedTime": "2026-01-01T10:00:00"}), "names no time zone"),
        (edited({"lastUpdatedTime": iso(datetime.now(UTC) + timedelta(hours=2))}), "in the future"),
        (edited({}, {"quantityOrdered": -1}), "quantityOrdered -1 is not a count"),
        (
            edited({}, {"fulfillment": {"quantityFulfilled": 2, "quantityUnfulfilled": 2}}),
            r"\(2 \+ 2\) is more than quantityOrdered \(3\)",
        ),
        (
            edited({}, {"proceeds": {"breakdowns": [{"type": "ITEM", "subtotal": {"amount": "çok"}}]}}),
            "not an amount",
        ),
        (proceeds_on_top(), "prices as VAT included"),
    ],
)
def test_an_unreadable_order_says_why(raw: dict[str, Any], reason: str) -> None:
    with pytest.raises(UnreadablePackage, match=reason):
        parse_order(raw)


def test_a_listed_order_outside_the_window_is_filed_and_the_page_goes_on() -> None:
    """Taking its time would move the pull past orders not read yet: filed as unreadable, with why."""
    outside = edited({"orderId": "408-0000000-0000001", "lastUpdatedTime": ago(600)})
    inside = edited({"orderId": "408-0000000-0000002", "lastUpdatedTime": ago(10)})

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "Atza|x", "expires_in": 3600})
        return httpx.Response(200, json={"orders": [outside, inside]})

    one = AmazonConnector(
        "https://amazon.example", CREDENTIALS, Guard(timeout=5), transport=httpx.MockTransport(answer)
    )
    now = datetime.now(UTC)
    page = one.list_packages(now - timedelta(minutes=30), now, page=0, size=100)
    assert [listed.package_id for listed in page.orders] == ["408-0000000-0000002"]
    ((package_id, reason, _),) = page.unreadable
    assert package_id == "408-0000000-0000001" and "outside the window asked for" in reason


def test_the_sandbox_keeps_amazon_across_a_restart() -> None:
    world = World()
    made = world.amazon.create_order({"status": "PENDING"})
    kept = World()
    kept.restore(json.loads(json.dumps(world.snapshot())))
    assert kept.amazon.orders == {made["orderId"]: json.loads(json.dumps(made))}
    assert (
        kept.amazon.create_order()["orderItems"][0]["orderItemId"]
        == (world.amazon.create_order()["orderItems"][0]["orderItemId"])
    )


def test_the_demo_moves_pending_orders_on() -> None:
    world = World()
    made = world.amazon.create_order({"status": "PENDING", "at": ago(5)})
    for _ in range(50):
        world.amazon.advance()
    assert made["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"


# -- the contract ------------------------------------------------------------------------------------


def openapi3(swagger: dict[str, Any]) -> dict[str, Any]:
    """A Swagger 2.0 model as OpenAPI 3.0, mechanically: what openapi-core reads, saying the same."""
    spec = json.loads(json.dumps(swagger).replace("#/definitions/", "#/components/schemas/"))
    schema_keys = ("type", "format", "items", "enum", "maximum", "minimum", "maxItems", "minItems", "pattern",
                   "maxLength", "minLength", "default")  # fmt: skip
    paths: dict[str, Any] = {}
    for path, item in spec["paths"].items():
        paths[path] = {}
        for method, operation in item.items():
            parameters, body = [], None
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "body":
                    body = {
                        "required": parameter.get("required", False),
                        "content": {"application/json": {"schema": parameter["schema"]}},
                    }
                    continue
                converted = {
                    "name": parameter["name"],
                    "in": parameter["in"],
                    "required": parameter.get("required", False),
                    "schema": {key: parameter[key] for key in schema_keys if key in parameter},
                }
                if parameter.get("type") == "array":  # Swagger 2.0's default collectionFormat: csv
                    assert parameter.get("collectionFormat", "csv") == "csv"
                    converted.update(style="form", explode=False)
                parameters.append(converted)
            responses = {}
            for status, response in operation["responses"].items():
                converted = {"description": response.get("description", "")}
                if "schema" in response:
                    converted["content"] = {"application/json": {"schema": response["schema"]}}
                if "headers" in response:
                    converted["headers"] = {
                        name: {"schema": {"type": header["type"]}}
                        for name, header in response["headers"].items()
                    }
                responses[status] = converted
            converted_operation = {
                "operationId": operation["operationId"],
                "parameters": parameters,
                "responses": responses,
            }
            if body is not None:
                converted_operation["requestBody"] = body
            paths[path][method] = converted_operation
    return {
        "openapi": "3.0.3",
        "info": spec["info"],
        "servers": [{"url": f"https://{spec['host']}"}],
        "paths": paths,
        "components": {"schemas": spec["definitions"]},
    }


def spec_path(request: httpx.Request) -> str:
    path = request.url.path
    assert path.startswith("/amazon/"), f"not an Amazon path: {path}"
    return path.removeprefix("/amazon")


@pytest.fixture(scope="module")
def contracts() -> dict[str, Contract]:
    """One contract per model: Orders 2026-01-01, Orders v0, and the Feeds subset."""
    models = {
        "2026-01-01": json.loads((SPECS / "amazon-orders-2026-01-01.json").read_text()),
        "v0": json.loads((SPECS / "amazon-orders-v0.json").read_text()),
        "feeds": yaml.safe_load((SPECS / "amazon-feeds-2021-06-30.yml").read_text()),
    }
    return {
        name: Contract(
            OpenAPI.from_dict(openapi3(model)), "https://sellingpartnerapi-na.amazon.com", spec_path
        )
        for name, model in models.items()
    }


def checked(contracts: dict[str, Contract], kept: Recording) -> tuple[set[tuple[str, int, str]], list[str]]:
    """The operations met and the violations found, each call against its model. Two calls are in no
    model and are checked by the tests above: LWA's token endpoint (Login with Amazon's, not the
    SP-API's) and the feed document's upload (a presigned URL of Amazon's storage)."""
    operations: set[tuple[str, int, str]] = set()
    violations: list[str] = []
    for call in kept.calls:
        path = spec_path(call[0])
        if path == "/auth/o2/token" or path.startswith("/_storage/"):
            continue
        version = "feeds" if path.startswith("/feeds/") else "v0" if path.startswith("/orders/v0/") else None
        contract = contracts[version or "2026-01-01"]
        request, response = call
        operations.add(
            (request.method, response.status_code, re.sub(r"/\d{3}-\d{7}-\d{7}", "/{orderId}", path))
        )
        violations += contract.violations([call])
    return operations, violations


@pytest.fixture
def kept() -> Iterator[Recording]:
    with _recorded() as recording:
        yield recording


def test_every_call_of_the_connector_keeps_to_the_models(
    sandbox: Sandbox, kept: Recording, contracts: dict[str, Contract]
) -> None:
    """Both ways, every SP-API call the connector makes: the search over pages, the lookups (one unknown),
    a cancelled item, a shipment, a seller's cancellation by feed, an expired token's 403 and a 429."""
    made = order(sandbox, items=[{"barcode": SHIRT, "quantity": 2}, {"barcode": MUG, "quantity": 1}])
    refused = order(sandbox, items=[{"barcode": OIL, "quantity": 1}], minutes_ago=15)
    order(sandbox, status="PENDING")
    order(sandbox, status="CANCELLED", minutes_ago=20)
    market(sandbox).cancel(made["orderId"], {made["orderItems"][0]["orderItemId"]: 1})
    one = connector(sandbox, transport=kept)
    # The cancellation changed the first order just now: the listing leaves it to the next pull.
    assert len(one.list_packages(*window(), page=0, size=1).orders) == 3
    connector(sandbox, transport=kept, merchant_token=SELLER_ID).push_status(
        refused["orderId"], lines_of(refused), CanonicalStatus.UNSUPPLIED
    )
    assert market(sandbox).orders[refused["orderId"]]["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert one.get_package("404-0000000-0000000") is None
    one.push_tracking(made["orderId"], "7261234567", "Sürat Kargo")
    market(sandbox).expire_tokens()
    assert one.packages_of(made["orderId"])[0].status is CanonicalStatus.SHIPPED
    sandbox.world.faults.update({"rate_limit_rate": 1})
    with pytest.raises(RateLimited):
        one.get_package(made["orderId"])
    sandbox.world.faults.update({"rate_limit_rate": 0})
    market(sandbox).orders_role = False
    with pytest.raises(Permanent, match="403"):
        one.list_packages(*window(), page=0, size=2)
    market(sandbox).orders_role = True
    with httpx.Client(transport=kept) as client:  # Amazon's refusal, which the connector never draws
        token = market(sandbox).issue_token({"grant_type": "refresh_token", **CREDENTIALS})[1]["access_token"]
        client.post(
            f"{sandbox.amazon_url}/orders/v0/orders/{made['orderId']}/shipmentConfirmation",
            json={
                "marketplaceId": TR,
                "packageDetail": {
                    "packageReferenceId": "9",
                    "carrierCode": "Other",
                    "carrierName": "PTT Kargo",
                    "trackingNumber": "P",
                    "shipDate": ago(0),
                    "orderItems": [{"orderItemId": "1", "quantity": 1}],
                },
            },
            headers={"x-amz-access-token": token},
        )
    operations, violations = checked(contracts, kept)
    assert operations == {
        ("GET", 200, ORDERS),
        ("GET", 200, f"{ORDERS}/{{orderId}}"),
        ("GET", 404, f"{ORDERS}/{{orderId}}"),
        ("GET", 403, f"{ORDERS}/{{orderId}}"),
        ("GET", 429, f"{ORDERS}/{{orderId}}"),
        ("GET", 403, ORDERS),
        ("POST", 204, "/orders/v0/orders/{orderId}/shipmentConfirmation"),
        ("POST", 400, "/orders/v0/orders/{orderId}/shipmentConfirmation"),
        ("POST", 201, "/feeds/2021-06-30/documents"),
        ("POST", 202, "/feeds/2021-06-30/feeds"),
    }
    assert any("paginationToken" in request.url.params for request, _ in kept.calls)
    assert violations == []


def test_a_call_off_the_models_is_caught(
    sandbox: Sandbox, kept: Recording, contracts: dict[str, Contract]
) -> None:
    """The check itself: a page size the model does not type, a status it does not know, a body without
    the marketplace, a feed without its document."""
    token = market(sandbox).issue_token({"grant_type": "refresh_token", **CREDENTIALS})[1]["access_token"]
    made = order(sandbox)
    search = {"marketplaceIds": TR, "lastUpdatedAfter": ago(60)}
    with httpx.Client(transport=kept, headers={"x-amz-access-token": token}) as client:
        client.get(f"{sandbox.amazon_url}{ORDERS}", params={**search, "maxResultsPerPage": "many"})
        client.get(f"{sandbox.amazon_url}{ORDERS}", params={**search, "fulfillmentStatuses": "LOST"})
        client.post(f"{sandbox.amazon_url}/orders/v0/orders/{made['orderId']}/shipmentConfirmation", json={})
        client.post(
            f"{sandbox.amazon_url}/feeds/2021-06-30/feeds",
            json={"feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA"},
        )
    first, second, third, fourth = checked(contracts, kept)[1]
    assert first.startswith("GET /orders/2026-01-01/orders 400 request") and "maxResultsPerPage" in first
    assert second.startswith("GET /orders/2026-01-01/orders 400 request") and "LOST" in second
    assert third.startswith("POST /orders/v0/") and "'marketplaceId' is a required property" in third
    assert (
        fourth.startswith("POST /feeds/2021-06-30/feeds 400 request")
        and "'marketplaceIds' is a required" in fourth
    )


class _recorded:
    """A Recording transport, closed after the block."""

    def __enter__(self) -> Recording:
        self.recording = Recording()
        return self.recording

    def __exit__(self, *exc: object) -> None:
        self.recording.close()


def test_a_wrong_client_secret_is_not_hidden_by_a_cached_token(sandbox: Sandbox) -> None:
    """Test connection after a good one: the secret typed is asked of LWA, not answered from the cache."""
    start, end = window()
    connector(sandbox).list_packages(start, end, 0)
    with pytest.raises(Permanent) as refused:
        connector(sandbox, client_secret="typed-wrong").list_packages(start, end, 0)
    assert refused.value.category == "auth"
    assert market(sandbox).token_requests == 2
