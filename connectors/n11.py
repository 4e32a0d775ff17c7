"""N11's REST API: shipment packages in, Picking and a seller's cancellation out.

Written from the research notes (marketplace-apis-next.md §2, which transcribes developer.n11.com, and
marketplace-apis.md §2.2); N11 publishes no spec and has no test environment. Every call carries the headers
`appKey` and `appSecret` (no Authorization header). Where the notes leave a reading open the connector takes
one and checks the answer against it, so a wrong guess stops a pull with a sentence naming it rather than
reading orders wrong: each such place says [UNSURE].
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

import httpx

from connectors.base import (
    Address,
    InvalidAnswer,
    Line,
    MarketplaceOrder,
    PackagePage,
    Permanent,
    Shipment,
)
from connectors.http import Guard, Outbound, json_body, sanitised
from connectors.payload import (
    UnreadablePackage,
    no_nul,
    page_count,
    required_field,
    shown,
    split_name,
    text_field,
    with_neighbourhood,
)
from sync.statuses import CANCELLATIONS
from sync.statuses import CanonicalStatus as S

DEFAULT_BASE_URL = "https://api.n11.com"
USER_AGENT = "OrderHub (order integration hub)"
PACKAGES = "/rest/delivery/v1/shipmentPackages"
UPDATE = "/rest/order/v1/update"
SPLIT = "/rest/delivery/v1/splitPackageByQuantity"
# N11 reads startDate/endDate as Istanbul wall-clock time in epoch form (GMT+3), as Trendyol writes its
# orderDate. [UNSURE] whether its answers' times are written the same way: the connector assumes so (the
# window it asks for is compared with lastModifiedDate), and `_within` stops a page whose packages fall
# outside the window asked for, which is what a wrong reading here looks like. One constant to correct.
ISTANBUL_OFFSET = timedelta(hours=3)
MAX_PAGE_SIZE = 100
# N11 answers at most 15 days per request and silently cuts a longer window (next §0.3, §2.2).
MAX_WINDOW = timedelta(days=15)
# What get_package and packages_of search: the last two weeks, as for Trendyol.
LOOKUP_WINDOW = timedelta(days=14)
LOOKUP_AHEAD = timedelta(minutes=5)
# How far outside the asked window a listed package may lie before the answer is taken as misread.
WINDOW_TOLERANCE = timedelta(hours=1)
OUT_OF_STOCK = 61  # cancelReasonId: 61 out of stock, 62 defective, 63 wrong price, 64 force majeure, 65 other
ID_LENGTH = 64
CODE_LENGTH = 120
LINK_LENGTH = 500
MAX_AMOUNT = Decimal(10) ** 9
MAX_QUANTITY = 100_000
CENT = Decimal("0.01")
CLOCK_SKEW = timedelta(hours=1)
# An amount written with a decimal comma ("149,90"), which a 3P note says N11 sometimes sends.
COMMA_DECIMAL = re.compile(r"\d+,\d+")
NO_ID = (
    "the package has no id (N11 gives none to a 'Konuma Özel Teslimat' package): the hub cannot follow, "
    "approve or cancel it; handle it in the n11 seller panel"
)
AUTH_FAILED = (
    "N11 refused the app key and secret (403 Authentication failed): check them in the n11 seller panel, "
    "Hesabım › API Hesapları"
)

# N11's package statuses in the hub's words (next §2.3). Unpacked (the old package of a split) keeps the
# package where it was rather than cancel anything, as Trendyol's UnPacked; matched without regard to case.
STATUSES: Mapping[str, S] = {
    "created": S.CREATED,
    "picking": S.PICKING,
    "shipped": S.SHIPPED,
    # Returns show as Delivered too: N11 reports them through its SOAP ReturnService only.
    "delivered": S.DELIVERED,
    "cancelled": S.CANCELLED,
    "canceled": S.CANCELLED,
    "unsupplied": S.UNSUPPLIED,
    "unpacked": S.PICKING,
}
# What the hub sets through the API: the update call takes Picking only (next §2.3).
SETTABLE = {S.PICKING: "Picking"}


class N11Connector:
    kind = "n11"

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        guard: Guard,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.http = Outbound(
            guard,
            platform="N11",
            headers={
                "appKey": credentials["app_key"],
                "appSecret": credentials["app_secret"],
                "User-Agent": USER_AGENT,
            },
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def subscribe(self, callback_url: str, secret: str) -> str:
        raise Permanent("N11 sends no webhooks: the hub reads its orders on a schedule")

    def list_packages(
        self, start: datetime, end: datetime, page: int, size: int = MAX_PAGE_SIZE
    ) -> PackagePage:
        """One page of the seller's packages changed in [start, end], oldest first.

        Refuses a window longer than N11's 15 days with ValueError: N11 would cut it without a word and the
        pull would take the rest for read. The caller steps through a long span (sync.pull.windows does,
        14 days at a time); stepping here would make page numbers mean nothing.
        """
        if end - start > MAX_WINDOW:
            raise ValueError(
                f"N11 answers at most {MAX_WINDOW.days} days per request and silently cuts a longer "
                f"window; asked for {end - start}"
            )
        params = {
            **_window(start, end),
            "page": page,
            "size": max(1, min(size, MAX_PAGE_SIZE)),
            # Oldest first: what a run has read is then everything up to a point it can go on from.
            "orderByDirection": "ASC",
            # No status: N11 takes one at most, and the pull reads every status as one stream. [UNSURE]
            # that N11 then lists every status (the notes do not say): to confirm on a first live account,
            # by a package seen moving from Created to Picking.
        }
        payload = json_body(self._send("GET", PACKAGES, params=params), dict, "N11")
        orders: list[MarketplaceOrder] = []
        unreadable: list[tuple[str, str, dict[str, Any]]] = []
        for raw in _content(payload):
            try:
                order = parse_package(raw)
            except UnreadablePackage as error:
                unreadable.append((_filed_as(raw), str(error), raw if isinstance(raw, dict) else {}))
                continue
            _within(order, start, end)
            if orders and order.modified_at < orders[-1].modified_at:
                # The pull goes on from the last change it read: a page not in the order of the changes
                # would make it skip packages. [UNSURE] that orderByField=true sorts by lastModifiedDate
                # (the notes say the window applies to it): this is what a wrong reading looks like.
                raise InvalidAnswer("N11 listed packages out of the order of their last change")
            orders.append(order)
        return PackagePage(
            orders=tuple(orders),
            unreadable=tuple(unreadable),
            page=page,
            total_pages=page_count(payload.get("totalPages", 1), "N11's totalPages"),
        )

    def check(self) -> None:
        """One request: the latest hour's packages, one of them."""
        now = datetime.now(UTC)
        self.list_packages(now - timedelta(hours=1), now, 0, 1)

    def get_package(self, package_id: str) -> MarketplaceOrder | None:
        """One package as N11 holds it now, if it changed in the last two weeks."""
        found = self._recent({"packageIds": package_id}, f"package {package_id}")
        # Only the package asked for: an N11 that ignored the parameter must not hand over another one.
        return next((order for order in found if order.package_id == package_id), None)

    def packages_of(self, order_number: str) -> list[MarketplaceOrder]:
        """The order's packages changed in the last two weeks: after a cancellation of some lines, the one
        the rest went on in among them."""
        found = self._recent({"orderNumber": order_number}, f"order {order_number}")
        return [order for order in found if order.order_number == order_number]

    def _recent(self, params: dict[str, Any], what: str) -> list[MarketplaceOrder]:
        now = datetime.now(UTC)
        # A few minutes ahead too: N11's clock (or a change made this very millisecond) may be ahead.
        window = {**_window(now - LOOKUP_WINDOW, now + LOOKUP_AHEAD), "page": 0, "size": MAX_PAGE_SIZE}
        payload = json_body(self._send("GET", PACKAGES, params={**window, **params}), dict, "N11")
        found = []
        for raw in _content(payload):
            if isinstance(raw, Mapping) and raw.get("id") is None:
                continue  # a 'Konuma Özel Teslimat' package: the pull filed it as unreadable already
            try:
                found.append(parse_package(raw))
            except UnreadablePackage as error:
                raise InvalidAnswer(f"N11's copy of {what} cannot be read: {error}") from None
        return found

    def approve(self, package_id: str, lines: Sequence[tuple[str, int]]) -> None:
        """Picking for the package's lines. N11 answers 200 with a result per line, so each is checked: a
        line N11 did not accept raises Permanent with N11's words (the lines it accepted stay accepted).
        Only the lines still waiting are sent: after a part acceptance, a retry would otherwise send the
        accepted ones again, which N11 refuses, and never get past them."""
        live = self.get_package(package_id)
        if live is not None:
            moved_on = {
                str(line.get("orderLineId"))
                for line in live.raw.get("lines") or ()
                if isinstance(line, Mapping)
                and str(line.get("orderItemLineItemStatusName", "")).strip().lower() not in ("", "created")
            }
            lines = [line for line in lines if str(line[0]) not in moved_on]
        if not lines:
            return
        body = {
            "lines": [{"lineId": _number(line_id)} for line_id, _ in lines],
            "status": SETTABLE[S.PICKING],
        }
        payload = json_body(self._send("PUT", UPDATE, json=body), dict, "N11")
        results = payload.get("content")
        if not isinstance(results, list):
            raise InvalidAnswer("N11's answer to the approval has no result per line (content)")
        by_line = {
            str(result.get("lineId")): result
            for result in results
            if isinstance(result, Mapping) and result.get("lineId") is not None
        }
        refused = []
        for line_id, _ in lines:
            result = by_line.get(str(line_id))
            if result is None:
                raise InvalidAnswer(f"N11's answer to the approval says nothing of line {line_id}")
            if str(result.get("status", "")).strip().upper() != "SUCCESS":
                refused.append(f"line {line_id}: {_reason(result)}")
        if refused:
            accepted = len(lines) - len(refused)
            raise Permanent(
                sanitised(
                    f"N11 accepted {accepted} of {len(lines)} lines and refused " + "; ".join(refused), 240
                ),
                code="line_refused",
            )

    def push_status(self, package_id: str, lines: Sequence[tuple[str, int]], status: S) -> None:
        if status in CANCELLATIONS:
            self._cancel(package_id, lines)
            return
        if status not in SETTABLE:
            raise Permanent(
                f"The hub cannot set {status.value} on N11, only Picking: N11 sets Shipped itself when the "
                "carrier scans the parcel, and Delivered when it is delivered."
            )
        self.approve(package_id, lines)

    def _cancel(self, package_id: str, lines: Sequence[tuple[str, int]]) -> None:
        """A seller's cancellation: the units split off the package as cancelled (reason 61, out of stock).
        N11 takes it only while the package is Picking (accepted), so it is asked first: a clear refusal
        instead of N11's, and nothing sent for a package cancelled already (a retry after a lost answer)."""
        current = self.get_package(package_id)
        if current is not None and current.status in CANCELLATIONS:
            return
        if current is not None and current.native_status.lower() != "picking":
            raise Permanent(
                f"N11 takes a seller's cancellation only while the package is Picking (accepted); package "
                f"{package_id} is {current.native_status}. A new (Created) package can only be rejected in "
                "the n11 seller panel.",
                code="not_cancellable",
            )
        # [UNSURE] whether N11 also wants `splitPackages` beside the cancelled items (one 3P client sends
        # both): a refusal comes back as a 4xx with N11's message, which the seller reads.
        items = [
            {"orderLineId": _number(line_id), "quantity": quantity, "cancelReasonId": OUT_OF_STOCK}
            for line_id, quantity in lines
        ]
        self._send("POST", SPLIT, json={"cancelledItems": items})

    def push_tracking(self, package_id: str, tracking_number: str, carrier: str) -> None:
        """N11's REST API takes no tracking number: its carriers scan the parcel by the campaign code, and
        an own carrier's number goes only through the old SOAP OrderService (unconfirmed, next §2.3)."""
        raise Permanent(
            "N11 takes no tracking number from the hub: its REST API has no call for a carrier of your own "
            "(only its old SOAP service may, unconfirmed). Enter it in the n11 seller panel.",
            code="not_supported",
        )

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, f"{self.base}{path}", **kwargs)
        except Permanent as error:
            # /rest/... answers a bad key or secret with 403 and a text/plain "Authentication failed", which
            # the Outbound layer can only call "N11 answered 403".
            if error.status == 403:
                raise Permanent(AUTH_FAILED, status=403, category="auth") from None
            raise


def _window(start: datetime, end: datetime) -> dict[str, Any]:
    """The listing's window as N11 reads it: by the package's last change (orderByField=true), in Istanbul
    wall-clock epoch ms, the seller's own packages only (sender=SELLER, N11's default, named: packages
    N11 ships from its own warehouse, n11depom, are not the seller's to ship or take stock for)."""
    return {
        "startDate": _n11_ms(start),
        "endDate": _n11_ms(end),
        "orderByField": "true",
        "sender": "SELLER",
    }


def _content(payload: Mapping[str, Any]) -> list[Any]:
    content = payload.get("content")
    if content is None:
        return []
    if not isinstance(content, list):
        raise InvalidAnswer("N11's package list has no list of packages (content)")
    return content


def _within(order: MarketplaceOrder, start: datetime, end: datetime) -> None:
    """A listed package changed inside the window asked for, as the connector reads N11's times; one
    outside it means those times are not GMT+3 wall clock, or the window is not on lastModifiedDate."""
    if not start - WINDOW_TOLERANCE <= order.modified_at <= end + WINDOW_TOLERANCE:
        raise InvalidAnswer(
            f"N11 listed package {order.package_id} as changed at {order.modified_at:%Y-%m-%d %H:%M} UTC, "
            f"outside the window asked for ({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC): its times "
            "are not read as N11 writes them (connectors/n11.py, ISTANBUL_OFFSET)"
        )


def _filed_as(raw: Any) -> str:
    """The id an unreadable package is filed under: its own, else one per order for a package N11 gives no
    id (every copy of it then lands on one error order), else "?"."""
    if not isinstance(raw, Mapping):
        return "?"
    package_id, number = raw.get("id"), raw.get("orderNumber")
    if isinstance(package_id, str | int) and not isinstance(package_id, bool) and str(package_id).strip():
        return str(package_id).strip()
    if isinstance(number, str | int) and not isinstance(number, bool) and str(number).strip():
        return f"no-id-{str(number).strip()}"
    return "?"


def parse_package(raw: Mapping[str, Any]) -> MarketplaceOrder:
    """One package as the hub sees it; raises UnreadablePackage naming the field that is wrong."""
    if not isinstance(raw, Mapping):
        raise UnreadablePackage("the package is not a JSON object")
    no_nul(raw, "package")
    package_id = text_field(raw, "id", limit=ID_LENGTH)
    if not package_id:
        raise UnreadablePackage(NO_ID)
    native = text_field(raw, "shipmentPackageStatus")
    status = STATUSES.get(native.lower())
    if status is None:
        raise UnreadablePackage(f"unknown package status {shown(native)}")
    lines = raw.get("lines")
    # A cancelled package may list none, as on Trendyol.
    if not isinstance(lines, list) or (not lines and status not in CANCELLATIONS):
        raise UnreadablePackage("the package has no lines")
    history = _history(raw)
    modified = _time(raw, "lastModifiedDate") if raw.get("lastModifiedDate") is not None else None
    modified = modified or (max(history) if history else None)
    if modified is None:
        raise UnreadablePackage("lastModifiedDate is missing")
    if modified > datetime.now(UTC) + CLOCK_SKEW:
        # Taken as it is, it would carry the pull's cursor into the future; it is also what times written
        # in Istanbul wall clock look like if ISTANBUL_OFFSET were wrongly 0.
        raise UnreadablePackage("lastModifiedDate is in the future")
    read = [_line(line) for line in lines]
    billing, shipping = addresses(raw)
    link = text_field(raw, "cargoTrackingLink")
    return MarketplaceOrder(
        package_id=package_id,
        order_number=required_field(raw, "orderNumber", limit=ID_LENGTH),
        status=status,
        native_status=native,
        # N11 names no order date: the package's first step (Created) is when it was ordered.
        ordered_at=min(history) if history else modified,
        modified_at=modified,
        customer_name=text_field(raw, "customerfullName")
        or " ".join(filter(None, (billing.first_name, billing.last_name))),
        customer_email=text_field(raw, "customerEmail"),
        currency="TRY",  # N11 sells in lira only and names no currency
        # What the seller invoices: the sum of the lines' sellerInvoiceAmount (next §2.2). N11's own discount
        # (mallDiscount) is N11's money, paid to the seller as if there were none, so it is not taken off.
        # totalAmount / totalDiscountAmount stay in `raw`: [UNSURE] before or after which discounts.
        total=sum((invoiced for _, invoiced in read), Decimal(0)).quantize(CENT),
        billing_address=billing,
        shipping_address=shipping,
        lines=tuple(line for line, _ in read),
        shipment=Shipment(
            carrier=text_field(raw, "cargoProviderName")[:CODE_LENGTH],
            # cargoTrackingNumber is N11's campaign code, which the seller prints on the label and the
            # carrier scans: not a number a customer can track with. The carrier's own tracking number
            # is cargoSenderNumber (next §2.2); the campaign code is kept as the shipment barcode.
            tracking_number=text_field(raw, "cargoSenderNumber", limit=CODE_LENGTH),
            shipment_barcode=text_field(raw, "cargoTrackingNumber", limit=CODE_LENGTH),
            package_number=package_id,
            tracking_link=link if len(link) <= LINK_LENGTH else "",
        ),
        raw=dict(raw),
    )


def _line(raw: Any) -> tuple[Line, Decimal]:
    """A line and what the seller invoices for it (sellerInvoiceAmount)."""
    if not isinstance(raw, Mapping):
        raise UnreadablePackage("a line is not a JSON object")
    line_id = required_field(raw, "orderLineId", limit=ID_LENGTH)
    quantity = raw.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise UnreadablePackage(f"line {line_id}: quantity {shown(quantity)} is not a count")
    where = f"line {line_id}: "
    price = _money(raw, "price", where)  # the unit price before any discount
    invoiced = _money(raw, "sellerInvoiceAmount", where)
    gross = price * quantity
    # sellerInvoiceAmount = price × quantity − totalSellerDiscountPrice (next §2.2): checked, so a field
    # read wrongly (per unit, say) stops here rather than prices the shop order wrong. A cent per unit
    # of N11's own rounding is let through.
    if raw.get("totalSellerDiscountPrice") is not None:
        discount = _money(raw, "totalSellerDiscountPrice", where)
        if abs(gross - discount - invoiced) > CENT * quantity:
            raise UnreadablePackage(
                f"{where}sellerInvoiceAmount {invoiced} is not price × quantity − totalSellerDiscountPrice "
                f"({price} × {quantity} − {discount})"
            )
    elif invoiced > gross + CENT * quantity:
        raise UnreadablePackage(f"{where}sellerInvoiceAmount {invoiced} is more than price × quantity")
    vat_rate = _money(raw, "vatRate", where, ceiling=Decimal(101))
    if vat_rate != vat_rate.to_integral_value():
        # Turkish VAT rates are whole percents; 0.2 would be a fraction of one, not 20 %.
        raise UnreadablePackage(f"{where}vatRate {vat_rate} is not a whole percentage")
    line = Line(
        line_id=line_id,
        barcode=text_field(raw, "barcode", limit=ID_LENGTH),
        stock_code=text_field(raw, "stockCode", limit=CODE_LENGTH),
        name=text_field(raw, "productName"),
        quantity=quantity,
        # What the customer pays per unit after the seller's discounts. Rounded down to the cent, so the
        # lines never come to more than the invoice; the cent or so left shows in the order's total.
        unit_price=(invoiced / quantity).quantize(CENT, rounding=ROUND_DOWN),
        vat_rate=vat_rate,
    )
    return line, invoiced


def addresses(raw: Mapping[str, Any]) -> tuple[Address, Address]:
    """A package's billing and shipping address (the billing one is the shipping one if N11 has none)."""
    shipping = _address(raw.get("shippingAddress"), "shippingAddress")
    billing = raw.get("billingAddress")
    return (_address(billing, "billingAddress") if billing else shipping), shipping


def _address(raw: Any, name: str) -> Address:
    if not isinstance(raw, Mapping):
        raise UnreadablePackage(f"the package has no {name}")
    first, last = split_name(text_field(raw, "fullName"))
    street = with_neighbourhood(text_field(raw, "address"), text_field(raw, "neighborhood"))
    return Address(
        first_name=first,
        last_name=last,
        address1=street,
        city=text_field(raw, "city"),
        district=text_field(raw, "district"),
        postcode=text_field(raw, "postalCode"),
        country="TR",
        phone=text_field(raw, "gsm"),
    )


def _history(raw: Mapping[str, Any]) -> list[datetime]:
    """The times of the package's steps (packageHistories[].createdDate)."""
    entries = raw.get("packageHistories")
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(entry, Mapping) for entry in entries):
        raise UnreadablePackage("packageHistories is not a list of steps")
    return [_time(entry, "createdDate") for entry in entries if entry.get("createdDate") is not None]


def _money(raw: Mapping[str, Any], name: str, where: str = "", ceiling: Decimal = MAX_AMOUNT) -> Decimal:
    """An amount as N11 wrote it (a number, or text with a decimal point or comma): finite, not negative,
    below `ceiling`, in cents."""
    value = raw.get(name)
    if value is None:
        raise UnreadablePackage(f"{where}{name} is missing")
    if isinstance(value, bool | dict | list):
        raise UnreadablePackage(f"{where}{name} is not an amount")
    text = str(value).strip()
    if isinstance(value, str) and COMMA_DECIMAL.fullmatch(text):
        text = text.replace(",", ".")
    try:
        # Through str: a JSON float such as 25.99 must not become 25.989999….
        amount = Decimal(text)
    except InvalidOperation:
        raise UnreadablePackage(f"{where}{name} is not an amount") from None
    if not amount.is_finite() or not 0 <= amount < ceiling:
        raise UnreadablePackage(f"{where}{name} is out of range (0 to {ceiling})")
    return amount.quantize(CENT)


def _time(raw: Mapping[str, Any], name: str) -> datetime:
    """An N11 time: epoch ms of Istanbul wall-clock time, as the hub's UTC."""
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnreadablePackage(f"{name} {shown(value)} is not a time in epoch milliseconds")
    try:
        return datetime.fromtimestamp(value / 1000, UTC) - ISTANBUL_OFFSET
    except (OverflowError, OSError, ValueError):
        raise UnreadablePackage(f"{name} {shown(value)} is out of range") from None


def _n11_ms(moment: datetime) -> int:
    """A moment as N11 reads startDate and endDate: Istanbul wall-clock time in epoch ms."""
    return round((moment + ISTANBUL_OFFSET).timestamp() * 1000)


def _number(line_id: str) -> int | str:
    """A line id as N11 writes it: a number."""
    return int(line_id) if line_id.isascii() and line_id.isdigit() else line_id


def _reason(result: Mapping[str, Any]) -> str:
    """N11's words for a line it refused. [UNSURE] the field's name: `reasons` in a 3P client (text or a
    list), `reason` or `message` taken as well; without any, its status."""
    for name in ("reasons", "reason", "message"):
        value = result.get(name)
        if isinstance(value, list):
            value = "; ".join(str(item) for item in value if item)
        if isinstance(value, str) and value.strip():
            return sanitised(value, 80)
    return f"status {sanitised(str(result.get('status')), 40)}"
