"""T-Soft's REST1 web service ("Gelişmiş Web Servis") in the sandbox, under /tsoft: the store a seller's
panel runs, as the hub's T-Soft connector reaches it.

Written from the research notes (marketplace-apis-next.md §7, marketplace-apis.md §3.4) and from public code
that calls real stores (cited in connectors/tsoft.py and specs/tsoft-rest1.openapi.yml): a login per web
service user whose token expires; every call a form POST carrying `token`; every answer HTTP 200 with
`{success, data, message:[{type, code, index, id, text:[…]}]}`, a refusal being `success: false` with
T-Soft's words; order lists paged by `start`/`limit` (at most 500) with `summary.totalRecordCount`; values
written as strings, as T-Soft writes them. Times are the store's wall clock, Europe/Istanbul (UTC+3 all
year). Where nothing public says what T-Soft does (its words for a refusal, how it totals an order, the
shape of a note) the sandbox's choice is marked [sandbox] where it is made.

Control endpoints under /_control/tsoft act as the seller in T-Soft's panel: a status changed by hand, a
parcel handed to a carrier with its tracking code.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox import generator

if TYPE_CHECKING:
    from sandbox.state import World

PREFIX = "/tsoft"
REST = f"{PREFIX}/rest1"
ISTANBUL = timezone(timedelta(hours=3), "Europe/Istanbul")
STAMP = "%Y-%m-%d %H:%M:%S"  # how getOrders takes and gives a time, store-local
EXPIRES = "%d-%m-%Y %H:%M:%S"  # how the login gives the token's end, store-local
MAX_LIMIT = 500
DEFAULT_LIMIT = 20  # [sandbox] T-Soft's default page size is not public
CENT = Decimal("0.01")
# A stock store's order statuses ([sandbox], after connectors/tsoft.py STATUSES: only 9 and 10 are sourced)
# and one the seller added in the panel (Siparişler › Sipariş Süreçleri), as stores do.
STOCK_STATUSES = {
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
CUSTOM_STATUS = ("1001", "Hediye Paketi Hazırlanıyor")
SENT_TO_CARGO = "6"  # where updateOrderStatusAsSentToCargo puts an order [sandbox]
# The store's cargo companies, as order2/getCargoCompanyList lists them ([sandbox] codes and field names).
CARGO_COMPANIES = (
    {"CargoCompanyId": "1", "CargoCode": "YK", "CargoCompanyName": "Yurtiçi Kargo"},
    {"CargoCompanyId": "2", "CargoCode": "ARAS", "CargoCompanyName": "Aras Kargo"},
    {"CargoCompanyId": "3", "CargoCode": "MNG", "CargoCompanyName": "MNG Kargo"},
    {"CargoCompanyId": "4", "CargoCode": "PTT", "CargoCompanyName": "PTT Kargo"},
    {"CargoCompanyId": "5", "CargoCode": "SURAT", "CargoCompanyName": "Sürat Kargo"},
    # A seller on Trendyol ships with its carrier too, and adds it to the store's list.
    {"CargoCompanyId": "6", "CargoCode": "TEX", "CargoCompanyName": "Trendyol Express"},
)
# T-Soft's words, where public material gives them; the rest [sandbox].
CREATED = "Sipariş başarıyla oluşturuldu."  # marketplace-apis-next.md §7.2
UPDATED = "İşlem başarılı."
LOGIN_FAILED = "Kullanıcı adı veya şifre hatalı!"
TOKEN_REFUSED = "Geçersiz token! Token süresi dolmuş olabilir."
# The order's own fields a create keeps as sent (the Invoice*/Delivery* block of createOrders).
ADDRESS_PARTS = ("Title", "Name", "Mobile", "Country", "CountryCode", "City", "Town", "District", "Address")
ADDRESS_FIELDS = (
    *(f"{side}{name}" for side in ("Invoice", "Delivery") for name in ADDRESS_PARTS),
    "InvoiceZipcode",
    "DeliveryZipcode",
    "Email",
)


def store_time(moment: float) -> str:
    """A moment (epoch seconds) as the store writes it."""
    return datetime.fromtimestamp(moment, ISTANBUL).strftime(STAMP)


def parse_store_time(text: str) -> float:
    """A store-local time as getOrders takes it; ValueError for anything else."""
    return datetime.strptime(text, STAMP).replace(tzinfo=ISTANBUL).timestamp()


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


class Refusal(Exception):
    """A call T-Soft refuses: `success: false` with its words."""

    def __init__(self, text: str, code: str = "", index: int = 0) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.index = index


@dataclass
class TsoftShop:
    """T-Soft's side of the world: one store, its web service user and its orders (by OrderCode). It has
    its own lock; nothing holds it while taking another."""

    user: str = "hub"
    password: str = "tsoft-sandbox-pass"
    token_seconds: int = 3600  # a token's life (a knob: the tests shorten it)
    # [sandbox] False: the order keeps the OrderTotalPrice the integrator sent (what the public createOrders
    # example implies, sending a total and products without prices). True: T-Soft totals the lines at
    # its own cent-rounded unit prices plus the cargo charge, ignoring the sent total.
    recalculates_total: bool = False
    rate_limited: int = 0  # the next n calls answer 429 without Retry-After, as T-Soft did to a 3P client
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=lambda: dict([*STOCK_STATUSES.items(), CUSTOM_STATUS]))
    tokens: dict[str, float] = field(default_factory=dict)  # token → when it expires (epoch seconds)
    logins: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.clock: Callable[[], float] = time.time  # a seam: the tests move the store's clock
        self._order_ids = itertools.count(5001)
        self._note_ids = itertools.count(1)

    # -- kept across restarts, with the rest of the world ------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The orders, the store's statuses, the tokens it issued and where its ids stand (not the knobs)."""
        with self.lock:
            counters = {"order_id": next(self._order_ids), "note_id": next(self._note_ids)}
            self._order_ids = itertools.count(counters["order_id"])
            self._note_ids = itertools.count(counters["note_id"])
            return {
                "orders": list(self.orders.values()),
                "statuses": dict(self.statuses),
                "tokens": dict(self.tokens),
                "logins": self.logins,
                "counters": counters,
            }

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.orders = {order["OrderCode"]: order for order in state.get("orders", [])}
            self.statuses = dict(state.get("statuses") or self.statuses)
            self.tokens = dict(state.get("tokens") or {})
            self.logins = int(state.get("logins", 0))
            counters = state.get("counters") or {}
            self._order_ids = itertools.count(int(counters.get("order_id", 5001)))
            self._note_ids = itertools.count(int(counters.get("note_id", 1)))

    # -- the web service user -----------------------------------------------------------------------

    def login(self, user: str, password: str) -> dict[str, str]:
        with self.lock:
            if (user, password) != (self.user, self.password):
                raise Refusal(LOGIN_FAILED, "LOGIN_ERROR")
            self.logins += 1
            token = secrets.token_hex(13)  # T-Soft's tokens are short lowercase strings (26 characters)
            expires = self.clock() + self.token_seconds
            self.tokens[token] = expires
            ends = datetime.fromtimestamp(expires, ISTANBUL).strftime(EXPIRES)
            return {"token": token, "expirationTime": ends}

    def check_token(self, token: str) -> None:
        with self.lock:
            expires = self.tokens.get(token)
            if expires is None or expires <= self.clock():
                raise Refusal(TOKEN_REFUSED, "TOKEN_ERROR")

    def expire_tokens(self) -> None:
        """Every token ends now (as T-Soft ends them early: a password changed, the user's session cut)."""
        with self.lock:
            now = self.clock()
            self.tokens = dict.fromkeys(self.tokens, now)

    # -- orders -------------------------------------------------------------------------------------

    def create_orders(self, items: Any) -> list[dict[str, str]]:
        """createOrders: each item checked and kept, or the whole call refused with the first item's fault
        and its index ([sandbox]: whether T-Soft keeps the good items of a mixed call is not public)."""
        if not isinstance(items, list) or not items or not all(isinstance(item, dict) for item in items):
            raise Refusal("data alanı bir sipariş listesi olmalıdır.", "DATA_ERROR")
        with self.lock:
            built = [self._built(item, index) for index, item in enumerate(items)]
            codes = [order["OrderCode"] for order in built]
            if len(set(codes)) != len(codes):
                raise Refusal("Aynı sipariş kodu birden fazla kez gönderildi.", "DUPLICATE_ORDER_CODE")
            for order in built:
                self.orders[order["OrderCode"]] = order
            return [{"OrderId": order["OrderId"], "OrderCode": order["OrderCode"]} for order in built]

    def _built(self, item: dict[str, Any], index: int) -> dict[str, Any]:
        code = str(item.get("OrderCode") or "").strip()
        if not code:
            raise Refusal("OrderCode alanı zorunludur.", "REQUIRED_FIELD", index)
        if code in self.orders:
            raise Refusal(f"{code} kodlu sipariş zaten mevcut.", "DUPLICATE_ORDER_CODE", index)
        status = str(item.get("OrderStatusId") or "")
        if status not in self.statuses:
            raise Refusal(f"Geçersiz sipariş durumu: {status}", "INVALID_ORDER_STATUS", index)
        catalogue = {product.stock_code: product for product in generator.CATALOGUE}
        products = item.get("Products")
        if not isinstance(products, list) or not products:
            raise Refusal("Siparişte en az bir ürün olmalıdır.", "REQUIRED_FIELD", index)
        details = []
        for product in products:
            product_code = str((product or {}).get("ProductCode") or "")
            known = catalogue.get(product_code)
            if known is None:
                raise Refusal(f"Ürün bulunamadı: {product_code}", "PRODUCT_NOT_FOUND", index)
            quantity = _number(product.get("Quantity"), index, "Quantity")
            if quantity <= 0 or quantity != quantity.to_integral_value():
                raise Refusal("Quantity pozitif bir tam sayı olmalıdır.", "INVALID_FIELD", index)
            price = _number(product.get("Price", known.price), index, "Price")
            vat = _number(product.get("Vat", known.vat_rate), index, "Vat")
            details.append(
                {
                    "ProductCode": product_code,
                    "ProductName": known.name,
                    "Barcode": known.barcode,
                    "Quantity": str(int(quantity)),
                    "Price": str(price),
                    "Vat": format(vat.normalize(), "f"),
                    # What T-Soft shows for the line: the unit price at the cent, times the quantity.
                    "Total": _money(price.quantize(CENT, rounding=ROUND_HALF_UP) * quantity),
                }
            )
        cargo = _number(item.get("CargoChargeWithVat", "0"), index, "CargoChargeWithVat")
        if self.recalculates_total:
            total = sum((Decimal(detail["Total"]) for detail in details), Decimal(0)) + cargo
        else:
            total = _number(item.get("OrderTotalPrice"), index, "OrderTotalPrice")
        now = self.clock()
        order_id = next(self._order_ids)
        order: dict[str, Any] = {
            "OrderId": str(order_id),
            "OrderCode": code,
            "OrderDate": store_time(now),
            "OrderDateTimeStamp": str(int(now)),
            "UpdateDate": store_time(now),
            "UpdateDateTimeStamp": str(int(now)),
            "OrderStatusId": status,
            "OrderStatus": self.statuses[status],
            "Currency": str(item.get("Currency") or "TL"),
            "PaymentTypeId": str(item.get("PaymentTypeId") or ""),
            "OrderTotalPrice": _money(total),
            "CargoChargeWithVat": _money(cargo),
            "CargoCode": "",
            "CargoCompanyName": "",
            "CargoTrackingCode": "",
            "OrderDetails": details,
            "_notes": [],
        }
        order.update({name: str(item.get(name) or "") for name in ADDRESS_FIELDS})
        return order

    def order(self, code: str) -> dict[str, Any]:
        with self.lock:
            found = self.orders.get(code)
            if found is None:
                raise Refusal(f"{code} kodlu sipariş bulunamadı.", "ORDER_NOT_FOUND")
            return found

    def order_for_reference(self, reference: str) -> dict[str, Any] | None:
        """The store's order carrying the hub's reference (its OrderCode), asserting there is at most one."""
        with self.lock:
            matches = [order for order in self.orders.values() if order["OrderCode"] == reference]
            assert len(matches) <= 1, f"{reference} is in T-Soft {len(matches)} times"
            return matches[0] if matches else None

    def list_orders(self, form: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
        """getOrders: the orders matching the form's filters, oldest first, one page of them."""
        try:
            windows = [
                (key, parse_store_time(form[f"{key}Start"]) if form.get(f"{key}Start") else None,
                 parse_store_time(form[f"{key}End"]) if form.get(f"{key}End") else None)
                for key in ("OrderDateTime", "UpdateDateTime")
            ]  # fmt: skip
        except ValueError:
            raise Refusal("Tarih alanları YYYY-MM-DD HH:MM:SS biçiminde olmalıdır.", "INVALID_DATE") from None
        start, limit = form.get("start", "0"), form.get("limit", str(DEFAULT_LIMIT))
        if not (start.isdigit() and limit.isdigit()) or not 1 <= int(limit) <= MAX_LIMIT:
            raise Refusal(f"limit 1 ile {MAX_LIMIT} arasında olmalıdır.", "INVALID_LIMIT")
        code = form.get("OrderCode", "")
        with self.lock:
            matches = []
            for order in sorted(self.orders.values(), key=lambda order: int(order["OrderId"])):
                if code and order["OrderCode"] != code:
                    continue
                stamps = {
                    "OrderDateTime": int(order["OrderDateTimeStamp"]),
                    "UpdateDateTime": int(order["UpdateDateTimeStamp"]),
                }
                # Whole seconds, both ends included, as the store's times are written.
                if all(
                    (low is None or stamps[key] >= int(low)) and (high is None or stamps[key] <= int(high))
                    for key, low, high in windows
                ):
                    matches.append(order)
            page = matches[int(start) : int(start) + int(limit)]
            with_lines = form.get("FetchProductData", "false").lower() in ("true", "1")
            return [public(order, with_lines) for order in page], len(matches)

    def set_status(self, code: str, status_id: str) -> dict[str, Any]:
        """A status set (by the web service or by hand in the panel); the update time moves if it changes."""
        with self.lock:
            order = self.order(code)
            if status_id not in self.statuses:
                raise Refusal(f"Geçersiz sipariş durumu: {status_id}", "INVALID_ORDER_STATUS")
            if order["OrderStatusId"] != status_id:
                order["OrderStatusId"], order["OrderStatus"] = status_id, self.statuses[status_id]
                self._touch(order)
            return order

    def ship(self, code: str, cargo_code: str, tracking_code: str) -> dict[str, Any]:
        """The parcel handed to a carrier: cargo fields set, the order sent to cargo (the web service's
        updateOrderStatusAsSentToCargo, or the seller in the panel)."""
        with self.lock:
            order = self.order(code)
            company = next((c for c in CARGO_COMPANIES if c["CargoCode"] == cargo_code), None)
            if company is None:
                raise Refusal(f"Kargo firması bulunamadı: {cargo_code}", "CARGO_NOT_FOUND")
            if not tracking_code:
                raise Refusal("CargoTrackingCode alanı zorunludur.", "REQUIRED_FIELD")
            changed = (order["CargoCode"], order["CargoTrackingCode"]) != (cargo_code, tracking_code)
            order["CargoCode"], order["CargoTrackingCode"] = cargo_code, tracking_code
            order["CargoCompanyName"] = company["CargoCompanyName"]
            if changed or order["OrderStatusId"] != SENT_TO_CARGO:
                order["OrderStatusId"], order["OrderStatus"] = SENT_TO_CARGO, self.statuses[SENT_TO_CARGO]
                self._touch(order)
            return order

    def add_note(self, code: str, note: str) -> dict[str, str]:
        with self.lock:
            order = self.order(code)
            if not note.strip():
                raise Refusal("Note alanı zorunludur.", "REQUIRED_FIELD")
            entry = {"NoteId": str(next(self._note_ids)), "Note": note}
            entry["CreateDate"] = store_time(self.clock())
            order["_notes"].append(entry)
            self._touch(order)
            return entry

    def create_store_order(self, code: str | None = None) -> dict[str, Any]:
        """An order the store took itself (its own checkout, TS-coded): not the hub's to follow."""
        product = generator.CATALOGUE[0]
        number = next(self._order_ids)
        item = {
            "OrderCode": code or f"TS{number:05d}",
            "OrderStatusId": "3",
            "OrderTotalPrice": str(product.price),
            "Products": [{"ProductCode": product.stock_code, "Quantity": "1"}],
        }
        return self.create_orders([item])[0]

    def _touch(self, order: dict[str, Any]) -> None:
        now = self.clock()
        order["UpdateDate"], order["UpdateDateTimeStamp"] = store_time(now), str(int(now))


def _number(value: Any, index: int, name: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise Refusal(f"{name} alanı sayısal olmalıdır.", "INVALID_FIELD", index)
    return number


def public(order: dict[str, Any], with_lines: bool = True) -> dict[str, Any]:
    """The order as getOrders gives it: the sandbox's own keys left out, the lines only when asked for."""
    shown = {key: value for key, value in order.items() if not key.startswith("_")}
    if not with_lines:
        shown.pop("OrderDetails")
    return shown


def _answer(data: list[Any], text: str = "", total: int | None = None) -> Response:
    body: dict[str, Any] = {"success": True, "data": data, "message": []}
    if text:
        body["message"] = [{"type": "success", "code": "", "index": 0, "id": "", "text": [text]}]
    if total is not None:
        body["summary"] = {"totalRecordCount": total}
    return jsonify(body)


def _refused(refusal: Refusal) -> Response:
    """T-Soft's refusal: HTTP 200, success false, its words."""
    message = {"type": "error", "code": refusal.code, "index": refusal.index, "id": ""}
    return jsonify({"success": False, "data": [], "message": [{**message, "text": [refusal.text]}]})


def _data() -> Any:
    """The `data` form field: a JSON list, as every REST1 write takes it."""
    try:
        return json.loads(request.form.get("data", ""))
    except ValueError:
        raise Refusal("data alanı geçerli bir JSON olmalıdır.", "DATA_ERROR") from None


def register(app: Flask, world: World) -> None:
    """T-Soft's REST1 routes and its control endpoints on the sandbox app; the app's fault knobs reach
    them through its own hooks (every path under PREFIX), T-Soft's 429 through the shop's `rate_limited`."""
    shop = world.tsoft

    @app.before_request
    def tsoft_gate() -> ResponseReturnValue | None:
        """Every REST1 call but the login: T-Soft's own 429, then the token (a form field, or a Token
        header as some clients send it)."""
        if not request.path.startswith(f"{REST}/"):
            return None
        with shop.lock:
            if shop.rate_limited > 0:
                shop.rate_limited -= 1
                response = jsonify({"success": False, "data": [], "message": []})
                response.status_code = 429
                return response
        if request.path.startswith(f"{REST}/auth/"):
            return None
        try:
            shop.check_token(request.form.get("token") or request.headers.get("Token", ""))
        except Refusal as refusal:
            return _refused(refusal)
        return None

    @app.errorhandler(Refusal)
    def refused(refusal: Refusal) -> ResponseReturnValue:
        return _refused(refusal)

    @app.post(f"{REST}/auth/login/<user>")
    def tsoft_login(user: str) -> ResponseReturnValue:
        return _answer([shop.login(user, request.form.get("pass", ""))])

    @app.post(f"{REST}/order2/getOrders")
    def tsoft_orders() -> ResponseReturnValue:
        orders, total = shop.list_orders(request.form.to_dict())
        return _answer(orders, total=total)

    @app.post(f"{REST}/order2/createOrders")
    def tsoft_create() -> ResponseReturnValue:
        return _answer(shop.create_orders(_data()), CREATED)

    @app.post(f"{REST}/order2/updateOrderStatusAs/<status_id>")
    def tsoft_status(status_id: str) -> ResponseReturnValue:
        items = _data()
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise Refusal("data alanı bir liste olmalıdır.", "DATA_ERROR")
        for item in items:
            shop.set_status(str(item.get("OrderCode") or ""), status_id)
        return _answer([], UPDATED)

    @app.post(f"{REST}/order2/updateOrderStatusAsSentToCargo")
    def tsoft_sent_to_cargo() -> ResponseReturnValue:
        items = _data()
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise Refusal("data alanı bir liste olmalıdır.", "DATA_ERROR")
        for item in items:
            shop.ship(
                str(item.get("OrderCode") or ""),
                str(item.get("CargoCode") or ""),
                str(item.get("CargoTrackingCode") or ""),
            )
        return _answer([], UPDATED)

    @app.post(f"{REST}/order2/getOrderStatusList")
    def tsoft_status_list() -> ResponseReturnValue:
        with shop.lock:
            listed = [{"OrderStatusId": key, "OrderStatusName": name} for key, name in shop.statuses.items()]
        return _answer(listed)

    @app.post(f"{REST}/order2/getCargoCompanyList")
    def tsoft_cargo_companies() -> ResponseReturnValue:
        return _answer([dict(company) for company in CARGO_COMPANIES])

    @app.post(f"{REST}/order2/getOrderNote")
    def tsoft_notes() -> ResponseReturnValue:
        with shop.lock:
            return _answer(list(shop.order(request.form.get("OrderCode", ""))["_notes"]))

    @app.post(f"{REST}/order2/setOrderNote")
    def tsoft_set_note() -> ResponseReturnValue:
        items = _data()
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise Refusal("data alanı bir liste olmalıdır.", "DATA_ERROR")
        added = [
            shop.add_note(str(item.get("OrderCode") or ""), str(item.get("Note") or "")) for item in items
        ]
        return _answer(added, UPDATED)

    # -- control: the seller in T-Soft's panel --------------------------------------------------------

    @app.post("/_control/tsoft/orders/<code>/status")
    def control_tsoft_status(code: str) -> ResponseReturnValue:
        body = request.get_json(silent=True) or {}
        try:
            return jsonify(public(shop.set_status(code, str(body.get("status_id", "")))))
        except Refusal as refusal:
            return jsonify({"error": refusal.text}), 400

    @app.post("/_control/tsoft/orders/<code>/cargo")
    def control_tsoft_cargo(code: str) -> ResponseReturnValue:
        body = request.get_json(silent=True) or {}
        try:
            shipped = shop.ship(code, str(body.get("cargo_code", "")), str(body.get("tracking_code", "")))
        except Refusal as refusal:
            return jsonify({"error": refusal.text}), 400
        return jsonify(public(shipped))

    @app.get("/_control/tsoft/state")
    def control_tsoft_state() -> ResponseReturnValue:
        with shop.lock:
            return jsonify(
                {
                    "orders": [public(order) | {"notes": order["_notes"]} for order in shop.orders.values()],
                    "statuses": shop.statuses,
                    "logins": shop.logins,
                    "now": datetime.now(UTC).isoformat(),
                }
            )
