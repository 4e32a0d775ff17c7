"""Pazarama's merchant API: orders in; an item's acceptance, an own carrier's shipment and a seller's
cancellation ("Tedarik Edilemedi") out.

Written from the research notes (marketplace-apis-next.md §5, which transcribes the partner portal's pages
isortagim.pazarama.com/auth/integration/<slug>); Pazarama publishes no spec and has no test environment
(specs/pazarama.openapi.yml is the hub's own subset). Auth is OAuth2 client credentials: a token from
isortagimgiris.pazarama.com, valid an hour, kept per process (connectors/tokens.py) and sent as a Bearer
token to isortagimapi.pazarama.com. Every answer comes in one envelope {data, success, messageCode, message,
userMessage}.

Pazarama keeps its statuses per item. The hub's unit is one Pazarama order: package_id = order_number =
its orderNumber (the status calls take it with the item's orderItemId), every item a line, a cancelled one
with quantity 0. The listing reads by ORDER date and has no "updated since": a status change of an older
order is found by the registry's pull_overlap (the pull reads the last two weeks again, about once a
minute), and by `get_package`, which looks an order up by its number (six months back) before every action.

Where the notes leave a reading open the connector takes one and checks the answer against it, so a wrong
guess stops with a sentence naming it (or Pazarama's own words) rather than reading orders wrong: each such
place says [UNSURE].
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from itertools import pairwise
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors.base import (
    Address,
    InvalidAnswer,
    Line,
    MarketplaceOrder,
    PackagePage,
    Permanent,
    RateLimited,
    Retryable,
    Shipment,
)
from connectors.carriers import tracking_page
from connectors.http import Guard, Outbound, json_body, retry_after, sanitised
from connectors.payload import (
    UnreadablePackage,
    amount,
    no_nul,
    required_field,
    shown,
    split_name,
    text_field,
    with_neighbourhood,
)
from connectors.tokens import TokenCache
from sync.statuses import CANCELLATIONS, RANK
from sync.statuses import CanonicalStatus as S

log = logging.getLogger(__name__)

PLATFORM = "Pazarama"
DEFAULT_BASE_URL = "https://isortagimapi.pazarama.com"
API_HOST = "isortagimapi.pazarama.com"
# The token comes from another host than the API (next §5.1). The connector derives it: Pazarama's login
# host for Pazarama's API, else (the sandbox, a test) {base}/connect/token, so whatever plays Pazarama plays
# its login too and a seller's secret never goes anywhere the seller did not point the hub (as Amazon's LWA).
TOKEN_URL = "https://isortagimgiris.pazarama.com/connect/token"
SCOPE = "merchantgatewayapi.fullaccess"
USER_AGENT = "OrderHub (order integration hub)"
ORDERS = "/order/getOrdersForApi"
UPDATE = "/order/updateOrderStatus"
DELIVERIES = "/sellerRegister/getSellerDelivery"
# Tokens last an hour; renewed five minutes before.
TOKENS = TokenCache(margin=300)
forget_tokens = TOKENS.clear
TOKEN_LIFETIME = 3600.0
# Pazarama reads startDate/endDate as Istanbul wall-clock time ("YYYY-MM-DDTHH:mm", +03:00, next §5.2).
# [UNSURE] that it writes orderDate the same way when it names no offset: the connector assumes so, and
# `_within` stops a page whose orders fall outside the window asked for, which is what a wrong reading
# looks like. One constant to correct.
ISTANBUL = timedelta(hours=3)
MINUTE = timedelta(minutes=1)
# At most one month per request (next §5.2): the shortest month, so no calendar can make it too long.
MAX_WINDOW = timedelta(days=28)
# How far back the pull reads orders again (the registry's pull_overlap): Pazarama has no "changed since",
# so an order's later steps (shipped, delivered, cancelled) are found by reading it again. Two weeks
# cover an order's way to the customer; a later change (a return) shows when the hub acts on the order.
REREAD = timedelta(days=14)
# [UNSURE] Pazarama's largest page: the notes' example asks for 100.
MAX_PAGE_SIZE = 100
WINDOW_TOLERANCE = timedelta(minutes=2)
CLOCK_SKEW = timedelta(hours=1)
ID_LENGTH = 64
CODE_LENGTH = 120
LINK_LENGTH = 500
MAX_QUANTITY = 100_000
CENT = Decimal("0.01")
OK = "ORD0"  # messageCode of a good order answer (next §5.2)

# Pazarama's item statuses (orderItemStatus, next §5.3) in the hub's words.
STATUSES: Mapping[int, S] = {
    3: S.CREATED,  # Alındı
    12: S.PICKING,  # Hazırlanıyor
    5: S.SHIPPED,  # Kargoya Verildi
    16: S.AT_COLLECTION_POINT,  # Mağazada
    19: S.AT_COLLECTION_POINT,  # Teslimat Noktasında
    11: S.DELIVERED,  # Teslim Edildi
    14: S.UNDELIVERED,  # Teslim Edilemedi
    6: S.CANCELLED,  # İptal
    # [UNSURE] İptal Süreci (a cancellation under way) taken for cancelled, as next §11 suggests: it
    # mostly ends in 6. One line to change if Pazarama turns many of them down.
    18: S.CANCELLED,
    13: S.UNSUPPLIED,  # Tedarik Edilemedi: the seller's cancellation
    # A return asked for (İade Süreci) or refused (İade Reddedildi) leaves the goods with the customer.
    7: S.DELIVERED,
    9: S.DELIVERED,
    8: S.RETURNED,  # İade Onaylandı
    10: S.RETURNED,  # İade Edildi
}
NAMES: Mapping[int, str] = {
    3: "Alındı",
    12: "Hazırlanıyor",
    5: "Kargoya Verildi",
    16: "Mağazada",
    19: "Teslimat Noktasında",
    11: "Teslim Edildi",
    14: "Teslim Edilemedi",
    6: "İptal",
    18: "İptal Süreci",
    13: "Tedarik Edilemedi",
    7: "İade Süreci",
    8: "İade Onaylandı",
    9: "İade Reddedildi",
    10: "İade Edildi",
}
NEW, ACCEPTED, SHIPPED, UNSUPPLIED = 3, 12, 5, 13
# What the hub sets through the API by status: Hazırlanıyor (accepted). Shipped goes with the tracking
# code (push_tracking), a cancellation as 13.
SETTABLE = {S.PICKING: ACCEPTED}
MASKED_KEYS = frozenset({"identityNumber", "taxNumber"})
# An own carrier's parcel (deliveryType 1, next §5.3).
OWN_CARRIER = 1
AUTH_FAILED = (
    "Pazarama refused the API key and secret: check them in the Pazarama partner panel "
    "(isortagim.pazarama.com), Hesap Bilgileri › API Bilgileri; a new key revokes the old one"
)
TOKEN_REFUSED = "Pazarama's API refused a new access token (401): check the API key's permissions"


def token_url(base_url: str) -> str:
    """Where the access token comes from: Pazarama's login host for its API, else the base's own."""
    host = (urlsplit(base_url).hostname or "").lower()
    return TOKEN_URL if host == API_HOST else f"{base_url.rstrip('/')}/connect/token"


class _PazaramaOutbound(Outbound):
    """Outbound, with Pazarama's words for a refusal: its envelope's messageCode and userMessage (or
    message), which `platform_code` does not know."""

    def _refused(self, method: str, url: str, response: httpx.Response) -> None:
        status = response.status_code
        words = envelope_words(response)
        if status == 429:
            raise RateLimited(f"{PLATFORM} answered 429", retry_after=retry_after(response), code=words)
        if status >= 500 or status in (408, 425):
            raise Retryable(f"{PLATFORM} answered {status}" + (f": {words}" if words else ""), status=status)
        if 400 <= status < 500 and status not in (401, 403):
            log.info("%s %s answered %s: %s", method, url, status, response.text[:500])
            message = f"{PLATFORM} answered {status}" + (f": {words}" if words else "")
            raise Permanent(message, status=status, code=words)
        super()._refused(method, url, response)


def envelope_words(response: httpx.Response) -> str:
    """messageCode and the userMessage (else message) of Pazarama's envelope, short and printable."""
    try:
        payload = json_body(response, dict, PLATFORM)
    except InvalidAnswer:
        return ""
    return _words(payload)


def _words(payload: Mapping[str, Any]) -> str:
    texts = [payload.get("messageCode"), payload.get("userMessage") or payload.get("message")]
    return sanitised(": ".join(str(text) for text in texts if isinstance(text, str) and text.strip()))


class PazaramaConnector:
    kind = "pazarama"

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
        client_id = credentials["pazarama_client_id"]
        secret = credentials["pazarama_client_secret"]
        # The cache's key: everything that makes the token, never kept itself.
        self.key = hashlib.sha256("\0".join((self.token_url, client_id, secret)).encode()).hexdigest()
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        self.http = _PazaramaOutbound(guard, platform=PLATFORM, headers=headers, transport=transport)
        self.login = Outbound(
            guard, platform=PLATFORM, auth=(client_id, secret), headers=headers, transport=transport
        )

    def close(self) -> None:
        self.http.close()
        self.login.close()

    def subscribe(self, callback_url: str, secret: str) -> str:
        raise Permanent("Pazarama sends no webhooks: the hub reads its orders on a schedule")

    # -- the token ---------------------------------------------------------------------------------

    def _fetch_token(self) -> tuple[str, float]:
        """POST connect/token: Basic clientId:clientSecret, the client-credentials grant."""
        form = {"grant_type": "client_credentials", "scope": SCOPE}
        try:
            response = self.login.request("POST", self.token_url, data=form)
        except Permanent as error:
            # 400 invalid_token / invalid_client (next §5.1): the seller's keys, in words.
            if error.status in (400, 401, 403):
                raise Permanent(f"{AUTH_FAILED} [{error}]", status=error.status, category="auth") from None
            raise
        payload = json_body(response, dict, PLATFORM)
        # [UNSURE] the field's name: data.accessToken in the portal's text, access_token in some code.
        found = payload.get("data")
        data: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        value = data.get("accessToken") or payload.get("access_token")
        lifetime = data.get("expiresIn") or payload.get("expires_in") or TOKEN_LIFETIME
        if not isinstance(value, str) or not value or not value.isascii() or not value.isprintable():
            raise InvalidAnswer(
                "Pazarama's login answered without an access token "
                "(neither data.accessToken nor access_token)"
            )
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or not 0 < lifetime <= 86_400:
            lifetime = TOKEN_LIFETIME
        return value, float(lifetime)

    def _send(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One API call with the token; the envelope back, its `success` checked. Pazarama answers a token
        it no longer takes with 401 and an empty body: a new one is fetched and the call sent once more."""
        for attempt in (1, 2):
            token, _ = TOKENS.get(self.key, self._fetch_token)
            self.http.headers["Authorization"] = f"Bearer {token}"
            try:
                response = self.http.request(method, f"{self.base}{path}", **kwargs)
            except Permanent as error:
                if error.status != 401:
                    raise
                TOKENS.forget(self.key, token)
                if attempt == 2:
                    raise Permanent(TOKEN_REFUSED, status=401, category="auth") from None
                continue
            finally:
                del self.http.headers["Authorization"]
            payload = json_body(response, dict, PLATFORM)
            if payload.get("success") is not True:
                # [UNSURE] whether Pazarama refuses with 200 and success false too: its words either way.
                raise Permanent(f"{PLATFORM} refused: {_words(payload) or 'success is not true'}")
            return payload
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reading -----------------------------------------------------------------------------------

    def list_packages(
        self, start: datetime, end: datetime, page: int, size: int = MAX_PAGE_SIZE
    ) -> PackagePage:
        """One page (0-based, as the hub counts) of the orders PLACED in [start, end], oldest first.

        Pazarama's window is on the order date, to the minute, its end exclusive: the start is taken down
        to its minute, the end to the next minute, so nothing at either edge is left out. A window longer
        than a month is refused with ValueError before any call (the pull steps 14 days at a time).
        Pazarama names no page count: a full page may have a next one.
        """
        first, after = _minute(start), _minute(end) + MINUTE
        if after - first > MAX_WINDOW:
            raise ValueError(f"Pazarama answers at most a month per request; asked for {end - start}")
        size = max(1, min(size, MAX_PAGE_SIZE))
        body = {
            "pageSize": size,
            "pageNumber": page + 1,
            "startDate": _pazarama_time(first),
            "endDate": _pazarama_time(after),
            "orderNumber": None,
        }
        payload = self._send("POST", ORDERS, json=body)
        raws = _data(payload)
        orders: list[MarketplaceOrder] = []
        unreadable: list[tuple[str, str, dict[str, Any]]] = []
        for raw in raws:
            try:
                order = parse_order(raw)
            except UnreadablePackage as error:
                unreadable.append((_filed_as(raw), str(error), raw if isinstance(raw, dict) else {}))
                continue
            _within(order, start, end)
            orders.append(order)
        full = len(raws) >= size
        if not full and page == 0:
            orders.sort(key=lambda order: order.modified_at)  # the whole window: its order is the hub's
        elif any(later.modified_at < earlier.modified_at for earlier, later in pairwise(orders)):
            # The pull goes on from the newest order read: pages not oldest first would make it skip
            # some. [UNSURE] Pazarama's order (the notes do not say): this is what a wrong guess looks like.
            raise InvalidAnswer("Pazarama listed orders out of the order of their date (orderDate)")
        return PackagePage(
            orders=tuple(orders),
            unreadable=tuple(unreadable),
            page=page,
            total_pages=page + 2 if full else page + 1,
        )

    def check(self) -> None:
        """The token, then the seller's carriers: proves the keys and the API's acceptance of them."""
        self._deliveries()

    def get_package(self, package_id: str) -> MarketplaceOrder | None:
        """The order as Pazarama holds it now, looked up by its number (six months back)."""
        if not package_id.isascii() or not package_id.isdigit():
            return None
        # [UNSURE] whether Pazarama wants dates beside orderNumber: the notes say a lookup by number
        # reaches back six months, so none are sent; a refusal comes back in Pazarama's words.
        body = {"pageSize": 1, "pageNumber": 1, "orderNumber": int(package_id)}
        found = []
        for raw in _data(self._send("POST", ORDERS, json=body)):
            try:
                found.append(parse_order(raw))
            except UnreadablePackage as error:
                raise InvalidAnswer(
                    f"Pazarama's copy of order {package_id} cannot be read: {error}"
                ) from None
        # Only the order asked for: a Pazarama that ignored the number must not hand over another one.
        return next((order for order in found if order.package_id == package_id), None)

    def packages_of(self, order_number: str) -> list[MarketplaceOrder]:
        """The one package a Pazarama order is."""
        found = self.get_package(order_number)
        return [found] if found is not None else []

    # -- writing -----------------------------------------------------------------------------------

    def approve(self, package_id: str, lines: Sequence[tuple[str, int]]) -> None:
        """Hazırlanıyor (12) for each of the lines still Alındı (3): asked again, nothing is sent twice."""
        for item in self._items(package_id, lines):
            if _item_status(item) == NEW:
                self._update(package_id, item, ACCEPTED)

    def push_status(self, package_id: str, lines: Sequence[tuple[str, int]], status: S) -> None:
        if status in CANCELLATIONS:
            self._cancel(package_id, lines)
            return
        if status not in SETTABLE:
            raise Permanent(
                f"The hub cannot set {status.value} on Pazarama: it takes Hazırlanıyor (accepted) from the "
                "hub, Kargoya Verildi with your carrier's tracking code, and sets the rest itself."
            )
        self.approve(package_id, lines)

    def _cancel(self, package_id: str, lines: Sequence[tuple[str, int]]) -> None:
        """Tedarik Edilemedi (13) for the lines, each whole: Pazarama's call takes an item, no quantity."""
        items = self._items(package_id, lines)
        held = {str(item.get("orderItemId")): item.get("quantity") for item in items}
        for line_id, quantity in lines:
            units = held.get(line_id)
            if isinstance(units, int) and quantity < units:
                raise Permanent(
                    f"Pazarama cancels an item whole, not {quantity} of its {units} units: cancel "
                    "the rest in the Pazarama partner panel.",
                    code="not_supported",
                )
        # Every item checked before any is sent: a refusal leaves the order as it was, not cancelled in part.
        # (An item cancelled already is a retry after a lost answer.)
        pending = [item for item in items if STATUSES.get(_item_status(item)) not in CANCELLATIONS]
        for item in pending:
            if STATUSES.get(_item_status(item)) not in (S.CREATED, S.PICKING):
                raise Permanent(
                    f"Pazarama takes a seller's cancellation only before the parcel ships; item "
                    f"{item.get('orderItemId')} is {_native(item)}.",
                    code="not_cancellable",
                )
        for item in pending:
            self._update(package_id, item, UNSUPPLIED)

    def push_tracking(self, package_id: str, tracking_number: str, carrier: str) -> None:
        """Kargoya Verildi (5) with an own carrier's code: the carrier's id (a GUID) is the seller's
        delivery option named like `carrier` (getSellerDelivery). An item still Alındı is accepted first,
        as Pazarama ships only accepted items; an item shipped with this very code already is left."""
        company = self._carrier_id(carrier)
        page = tracking_page(carrier)
        link = page.format(code=tracking_number) if page else ""
        order = self.get_package(package_id)
        if order is None:
            raise Permanent(f"Pazarama has no order {package_id} in the last six months")
        for item in _items_of(order.raw):
            status = _item_status(item)
            cargo = _cargo_of(item)
            if status == SHIPPED and str(cargo.get("trackingNumber") or "") == tracking_number:
                continue
            if status not in (NEW, ACCEPTED, SHIPPED):
                continue  # cancelled, or further along: nothing of an own parcel to say
            if status == NEW:
                self._update(package_id, item, ACCEPTED)
            extra = {
                "deliveryType": OWN_CARRIER,
                "shippingTrackingNumber": tracking_number,
                "trackingUrl": link,
                "cargoCompanyId": company,
            }
            self._update(package_id, item, SHIPPED, extra)

    def _carrier_id(self, carrier: str) -> str:
        """The seller's delivery option (cargoCompanyId) for the carrier the seller named."""
        options = self._deliveries()
        wanted = _carrier_key(carrier)
        exact = [company for name, company in options if wanted and _carrier_key(name) == wanted]
        # Else by the first word alone ("Yurtiçi" for "Yurtiçi Kargo A.Ş."), where only one option has it.
        first = [
            company
            for name, company in options
            if wanted and _carrier_key(name).split()[:1] == wanted.split()[:1]
        ]
        if exact or len(first) == 1:
            return (exact or first)[0]
        named = ", ".join(name for name, _ in options) or "none"
        raise Permanent(
            f"Pazarama has no carrier {carrier!r} among your delivery options ({named}): add it in the "
            "Pazarama partner panel, or name the carrier as Pazarama does.",
            code="unknown_carrier",
        )

    def _deliveries(self) -> list[tuple[str, str]]:
        """GET getSellerDelivery: (name, cargoCompanyId) of each carrier the seller ships with. [UNSURE]
        the fields' names (the notes name only the call and the GUID): cargoCompanyId or id, and
        cargoCompanyName, companyName or name; an answer with neither stops here, naming them."""
        data = self._send("GET", DELIVERIES).get("data")
        entries = data if isinstance(data, list) else []
        if data is not None and not isinstance(data, list):
            raise InvalidAnswer("Pazarama's delivery options (getSellerDelivery) are not a list")
        options = []
        for entry in entries:
            if not isinstance(entry, Mapping):
                raise InvalidAnswer("Pazarama's delivery options (getSellerDelivery) are not objects")
            company = entry.get("cargoCompanyId") or entry.get("id")
            name = entry.get("cargoCompanyName") or entry.get("companyName") or entry.get("name")
            if not isinstance(company, str) or not isinstance(name, str):
                raise InvalidAnswer(
                    "Pazarama's delivery option has no cargoCompanyId and cargoCompanyName "
                    "(connectors/pazarama.py, _deliveries)"
                )
            options.append((name.strip(), company.strip()))
        return options

    def _items(self, package_id: str, lines: Sequence[tuple[str, int]]) -> list[Mapping[str, Any]]:
        """The order's items the lines name, as Pazarama holds them now."""
        order = self.get_package(package_id)
        if order is None:
            raise Permanent(f"Pazarama has no order {package_id} in the last six months")
        wanted = {line_id for line_id, _ in lines}
        items = [item for item in _items_of(order.raw) if str(item.get("orderItemId")) in wanted]
        missing = wanted - {str(item.get("orderItemId")) for item in items}
        if missing:
            raise Permanent(f"Pazarama's order {package_id} has no item {', '.join(sorted(missing))}")
        return items

    def _update(
        self, package_id: str, item: Mapping[str, Any], status: int, extra: Mapping[str, Any] | None = None
    ) -> None:
        """PUT updateOrderStatus for one item (next §5.3)."""
        body = {
            "orderNumber": int(package_id),
            "item": {"orderItemId": str(item.get("orderItemId")), "status": status, **(extra or {})},
        }
        self._send("PUT", UPDATE, json=body)


def _minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _pazarama_time(moment: datetime) -> str:
    """A moment as Pazarama reads startDate and endDate: Istanbul wall clock, to the minute."""
    return (moment.astimezone(UTC) + ISTANBUL).strftime("%Y-%m-%dT%H:%M")


def _data(payload: Mapping[str, Any]) -> list[Any]:
    data = payload.get("data")
    if data is None:
        return []
    if not isinstance(data, list):
        raise InvalidAnswer("Pazarama's order list has no list of orders (data)")
    code = payload.get("messageCode")
    if code not in (None, "", OK):
        raise InvalidAnswer(f"Pazarama's order list came with messageCode {shown(code)}, not {OK}")
    return data


def _within(order: MarketplaceOrder, start: datetime, end: datetime) -> None:
    """A listed order was placed inside the window asked for, as the connector reads Pazarama's times; one
    outside means those times are not Istanbul wall clock (or carry another offset)."""
    if not start - WINDOW_TOLERANCE <= order.ordered_at <= end + WINDOW_TOLERANCE:
        raise InvalidAnswer(
            f"Pazarama listed order {order.package_id} as placed at {order.ordered_at:%Y-%m-%d %H:%M} UTC, "
            f"outside the window asked for ({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC): its times "
            "are not read as Pazarama writes them (connectors/pazarama.py, ISTANBUL)"
        )


def _filed_as(raw: Any) -> str:
    number = raw.get("orderNumber") if isinstance(raw, Mapping) else None
    if isinstance(number, str | int) and not isinstance(number, bool) and str(number).strip():
        return str(number).strip()
    return "?"


def _items_of(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = raw.get("items")
    return [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []


def _cargo_of(item: Mapping[str, Any]) -> Mapping[str, Any]:
    cargo = item.get("cargo")
    return cargo if isinstance(cargo, Mapping) else {}


def _item_status(item: Mapping[str, Any]) -> int:
    value = item.get("orderItemStatus")
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _native(item: Mapping[str, Any]) -> str:
    status = _item_status(item)
    return f"{status} {NAMES[status]}" if status in NAMES else str(item.get("orderItemStatus"))


# Turkish letters as a name typed without them has them ("YURTICI" for "Yurtiçi").
ASCII_LETTERS = str.maketrans("çğıöşü", "cgiosu")


def _carrier_key(name: str) -> str:
    """A carrier's name compared without case, Turkish letters, "Kargo" and "Marketplace"."""
    folded = name.replace("İ", "i").casefold().translate(ASCII_LETTERS)
    words = [word for word in folded.replace(".", " ").split() if word not in ("kargo", "marketplace")]
    return " ".join(words)


def parse_order(raw: Mapping[str, Any]) -> MarketplaceOrder:
    """One Pazarama order as the hub sees it; raises UnreadablePackage naming the field that is wrong."""
    if not isinstance(raw, Mapping):
        raise UnreadablePackage("the order is not a JSON object")
    no_nul(raw, "order")
    number = required_field(raw, "orderNumber", limit=ID_LENGTH)
    if not number.isdigit():
        raise UnreadablePackage(f"orderNumber {shown(number)} is not a number")
    items = raw.get("items")
    if not isinstance(items, list) or not items or not all(isinstance(item, Mapping) for item in items):
        raise UnreadablePackage("the order has no items")
    read = [_line(item) for item in items]
    states = [state for _, _, state in read]
    live = [(state, item) for state, item in zip(states, items, strict=True) if state not in CANCELLATIONS]
    if live:
        status, shown_item = min(live, key=lambda pair: RANK[pair[0]])
    else:
        status = S.UNSUPPLIED if set(states) == {S.UNSUPPLIED} else S.CANCELLED
        shown_item = items[0]
    ordered = _time(raw, "orderDate")
    if ordered > datetime.now(UTC) + CLOCK_SKEW:
        # It would carry the pull's cursor into the future; it is also what a wrong ISTANBUL looks like.
        raise UnreadablePackage("orderDate is in the future")
    lines_total = sum((paid for _, paid, _ in read), Decimal(0))
    shipping = amount(_value(raw.get("shipmentAmount", 0)), "shipmentAmount")
    total = lines_total + shipping
    if raw.get("orderAmount") is not None and len(live) == len(items):
        # [UNSURE] whether orderAmount counts the shipping fee: either reading passes; a third means the
        # lines' amounts are read wrongly (connectors/pazarama.py, _line), which stops here.
        stated = amount(_value(raw["orderAmount"]), "orderAmount")
        if min(abs(stated - lines_total), abs(stated - total)) > CENT * len(items):
            raise UnreadablePackage(
                f"orderAmount {stated} is neither the items' totalPrice ({lines_total}) nor that with "
                f"shipmentAmount ({total})"
            )
    billing, shipping_address = addresses(raw)
    cargo = _cargo(live, items)
    link = text_field(cargo, "trackingUrl")
    currency = text_field(raw, "currency").upper() or "TL"
    return MarketplaceOrder(
        package_id=number,
        order_number=number,
        status=status,
        native_status=_native(shown_item),
        ordered_at=ordered,
        # Pazarama names no time of an order's last change: the order date stands for it (the listing is
        # by order date; a change is found by reading the order again, see the module's docstring).
        modified_at=ordered,
        customer_name=text_field(raw, "customerName")
        or " ".join(filter(None, (shipping_address.first_name, shipping_address.last_name))),
        customer_email=text_field(raw, "customerEmail"),
        currency="TRY" if currency in ("TL", "TRY") else currency[:3],
        total=total.quantize(CENT),
        billing_address=billing,
        shipping_address=shipping_address,
        lines=tuple(line for line, _, _ in read),
        shipment=Shipment(
            carrier=text_field(cargo, "companyName")[:CODE_LENGTH],
            tracking_number=text_field(cargo, "trackingNumber", limit=CODE_LENGTH),
            # [UNSURE] shipmentCode: the code on the label Pazarama's carrier scans (notes name it only).
            shipment_barcode=text_field(cargo, "_shipmentCode", limit=CODE_LENGTH),
            package_number=number,
            tracking_link=link if len(link) <= LINK_LENGTH else "",
        ),
        raw=dict(raw),
    )


def _cargo(live: list[tuple[S, Mapping[str, Any]]], items: list[Any]) -> dict[str, Any]:
    """The cargo of the first live item that has one, with its shipmentCode beside it."""
    for _, item in live or [(S.CANCELLED, item) for item in items]:
        cargo = item.get("cargo")
        if isinstance(cargo, Mapping) and any(cargo.values()):
            return {**cargo, "_shipmentCode": item.get("shipmentCode")}
    return {}


def _line(raw: Mapping[str, Any]) -> tuple[Line, Decimal, S]:
    """An item: its line (quantity 0 once cancelled), what the customer pays for it, its status."""
    line_id = required_field(raw, "orderItemId", limit=ID_LENGTH)
    where = f"item {line_id}: "
    code = _item_status(raw)
    state = STATUSES.get(code)
    if state is None:
        raise UnreadablePackage(f"{where}unknown orderItemStatus {shown(raw.get('orderItemStatus'))}")
    quantity = raw.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise UnreadablePackage(f"{where}quantity {shown(quantity)} is not a count")
    sale = amount(_value(raw.get("salePrice")), f"{where}salePrice")
    paid = amount(_value(raw.get("totalPrice")), f"{where}totalPrice")
    discount = amount(_value(raw.get("discountAmount") or 0), f"{where}discountAmount")
    # [UNSURE] totalPrice = salePrice × quantity − discountAmount, all for the line: checked, so a field
    # read wrongly (per unit, say) stops here rather than prices the shop order wrong.
    if abs(sale * quantity - discount - paid) > CENT * quantity:
        raise UnreadablePackage(
            f"{where}totalPrice {paid} is not salePrice × quantity − discountAmount "
            f"({sale} × {quantity} − {discount})"
        )
    product = raw.get("product")
    if not isinstance(product, Mapping):
        raise UnreadablePackage(f"{where}product is missing")
    vat_rate = amount(product.get("vatRate"), f"{where}vatRate", ceiling=Decimal(101))
    if vat_rate != vat_rate.to_integral_value():
        raise UnreadablePackage(f"{where}vatRate {vat_rate} is not a whole percentage")
    cancelled = state in CANCELLATIONS
    line = Line(
        line_id=line_id,
        barcode=text_field(product, "code", limit=ID_LENGTH),  # Pazarama's code is the barcode
        stock_code=text_field(product, "stockCode", limit=CODE_LENGTH),
        name=text_field(product, "name"),
        quantity=0 if cancelled else quantity,
        # Rounded down to the cent, so the lines never come to more than the customer paid.
        unit_price=(paid / quantity).quantize(CENT, rounding=ROUND_DOWN),
        vat_rate=vat_rate,
    )
    return line, Decimal(0) if cancelled else paid, state


def _value(field: Any) -> Any:
    """An amount as Pazarama writes it: {value, valueString, currency}, or a plain number."""
    return field.get("value") if isinstance(field, Mapping) else field


def _time(raw: Mapping[str, Any], name: str) -> datetime:
    """A Pazarama time as the hub's UTC: ISO 8601, Istanbul wall clock where it names no offset."""
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise UnreadablePackage(f"{name} {shown(value)} is not a time")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UnreadablePackage(f"{name} {shown(value)} is not a time") from None
    if moment.tzinfo is None:
        return (moment - ISTANBUL).replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def addresses(raw: Mapping[str, Any]) -> tuple[Address, Address]:
    """An order's billing and shipping address. [UNSURE] the notes list billingAddress with invoice
    fields only (invoiceType, identityNumber, companyName, taxNumber, taxOffice): what it lacks of an
    address is the shipping address's, its company name its own."""
    shipping_raw = raw.get("shipmentAddress")
    if not isinstance(shipping_raw, Mapping):
        raise UnreadablePackage("the order has no shipmentAddress")
    shipping = _address(shipping_raw)
    billing_raw = raw.get("billingAddress")
    if not isinstance(billing_raw, Mapping):
        return shipping, shipping
    billing = _address({**shipping_raw, **{k: v for k, v in billing_raw.items() if v not in (None, "")}})
    company = text_field(billing_raw, "companyName")
    return (replace(billing, company=company) if company else billing), shipping


def _address(raw: Mapping[str, Any]) -> Address:
    first, last = split_name(text_field(raw, "nameSurname"))
    # The neighbourhood (mahalle), where Pazarama gives it apart [UNSURE its name].
    street = with_neighbourhood(text_field(raw, "addressDetail"), text_field(raw, "neighborhoodName"))
    return Address(
        first_name=first,
        last_name=last,
        address1=street,
        city=text_field(raw, "cityName"),
        district=text_field(raw, "districtName"),
        postcode=text_field(raw, "postalCode"),
        country="TR",
        phone=text_field(raw, "phoneNumber"),
    )
