"""Çiçeksepeti's order API: one row per order item in, grouped into one order; its two shipping paths out.

Written from the research notes (marketplace-apis-next.md §4, which transcribes ciceksepeti.dev through a
third party's notes, and marketplace-apis.md §2.3); Çiçeksepeti publishes no spec. Every call carries
`x-api-key` and a User-Agent of "<SellerId>-<IntegratorName>". GetOrders takes one request per 5 seconds per
seller, an identical body only once a minute, and at most 14 days a request: the connector paces itself per
process (`Pacer`) and never sends a body twice within the minute. Where the notes leave a reading open the
connector takes one and checks the answer against it, so a wrong guess stops with a sentence naming it rather
than reads orders wrong: each such place says [UNSURE].

Çiçeksepeti has no cancel API: a seller cancels in its panel, and push_status refuses a cancellation by name.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx

from connectors.base import (
    Address,
    InvalidAnswer,
    Line,
    MarketplaceOrder,
    PackagePage,
    Permanent,
    RateLimited,
    Shipment,
)
from connectors.carriers import by_name, tracking_page
from connectors.http import Guard, Outbound, json_body, loads, retry_after, sanitised
from connectors.payload import (
    UnreadablePackage,
    amount,
    no_nul,
    page_count,
    required_field,
    shown,
    split_name,
    text_field,
    with_neighbourhood,
)
from connectors.turns import Turns
from sync.statuses import CANCELLATIONS, RANK
from sync.statuses import CanonicalStatus as S

PLATFORM = "Çiçeksepeti"
DEFAULT_BASE_URL = "https://apis.ciceksepeti.com/api/v1"
INTEGRATOR = "OrderHub"
ORDERS = "/Order/GetOrders"
READY_FOR_CARGO = "/Order/readyforcargowithcsintegration"
SUPPLIER_STATUS = "/Order/statusupdatewithsupplierintegration"
# Çiçeksepeti writes and reads its times as Turkish wall-clock time (UTC+3, no summer time).
TURKEY = timezone(timedelta(hours=3))
MAX_PAGE_SIZE = 100
# GetOrders answers at most 14 days a request (an error otherwise). The connector asks for a little less, so
# the second or two a repeated body is moved back by (`Pacer.unique`) never takes a window over the limit.
MAX_WINDOW = timedelta(days=14) - timedelta(minutes=5)
# One request per 5 seconds per seller, an identical GetOrders body once a minute (next §4.2).
REQUEST_INTERVAL = 5.0
IDENTICAL_INTERVAL = 60.0
# A request reaches Çiçeksepeti some time after its turn, and not always as long after: the next turn comes
# this much after the last answer, or after the turn before plus this margin, whichever is later.
MARGIN = 0.5
# A call waits for its turn when it comes within about two intervals (the second request of a listing, the
# call after the lookup before it, with another process's request between them); a turn further off is the
# queue's to wait for: RateLimited, so a worker is not held long. One turn only would let two jobs that
# each need two requests take each other's second turn for ever.
MAX_WAIT = 2 * (REQUEST_INTERVAL + MARGIN) + MARGIN
# How far outside the asked window a listed row may lie before the answer is taken as misread: the rows'
# times are to the minute only.
WINDOW_TOLERANCE = timedelta(hours=1)
CLOCK_SKEW = timedelta(hours=1)
ID_LENGTH = 64
CODE_LENGTH = 120
LINK_LENGTH = 500
MAX_QUANTITY = 100_000
CENT = Decimal("0.01")

# orderItemStatusId in the hub's words (next §4.4). 11 (label ready, to be handed over) is the accepted
# state of the ÇS-cargo path, 2 that of the own-cargo path; 3 is Çiçeksepeti's own flower courier on its way.
# 18 and 20–23 are the return process.
STATUSES: Mapping[int, S] = {
    1: S.CREATED,
    2: S.PICKING,
    11: S.PICKING,
    3: S.SHIPPED,
    5: S.SHIPPED,
    7: S.DELIVERED,
    18: S.RETURNED,
    20: S.RETURNED,
    21: S.RETURNED,
    22: S.RETURNED,
    23: S.RETURNED,
}
# What the hub sets through the API, as orderItemStatusId on the own-cargo path: preparing (the approval;
# on the ÇS-cargo path the approval is readyforcargo, 1 → 11) and delivered. Shipped goes with the tracking
# code (push_tracking).
SETTABLE: Mapping[S, int] = {S.PICKING: 2, S.DELIVERED: 7}
CS_CARGO, OWN_CARGO = 1, 2
# cargoBusinessId for the own-cargo path (next §4.4), matched by the start of the carrier's name.
CARRIERS: Mapping[str, int] = {
    "mng": 1,
    "yurtiçi": 2,
    "yurtici": 2,
    "sürat": 25,
    "surat": 25,
    "aras": 43,
    "ptt": 44,
    "ups": 45,
    "horoz": 46,
    "ceva": 55,
    "sendeo": 59,
    "kargomsende": 116,
    "kolay gelsin": 117,
    "arvato": 118,
}
CARRIER_NAMES = "MNG, Yurtiçi, Sürat, Aras, PTT, UPS, Horoz, Ceva, Sendeo, kargomSENDE, Kolay Gelsin, Arvato"
YURTICI = 2
# [UNSURE] the notes say "Yurtiçi is an exception: send 11" for the own-cargo path without more: taken as
# Yurtiçi parcels going to 11 (to be handed over) where the others go to 5 (shipped).
YURTICI_STATUS = 11
# The tax identity in a row; masked wherever a payload is shown. [UNSURE] the names: not in the notes.
MASKED_KEYS: frozenset[str] = frozenset({"taxNumber", "identityNumber", "invoiceTaxNumber", "tcKimlikNo"})

NO_CANCEL = (
    "Çiçeksepeti has no cancel API: cancel the order in the Çiçeksepeti seller panel (a new or preparing "
    "order only; once it is to be shipped or shipped it can no longer be cancelled)."
)
AUTH_FAILED = "Çiçeksepeti refused the API key (401): check it in the Çiçeksepeti seller panel"
# [UNSURE, next §4.1] Çiçeksepeti sits behind Cloudflare, which answered a call from outside Turkey with a
# web page and 403.
CLOUDFLARE = (
    "Çiçeksepeti answered 403 with a web page instead of its API's answer: its Cloudflare front refuses "
    "the call (seen for calls from outside Turkey), or the API key is wrong"
)


# ---------------------------------------------------------------------------------------------------
# Pacing: one request per 5 seconds per seller, no identical body within the minute.


class Clock:
    """The pacing's time: monotonic seconds and a sleep. A test hands the pacer one whose sleep moves it on
    (tests/markets.py, SteppedClock), shared with the sandbox's Çiçeksepeti."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class Pacer:
    """This process's turns per seller: each request waits for its turn, 5 seconds after the one before;
    with the hub's shared turns (`connectors.turns`, from the factory), after every process's request
    before it too. Without them other processes are not seen: a 429 then comes back as RateLimited."""

    clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.next_turn: dict[str, float] = {}
        self.sent: dict[str, dict[str, float]] = {}

    def turn(
        self, seller: str, body: Callable[[int], dict[str, Any]] | None, turns: Turns | None = None
    ) -> dict[str, Any] | None:
        """Wait for the seller's next turn; with `body` (made for a try number: 0 the body as meant, then
        varied), the first of its versions not sent within the minute, kept as sent."""
        with self.lock:
            now = self.clock.now()
            at = max(now, self.next_turn.get(seller, now))
            shared = turns.book(seller, REQUEST_INTERVAL + MARGIN, MAX_WAIT) if turns is not None else 0.0
            if at - now > MAX_WAIT or shared is None:
                raise RateLimited(
                    f"{PLATFORM} takes one request per {REQUEST_INTERVAL:g} seconds: the hub's turns for "
                    "this seller are taken for the next seconds",
                    retry_after=max(at - now, REQUEST_INTERVAL),
                    status=None,
                )
            at = max(at, now + shared)
            self.next_turn[seller] = at + REQUEST_INTERVAL + MARGIN
            chosen = None
            if body is not None:
                sent = {
                    text: when
                    for text, when in self.sent.get(seller, {}).items()
                    if at - when < IDENTICAL_INTERVAL
                }
                for attempt in range(60):
                    chosen = body(attempt)
                    text = json.dumps(chosen, sort_keys=True)
                    digest = hashlib.sha256(f"{seller} {text}".encode()).hexdigest()
                    if text not in sent and (turns is None or turns.first(digest, IDENTICAL_INTERVAL)):
                        break
                sent[text] = at
                self.sent[seller] = sent
        if at > now:
            self.clock.sleep(at - now)
        return chosen

    def done(self, seller: str, turns: Turns | None = None) -> None:
        """The seller's request was answered: the next one goes a full interval after now."""
        with self.lock:
            after = self.clock.now() + REQUEST_INTERVAL + MARGIN
            self.next_turn[seller] = max(self.next_turn.get(seller, after), after)
        if turns is not None:
            turns.push(seller, REQUEST_INTERVAL + MARGIN)

    def use(self, clock: Clock) -> None:
        """Run on `clock` from now on, the turns and bodies of the old one forgotten."""
        with self.lock:
            self.clock = clock
            self.next_turn.clear()
            self.sent.clear()


# The process's pacer: every connector of a seller shares its turns.
PACER = Pacer()


class _Outbound(Outbound):
    """Outbound with Çiçeksepeti's own answers: its words for a refusal ({"Message": …}, as a 3P client
    reads it [UNSURE]: {"message"} and {"errors"} taken as well), its 429 without a documented wait, and
    Cloudflare's HTML 403."""

    def _refused(self, method: str, url: str, response: httpx.Response) -> None:
        status = response.status_code
        if status == 429:
            # [UNSURE] the 429's shape is not documented: its Retry-After if it names one, else the pace.
            wait = retry_after(response) if "Retry-After" in response.headers else REQUEST_INTERVAL
            raise RateLimited(
                f"{PLATFORM} answered 429: {_words(response) or 'too many requests'}", retry_after=wait
            )
        if 400 <= status < 500:
            words = _words(response)
            if status == 401:
                raise Permanent(AUTH_FAILED, status=401, category="auth")
            if status == 403 and not words:
                raise Permanent(CLOUDFLARE, status=403, category="auth")
            if words:
                category = "auth" if status == 403 else "refused"
                raise Permanent(
                    f"{PLATFORM} answered {status}: {words}", status=status, code=words, category=category
                )
        super()._refused(method, url, response)


def _words(response: httpx.Response) -> str:
    """Çiçeksepeti's own words for an error, if its body is JSON that has some."""
    try:
        payload = loads(response.content)
    except (ValueError, RecursionError):
        return ""
    if not isinstance(payload, dict):
        return ""
    errors = payload.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    for value in (payload.get("Message"), payload.get("message"), first.get("message")):
        if isinstance(value, str) and value.strip():
            return sanitised(value)
    return ""


# ---------------------------------------------------------------------------------------------------


class CiceksepetiConnector:
    kind = "ciceksepeti"

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        guard: Guard,
        *,
        transport: httpx.BaseTransport | None = None,
        pacer: Pacer | None = None,
        turns: Turns | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        seller = credentials["ciceksepeti_seller_id"]
        self.http = _Outbound(
            guard,
            platform=PLATFORM,
            headers={
                "x-api-key": credentials["ciceksepeti_api_key"],
                "User-Agent": f"{seller}-{INTEGRATOR}",
            },
            transport=transport,
        )
        self.pacer = pacer or PACER
        self.turns = turns  # every process's, where the factory gives them
        self.seller = f"{self.base} {seller}"

    def close(self) -> None:
        self.http.close()

    def subscribe(self, callback_url: str, secret: str) -> str:
        raise Permanent("Çiçeksepeti sends no webhooks: the hub reads its orders on a schedule")

    # -- reading ------------------------------------------------------------------------------------

    def check(self) -> None:
        """One request: the latest hour's order items, one of them."""
        now = datetime.now(UTC)
        self._rows(_window(now - timedelta(hours=1), now), page=0, size=1, active=True)

    def list_packages(
        self, start: datetime, end: datetime, page: int, size: int = MAX_PAGE_SIZE
    ) -> PackagePage:
        """One page of the orders whose items changed in [start, end], oldest first.

        A window over Çiçeksepeti's 14 days is read as its parts one after the other, their pages numbered
        on: the page asked for is found in the part it falls in (each part before it costs a request).
        Each page is two requests: the active items, and the inactive (cancelled) ones, which GetOrders
        lists only when asked for (isOrderStatusActive false). The two lists are paged apart, one row per
        item, so an order's rows may fall on other pages of either list or outside the window (an item
        cancelled now, its sister items changed hours ago): an order with a cancelled item on the page, or
        one at the edge of a full page, is read whole by its number rather than from the rows listed.
        """
        size = max(1, min(size, MAX_PAGE_SIZE))
        offset, part_start = 0, start
        while True:
            part_end = min(end, part_start + MAX_WINDOW)
            last_part = part_end >= end
            active, inactive, pages = self._both(_window(part_start, part_end), page - offset, size)
            if page - offset < pages or last_part:
                break
            offset += pages
            part_start = part_end
        orders, unreadable = _grouped(active + inactive)
        partial = _order_ids(inactive) | _edges(active, size) | _edges(inactive, size)
        whole = []
        for order in orders:
            if order.package_id in partial:
                found = self.get_package(order.package_id)
                if found is None:
                    continue
                order = found
            else:
                _within(order, part_start, part_end)
            whole.append(order)
        orders = whole
        orders.sort(key=lambda order: (order.modified_at, order.package_id))
        return PackagePage(
            orders=tuple(orders),
            unreadable=tuple(unreadable),
            page=page,
            total_pages=offset + max(pages, 1) + (0 if last_part else 1),
        )

    def get_package(self, package_id: str) -> MarketplaceOrder | None:
        """The order as Çiçeksepeti holds it now (GetOrders by orderNo: no dates needed)."""
        if not package_id.isascii() or not package_id.isdigit():
            return None
        active, inactive, _ = self._both({"orderNo": int(package_id)}, 0, MAX_PAGE_SIZE)
        rows = active + inactive
        # Only the order asked for: a Çiçeksepeti that ignored the filter must not hand over another one.
        rows = [row for row in rows if isinstance(row, Mapping) and str(row.get("orderId")) == package_id]
        if not rows:
            return None
        orders, unreadable = _grouped(rows)
        if unreadable:
            raise InvalidAnswer(
                f"Çiçeksepeti's copy of order {package_id} cannot be read: {unreadable[0][1]}"
            )
        return orders[0]

    def packages_of(self, order_number: str) -> list[MarketplaceOrder]:
        """The order's one package: Çiçeksepeti does not split an order (its items move on their own)."""
        found = self.get_package(order_number)
        return [found] if found is not None else []

    def _both(self, criteria: dict[str, Any], page: int, size: int) -> tuple[list[Any], list[Any], int]:
        """The active and the inactive items matching, one page of each, and the larger page count."""
        active, active_pages = self._rows(criteria, page, size, active=True)
        inactive, inactive_pages = self._rows(criteria, page, size, active=False)
        return active, inactive, max(active_pages, inactive_pages)

    def _rows(self, criteria: dict[str, Any], page: int, size: int, *, active: bool) -> tuple[list[Any], int]:
        """One GetOrders page: its rows, and how many pages there are."""

        def body(attempt: int) -> dict[str, Any]:
            """The body; a repeat within the minute (Çiçeksepeti refuses it) differs by asking for a
            window a second longer each time, or, for a lookup by order number, a page one row smaller."""
            asked = {**criteria, "page": page, "pageSize": size, "isOrderStatusActive": active}
            if attempt and "startDate" in asked:
                start = datetime.fromisoformat(asked["startDate"]) - timedelta(seconds=attempt)
                asked["startDate"] = start.strftime("%Y-%m-%dT%H:%M:%S")
            elif attempt:
                asked["pageSize"] = max(1, size - attempt)
            return asked

        payload = json_body(self._send("POST", ORDERS, body=body), dict, PLATFORM)
        rows = payload.get("supplierOrderListWithBranch")
        if rows is None:
            rows = []
        if not isinstance(rows, list):
            raise InvalidAnswer("Çiçeksepeti's order list has no list of items (supplierOrderListWithBranch)")
        count = page_count(payload.get("orderListCount", len(rows)), "Çiçeksepeti's orderListCount")
        if payload.get("pageCount") is not None:
            pages = page_count(payload["pageCount"], "Çiçeksepeti's pageCount")
        else:
            pages = -(-count // size)
        if pages > 1:
            _in_order(rows)
        return rows, pages

    # -- writing ------------------------------------------------------------------------------------

    def approve(self, package_id: str, lines: Sequence[tuple[str, int]]) -> None:
        """The seller takes the order: on the ÇS-cargo path its new items go to 11 (to be shipped: the
        label is made), on the own-cargo path to 2 (preparing). Items moved on already are not sent again."""
        order, rows = self._live(package_id)
        waiting = _items(rows, lines, {1})
        if not waiting:
            return
        if _model(order, rows) == CS_CARGO:
            self._ready_for_cargo(waiting)
        else:
            self._supplier_status([{"orderItemId": item, "orderItemStatusId": 2} for item in waiting])

    def push_status(self, package_id: str, lines: Sequence[tuple[str, int]], status: S) -> None:
        if status in CANCELLATIONS:
            raise Permanent(NO_CANCEL, code="no_cancel_api")
        if status is S.PICKING:
            self.approve(package_id, lines)
            return
        if status is not S.DELIVERED:
            raise Permanent(
                f"The hub cannot set {status.value} on Çiçeksepeti: it sets Shipped with the tracking code "
                "of your own carrier (Update Feedback), or itself when it ships with its contracted carrier.",
                code="not_settable",
            )
        order, rows = self._live(package_id)
        if _model(order, rows) == CS_CARGO:
            raise Permanent(
                "Çiçeksepeti ships this order with its contracted carrier and sets Delivered itself.",
                code="not_settable",
            )
        shipped = _items(rows, lines, {5, 11})
        if not shipped and _items(rows, lines, {1, 2}):
            raise Permanent(
                "Çiçeksepeti takes Delivered only for a shipped item: send the tracking code first.",
                code="not_settable",
            )
        if shipped:
            self._supplier_status(
                [
                    {
                        "orderItemId": item,
                        "orderItemStatusId": SETTABLE[S.DELIVERED],
                        "receiverName": None,
                        "deliveryTime": None,
                    }
                    for item in shipped
                ]
            )

    def push_tracking(self, package_id: str, tracking_number: str, carrier: str) -> None:
        """Shipped with the seller's own carrier (own-cargo path): 2 → 5 with the carrier's cargoBusinessId,
        the number and the carrier's tracking page; an item still new is set to preparing first."""
        business_id = by_name(CARRIERS, carrier.strip())
        if business_id is None:
            raise Permanent(
                f"Çiçeksepeti has no code for the carrier {shown(carrier)}: it takes {CARRIER_NAMES}.",
                code="unknown_carrier",
            )
        order, rows = self._live(package_id)
        if _model(order, rows) == CS_CARGO:
            raise Permanent(
                "Çiçeksepeti ships this order with its contracted carrier and takes no tracking code for it: "
                "its own code comes back with the order.",
                code="not_supported",
            )
        lines = [(line.line_id, line.quantity) for line in order.lines]
        new = _items(rows, lines, {1})
        if new:
            self._supplier_status([{"orderItemId": item, "orderItemStatusId": 2} for item in new])
        preparing = _items(rows, lines, {1, 2})
        if not preparing:
            return  # shipped already (a retry after a lost answer): nothing to send
        page = tracking_page(carrier)
        status = YURTICI_STATUS if business_id == YURTICI else 5
        self._supplier_status(
            [
                {
                    "orderItemId": item,
                    "orderItemStatusId": status,
                    "cargoBusinessId": business_id,
                    "shipmentNumber": tracking_number,
                    "shipmentTrackingUrl": page.format(code=tracking_number) if page else None,
                    "receiverName": None,
                    "deliveryTime": None,
                }
                for item in preparing
            ]
        )

    def _live(self, package_id: str) -> tuple[MarketplaceOrder, list[Mapping[str, Any]]]:
        order = self.get_package(package_id)
        if order is None:
            raise Permanent(f"Çiçeksepeti has no order {shown(package_id)}", code="not_found")
        rows = [row for row in order.raw.get("rows") or () if isinstance(row, Mapping)]
        return order, rows

    def _ready_for_cargo(self, items: list[int]) -> None:
        body = {"orderItemsGroup": [{"orderItemIds": items}]}
        payload = json_body(self._send("PUT", READY_FOR_CARGO, json=body), dict, PLATFORM)
        answered = payload.get("statusUpdateResponse")
        if not isinstance(answered, list):
            raise InvalidAnswer("Çiçeksepeti's answer to readyforcargo has no statusUpdateResponse")

    def _supplier_status(self, items: list[dict[str, Any]]) -> None:
        self._send("PUT", SUPPLIER_STATUS, json={"orderItems": items})

    def _send(
        self, method: str, path: str, *, body: Callable[[int], dict[str, Any]] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One request in the seller's turn; a GetOrders body (`body`) not sent within the minute."""
        chosen = self.pacer.turn(self.seller, body, self.turns)
        if chosen is not None:
            kwargs["json"] = chosen
        try:
            return self.http.request(method, f"{self.base}{path}", **kwargs)
        finally:
            self.pacer.done(self.seller, self.turns)


# ---------------------------------------------------------------------------------------------------
# Reading the rows.


def _window(start: datetime, end: datetime) -> dict[str, str]:
    """GetOrders' window, in Turkish wall-clock time. [UNSURE] that it selects by the items' last change
    (the notes do not say; a by-creation window would miss status changes): `_within` stops a page whose
    items fall outside it, which is what a wrong reading looks like."""
    # To the second, the start down and the end up: a change in the window's last second is inside it.
    ceiling = end.replace(microsecond=0) + (timedelta(seconds=1) if end.microsecond else timedelta(0))
    return {"startDate": _cs_time(start), "endDate": _cs_time(ceiling)}


def _cs_time(moment: datetime) -> str:
    return moment.astimezone(TURKEY).strftime("%Y-%m-%dT%H:%M:%S")


def _in_order(rows: list[Any]) -> None:
    """The pull pages by time (from the newest change read): across pages Çiçeksepeti must list oldest
    first. [UNSURE] its order (the notes do not say): out of order across pages stops here, by name."""
    times = []
    for row in rows:
        if isinstance(row, Mapping):
            try:
                times.append(_moment(row, "orderModifyDate", "orderModifyTime"))
            except UnreadablePackage:
                continue
    if times != sorted(times):
        raise InvalidAnswer(
            "Çiçeksepeti listed order items out of the order of their last change over more than one page "
            "(connectors/ciceksepeti.py reads them as oldest first)"
        )


def _within(order: MarketplaceOrder, start: datetime, end: datetime) -> None:
    if not start - WINDOW_TOLERANCE <= order.modified_at <= end + WINDOW_TOLERANCE:
        raise InvalidAnswer(
            f"Çiçeksepeti listed order {order.package_id} as changed at "
            f"{order.modified_at:%Y-%m-%d %H:%M} UTC, outside the window asked for ({start:%Y-%m-%d %H:%M} "
            f"to {end:%Y-%m-%d %H:%M} UTC): its times or its window are not read as it means them "
            "(connectors/ciceksepeti.py, TURKEY and _window)"
        )


def _grouped(rows: list[Any]) -> tuple[list[MarketplaceOrder], list[tuple[str, str, dict[str, Any]]]]:
    """The rows as orders, one per orderId, and the orders that cannot be read."""
    groups: dict[str, list[Any]] = {}
    unreadable: list[tuple[str, str, dict[str, Any]]] = []
    for row in rows:
        order_id = row.get("orderId") if isinstance(row, Mapping) else None
        if isinstance(order_id, bool) or not isinstance(order_id, int | str) or not str(order_id).strip():
            unreadable.append(("?", "an order item has no orderId", row if isinstance(row, dict) else {}))
            continue
        groups.setdefault(str(order_id).strip(), []).append(row)
    orders = []
    for order_id, group in groups.items():
        # Each item once: an item listed both active and inactive is taken as it is now, inactive.
        by_item: dict[str, Any] = {}
        for row in group:
            by_item[str(row.get("orderItemId"))] = row
        raw = {"orderId": order_id, "rows": list(by_item.values())}
        try:
            orders.append(parse_order(raw))
        except UnreadablePackage as error:
            unreadable.append((order_id, str(error), raw))
    return orders, unreadable


def _order_ids(rows: list[Any]) -> set[str]:
    return {str(row.get("orderId")).strip() for row in rows if isinstance(row, Mapping)}


def _edges(rows: list[Any], size: int) -> set[str]:
    """The orders of a full page's first and last rows: their other rows may be on the next or the last
    page."""
    if len(rows) < size:
        return set()
    return _order_ids([rows[0], rows[-1]])


def parse_order(raw: Mapping[str, Any]) -> MarketplaceOrder:
    """One order (its item rows, as Çiçeksepeti listed them) as the hub sees it; raises UnreadablePackage
    naming the field that is wrong."""
    no_nul(raw, "order")
    rows = raw.get("rows")
    if not isinstance(rows, list) or not rows or not all(isinstance(row, Mapping) for row in rows):
        raise UnreadablePackage("the order has no items")
    order_id = required_field(raw, "orderId", limit=ID_LENGTH)
    read = [(row, _row_status(row)) for row in rows]
    live = [(row, status) for row, status in read if status not in CANCELLATIONS]
    # The order is as far as its least advanced live item; cancelled when none is live.
    row, status = min(live, key=lambda pair: RANK[pair[1]]) if live else read[0]
    native = str(row.get("orderItemStatusId"))
    created = min(_moment(row, "orderCreateDate", "orderCreateTime") for row in rows)
    modified = max(
        _moment(row, "orderModifyDate", "orderModifyTime") if row.get("orderModifyDate") else created
        for row in rows
    )
    if modified > datetime.now(UTC) + CLOCK_SKEW:
        raise UnreadablePackage("orderModifyDate is in the future")
    # An item cancelled in a live order stays listed with no units live: the hub reads them as cancelled
    # (and notes it on the shop order); nothing of it is paid.
    lines = [
        (replace(line, quantity=0), Decimal(0)) if live and item in CANCELLATIONS else (line, paid)
        for (line, paid), (_, item) in zip(map(_line, rows), read, strict=True)
    ]
    billing, shipping = addresses(raw)
    first = live[0][0] if live else rows[0]
    link = text_field(first, "shipmentTrackingUrl")
    return MarketplaceOrder(
        package_id=order_id,
        order_number=order_id,
        status=status,
        native_status=native,
        ordered_at=created,
        modified_at=modified,
        customer_name=text_field(first, "senderName") or text_field(first, "receiverName"),
        customer_email=text_field(first, "invoiceEmail"),
        currency="TRY",  # Çiçeksepeti sells in lira only and names no currency
        # What the customer paid for the items. [UNSURE] cargoPrice: whether the customer pays it or it is
        # what Çiçeksepeti charges the seller; kept in raw, not added.
        total=sum((paid for _, paid in lines), Decimal(0)).quantize(CENT),
        billing_address=billing,
        shipping_address=shipping,
        lines=tuple(line for line, _ in lines),
        shipment=Shipment(
            carrier=text_field(first, "cargoCompany")[:CODE_LENGTH],
            tracking_number=text_field(first, "cargoNumber", limit=CODE_LENGTH),
            # partialNumber: the number readyforcargo gives the label, kept as the shipment barcode.
            shipment_barcode=text_field(first, "partialNumber", limit=CODE_LENGTH),
            package_number=order_id,
            tracking_link=link if len(link) <= LINK_LENGTH else "",
        ),
        raw=dict(raw),
    )


def _row_status(row: Mapping[str, Any]) -> S:
    """An item's status: inactive (isOrderStatusActive false) is a cancelled item, whatever its id says
    [UNSURE: the notes say only that cancelled items are listed as inactive]."""
    if row.get("isOrderStatusActive") is False:
        return S.CANCELLED
    value = row.get("orderItemStatusId")
    status = STATUSES.get(value) if isinstance(value, int) and not isinstance(value, bool) else None
    if status is None:
        raise UnreadablePackage(f"unknown orderItemStatusId {shown(value)}")
    return status


def _line(row: Mapping[str, Any]) -> tuple[Line, Decimal]:
    """An item and what the customer paid for it (invoicePrice)."""
    line_id = required_field(row, "orderItemId", limit=ID_LENGTH)
    where = f"item {line_id}: "
    quantity = row.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise UnreadablePackage(f"{where}quantity {shown(quantity)} is not a count")
    total = amount(row.get("totalPrice"), f"{where}totalPrice")
    discount = amount(row.get("discount") or 0, f"{where}discount")
    paid = amount(row.get("invoicePrice"), f"{where}invoicePrice")
    # [UNSURE] the money fields' meaning: read as totalPrice = itemPrice × quantity, discount the seller's on
    # the item, invoicePrice = totalPrice − discount, VAT included. Checked, so a wrong reading stops here.
    if abs(total - discount - paid) > CENT * quantity:
        raise UnreadablePackage(
            f"{where}invoicePrice {paid} is not totalPrice − discount ({total} − {discount})"
        )
    vat = amount(row.get("tax"), f"{where}tax", ceiling=Decimal(101))
    if vat != vat.to_integral_value():
        raise UnreadablePackage(f"{where}tax {vat} is not a whole percentage")
    line = Line(
        line_id=line_id,
        barcode=text_field(row, "barcode", limit=ID_LENGTH),
        stock_code=text_field(row, "code", limit=CODE_LENGTH),  # the seller's stock code
        name=text_field(row, "name"),
        quantity=quantity,
        unit_price=(paid / quantity).quantize(CENT, rounding=ROUND_DOWN),
        vat_rate=vat,
    )
    return line, paid


def _moment(row: Mapping[str, Any], date_name: str, time_name: str) -> datetime:
    """A "dd/MM/yyyy" date and an "HH:mm" time, Turkish wall clock, as the hub's UTC."""
    date, clock = row.get(date_name), row.get(time_name) or "00:00"
    if not isinstance(date, str) or not isinstance(clock, str):
        raise UnreadablePackage(f"{date_name} {shown(date)} is not a dd/MM/yyyy date")
    try:
        local = datetime.strptime(f"{date.strip()} {clock.strip()}", "%d/%m/%Y %H:%M")
    except ValueError:
        raise UnreadablePackage(f"{date_name} {shown(date)} {shown(clock)} is not dd/MM/yyyy HH:mm") from None
    return local.replace(tzinfo=TURKEY).astimezone(UTC)


def _items(
    rows: Sequence[Mapping[str, Any]], lines: Sequence[tuple[str, int]], statuses: set[int]
) -> list[int]:
    """The active items among `lines` whose orderItemStatusId is one of `statuses`, as numbers."""
    wanted = {str(line_id) for line_id, _ in lines}
    found = []
    for row in rows:
        item = row.get("orderItemId")
        if (
            str(item) in wanted
            and isinstance(item, int)
            and row.get("isOrderStatusActive") is not False
            and row.get("orderItemStatusId") in statuses
        ):
            found.append(item)
    return found


def _model(order: MarketplaceOrder, rows: Sequence[Mapping[str, Any]]) -> int:
    """The order's shipping path: cargoModelType 1 (Çiçeksepeti's contracted cargo) or 2 (the seller's)."""
    models = {row.get("cargoModelType") for row in rows if row.get("isOrderStatusActive") is not False}
    if len(models) != 1 or not models <= {CS_CARGO, OWN_CARGO}:
        raise InvalidAnswer(
            f"Çiçeksepeti names no single shipping path (cargoModelType) for order {order.package_id}: "
            f"{shown(sorted(map(str, models)))}"
        )
    (model,) = models
    return CS_CARGO if model == CS_CARGO else OWN_CARGO


def addresses(raw: Mapping[str, Any]) -> tuple[Address, Address]:
    """A stored order's billing address (the sender, who ordered and pays) and shipping address (the
    receiver, whom the flowers go to). [UNSURE] the sender's address fields: only senderName and
    senderCity are seen in a 3P client; where the sender has no address the receiver's stands."""
    rows = raw.get("rows")
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], Mapping):
        raise UnreadablePackage("the order has no items")
    row = rows[0]
    first, last = split_name(required_field(row, "receiverName"))
    # The neighbourhood is receiverRegion.
    street = with_neighbourhood(text_field(row, "receiverAddress"), text_field(row, "receiverRegion"))
    shipping = Address(
        first_name=first,
        last_name=last,
        address1=street,
        city=text_field(row, "receiverCity"),
        district=text_field(row, "receiverDistrict"),
        postcode=text_field(row, "receiverPostalCode"),
        country="TR",
        phone=text_field(row, "receiverPhone"),
    )
    sender = text_field(row, "senderName")
    if not sender:
        return shipping, shipping
    sender_first, sender_last = split_name(sender)
    return (
        Address(
            first_name=sender_first,
            last_name=sender_last,
            address1=text_field(row, "senderAddress") or shipping.address1,
            city=text_field(row, "senderCity") or shipping.city,
            district=text_field(row, "senderDistrict") or shipping.district,
            postcode=text_field(row, "senderPostalCode") if row.get("senderAddress") else shipping.postcode,
            country="TR",
            phone=text_field(row, "senderPhone"),
        ),
        shipping,
    )
