"""Amazon's Selling Partner API for Amazon.com.tr: merchant-fulfilled orders in; shipment confirmations and
the seller's cancellations out.

Not python-amazon-sp-api: every connector goes through the hub's one HTTP layer (`Outbound`: the outbound
guard, pinned hosts, timeouts, size caps, shared clients) and the queue does the waiting, while that library
brings its own requests session and its own sleeping retries.

Written from the official models (specs/amazon-orders-2026-01-01.json for the listing and the lookup,
specs/amazon-orders-v0.json for confirmShipment, specs/amazon-feeds-2021-06-30.yml for the cancellation
feed) and the research notes (marketplace-apis-next.md §3, marketplace-apis.md §2.4). One
hub package is one Amazon order: its order items are the lines. Every call carries an LWA access token in
`x-amz-access-token`, fetched with the seller's refresh token and kept per process until shortly before it
expires. Where the model leaves a reading open the connector takes one and checks the answer against it,
so a wrong guess stops with a sentence naming it: each such place says [UNSURE].
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import httpx

from connectors.base import (
    Address,
    ConnectorError,
    InvalidAnswer,
    Line,
    MarketplaceOrder,
    PackagePage,
    Permanent,
    RateLimited,
    Shipment,
)
from connectors.http import Guard, Outbound, json_body, sanitised
from connectors.payload import NotYet, UnreadablePackage, no_nul, shown, split_name
from connectors.tokens import TokenCache
from sync.statuses import CANCELLATIONS
from sync.statuses import CanonicalStatus as S

DEFAULT_BASE_URL = "https://sellingpartnerapi-eu.amazon.com"
MARKETPLACE_ID = "A33AVAJ2PDY3EV"  # Amazon.com.tr
USER_AGENT = "OrderHub/1.0 (Language=Python/3.11)"  # Amazon asks for "AppName/Version (Language=…)"
LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
# The SP-API's regional hosts, live and sandbox: a base URL on one of them gets its tokens from LWA itself.
SP_API_HOSTS = frozenset(
    f"{sandbox}sellingpartnerapi-{region}.amazon.com"
    for sandbox in ("", "sandbox.")
    for region in ("na", "eu", "fe")
)
ORDERS = "/orders/2026-01-01/orders"
CONFIRM = "/orders/v0/orders/{}/shipmentConfirmation"
FEED_DOCUMENTS = "/feeds/2021-06-30/documents"
FEEDS = "/feeds/2021-06-30/feeds"
ACKNOWLEDGEMENT_FEED = "POST_ORDER_ACKNOWLEDGEMENT_DATA"
FEED_CONTENT_TYPE = "text/xml; charset=UTF-8"
# The datasets the hub reads (searchOrders and getOrder return order items always): the address, the buyer,
# the money, the fulfilment status with each item's counts, the cancellations, the parcels. Not TAX (the
# tax registrations: the hub has nowhere to put a buyer's VAT number), not PAYMENT, EXPENSE, PROMOTION or
# FULFILLMENT_ORDERS.
INCLUDED_DATA = ("BUYER", "RECIPIENT", "PROCEEDS", "FULFILLMENT", "CANCELLATION", "PACKAGES")
MAX_PAGE_SIZE = 100
# searchOrders' lastUpdatedBefore must lie at least two minutes before the request; a margin on top.
LISTING_LAG = timedelta(minutes=2, seconds=10)
# How many pages one list_packages call reads before it narrows the window, and how often it narrows.
MAX_PAGES = 10
MAX_NARROWINGS = 3
# How far outside the asked window a listed order may lie before the answer is taken as misread.
WINDOW_TOLERANCE = timedelta(minutes=5)
CLOCK_SKEW = timedelta(hours=1)
# An access token is used until this long before it expires, then fetched again.
REFRESH_MARGIN = timedelta(minutes=5)
# Waits after a 429: Amazon sends no Retry-After, only the operation's rate (x-amzn-RateLimit-Limit, in
# requests per second) when it can; one request's worth of refill, within these bounds. Without the header,
# the operation's default rate from the models.
MIN_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 900.0
DEFAULT_RATES = {
    "searchOrders": 0.0056,
    "getOrder": 0.5,
    "confirmShipment": 2.0,
    "createFeedDocument": 0.5,
    "createFeed": 0.0083,
}
ORDER_ID = re.compile(r"\d{3}-\d{7}-\d{7}")
ID_LENGTH = 64
CODE_LENGTH = 120
MAX_AMOUNT = Decimal(10) ** 9
MAX_QUANTITY = 100_000
CENT = Decimal("0.01")
CARRIER_OTHER = "Other"
# [UNSURE] the shipping method Amazon.com.tr expects with carrierCode Other; the model calls it free text.
SHIPPING_METHOD = "Standard"
# Tax and identity fields of Amazon's payloads the order history masks (TAX is not asked for; if Amazon
# sends it all the same, the registration number is the buyer's VAT or identity number).
MASKED_KEYS = frozenset({"taxRegistrationNumber"})

AUTH_FAILED = (
    "Amazon's login service (LWA) refused the refresh token or the app's client id and secret: check the "
    "three values, and re-authorise the app in Seller Central (Apps and Services › Manage Your Apps), since "
    "an authorisation lasts 365 days"
)
ACCESS_DENIED = (
    "Amazon refused the hub's access to the orders (403): the app's authorisation may have been revoked or "
    "has lapsed (it lasts 365 days), or the app lacks the Orders roles; re-authorise it in Seller Central"
)
NO_ADDRESS = (
    "Amazon gave no delivery address for an order to ship: the app needs the restricted "
    '"Direct-to-Consumer Shipping" role; grant it to the app in Seller Central (or the developer profile) '
    "and re-authorise"
)
NOT_YET = "Amazon gives the delivery address once the payment is confirmed (the order is still PENDING)"

# Amazon's fulfilment statuses (FulfillmentStatus) in the hub's words.
STATUSES: Mapping[str, S] = {
    "PENDING_AVAILABILITY": S.AWAITING,
    "PENDING": S.AWAITING,
    "UNSHIPPED": S.CREATED,
    # Some items are on their way, others still to ship: for the shop the order is not shipped yet, and
    # Picking is the hub's word for "the seller is working on it". Shipped comes when every item is.
    "PARTIALLY_SHIPPED": S.PICKING,
    "SHIPPED": S.SHIPPED,
    "CANCELLED": S.CANCELLED,
    "UNFULFILLABLE": S.UNSUPPLIED,
}
# Statuses in which the seller must ship, so the address must be there.
TO_SHIP = frozenset({"UNSHIPPED", "PARTIALLY_SHIPPED"})
# Amazon has no approval step: a paid order is Unshipped, to be shipped.
SETTABLE: Mapping[S, str] = {}


# -- the LWA access token, per process -------------------------------------------------------------------


# LWA access tokens, per process (connectors/tokens.py).
TOKENS = TokenCache(margin=REFRESH_MARGIN.total_seconds())
forget_tokens = TOKENS.clear


def token_url(base_url: str) -> str:
    """Where the access token comes from: Amazon's LWA for a base URL on an SP-API host; otherwise (the
    sandbox, a test) the same host's /auth/o2/token, so whatever plays Amazon plays its login service too
    and no credential of a seller is sent anywhere the seller did not point the hub."""
    host = (urlsplit(base_url).hostname or "").lower()
    return LWA_TOKEN_URL if host in SP_API_HOSTS else f"{base_url.rstrip('/')}/auth/o2/token"


class _AmazonOutbound(Outbound):
    """Outbound, with Amazon's own reading of a refusal: a 429 waits for the operation's rate (Amazon
    sends no Retry-After), and every error names x-amzn-RequestId, which Amazon's support asks for."""

    def _refused(self, method: str, url: str, response: httpx.Response) -> None:
        request_id = sanitised(response.headers.get("x-amzn-RequestId", ""), 64)
        code = _error_code(response)
        evidence = [code, f"x-amzn-RequestId {request_id}" if request_id else ""]
        suffix = f" ({', '.join(part for part in evidence if part)})" if any(evidence) else ""
        if response.status_code == 429:
            raise RateLimited(
                f"{self.platform} answered 429{suffix}", retry_after=_rate_wait(response, url), code=code
            )
        try:
            super()._refused(method, url, response)
        except ConnectorError as error:
            raise type(error)(
                f"{error}{suffix}", status=error.status, code=code or error.code, category=error.category
            ) from None


def _error_code(response: httpx.Response) -> str:
    """Amazon's first error code ({"errors":[{"code","message","details"}]}), if any."""
    try:
        payload = response.json()
    except ValueError:
        return ""
    errors = payload.get("errors") if isinstance(payload, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    code = first.get("code")
    return sanitised(code, 40) if isinstance(code, str) else ""


def _rate_wait(response: httpx.Response, url: str) -> float:
    """One request's worth of the operation's token bucket: 1 / x-amzn-RateLimit-Limit seconds, or the
    model's default rate for the operation when the header is missing (a 429 often carries none)."""
    path = urlsplit(url).path.rstrip("/")
    if path.endswith("/shipmentConfirmation"):
        operation = "confirmShipment"
    elif path.endswith(FEED_DOCUMENTS):
        operation = "createFeedDocument"
    elif path.endswith(FEEDS):
        operation = "createFeed"
    else:
        operation = "searchOrders" if path.endswith(ORDERS) else "getOrder"
    try:
        rate = float(response.headers.get("x-amzn-RateLimit-Limit", ""))
    except ValueError:
        rate = DEFAULT_RATES[operation]
    if not math.isfinite(rate) or rate <= 0:
        rate = DEFAULT_RATES[operation]
    return min(max(1 / rate, MIN_RETRY_AFTER), MAX_RETRY_AFTER)


class AmazonConnector:
    kind = "amazon"

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        guard: Guard,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.token_url = token_url(self.base)
        self.refresh_token = credentials["refresh_token"]
        self.client_id = credentials["client_id"]
        self.client_secret = credentials["client_secret"]
        # The cache's key: the credentials that make the token, never kept themselves.
        self.key = hashlib.sha256(
            "\0".join((self.token_url, self.client_id, self.client_secret, self.refresh_token)).encode()
        ).hexdigest()
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        # The seller's Merchant Token, which a feed names; only a cancellation needs it.
        self.seller_id = credentials.get("merchant_token", "").strip()
        self.http = _AmazonOutbound(guard, platform="Amazon", headers=headers, transport=transport)
        # Without the access token: LWA's endpoint, and the feed document's upload URL (Amazon's storage).
        self.lwa = Outbound(guard, platform="Amazon", headers=headers, transport=transport)
        self.upload = Outbound(
            guard,
            platform="Amazon",
            headers={**headers, "Content-Type": FEED_CONTENT_TYPE},
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()
        self.lwa.close()
        self.upload.close()

    def subscribe(self, callback_url: str, secret: str) -> str:
        raise Permanent(
            "Amazon sends its order notifications to AWS queues, not to a web address: "
            "the hub reads its orders on a schedule"
        )

    # -- the token ---------------------------------------------------------------------------------

    def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        try:
            response = self.lwa.request("POST", self.token_url, data=form)
        except Permanent as error:
            # invalid_grant (a refresh token revoked, expired or mistyped), invalid_client (the app's id or
            # secret), unauthorized_client: the seller's to fix, in words; LWA's body never reaches them.
            if error.status in (400, 401, 403):
                raise Permanent(AUTH_FAILED, status=error.status, category="auth") from None
            raise
        payload = json_body(response, dict, "Amazon")
        value, lifetime = payload.get("access_token"), payload.get("expires_in")
        if not isinstance(value, str) or not value.isascii() or not value.isprintable() or not value:
            raise InvalidAnswer("Amazon's login service answered without an access token")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or not 0 < lifetime <= 86_400:
            raise InvalidAnswer("Amazon's login service answered without a usable expires_in")
        return value, float(lifetime)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One SP-API call with the access token. A 403 with a token from the cache is tried once more
        with a new one (Amazon may have revoked it early); a second 403 is the seller's to fix."""
        for attempt in (1, 2):
            token, cached = TOKENS.get(self.key, self._fetch_token)
            self.http.headers["x-amz-access-token"] = token
            try:
                return self.http.request(method, f"{self.base}{path}", **kwargs)
            except Permanent as error:
                if error.status != 403:
                    raise
                TOKENS.forget(self.key, token)
                if not (cached and attempt == 1):
                    raise Permanent(
                        f"{ACCESS_DENIED} [{error}]", status=403, code=error.code, category="auth"
                    ) from None
            finally:
                del self.http.headers["x-amz-access-token"]
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reading -----------------------------------------------------------------------------------

    def list_packages(
        self, start: datetime, end: datetime, page: int, size: int = MAX_PAGE_SIZE
    ) -> PackagePage:
        """The seller's merchant-fulfilled Amazon.com.tr orders changed in [start, end], oldest first, as
        one page.

        searchOrders does not say in which order it lists (only how to page on, by token), and the pull
        goes on from the newest change it read, so a page must hold everything up to its newest change.
        Hence the whole window is read here, token after token, and sorted by lastUpdatedTime: one page,
        total_pages 1. A window of more than MAX_PAGES pages is narrowed, its end brought down (halved,
        but never below the oldest change seen, so the part holds at least one order) until one part
        fits; that part comes back sorted with total_pages 2, and the pull asks again from the newest
        change in it: nothing after it was skipped, since the part was read whole. lastUpdatedBefore is
        kept at least two minutes before now, as Amazon requires; the pull's overlap (more than two
        minutes) reads the last minutes on its next turn.

        Requests per call: one per 100 orders changed in the window (one for a quiet one), up to
        MAX_PAGES; each narrowing reads again, up to MAX_PAGES more.

        [UNSURE] whether a pagination token holds the result as it was (the model says only that tokens
        last 24 hours): if Amazon pages by offset, an order changed while the window is paged leaves it
        and could shift another past a page boundary. The window is read within seconds, and the pull's
        overlap reads the last minutes again.
        """
        if page:
            # The pull asks a second page of one moment only after a narrowed part held no order it could
            # read (every one filed as unreadable): nothing to go on from. Said, not guessed.
            raise InvalidAnswer(
                "a part of Amazon's busy window held only orders the hub cannot read (see the orders in "
                "error): the pull cannot go on past them in the order of their changes"
            )
        end = min(end, datetime.now(UTC) - LISTING_LAG)
        start, end = _second(start), _second(end)
        if start > end:
            return PackagePage(orders=(), unreadable=(), page=0, total_pages=1)
        size = max(1, min(size, MAX_PAGE_SIZE))
        narrowed = False
        for _ in range(MAX_NARROWINGS + 1):
            found, whole = self._search(start, end, size)
            if whole:
                break
            narrower = _narrower(start, end, found)
            if narrower >= end:  # every change seen at the very end: a narrower window holds no fewer
                raise InvalidAnswer(
                    f"more Amazon orders than {MAX_PAGES} pages hold changed at {end:%Y-%m-%d %H:%M:%S} "
                    "UTC: the hub cannot read them in the order of their changes"
                )
            end, narrowed = narrower, True
        else:
            raise InvalidAnswer(
                f"more than {MAX_PAGES * size} Amazon orders changed between {start:%Y-%m-%d %H:%M:%S} and "
                f"{end:%Y-%m-%d %H:%M:%S} UTC, after narrowing {MAX_NARROWINGS} times: the hub cannot read "
                "them in the order of their changes"
            )
        orders: list[MarketplaceOrder] = []
        unreadable: list[tuple[str, str, dict[str, Any]]] = []
        for raw in found:
            try:
                order = parse_order(raw)
            except UnreadablePackage as error:
                unreadable.append((_filed_as(raw), str(error), raw if isinstance(raw, dict) else {}))
                continue
            if outside := _outside(order, start, end):
                # One order out of place is filed, not the page stopped (a window misread would file them
                # all, each saying so).
                unreadable.append((order.package_id, outside, raw if isinstance(raw, dict) else {}))
                continue
            orders.append(order)
        orders.sort(key=lambda order: (order.modified_at, order.package_id))
        return PackagePage(
            orders=tuple(orders), unreadable=tuple(unreadable), page=0, total_pages=2 if narrowed else 1
        )

    def check(self) -> None:
        """A token from Login with Amazon, then one search of one order: a single request of the
        searchOrders quota the pulls live on (its burst is 20, refilled one every three minutes)."""
        end = _second(datetime.now(UTC) - LISTING_LAG)
        params = {
            "marketplaceIds": MARKETPLACE_ID,
            "lastUpdatedAfter": _iso(end - timedelta(hours=1)),
            "lastUpdatedBefore": _iso(end),
            "fulfilledBy": "MERCHANT",
            "maxResultsPerPage": 1,
        }
        json_body(self._send("GET", ORDERS, params=params), dict, "Amazon")

    def _search(self, start: datetime, end: datetime, size: int) -> tuple[list[Any], bool]:
        """The window's orders, token after token, up to MAX_PAGES pages; and whether that was all."""
        params: dict[str, Any] = {
            "marketplaceIds": MARKETPLACE_ID,
            "lastUpdatedAfter": _iso(start),
            "lastUpdatedBefore": _iso(end),
            # The orders the seller ships: Amazon's own (FBA) are not the seller's to ship or take stock for.
            "fulfilledBy": "MERCHANT",
            "maxResultsPerPage": size,
            "includedData": ",".join(INCLUDED_DATA),  # the model's arrays are csv (Swagger 2.0's default)
        }
        found: list[Any] = []
        for _ in range(MAX_PAGES):
            payload = json_body(self._send("GET", ORDERS, params=params), dict, "Amazon")
            orders = payload.get("orders")
            if not isinstance(orders, list):
                raise InvalidAnswer("Amazon's order search has no list of orders (orders)")
            found.extend(orders)
            pagination = payload.get("pagination")
            token = pagination.get("nextToken") if isinstance(pagination, Mapping) else None
            if token is None or token == "":
                return found, True
            if not isinstance(token, str):
                raise InvalidAnswer("Amazon's nextToken is not text")
            params["paginationToken"] = token
        return found, False

    def get_package(self, package_id: str) -> MarketplaceOrder | None:
        """The order as Amazon holds it now (getOrder), or None if Amazon knows no such order."""
        raw = self._order(package_id)
        if raw is None:
            return None
        try:
            return parse_order(raw)
        except UnreadablePackage as error:
            raise InvalidAnswer(f"Amazon's copy of order {package_id} cannot be read: {error}") from None

    def packages_of(self, order_number: str) -> list[MarketplaceOrder]:
        """An Amazon order is one package: itself, if Amazon knows it."""
        found = self.get_package(order_number)
        return [found] if found is not None else []

    def _order(self, order_id: str) -> dict[str, Any] | None:
        if not ORDER_ID.fullmatch(order_id):
            raise Permanent(f"{shown(order_id)} is not an Amazon order id (3-7-7 digits)", code="bad_id")
        params = {"includedData": ",".join(INCLUDED_DATA)}
        try:
            response = self._send("GET", f"{ORDERS}/{order_id}", params=params)
        except Permanent as error:
            if error.status == 404:
                return None
            raise
        raw = json_body(response, dict, "Amazon").get("order")
        if not isinstance(raw, dict):
            raise InvalidAnswer(f"Amazon's answer for order {order_id} has no order")
        if raw.get("orderId") != order_id:
            raise InvalidAnswer(f"Amazon answered for order {order_id} with another order")
        return raw

    # -- writing -----------------------------------------------------------------------------------

    def approve(self, package_id: str, lines: Sequence[tuple[str, int]]) -> None:
        raise Permanent(
            "Amazon has no approval step: a paid order is Unshipped, to be shipped. Nothing to approve.",
            code="not_supported",
        )

    def push_status(self, package_id: str, lines: Sequence[tuple[str, int]], status: S) -> None:
        if status is S.SHIPPED:
            raise Permanent(
                "Amazon is told an order shipped together with its tracking code: turn on Update "
                "Feedback, and the hub confirms the shipment when the shop has the tracking code.",
                code="not_supported",
            )
        if status in CANCELLATIONS:
            self._cancel(package_id, lines, status)
            return
        raise Permanent(
            f"The hub cannot set {status.value} on Amazon: Amazon moves an order itself, and the seller "
            "only confirms its shipment.",
            code="not_supported",
        )

    def _cancel(self, package_id: str, lines: Sequence[tuple[str, int]], status: S) -> None:
        """The seller's cancellation, by the order-acknowledgement feed (POST_ORDER_ACKNOWLEDGEMENT_DATA):
        a feed document is made, the XML uploaded to the URL Amazon gives, and the feed created. Amazon
        processes it within minutes; the next pull reads the order cancelled (or not: a feed Amazon could
        not apply shows as an order that did not move, and Amazon's processing report says why).

        The order is read first: nothing is sent for one cancelled already, and a shipped one cannot be.
        The feed cancels whole items, not units. [UNSURE] its reading, from Amazon's order feed docs as the
        research notes give them: StatusCode Failure cancels the order (every item named), Success with a
        CancelReason on some items cancels those items only.
        """
        if not self.seller_id:
            raise Permanent(
                "The hub cannot cancel this Amazon order without your Merchant Token (Seller Central › "
                "Settings › Account Info › Business Information › Merchant Token): enter it in the "
                "integration, or cancel the order in Seller Central (Orders › Manage Orders).",
                code="not_configured",
            )
        raw = self._order(package_id)
        if raw is None:
            raise Permanent(f"Amazon knows no order {package_id}", status=404, code="not_found")
        try:
            order = parse_order(raw)
        except UnreadablePackage as error:
            raise InvalidAnswer(f"Amazon's copy of order {package_id} cannot be read: {error}") from None
        live = {line.line_id: line.quantity for line in order.lines if line.quantity > 0}
        if order.status in CANCELLATIONS or not live:
            return
        if order.native_status != "UNSHIPPED":
            # [UNSURE] the feed's reach: a pending order is not the seller's to acknowledge yet, and what
            # is left of a partly shipped one is cancelled in Seller Central, as far as the notes go.
            raise Permanent(
                f"Amazon takes a seller's cancellation through the hub only while the order is Unshipped; "
                f"order {package_id} is {order.native_status}: cancel it in Seller Central (Orders › Manage "
                "Orders).",
                code="not_cancellable",
            )
        known = {line.line_id for line in order.lines}
        strangers = [line_id for line_id, _ in lines if line_id not in known]
        if strangers:
            raise Permanent(f"order {package_id} has no item {strangers[0]}", code="unknown_line")
        # Items cancelled already (a retry after a lost answer) are left out.
        wanted = {line_id: quantity for line_id, quantity in lines if line_id in live}
        part = [line_id for line_id, quantity in wanted.items() if quantity < live[line_id]]
        if part:
            raise Permanent(
                f"Amazon cancels whole items only: item {part[0]} has {live[part[0]]} units and the hub was "
                f"asked to cancel {wanted[part[0]]}. Cancel part of an item in Seller Central.",
                code="part_of_an_item",
            )
        if not wanted:
            return
        document = json_body(
            self._send("POST", FEED_DOCUMENTS, json={"contentType": FEED_CONTENT_TYPE}), dict, "Amazon"
        )
        document_id, url = document.get("feedDocumentId"), document.get("url")
        if not isinstance(document_id, str) or not document_id or not isinstance(url, str) or not url:
            raise InvalidAnswer("Amazon's feed document has no feedDocumentId or url")
        reasons = {item_id: _cancel_reason(raw, item_id, status) for item_id in wanted}
        content = acknowledgement(self.seller_id, package_id, reasons, whole=set(wanted) == set(live))
        self.upload.request("PUT", url, content=content)
        feed = {
            "feedType": ACKNOWLEDGEMENT_FEED,
            "marketplaceIds": [MARKETPLACE_ID],
            "inputFeedDocumentId": document_id,
        }
        answer = json_body(self._send("POST", FEEDS, json=feed), dict, "Amazon")
        if not isinstance(answer.get("feedId"), str):
            raise InvalidAnswer("Amazon's answer to the feed has no feedId")

    def push_tracking(self, package_id: str, tracking_number: str, carrier: str) -> None:
        """Confirm the shipment of every unit still to ship, with the seller's carrier and tracking code
        (confirmShipment, 204). The order is read first: one shipped already, or holding this tracking code
        already (a retry after a lost answer), is left alone.

        [UNSURE] Turkish carriers are not in Amazon's carrierCode list as far as the notes go: the carrier
        goes as carrierCode "Other" with its name as the seller wrote it in carrierName. Whether
        Amazon.com.tr then shows the customer a tracking link is not known.
        """
        tracking_number, carrier = tracking_number.strip()[:CODE_LENGTH], carrier.strip()[:CODE_LENGTH]
        if not tracking_number or not carrier:
            raise Permanent("Amazon needs both the carrier's name and the tracking number", code="incomplete")
        raw = self._order(package_id)
        if raw is None:
            raise Permanent(f"Amazon knows no order {package_id}", status=404, code="not_found")
        try:
            order = parse_order(raw)
        except UnreadablePackage as error:
            raise InvalidAnswer(f"Amazon's copy of order {package_id} cannot be read: {error}") from None
        packages = _list(raw, "packages")
        if order.native_status == "SHIPPED" or any(
            isinstance(parcel, Mapping) and parcel.get("trackingNumber") == tracking_number
            for parcel in packages
        ):
            return
        if order.native_status not in TO_SHIP:
            raise Permanent(
                f"Amazon takes a shipment only for an order to ship (Unshipped); order {package_id} is "
                f"{order.native_status}",
                code="not_shippable",
            )
        items = [{"orderItemId": item_id, "quantity": count} for item_id, count in _to_ship(raw) if count > 0]
        if not items:
            return
        references = [
            int(parcel["packageReferenceId"])
            for parcel in packages
            if isinstance(parcel, Mapping) and str(parcel.get("packageReferenceId", "")).isdigit()
        ]
        body = {
            "marketplaceId": MARKETPLACE_ID,
            "packageDetail": {
                # A positive number, unique within the order.
                "packageReferenceId": str(max(references, default=0) + 1),
                "carrierCode": CARRIER_OTHER,
                "carrierName": carrier,
                "shippingMethod": SHIPPING_METHOD,
                "trackingNumber": tracking_number,
                "shipDate": _iso(datetime.now(UTC)),
                "orderItems": items,
            },
        }
        self._send("POST", CONFIRM.format(package_id), json=body)


def _to_ship(raw: Mapping[str, Any]) -> list[tuple[str, int]]:
    """Each item's units still to ship (fulfillment.quantityUnfulfilled; without it, every live unit)."""
    result = []
    for item in raw.get("orderItems") or ():
        fulfilment = item.get("fulfillment") if isinstance(item, Mapping) else None
        left = fulfilment.get("quantityUnfulfilled") if isinstance(fulfilment, Mapping) else None
        line = _line(item, str(raw.get("fulfillment", {}).get("fulfillmentStatus", "")))[0]
        count = left if isinstance(left, int) and not isinstance(left, bool) else line.quantity
        result.append((line.line_id, min(count, line.quantity)))
    return result


def _cancel_reason(raw: Mapping[str, Any], item_id: str, status: S) -> str:
    """Amazon's reason for a seller's cancellation of an item: BuyerCanceled where the buyer asked for it
    (the CANCELLATION dataset), NoInventory for an item the seller cannot supply, GeneralAdjustment
    otherwise. [UNSURE] which of them Amazon.com.tr counts against the seller's cancellation rate."""
    for item in _list(raw, "orderItems"):
        if isinstance(item, Mapping) and item.get("orderItemId") == item_id:
            request = _object(_object(item, "cancellation"), "cancellationRequest")
            if _text(request, "requester") == "BUYER":
                return "BuyerCanceled"
    return "NoInventory" if status is S.UNSUPPLIED else "GeneralAdjustment"


def acknowledgement(seller_id: str, order_id: str, reasons: Mapping[str, str], *, whole: bool) -> bytes:
    """The order-acknowledgement feed's XML (OrderAcknowledgement in amzn-envelope.xsd): the order refused
    (StatusCode Failure) when every live item goes, else accepted with the items named cancelled."""
    envelope = ElementTree.Element(
        "AmazonEnvelope",
        {
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:noNamespaceSchemaLocation": "amzn-envelope.xsd",
        },
    )
    header = ElementTree.SubElement(envelope, "Header")
    ElementTree.SubElement(header, "DocumentVersion").text = "1.01"
    ElementTree.SubElement(header, "MerchantIdentifier").text = seller_id
    ElementTree.SubElement(envelope, "MessageType").text = "OrderAcknowledgement"
    message = ElementTree.SubElement(envelope, "Message")
    ElementTree.SubElement(message, "MessageID").text = "1"
    body = ElementTree.SubElement(message, "OrderAcknowledgement")
    ElementTree.SubElement(body, "AmazonOrderID").text = order_id
    ElementTree.SubElement(body, "StatusCode").text = "Failure" if whole else "Success"
    for item_id, reason in reasons.items():
        item = ElementTree.SubElement(body, "Item")
        ElementTree.SubElement(item, "AmazonOrderItemCode").text = item_id
        ElementTree.SubElement(item, "CancelReason").text = reason
    return ElementTree.tostring(envelope, encoding="utf-8", xml_declaration=True)


def _narrower(start: datetime, end: datetime, found: Iterable[Any]) -> datetime:
    """A new end for a window with too many orders: half the window, but never before the oldest change
    seen after `start` (so the part holds an order and the pull moves on), nor after the median one (so
    the part loses at least half of what was seen)."""
    seen = sorted(
        moment
        for moment in (_time_or_none(raw) for raw in found)
        if moment is not None and start < moment <= end
    )
    if not seen:
        raise InvalidAnswer(
            f"more Amazon orders than {MAX_PAGES} pages hold changed at {start:%Y-%m-%d %H:%M:%S} UTC: "
            "the hub cannot read them in the order of their changes"
        )
    middle = _second(start + (end - start) / 2)
    return min(seen[len(seen) // 2], max(middle, seen[0]))


def _time_or_none(raw: Any) -> datetime | None:
    try:
        return _time(raw, "lastUpdatedTime") if isinstance(raw, Mapping) else None
    except UnreadablePackage:
        return None


def _outside(order: MarketplaceOrder, start: datetime, end: datetime) -> str:
    """Why a listed order cannot be taken as changed inside the window asked for, if it cannot: one
    outside it means the window is not read as the connector sends it (and taking its time would move
    the pull past orders it has not read)."""
    if start - WINDOW_TOLERANCE <= order.modified_at <= end + WINDOW_TOLERANCE:
        return ""
    return (
        f"Amazon listed order {order.package_id} as changed at {order.modified_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"outside the window asked for ({start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S} UTC)"
    )


def _filed_as(raw: Any) -> str:
    if isinstance(raw, Mapping):
        order_id = raw.get("orderId")
        if isinstance(order_id, str) and order_id.strip() and len(order_id) <= ID_LENGTH:
            return order_id.strip()
    return "?"


# -- reading an order --------------------------------------------------------------------------------


def parse_order(raw: Mapping[str, Any]) -> MarketplaceOrder:
    """One order as the hub sees it; raises UnreadablePackage naming the field that is wrong."""
    if not isinstance(raw, Mapping):
        raise UnreadablePackage("the order is not a JSON object")
    no_nul(raw, "order")
    order_id = _required(raw, "orderId", limit=ID_LENGTH)
    fulfilment = raw.get("fulfillment")
    if not isinstance(fulfilment, Mapping):
        raise UnreadablePackage("the order has no fulfillment (the FULFILLMENT dataset)")
    native = _text(fulfilment, "fulfillmentStatus")
    status = STATUSES.get(native)
    if status is None:
        raise UnreadablePackage(f"unknown fulfillmentStatus {shown(native)}")
    if _text(fulfilment, "fulfilledBy") == "AMAZON":
        raise UnreadablePackage("the order is fulfilled by Amazon (FBA): not the seller's to ship")
    channel = raw.get("salesChannel")
    market = _text(channel, "marketplaceId") if isinstance(channel, Mapping) else ""
    if market and market != MARKETPLACE_ID:
        raise UnreadablePackage(f"the order was placed on marketplace {shown(market)}, not Amazon.com.tr")
    items = raw.get("orderItems")
    if not isinstance(items, list) or not items:
        raise UnreadablePackage("the order has no orderItems")
    modified = _time(raw, "lastUpdatedTime")
    if modified > datetime.now(UTC) + CLOCK_SKEW:
        raise UnreadablePackage("lastUpdatedTime is in the future")
    read = [_line(item, native) for item in items]
    if len({line.line_id for line, _ in read}) != len(read):
        raise UnreadablePackage("an orderItemId is listed twice")
    _tax_inclusive(raw)
    billing, shipping = _addresses(raw, native)
    buyer = _object(raw, "buyer")
    return MarketplaceOrder(
        package_id=order_id,
        order_number=order_id,
        status=status,
        native_status=native,
        ordered_at=_time(raw, "createdTime"),
        modified_at=modified,
        customer_name=_text(buyer, "buyerName") or shipping.first_name + " " + shipping.last_name,
        # Amazon's anonymised relay address (…@marketplace.amazon.com.tr): mail to it reaches the buyer.
        customer_email=_text(buyer, "buyerEmail"),
        currency=_currency(raw, read),
        total=sum((extra for _, extra in read), Decimal(0)).quantize(CENT),
        billing_address=billing,
        shipping_address=shipping,
        lines=tuple(line for line, _ in read),
        shipment=_shipment(raw),
        raw=dict(raw),
    )


def _line(raw: Any, native: str) -> tuple[Line, Decimal]:
    """An order item, and what it brings to the order's total (its live units at their price, with the
    item's shipping and gift wrap).

    The units: quantityOrdered stays what the customer ordered; a cancelled unit is neither fulfilled nor
    still to fulfil, so what goes on is fulfillment.quantityFulfilled + quantityUnfulfilled. [UNSURE] the
    model says no more than that (the CANCELLATION dataset only says who cancelled and why): a count
    above quantityOrdered is refused by name. Without the counts, the ordered units (none in a cancelled
    order, or with a cancellation carried out on the item).
    """
    if not isinstance(raw, Mapping):
        raise UnreadablePackage("an order item is not a JSON object")
    item_id = _required(raw, "orderItemId", limit=ID_LENGTH)
    where = f"item {item_id}: "
    ordered = _count(raw, "quantityOrdered", where)
    fulfilment = raw.get("fulfillment")
    cancellation = raw.get("cancellation")
    if isinstance(fulfilment, Mapping) and (
        fulfilment.get("quantityFulfilled") is not None or fulfilment.get("quantityUnfulfilled") is not None
    ):
        done = _count(fulfilment, "quantityFulfilled", where, missing=0)
        left = _count(fulfilment, "quantityUnfulfilled", where, missing=0)
        live = done + left
        if live > ordered:
            raise UnreadablePackage(
                f"{where}quantityFulfilled + quantityUnfulfilled ({done} + {left}) is more than "
                f"quantityOrdered ({ordered}): units are not read as Amazon counts them "
                "(connectors/amazon.py, _line)"
            )
    elif native == "CANCELLED" or (
        isinstance(cancellation, Mapping) and isinstance(cancellation.get("cancellationExecution"), Mapping)
    ):
        live = 0
    else:
        live = ordered
    product = _object(raw, "product")
    unit, vat_rate, extras = _prices(raw, product, ordered, native, where)
    line = Line(
        line_id=item_id,
        barcode="",  # Amazon knows an item by ASIN and the seller's SKU, not by its barcode
        stock_code=_text(product, "sellerSku", limit=CODE_LENGTH),
        name=_text(product, "title"),
        quantity=live,
        unit_price=unit,
        vat_rate=vat_rate,
    )
    return line, (unit * live + extras) if live else Decimal(0)


def _prices(
    raw: Mapping[str, Any], product: Mapping[str, Any], ordered: int, native: str, where: str
) -> tuple[Decimal, Decimal, Decimal]:
    """The unit price the customer pays (VAT included, the item's discount taken off), the VAT rate, and the
    item's shipping and gift wrap, from the item's proceeds (PROCEEDS).

    [UNSURE] Amazon.com.tr prices include VAT, as in Amazon's other VAT marketplaces: the ITEM proceeds are
    price × quantity with VAT, and the TAX proceeds are the VAT inside them, not added on top.
    `_tax_inclusive` refuses an order whose grand total says otherwise. A PENDING order may carry no
    proceeds yet: its unit price is product.price.unitPrice, or 0 until Amazon prices it.
    """
    proceeds = raw.get("proceeds")
    breakdowns = proceeds.get("breakdowns") if isinstance(proceeds, Mapping) else None
    if not isinstance(breakdowns, list) or not ordered:
        price = product.get("price")
        unit_price = price.get("unitPrice") if isinstance(price, Mapping) else None
        if isinstance(unit_price, Mapping):
            return _money(unit_price, f"{where}unitPrice"), Decimal(0), Decimal(0)
        if native in ("PENDING", "PENDING_AVAILABILITY", "CANCELLED") or not ordered:
            return Decimal(0), Decimal(0), Decimal(0)
        raise UnreadablePackage(f"{where}no proceeds (the PROCEEDS dataset) and no unitPrice")
    parts = _breakdown(breakdowns, where)
    item = parts.get(("ITEM", ""), Decimal(0))
    # A discount may come as a negative or a positive amount: taken off either way.
    discount = abs(parts.get(("DISCOUNT", "ITEM"), parts.get(("DISCOUNT", ""), Decimal(0))))
    shipping_discount = abs(parts.get(("DISCOUNT", "SHIPPING"), Decimal(0)))
    tax = parts.get(("TAX", "ITEM"), parts.get(("TAX", ""), Decimal(0)))
    if not 0 <= tax < item or discount > item:
        raise UnreadablePackage(f"{where}the TAX or DISCOUNT proceeds do not fit the ITEM proceeds ({item})")
    vat_rate = (tax / (item - tax) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP) if item else Decimal(0)
    extras = (
        parts.get(("SHIPPING", ""), Decimal(0))
        - shipping_discount
        + parts.get(("GIFT_WRAP", ""), Decimal(0))
        + parts.get(("COD_FEE", ""), Decimal(0))
    )
    # Rounded down to the cent, so the lines never come to more than Amazon's amounts.
    unit = ((item - discount) / ordered).quantize(CENT, rounding=ROUND_DOWN)
    return unit, vat_rate, max(extras, Decimal(0))


def _breakdown(entries: list[Any], where: str) -> dict[tuple[str, str], Decimal]:
    """Proceeds by (type, "") and, for TAX and DISCOUNT, by (type, subtype) as well."""
    parts: dict[tuple[str, str], Decimal] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise UnreadablePackage(f"{where}a proceeds breakdown is not a JSON object")
        kind = _text(entry, "type")
        subtotal = entry.get("subtotal")
        if not isinstance(subtotal, Mapping):
            raise UnreadablePackage(f"{where}the {shown(kind)} proceeds have no subtotal")
        amount = _money(subtotal, f"{where}{kind}", signed=True)
        parts[(kind, "")] = parts.get((kind, ""), Decimal(0)) + amount
        for detail in entry.get("detailedBreakdowns") or ():
            if isinstance(detail, Mapping) and isinstance(detail.get("value"), Mapping):
                key = (kind, _text(detail, "subtype"))
                value = _money(detail["value"], f"{where}{kind}/{key[1]}", signed=True)
                parts[key] = parts.get(key, Decimal(0)) + value
    return parts


def _tax_inclusive(raw: Mapping[str, Any]) -> None:
    """The order's grand total is its proceeds without the TAX line (VAT inside the prices); a grand total
    with the TAX added on top means the prices are read wrong (see `_prices`)."""
    proceeds = raw.get("proceeds")
    if not isinstance(proceeds, Mapping) or not isinstance(proceeds.get("grandTotal"), Mapping):
        return
    entries = proceeds.get("breakdowns")
    if not isinstance(entries, list):
        return
    parts = _breakdown(entries, "")
    tax = parts.get(("TAX", ""), Decimal(0))
    others = sum(
        (amount for (kind, sub), amount in parts.items() if not sub and kind not in ("TAX", "DELIVERY_TIP")),
        Decimal(0),
    )
    grand = _money(proceeds["grandTotal"], "grandTotal", signed=True)
    if tax and abs(grand - others) > CENT and abs(grand - others - tax) <= CENT:
        raise UnreadablePackage(
            "Amazon added the TAX proceeds on top of the prices (grandTotal): the hub reads Amazon.com.tr "
            "prices as VAT included (connectors/amazon.py, _prices)"
        )


def _currency(raw: Mapping[str, Any], read: list[tuple[Line, Decimal]]) -> str:
    proceeds = raw.get("proceeds")
    grand = proceeds.get("grandTotal") if isinstance(proceeds, Mapping) else None
    code = _text(grand, "currencyCode") if isinstance(grand, Mapping) else ""
    return (code or "TRY")[:3]


def _shipment(raw: Mapping[str, Any]) -> Shipment:
    """The newest parcel Amazon knows (PACKAGES): its carrier and tracking number."""
    parcels = [parcel for parcel in raw.get("packages") or () if isinstance(parcel, Mapping)]
    if not parcels:
        return Shipment()
    parcel = parcels[-1]
    return Shipment(
        carrier=_text(parcel, "carrier")[:CODE_LENGTH],
        tracking_number=_text(parcel, "trackingNumber", limit=CODE_LENGTH),
        package_number=_text(parcel, "packageReferenceId", limit=ID_LENGTH),
    )


def addresses(raw: Mapping[str, Any]) -> tuple[Address, Address]:
    """An order's billing and shipping address: Amazon gives only the delivery address (RECIPIENT), which
    serves as both. Raises UnreadablePackage while there is none (PENDING, or the role is missing)."""
    fulfilment = raw.get("fulfillment")
    native = _text(fulfilment, "fulfillmentStatus") if isinstance(fulfilment, Mapping) else ""
    billing, shipping = _addresses(raw, native)
    if not shipping.address1:
        raise NotYet(NOT_YET) if native.startswith("PENDING") else UnreadablePackage(NO_ADDRESS)
    return billing, shipping


def _addresses(raw: Mapping[str, Any], native: str) -> tuple[Address, Address]:
    """The delivery address as both; an order to ship without one is unreadable (the PII role), any
    other (pending, cancelled, shipped long ago) reads with an empty one."""
    recipient = raw.get("recipient")
    found = recipient.get("deliveryAddress") if isinstance(recipient, Mapping) else None
    if not isinstance(found, Mapping) or not _text(found, "addressLine1"):
        if native in TO_SHIP:
            raise UnreadablePackage(NO_ADDRESS)
        buyer = raw.get("buyer")
        first, last = split_name(_text(buyer, "buyerName") if isinstance(buyer, Mapping) else "")
        empty = Address(first_name=first, last_name=last, address1="", city="")
        return empty, empty
    first, last = split_name(_text(found, "name"))
    lines = (_text(found, name) for name in ("addressLine1", "addressLine2", "addressLine3"))
    street = ", ".join(part for part in lines if part)
    # [UNSURE] how Amazon.com.tr fills a Turkish address: read as the province (il) in stateOrRegion and the
    # district (ilçe) in city or districtOrCounty, as its address form asks for them; without
    # stateOrRegion, city is the province.
    province = _text(found, "stateOrRegion")
    city = _text(found, "city")
    district = _text(found, "districtOrCounty") or (city if province else "")
    address = Address(
        first_name=first,
        last_name=last,
        address1=street,
        city=province or city,
        district=district if district != (province or city) else "",
        postcode=_text(found, "postalCode"),
        country=_text(found, "countryCode") or "TR",
        phone=_text(found, "phone"),
        company=_text(found, "companyName"),
    )
    return address, address


def _text(raw: Mapping[str, Any], name: str, limit: int | None = None) -> str:
    value = raw.get(name)
    if value is None or value == "":
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise UnreadablePackage(f"{name} is not a single value")
    text = str(value).strip()
    if limit is not None and len(text) > limit:
        raise UnreadablePackage(f"{name} is longer than {limit} characters")
    return text


def _object(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """A nested object, or an empty one where there is none."""
    value = raw.get(name)
    return value if isinstance(value, Mapping) else {}


def _list(raw: Mapping[str, Any], name: str) -> list[Any]:
    value = raw.get(name)
    return value if isinstance(value, list) else []


def _required(raw: Mapping[str, Any], name: str, limit: int | None = None) -> str:
    value = _text(raw, name, limit=limit)
    if not value:
        raise UnreadablePackage(f"{name} is missing")
    return value


def _count(raw: Mapping[str, Any], name: str, where: str, missing: int | None = None) -> int:
    value = raw.get(name)
    if value is None and missing is not None:
        return missing
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_QUANTITY:
        raise UnreadablePackage(f"{where}{name} {shown(value)} is not a count")
    return value


def _money(raw: Mapping[str, Any], name: str, *, signed: bool = False) -> Decimal:
    """A Money object's amount (a decimal string): finite, below the cap, in cents; not negative unless
    `signed`."""
    value = raw.get("amount")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise UnreadablePackage(f"{name} has no amount")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise UnreadablePackage(f"{name} {shown(value)} is not an amount") from None
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT or (amount < 0 and not signed):
        raise UnreadablePackage(f"{name} {shown(value)} is out of range")
    return amount.quantize(CENT)


def _time(raw: Mapping[str, Any], name: str) -> datetime:
    """An ISO 8601 time (Amazon writes UTC), as an aware UTC datetime."""
    value = raw.get(name)
    if not isinstance(value, str):
        raise UnreadablePackage(f"{name} {shown(value)} is not a time")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UnreadablePackage(f"{name} {shown(value)} is not a time") from None
    if moment.tzinfo is None:
        raise UnreadablePackage(f"{name} {shown(value)} names no time zone")
    return moment.astimezone(UTC)


def _second(moment: datetime) -> datetime:
    """A moment to the whole second below: Amazon's times have no fractions."""
    return moment.astimezone(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return _second(moment).strftime("%Y-%m-%dT%H:%M:%SZ")
