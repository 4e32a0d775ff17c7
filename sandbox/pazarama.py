"""Pazarama's merchant API in the sandbox, under /pazarama, in the shapes and rules of the research notes
(marketplace-apis-next.md §5): the client-credentials token (Basic clientId:clientSecret, the grant and
scope checked; a refusal 400 with messageCode invalid_token), Bearer tokens that last an hour (a token it
no longer takes: 401 with an empty body and WWW-Authenticate), every answer in the envelope {data, success,
messageCode, message, userMessage}; the order listing by order date with 1-based pages, its end exclusive,
at most a month, dates as Istanbul wall clock "YYYY-MM-DD" or "YYYY-MM-DDTHH:mm", a lookup by orderNumber
six months back; item statuses set one item at a time (12 from 3; 5 from 12 with an own carrier's code and
one of the seller's delivery options; 13 before shipping); the seller's delivery options. Control endpoints
under /_control/pazarama.

Where the notes are silent (Pazarama's words for a refusal, the delivery options' field names, the largest
page, the order of the listing) the sandbox's choice is named where it is made, [sandbox].
"""

from __future__ import annotations

import base64
import itertools
import random
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox import generator

if TYPE_CHECKING:
    from sandbox.state import World

PREFIX = "/pazarama"
ISTANBUL = timedelta(hours=3)
TOKEN_SECONDS = 3600
SCOPE = "merchantgatewayapi.fullaccess"
MAX_PAGE_SIZE = 100  # [sandbox] the notes' example asks for 100
MAX_WINDOW = timedelta(days=31)  # "at most one month" [sandbox: the longest month]
LOOKUP_BACK = timedelta(days=183)  # a lookup by orderNumber: six months
DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2})?")
NEW, ACCEPTED, SHIPPED, DELIVERED, CANCELLED, UNSUPPLIED = 3, 12, 5, 11, 6, 13
ITEM_STATUSES = (3, 12, 5, 16, 19, 11, 14, 6, 18, 13, 7, 8, 9, 10)
OWN_CARRIER = 1
# The seller's delivery options (getSellerDelivery) [sandbox: the GUIDs and the field names are the
# sandbox's own; the notes name only the call and cargoCompanyId].
CARRIERS = tuple(
    (str(uuid.uuid5(uuid.NAMESPACE_URL, f"pazarama-cargo-{name}")), name)
    for name in ("Yurtiçi Kargo", "Aras Kargo", "MNG Kargo", "PTT Kargo", "Sürat Kargo")
)
CENT = Decimal("0.01")


def _money(value: Decimal) -> dict[str, Any]:
    """An amount as Pazarama writes an item's: {value, valueString, currency}."""
    rounded = value.quantize(CENT, rounding=ROUND_HALF_UP)
    return {"value": float(rounded), "valueString": f"{rounded:.2f}", "currency": "TL"}


def istanbul(moment: datetime) -> str:
    """A moment as the sandbox writes orderDate: Istanbul wall clock, no offset [sandbox]."""
    return (moment.astimezone(UTC) + ISTANBUL).strftime("%Y-%m-%dT%H:%M:%S")


def _read_date(text: Any) -> datetime | None:
    """startDate/endDate as Pazarama reads them: Istanbul wall clock, to the minute, as UTC."""
    if not isinstance(text, str) or not DATE.fullmatch(text):
        return None
    wall = datetime.fromisoformat(text if "T" in text else f"{text}T00:00")
    return (wall - ISTANBUL).replace(tzinfo=UTC)


def _ordered_at(order: dict[str, Any]) -> datetime:
    return (datetime.fromisoformat(order["orderDate"]) - ISTANBUL).replace(tzinfo=UTC)


@dataclass
class PazaramaMarket:
    """Pazarama's side of the world: the seller's keys, tokens and orders. It has its own lock; nothing
    holds it while taking another."""

    client_id: str = "pazarama-sandbox-id"
    client_secret: str = "pazarama-sandbox-secret"
    seed: int = 22
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Tokens handed out, with when each runs out (time.time()).
    tokens: dict[str, float] = field(default_factory=dict)
    # The token answer's shape: "envelope" (data.accessToken, the portal's text) or "oauth" (access_token).
    token_shape: str = "envelope"
    # Every updateOrderStatus body taken, in order: what the hub told Pazarama.
    pushed: list[dict[str, Any]] = field(default_factory=list)
    # A key whose tokens the API never takes (its permissions withdrawn): every call answers 401.
    refuse_tokens: bool = False

    COUNTERS = ("_order_numbers",)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.rng = random.Random(self.seed)
        self._order_numbers = itertools.count(604_000_001)

    # -- kept across restarts, with the rest of the world ------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            following = next(self._order_numbers)
            self._order_numbers = itertools.count(following)
            return {"orders": list(self.orders.values()), "counters": {"_order_numbers": following}}

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.orders = {order["orderNumber"]: order for order in state.get("orders", [])}
            following = state.get("counters", {}).get("_order_numbers")
            if isinstance(following, int):
                self._order_numbers = itertools.count(following)

    # -- tokens ------------------------------------------------------------------------------------

    def issue_token(self) -> dict[str, Any]:
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.time() + TOKEN_SECONDS
        if self.token_shape == "oauth":
            return {"access_token": token, "expires_in": TOKEN_SECONDS, "token_type": "Bearer"}
        return envelope({"accessToken": token, "expiresIn": TOKEN_SECONDS, "tokenType": "Bearer"})

    def token_valid(self, token: str) -> bool:
        return not self.refuse_tokens and self.tokens.get(token, 0) > time.time()

    # -- orders ------------------------------------------------------------------------------------

    def create_order(self, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new order: `spec` may fix lines ([{barcode, quantity, discount}], the discount for the line in
        lira), status (every item's), daysAgo (when it was placed), nameSurname and companyName (an
        invoice to a company)."""
        spec = spec or {}
        with self.lock:
            person = generator.customer(self.rng)
            catalogue = {product.barcode: product for product in generator.CATALOGUE}
            if "lines" in spec:
                chosen = [
                    (
                        catalogue[line["barcode"]],
                        int(line.get("quantity", 1)),
                        Decimal(str(line.get("discount", 0))),
                    )
                    for line in spec["lines"]
                ]
            else:
                chosen = [(product, quantity, Decimal(0)) for product, quantity in generator.lines(self.rng)]
            status = int(spec.get("status", NEW))
            placed = datetime.now(UTC) - timedelta(days=float(spec.get("daysAgo", 0)))
            number = next(self._order_numbers)
            address = person["address"]
            assert isinstance(address, dict)
            name = str(spec.get("nameSurname") or f"{person['firstName']} {person['lastName']}")
            items = [
                self._item(product, quantity, discount, status) for product, quantity, discount in chosen
            ]
            goods = sum((Decimal(str(item["totalPrice"]["value"])) for item in items), Decimal(0))
            fee = generator.CARGO_FEE if goods < generator.FREE_SHIPPING_FROM else Decimal(0)
            order: dict[str, Any] = {
                "orderId": str(uuid.UUID(int=self.rng.getrandbits(128))),
                "orderNumber": number,
                "orderDate": istanbul(placed),
                # [sandbox] what the customer paid, the shipping fee included.
                "orderAmount": float(goods + fee),
                "shipmentAmount": float(fee),
                "discountAmount": float(sum((Decimal(str(d)) for _, _, d in chosen), Decimal(0))),
                "currency": "TL",
                "paymentType": 1,
                "orderStatus": status,
                "customerId": str(uuid.UUID(int=self.rng.getrandbits(128))),
                "customerName": name,
                "customerEmail": f"musteri{number}@pazarama.example",
                "shipmentAddress": {
                    "nameSurname": name,
                    "cityName": address["city"],
                    "districtName": address["district"],
                    "neighborhoodName": address["neighborhood"],
                    "addressDetail": str(address["address1"]).removeprefix(f"{address['neighborhood']} "),
                    "phoneNumber": address["phone"],
                    "postalCode": address["postalCode"],
                },
                "billingAddress": {
                    "invoiceType": 2 if spec.get("companyName") else 1,
                    "identityNumber": "11111111111",
                    "companyName": spec.get("companyName"),
                    "taxNumber": "1234567890" if spec.get("companyName") else None,
                    "taxOffice": "Kadıköy" if spec.get("companyName") else None,
                    "isEInvoiceObliged": bool(spec.get("companyName")),
                },
                "items": items,
            }
            self.orders[number] = order
            return order

    def _item(
        self, product: generator.Product, quantity: int, discount: Decimal, status: int
    ) -> dict[str, Any]:
        net = product.price * quantity - discount
        tax = net - net / (1 + Decimal(product.vat_rate) / 100)
        return {
            "orderItemId": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "orderItemStatus": status,
            "quantity": quantity,
            "listPrice": _money(product.price),
            "salePrice": _money(product.price),
            "taxAmount": _money(tax),
            "totalPrice": _money(net),
            "discountAmount": _money(discount),
            "deliveryType": None,
            "shipmentCode": None,
            "shipmentCost": _money(Decimal(0)),
            "estimatedShippingDate": istanbul(datetime.now(UTC) + timedelta(days=2)),
            "cargo": {"companyName": None, "trackingNumber": None, "trackingUrl": None},
            "product": {
                "productId": str(uuid.uuid5(uuid.NAMESPACE_URL, product.barcode)),
                "name": product.name,
                "code": product.barcode,
                "stockCode": product.stock_code,
                "vatRate": product.vat_rate,
            },
            "taxIncluded": True,
        }

    def set_status(self, order: dict[str, Any], status: int, **cargo: Any) -> None:
        """Pazarama (or its carrier, or the customer) moves every live item of the order; `cargo` sets
        companyName, trackingNumber, trackingUrl and shipmentCode. Shipped with none named: Pazarama's
        contracted carrier, with its code and link."""
        with self.lock:
            for item in order["items"]:
                if item["orderItemStatus"] in (CANCELLED, UNSUPPLIED) and status not in (
                    CANCELLED,
                    UNSUPPLIED,
                ):
                    continue
                item["orderItemStatus"] = status
                if status == SHIPPED:
                    number = cargo.get("trackingNumber") or item["cargo"]["trackingNumber"]
                    number = number or str(self.rng.randint(10**11, 10**12 - 1))
                    carrier = cargo.get("companyName") or item["cargo"]["companyName"] or "Yurtiçi Kargo"
                    link = cargo.get("trackingUrl", f"https://kargotakip.pazarama.example/{number}")
                    item["cargo"] = {"companyName": carrier, "trackingNumber": number, "trackingUrl": link}
                    item["shipmentCode"] = (
                        cargo.get("shipmentCode") or item["shipmentCode"] or f"PZR{number[-8:]}"
                    )
            order["orderStatus"] = status

    def advance(self) -> None:
        """One step of the demo's life: accepted orders ship and arrive, now and then a new one is
        cancelled by the customer; a new order waits for the seller to accept it, as on Pazarama."""
        with self.lock:
            now = datetime.now(UTC)
            for order in list(self.orders.values()):
                status = order["orderStatus"]
                age = (now - _ordered_at(order)).total_seconds()
                roll = self.rng.random()
                if status == NEW and age > 60 and roll < 0.002:
                    self.set_status(order, CANCELLED)
                elif status == ACCEPTED and roll < 0.3:
                    self.set_status(order, SHIPPED)
                elif status == SHIPPED and roll < 0.3:
                    self.set_status(order, DELIVERED)

    def listing(self, start: datetime, end: datetime, page: int, size: int) -> list[dict[str, Any]]:
        """Orders placed in [start, end), oldest first [sandbox: the notes do not say the order]."""
        with self.lock:
            found = sorted(
                (order for order in self.orders.values() if start <= _ordered_at(order) < end),
                key=lambda order: (order["orderDate"], order["orderNumber"]),
            )
            return [public(order) for order in found[(page - 1) * size : page * size]]

    def by_number(self, number: int) -> dict[str, Any] | None:
        order = self.orders.get(number)
        if order is None or datetime.now(UTC) - _ordered_at(order) > LOOKUP_BACK:
            return None
        return order

    def update(self, body: Any) -> None:
        """updateOrderStatus for one item; raises Refusal, changing nothing, for what Pazarama turns down
        ([sandbox] its words)."""
        with self.lock:
            if not isinstance(body, dict) or not isinstance(body.get("item"), dict):
                raise Refusal("ORD100", "orderNumber ve item zorunludur")
            number, item_body = body.get("orderNumber"), body["item"]
            order = (
                self.by_number(number) if isinstance(number, int) and not isinstance(number, bool) else None
            )
            if order is None:
                raise Refusal("ORD101", "Sipariş bulunamadı")
            item = next((i for i in order["items"] if i["orderItemId"] == item_body.get("orderItemId")), None)
            if item is None:
                raise Refusal("ORD102", "Sipariş kalemi bulunamadı")
            status, current = item_body.get("status"), item["orderItemStatus"]
            allowed = {ACCEPTED: (NEW,), SHIPPED: (ACCEPTED,), UNSUPPLIED: (NEW, ACCEPTED)}
            if status not in allowed or current not in allowed[status]:
                raise Refusal("ORD103", f"Sipariş kalemi {current} durumundan {status} durumuna geçemez")
            if status == SHIPPED:
                carrier = dict((company, name) for company, name in CARRIERS).get(
                    item_body.get("cargoCompanyId")
                )
                code = item_body.get("shippingTrackingNumber")
                if item_body.get("deliveryType") != OWN_CARRIER or carrier is None:
                    raise Refusal("ORD104", "Geçersiz kargo firması veya teslimat tipi")
                if not isinstance(code, str) or not code.strip():
                    raise Refusal("ORD105", "Kargo takip numarası zorunludur")
                link = item_body.get("trackingUrl")
                item["deliveryType"] = OWN_CARRIER
                item["cargo"] = {"companyName": carrier, "trackingNumber": code, "trackingUrl": link or None}
            item["orderItemStatus"] = status
            live = [i["orderItemStatus"] for i in order["items"] if i["orderItemStatus"] not in (6, 13)]
            order["orderStatus"] = min(live, key=ITEM_STATUSES.index) if live else status
            self.pushed.append(body)


class Refusal(Exception):
    """What Pazarama turns down with a 400: its messageCode and words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def envelope(
    data: Any, *, success: bool = True, code: str | None = "ORD0", message: str = ""
) -> dict[str, Any]:
    """Pazarama's answer: {data, success, messageCode, message, userMessage}."""
    return {
        "data": data,
        "success": success,
        "messageCode": code,
        "message": message or ("İşlem başarılı" if success else "İşlem başarısız"),
        "userMessage": message or None,
    }


def public(order: dict[str, Any]) -> dict[str, Any]:
    """A copy of the order as Pazarama answers it."""
    return {
        **order,
        "shipmentAddress": dict(order["shipmentAddress"]),
        "billingAddress": dict(order["billingAddress"]),
        "items": [{**item, "cargo": dict(item["cargo"])} for item in order["items"]],
    }


def register(app: Flask, world: World) -> None:
    """Pazarama's routes and its control endpoints on the sandbox app; the fault knobs reach them through
    the app's own hooks (every path under PREFIX)."""
    market = world.pazarama

    def refused(code: str, message: str, status: int = 400) -> Response:
        response = jsonify(envelope(None, success=False, code=code, message=message))
        response.status_code = status
        return response

    def unauthorised() -> Response:
        """A token Pazarama does not take: 401, an empty body (next §5.1)."""
        return Response(b"", status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def bearer() -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and market.token_valid(header.removeprefix("Bearer ").strip())

    @app.post(f"{PREFIX}/connect/token")
    def pazarama_token() -> ResponseReturnValue:
        """The client-credentials grant, Basic clientId:clientSecret (isortagimgiris.pazarama.com)."""
        header = request.headers.get("Authorization", "")
        try:
            user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            user = password = ""
        form = request.form
        if (
            not header.startswith("Basic ")
            or (user, password) != (market.client_id, market.client_secret)
            or form.get("grant_type") != "client_credentials"
            or form.get("scope") != SCOPE
        ):
            return refused("invalid_token", "Geçersiz istemci bilgileri")
        with market.lock:
            return jsonify(market.issue_token())

    @app.post(f"{PREFIX}/order/getOrdersForApi")
    def pazarama_orders() -> ResponseReturnValue:
        """The seller's orders placed in [startDate, endDate), or the one with orderNumber."""
        if not bearer():
            return unauthorised()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return refused("ORD001", "İstek gövdesi okunamadı")
        size, page, number = body.get("pageSize"), body.get("pageNumber"), body.get("orderNumber")
        if not isinstance(size, int) or not 1 <= size <= MAX_PAGE_SIZE:
            return refused("ORD002", f"pageSize 1 ile {MAX_PAGE_SIZE} arasında olmalı")
        if not isinstance(page, int) or page < 1:
            return refused("ORD003", "pageNumber 1 veya daha büyük olmalı")
        if number is not None:
            if not isinstance(number, int) or isinstance(number, bool):
                return refused("ORD004", "orderNumber bir sayı olmalı")
            with market.lock:
                found = market.by_number(number)
                data = [public(found)] if found is not None and page == 1 else []
            return jsonify(envelope(data))
        start, end = _read_date(body.get("startDate")), _read_date(body.get("endDate"))
        if start is None or end is None:
            return refused("ORD005", "startDate ve endDate YYYY-MM-DD veya YYYY-MM-DDTHH:mm olmalı")
        if not start < end <= start + MAX_WINDOW:
            return refused("ORD006", "Tarih aralığı en fazla bir ay olabilir")
        return jsonify(envelope(market.listing(start, end, page, size)))

    @app.put(f"{PREFIX}/order/updateOrderStatus")
    def pazarama_update() -> ResponseReturnValue:
        """One item's status: 12, 5 (with an own carrier's code) or 13."""
        if not bearer():
            return unauthorised()
        try:
            market.update(request.get_json(silent=True))
        except Refusal as refusal:
            return refused(refusal.code, str(refusal))
        return jsonify(envelope(None))

    @app.get(f"{PREFIX}/sellerRegister/getSellerDelivery")
    def pazarama_deliveries() -> ResponseReturnValue:
        """The carriers the seller ships with."""
        if not bearer():
            return unauthorised()
        data = [{"cargoCompanyId": company, "cargoCompanyName": name} for company, name in CARRIERS]
        return jsonify(envelope(data))

    # -- control -----------------------------------------------------------------------------------

    @app.post("/_control/pazarama/orders")
    def pazarama_control_create() -> ResponseReturnValue:
        """Create orders: {"lines": [{barcode, quantity, discount}], "status", "daysAgo", "nameSurname",
        "companyName"}, `count` times."""
        count = request.args.get("count", 1, type=int)
        spec = request.get_json(silent=True) or {}
        return jsonify([public(market.create_order(spec)) for _ in range(count)]), 201

    @app.post("/_control/pazarama/orders/<int:number>/status")
    def pazarama_control_status(number: int) -> ResponseReturnValue:
        """Move an order as Pazarama, its carrier or the customer would: {"status", and any of companyName,
        trackingNumber, trackingUrl, shipmentCode}."""
        body = request.get_json(silent=True) or {}
        with market.lock:
            order = market.orders.get(number)
            if order is None:
                return refused("ORD101", "Sipariş bulunamadı", 404)
            if body.get("status") not in ITEM_STATUSES:
                return refused("ORD103", f"status is one of {ITEM_STATUSES}")
            cargo = {
                key: body[key]
                for key in ("companyName", "trackingNumber", "trackingUrl", "shipmentCode")
                if key in body
            }
            market.set_status(order, body["status"], **cargo)
            return jsonify(public(order))

    @app.get("/_control/pazarama/state")
    def pazarama_control_state() -> ResponseReturnValue:
        with market.lock:
            return jsonify(
                {"orders": [public(order) for order in market.orders.values()], "pushed": market.pushed}
            )
