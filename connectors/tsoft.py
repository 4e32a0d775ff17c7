"""T-Soft's REST1 web service ("Gelişmiş Web Servis"): shop orders created by product code, found again by
their OrderCode, which is the hub's reference.

T-Soft publishes no machine-readable spec. This follows the research notes (marketplace-apis-next.md §7,
marketplace-apis.md §3.4) and public code that calls real stores, cited where used: "TS-node" is
ismail9k/knawat-suppliers-howto : orders.js (getOrders' OrderCode and UpdateDateTime* filters; its later
versions, seen in code search, the createOrders example and the sent-to-cargo call); "procsin" is
orhanozdemir/terminal-backend : src/main/java/com/procsin/Retrofit/Interfaces/TsoftInterface.java
(`order2/updateOrderStatusAs/{id}`; its services' `updateOrderDataString` gives `[{"OrderCode": …}]`).
Three more were found as code-search excerpts whose repository the search did not name: "TS-routes", a
TypeScript transcription of the REST1 help site (webservice.tsoft.com.tr) with every operation and form
field; "nest", a NestJS client's login and token cache; "ZOLM", an integrator's T-Soft pilot write-up.
Where they leave a reading open the connector takes one and checks the answer against it, so a wrong
guess stops with T-Soft's own words or a sentence naming it: each such place says [UNSURE].
specs/tsoft-rest1.openapi.yml holds the calls as made and answered.

One login per store and web service user gives a token that ends at `expirationTime` (store time); it is
kept per process, keyed by a digest of the address, user and password, and fetched again shortly before
that. Every call is a form POST carrying `token`. T-Soft answers HTTP 200 for its refusals too, with
`success: false` and its words in `message[].text`: those become `Permanent` with the words (never the
password or the token); a refused token (T-Soft ends them early, e.g. when the password changes) gets
one new login and the call once more.

The order's id in the hub (`ShopOrder.shop_id`) is its OrderCode, the hub's reference: T-Soft has an
OrderId, but every write names the order by OrderCode (procsin's `[{"OrderCode": …}]`) and getOrders
filters by OrderCode only (TS-routes), so the code is what each later call needs.

Totals: createOrders takes the order's total as `OrderTotalPrice` (TS-node sends a total with products
without prices), so the hub sends the marketplace's total, each line's VAT-inclusive unit price and VAT
rate, and the shipping charge. Whether a store keeps that total or recomputes it from the lines is not
public [UNSURE]: the connector reads the order back, and REST1 has no call that changes an order's amounts
afterwards (TS-routes lists none), so `settle_total` cannot correct one that differs: it says so and the
hub shows the difference for the seller to correct in T-Soft's panel.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx

from connectors.base import (
    Address,
    InvalidAnswer,
    Permanent,
    RateLimited,
    ShopLine,
    ShopOrder,
    ShopOrderPlan,
)
from connectors.http import Guard, Outbound, json_body, retry_after, sanitised
from connectors.tokens import TokenCache
from sync.statuses import CanonicalStatus as S

log = logging.getLogger(__name__)

PLATFORM = "T-Soft"
ISTANBUL = timezone(timedelta(hours=3), "Europe/Istanbul")  # the store's clock: UTC+3 all year since 2016
STAMP = "%Y-%m-%d %H:%M:%S"  # getOrders' date fields (notes §7.2)
EXPIRES = "%d-%m-%Y %H:%M:%S"  # the login's expirationTime (notes §7.1; nest parses the same)
# Orders a page; getOrders takes at most 500 (notes §7.2). Pages read by one listing at most.
PAGE = 100
MAX_PAGES = 50
# The hub's references (sync.ingest.reference): an order whose code starts so is the hub's.
REFERENCE_PREFIX = "hub-"
# changed_since: getOrders has UpdateDateTimeStart/End (TS-node, TS-routes), but whether a store moves an
# order's update time for every change the hub follows (a status, a tracking code entered in the panel) is not
# public [UNSURE]. So the listing also bounds the orders by when they were placed: the hub's orders of the
# last CHANGED_DAYS days, read in pages, kept when T-Soft's update time is after `since` (or gives none).
# A store that ignores the update filter then costs at most those days' orders, not its whole history;
# an order changed after that many days is not seen.
CHANGED_DAYS = 30
# Store clocks drift and write whole seconds: windows reach this far past now.
CLOCK_SLACK = timedelta(days=1)
# A token is used until this long before its expirationTime, then fetched again; one without a readable
# expirationTime is kept this long (a refusal of it still triggers a new login).
REFRESH_MARGIN = 120.0
UNKNOWN_LIFE = 600.0
# A 429 without Retry-After: T-Soft documents no limits; a 3P client found 2–3 minutes of waiting helped
# (notes §7.1, nest's `rateLimitedUntil` of 180 s).
RATE_LIMIT_WAIT = 150.0
# createOrders' PaymentTypeId: TS-node's example sends -2 [UNSURE: a store's types are listed by
# order2/getPaymentTypeList; -2 is taken as "other", which a marketplace's payment is].
PAYMENT_TYPE_ID = "-2"
# T-Soft's currency codes: TS-node sends "TL" for the lira [UNSURE for the others, sent as ISO codes].
CURRENCIES = {"TRY": "TL"}
COUNTRIES = {"TR": "Türkiye"}  # how TS-node writes the country in Invoice*/Delivery*
CENT = Decimal("0.01")
UNIT = Decimal("0.0001")  # a unit price that does not divide to the cent goes out to four decimals
NOTE_LENGTH = 1000
# How a tracking code without a carrier is written in the order's note.
TRACKING_NOTE = "Kargo takip no:"

# A stock store's order statuses as getOrderStatusList gives them: id → the name T-Soft shows. Status ids
# are per store and sellers add their own (Siparişler › Sipariş Süreçleri), so the store's own list
# (`statuses()`) is what the seller maps; this is the default proposal. Only 9 (cancelled) and 10
# (returned) are sourced (a 3P note, notes §7.2 and ZOLM's T-Soft pilot doc), and 5 as "ready to ship"
# from procsin (`updateOrderStatusAs/5`, its PACKED); the rest [UNSURE].
STATUSES: dict[str, str] = {
    "1": "Ödeme Bekleniyor",
    "2": "Onay Bekliyor",
    "3": "Onaylandı",
    "4": "Hazırlanıyor",
    "5": "Kargoya Hazır",
    "6": "Kargoya Verildi",
    "7": "Teslim Edildi",
    "8": "Teslim Edilemedi",
    "9": "İptal Edildi",
    "10": "İade Edildi",
    "11": "Tedarik Sürecinde",
}
DEFAULT_STATUS_MAP: dict[S, str] = {
    S.AWAITING: "1",
    S.CREATED: "3",
    S.PICKING: "4",
    S.INVOICED: "5",
    S.SHIPPED: "6",
    S.AT_COLLECTION_POINT: "6",  # T-Soft has no "at a collection point": still on its way
    S.DELIVERED: "7",
    S.UNDELIVERED: "8",
    S.CANCELLED: "9",
    S.UNSUPPLIED: "9",
    S.RETURNED: "10",
}
# What a refused token's answer says: T-Soft's words for it are not public [UNSURE], so any refusal that
# names the token (or an HTTP 401) counts as one, and gets one new login.
TOKEN_WORD = "token"


# -- the token, per process -------------------------------------------------------------------------


# Tokens, per process (connectors/tokens.py).
TOKENS = TokenCache(margin=REFRESH_MARGIN)
forget_tokens = TOKENS.clear


class _TsoftOutbound(Outbound):
    """Outbound, with T-Soft's 429: without a Retry-After, a wait that has helped (RATE_LIMIT_WAIT)."""

    def _refused(self, method: str, url: str, response: httpx.Response) -> None:
        if response.status_code == 429:
            wait = retry_after(response) if response.headers.get("Retry-After") else RATE_LIMIT_WAIT
            raise RateLimited(f"{self.platform} answered 429 (too many requests)", retry_after=wait)
        super()._refused(method, url, response)


class TsoftConnector:
    kind = "tsoft"

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        guard: Guard,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = f"{base_url.rstrip('/')}/rest1"
        self.user = credentials["tsoft_user"]
        self._password = credentials["tsoft_password"]
        self.http = _TsoftOutbound(
            guard, platform=PLATFORM, headers={"User-Agent": "OrderHub"}, transport=transport
        )
        # Whose token: the store and both credentials, as a digest (a new password is a new key).
        secret = "\0".join((self.base, self.user, self._password))
        self.key = hashlib.sha256(secret.encode()).hexdigest()

    def close(self) -> None:
        self.http.close()

    # -- orders ------------------------------------------------------------------------------------

    def find_order(self, reference: str, since: datetime | None = None) -> ShopOrder | None:
        """The order whose OrderCode is the reference: getOrders' OrderCode filter first (TS-routes); an
        exact match only, so a store that ignored the filter cannot pass another order off. Not found and
        `since` given: the orders placed since then, matched one by one."""
        found = self._by_code(reference)
        if found is not None or since is None:
            return found
        now = datetime.now(UTC)
        window = {"OrderDateTimeStart": _store(since), "OrderDateTimeEnd": _store(now + CLOCK_SLACK)}
        return next(
            (parse_order(raw) for raw in self._orders(window) if raw.get("OrderCode") == reference), None
        )

    def create_order(self, plan: ShopOrderPlan) -> ShopOrder:
        """createOrders with one order, then the order as T-Soft lists it (its answer to the create is not
        relied on for more than success [UNSURE of its data]). A refusal (an unknown product code, a status
        the store lacks) is Permanent with T-Soft's words: nothing was made."""
        self._write("order2/createOrders", [_order_item(plan)], "create the order")
        created = self._by_code(plan.reference)
        if created is None:
            raise InvalidAnswer(f"T-Soft said order {plan.reference} was created but does not list it")
        if created.total != plan.total:
            log.warning(
                "T-Soft order %s: total %s, the marketplace's %s", plan.reference, created.total, plan.total
            )
        return created

    def settle_total(self, shop_id: str, total: Decimal) -> ShopOrder:
        """Nothing to do when T-Soft's total is the marketplace's. Otherwise Permanent: REST1 has no call
        that changes a created order's amounts (TS-routes lists createOrders, status, cargo, invoice and
        note updates only), so the seller corrects the order in T-Soft's panel and the hub, meanwhile,
        shows both totals."""
        order = self.get_order(shop_id)
        if order.total == total:
            return order
        raise Permanent(
            f"T-Soft's order {shop_id} comes to {order.total}, the marketplace's to {total}: T-Soft's web "
            "service cannot change an order's amounts; correct the order in the T-Soft panel",
            category="refused",
        )

    def get_order(self, shop_id: str) -> ShopOrder:
        found = self._by_code(shop_id)
        if found is None:
            raise Permanent(f"T-Soft has no order {shop_id}", category="refused")
        return found

    def set_status(self, shop_id: str, status: str) -> ShopOrder:
        """updateOrderStatusAs/{OrderStatusId} with `[{"OrderCode": …}]` (procsin; TS-routes), only if the
        order is not in that status already; then read back, so a store that answered success without
        moving the order is caught rather than believed."""
        order = self.get_order(shop_id)
        if order.status == status:
            return order
        self._write(
            f"order2/updateOrderStatusAs/{quote(status, safe='')}", [{"OrderCode": shop_id}], "set the status"
        )
        moved = self.get_order(shop_id)
        if moved.status != status:
            raise InvalidAnswer(
                f"T-Soft accepted status {status} for order {shop_id}, which is still {moved.status}"
            )
        return moved

    def set_tracking(self, shop_id: str, carrier: str, code: str, link: str) -> ShopOrder:
        """updateOrderStatusAsSentToCargo with the store's code for the carrier (notes §7.2; TS-node's
        `[{OrderCode, CargoCode, CargoTrackingCode}]`), unless the order carries that code already. T-Soft
        moves the order to its "sent to cargo" status with it, and links the code to the carrier's
        tracking page from its own cargo settings: the hub's link is not sent (REST1 has no field for
        one [UNSURE]). The carrier is matched by name against the store's list (getCargoCompanyList,
        TS-routes); none matching is Permanent, naming the store's carriers.

        A code without a carrier (a marketplace's package number, passed before the parcel is handed
        over) cannot be sent to cargo: it goes into the order's note for the seller, and the order stays
        where it is."""
        order = self.get_order(shop_id)
        if order.tracking_number == code and _folded(order.carrier) == _folded(carrier):
            return order
        if not carrier.strip():
            self.add_note(shop_id, f"{TRACKING_NOTE} {code}")
            return order
        cargo = self._cargo_code(carrier)
        item = {"OrderCode": shop_id, "CargoCode": cargo, "CargoTrackingCode": code}
        self._write("order2/updateOrderStatusAsSentToCargo", [item], "set the tracking code")
        shipped = self.get_order(shop_id)
        if shipped.tracking_number != code:
            raise InvalidAnswer(
                f"T-Soft accepted tracking code {code} for order {shop_id} but does not show it"
            )
        return shipped

    def add_note(self, shop_id: str, note: str) -> None:
        """order2/setOrderNote (TS-routes names it and getOrderNote, not their fields): `[{OrderCode,
        Note}]` [UNSURE of the field name: a store refusing it says so in its words], unless the order
        carries the same note already (getOrderNote), so asking again after a lost answer adds nothing."""
        text = note[:NOTE_LENGTH]
        notes = self._call("order2/getOrderNote", {"OrderCode": shop_id}, "read the order's notes")
        if any(isinstance(entry, dict) and entry.get("Note") == text for entry in _data(notes)):
            return
        self._write("order2/setOrderNote", [{"OrderCode": shop_id, "Note": text}], "add a note")

    def changed_since(self, since: datetime) -> Sequence[ShopOrder]:
        """The hub's orders T-Soft changed after `since`: getOrders by update time, bounded to the orders
        placed in the last CHANGED_DAYS days (see there why both), paged; kept when T-Soft's update time
        is after `since`, or when the store gives none (the hub compares with what it holds)."""
        now = datetime.now(UTC)
        window = {
            "OrderDateTimeStart": _store(now - timedelta(days=CHANGED_DAYS)),
            "OrderDateTimeEnd": _store(now + CLOCK_SLACK),
            "UpdateDateTimeStart": _store(since),
            "UpdateDateTimeEnd": _store(now + CLOCK_SLACK),
        }
        changed = []
        for raw in self._orders(window):
            if not str(raw.get("OrderCode") or "").startswith(REFERENCE_PREFIX):
                continue
            order = parse_order(raw)
            # The store writes whole seconds: an order changed in `since`'s own second is kept (the hub
            # reads it again, harmlessly) rather than missed.
            if order.modified_at is None or order.modified_at > since - timedelta(seconds=1):
                changed.append(order)
        return changed

    def statuses(self) -> Mapping[str, str]:
        """The store's statuses, its own ones too (order2/getOrderStatusList: TS-routes and TS-node; a
        NestJS client calls order/getOrderStatusList). Each entry's id and name under the names the
        sandbox gives them or the shorter ones T-Soft's lists use elsewhere [UNSURE]; an entry without
        either makes the list unreadable rather than half read."""
        listed: dict[str, str] = {}
        for entry in _data(self._call("order2/getOrderStatusList", {}, "list the order statuses")):
            key = _first(entry, "OrderStatusId", "Id")
            name = _first(entry, "OrderStatusName", "OrderStatus", "Name")
            if not key or not name or len(key) > 32:  # the hub keeps a status in 32 characters
                raise InvalidAnswer("T-Soft's status list has an entry without an id or a name")
            listed[key] = name[:100]
        return listed

    def subscribe(self, callback_url: str, secret: str) -> str:
        raise Permanent(
            "T-Soft sends no webhooks: the hub reads its orders on a schedule", category="refused"
        )

    # -- reading -----------------------------------------------------------------------------------

    def _by_code(self, code: str) -> ShopOrder | None:
        answer = self._call(
            "order2/getOrders", {"OrderCode": code, "start": "0", "limit": "10"}, "read the order"
        )
        matches = [raw for raw in _data(answer) if isinstance(raw, dict) and raw.get("OrderCode") == code]
        return parse_order(matches[0]) if matches else None

    def _orders(self, window: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Every order in a window, oldest first, a page at a time as they are read (start/limit and
        summary.totalRecordCount, notes §7.2)."""
        for page in range(MAX_PAGES):
            form = {**window, "start": str(page * PAGE), "limit": str(PAGE)}
            answer = self._call("order2/getOrders", form, "list the orders")
            rows = [raw for raw in _data(answer) if isinstance(raw, dict)]
            yield from rows
            if len(rows) < PAGE or (page + 1) * PAGE >= _total(answer):
                return
        log.warning(
            "T-Soft %s: more than %d orders in a window, the rest not read", self.base, MAX_PAGES * PAGE
        )

    def _cargo_code(self, carrier: str) -> str:
        """The store's CargoCode for a carrier named as the hub has it ("Yurtiçi Kargo"): matched on the name
        without "kargo", case and Turkish letters folded. The list's field names [UNSURE]: the sandbox's,
        or the shorter ones."""
        companies = _data(self._call("order2/getCargoCompanyList", {}, "list the cargo companies"))
        wanted = _folded(carrier)
        names = []
        for entry in companies:
            code = _first(entry, "CargoCode", "Code")
            name = _first(entry, "CargoCompanyName", "Name", "CargoName")
            names.append(name or code)
            if code and wanted and wanted in (_folded(name), _folded(code)):
                return code
        shown = ", ".join(filter(None, names)) or "none"
        raise Permanent(
            f"T-Soft's store has no cargo company {carrier!r} (it has: {shown})", category="refused"
        )

    # -- calling -----------------------------------------------------------------------------------

    def _write(self, path: str, items: list[dict[str, Any]], what: str) -> dict[str, Any]:
        return self._call(path, {"data": json.dumps(items, ensure_ascii=False)}, what)

    def _call(self, path: str, form: Mapping[str, str], what: str) -> dict[str, Any]:
        """One REST1 call with the token; a refused token gets one new login and the call once more."""
        token = self._token()
        try:
            answer = self._post(path, {**form, "token": token})
        except Permanent as error:
            if error.status != 401:
                raise
            answer = None
        if answer is None or (answer.get("success") is False and _names_token(answer)):
            self._forget(token)
            answer = self._post(path, {**form, "token": self._token()})
            if answer.get("success") is False and _names_token(answer):
                raise Permanent(f"T-Soft refused a new token: {self._words(answer)}", category="auth")
        if answer.get("success") is not True:
            raise Permanent(f"T-Soft refused to {what}: {self._words(answer)}", code=_code(answer))
        return answer

    def _post(self, path: str, form: Mapping[str, str]) -> dict[str, Any]:
        response = self.http.request("POST", f"{self.base}/{path}", data=dict(form))
        answer = json_body(response, dict, PLATFORM)
        if not isinstance(answer.get("success"), bool):
            raise InvalidAnswer("T-Soft answered without saying whether it succeeded")
        return answer

    def _token(self) -> str:
        """The cached token, or a new login: one at a time per store and user, others waiting for it."""
        return TOKENS.get(self.key, self._login)[0]

    def _forget(self, token: str) -> None:
        TOKENS.forget(self.key, token)

    def _login(self) -> tuple[str, float]:
        """POST /rest1/auth/login/{user} with `pass` (notes §7.1; nest, TS-routes)."""
        url = f"{self.base}/auth/login/{quote(self.user, safe='')}"
        answer = json_body(self.http.request("POST", url, data={"pass": self._password}), dict, PLATFORM)
        rows = _data(answer)
        token = _first(rows[0], "token") if answer.get("success") is True and rows else ""
        if not token:
            raise Permanent(
                f"T-Soft refused the web service user {self.user!r} or its password: {self._words(answer)}",
                code=_code(answer),
                category="auth",
            )
        life = _life(_first(rows[0], "expirationTime"))
        return token, life

    def _words(self, answer: Mapping[str, Any]) -> str:
        """T-Soft's own words for a refusal, as one short line the seller may read: never a credential."""
        texts: list[str] = []
        for message in answer.get("message") or []:
            if isinstance(message, dict):
                text = message.get("text")
                texts.extend(str(t) for t in (text if isinstance(text, list) else [text]) if t)
        words = " ".join(texts) or "no reason given"
        cached = TOKENS.tokens.get(self.key)
        for secret in (self._password, cached.value if cached else ""):
            if secret:
                words = words.replace(secret, "•••")
        return sanitised(words)


def _data(answer: Mapping[str, Any]) -> list[Any]:
    data = answer.get("data")
    if data is None:
        return []
    if not isinstance(data, list):
        raise InvalidAnswer("T-Soft's data is not a list")
    return data


def _total(answer: Mapping[str, Any]) -> int:
    summary = answer.get("summary")
    count = summary.get("totalRecordCount") if isinstance(summary, dict) else None
    try:
        return int(str(count))
    except ValueError:
        raise InvalidAnswer("T-Soft's summary.totalRecordCount is not a count") from None


def _code(answer: Mapping[str, Any]) -> str:
    messages = answer.get("message")
    first = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], dict) else {}
    return sanitised(str(first.get("code") or ""), 40)


def _names_token(answer: Mapping[str, Any]) -> bool:
    return TOKEN_WORD in json.dumps(answer.get("message") or [], ensure_ascii=False).casefold()


def _first(entry: Any, *names: str) -> str:
    """The first of the fields that has a value, as text ("" when none has)."""
    if not isinstance(entry, dict):
        return ""
    return next((str(entry[name]).strip() for name in names if entry.get(name) not in (None, "")), "")


def _folded(name: str) -> str:
    """A carrier's name compared loosely: "Yurtiçi Kargo", "YURTICI KARGO", "Yurtiçi" and Trendyol's
    "Yurtiçi Kargo Marketplace" are one."""
    table = str.maketrans("çğıöşüÇĞİÖŞÜâî", "cgiosucgiosuai")
    words = name.translate(table).casefold().replace("kargo", " ").replace("cargo", " ").split()
    return " ".join(word for word in words if word != "marketplace")


def _store(moment: datetime) -> str:
    """A moment as getOrders takes it: the store's wall-clock time."""
    return moment.astimezone(ISTANBUL).strftime(STAMP)


def _life(expires: str) -> float:
    """Seconds until a token's expirationTime (store time); one T-Soft did not write readably lives
    UNKNOWN_LIFE, since a refusal of it still triggers a new login."""
    try:
        ends = datetime.strptime(expires, EXPIRES).replace(tzinfo=ISTANBUL)
    except ValueError:
        log.warning("T-Soft's expirationTime %r cannot be read; the token is kept %ds", expires, UNKNOWN_LIFE)
        return UNKNOWN_LIFE
    return max((ends - datetime.now(UTC)).total_seconds(), 0.0)


# -- the order, both ways ---------------------------------------------------------------------------


def _order_item(plan: ShopOrderPlan) -> dict[str, Any]:
    """createOrders' item (notes §7.2, TS-node's example): Invoice*/Delivery* from the addresses (the
    district as Town, T-Soft's ilçe), the products by code with their VAT-inclusive unit prices and VAT
    rates ([UNSURE]: TS-node's products carry no price; `Price` and `Vat` are T-Soft's product fields),
    the shipping charge ([UNSURE] as `CargoChargeWithVat`, the name the order is read back with) and the
    marketplace's total."""
    charge = plan.shipping_charge
    return {
        "OrderCode": plan.reference,
        "Currency": CURRENCIES.get(plan.currency, plan.currency),
        "PaymentTypeId": PAYMENT_TYPE_ID,
        "OrderStatusId": plan.status,
        "OrderDate": str(int(time.time())),  # TS-node sends epoch seconds
        "OrderTotalPrice": str(plan.total),
        "CargoChargeWithVat": str(charge.net + charge.tax),
        "Email": plan.customer_email,
        **_address("Invoice", plan.billing),
        **_address("Delivery", plan.shipping),
        "Products": [_product(line) for line in plan.lines],
    }


def _product(line: ShopLine) -> dict[str, str]:
    unit = line.total / line.quantity
    exact = unit.quantize(CENT, rounding=ROUND_HALF_UP)
    price = exact if exact * line.quantity == line.total else unit.quantize(UNIT, rounding=ROUND_HALF_UP)
    return {
        "ProductCode": line.sku,
        "Quantity": str(line.quantity),
        "Price": str(price),
        "Vat": format(line.vat_rate.normalize(), "f"),
    }


def _address(side: str, address: Address) -> dict[str, str]:
    name = " ".join(filter(None, (address.first_name, address.last_name)))
    return {
        f"{side}Title": address.company or ("Fatura adresi" if side == "Invoice" else "Teslimat adresi"),
        f"{side}Name": name,
        f"{side}Mobile": address.phone,
        f"{side}Country": COUNTRIES.get(address.country, address.country),
        f"{side}CountryCode": address.country,
        f"{side}City": address.city,
        f"{side}Town": address.district,
        f"{side}Address": address.address1,
        f"{side}Zipcode": address.postcode,
    }


def parse_order(raw: Mapping[str, Any]) -> ShopOrder:
    """An order of getOrders. Its code, status id, total, update time and cargo fields are read; the names
    are the ones public clients read (procsin, ZOLM, TS-routes' `UpdateDateTime*` filters) [UNSURE of
    UpdateDateTimeStamp, which the sandbox gives; UpdateDate is the fallback]."""
    code = _first(raw, "OrderCode")
    if not code:
        raise InvalidAnswer("T-Soft answered with an order that has no OrderCode")
    return ShopOrder(
        shop_id=code,
        status=_first(raw, "OrderStatusId"),
        reference=code if code.startswith(REFERENCE_PREFIX) else "",
        modified_at=_modified(raw),
        tracking_number=_first(raw, "CargoTrackingCode"),
        carrier=_first(raw, "CargoCompanyName", "CargoCode"),
        total=_amount(raw.get("OrderTotalPrice")),
    )


def _modified(raw: Mapping[str, Any]) -> datetime | None:
    stamp, written = _first(raw, "UpdateDateTimeStamp"), _first(raw, "UpdateDate")
    try:
        if stamp:
            return datetime.fromtimestamp(int(stamp), UTC)
        if written:
            return datetime.strptime(written, STAMP).replace(tzinfo=ISTANBUL).astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidAnswer("T-Soft's order update time cannot be read") from None
    return None


def _amount(value: Any) -> Decimal | None:
    """An amount as T-Soft writes it (a decimal string, or a number); None for one that is not, so an odd
    order is still followed and a transfer checks nothing it cannot read."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value).replace(",", "."))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None
