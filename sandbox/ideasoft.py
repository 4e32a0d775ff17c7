"""IdeaSoft in the sandbox, under /ideasoft: one store's consent page, token endpoint, Admin API orders,
notes and webhook subscriptions, and the Store API's order create, as the hub's IdeaSoft connector reaches
them.

Written from marketplace-apis-next.md §8 and its IS-mirror (cited in connectors/ideasoft.py and
specs/ideasoft-admin.openapi.yml): the OAuth2 authorisation code grant (single-use codes, rotating refresh
tokens, `invalid_grant` for a spent one), Bearer checks, orders listed newest first by `sort=-id` with
`limit`/`page`, `referrer` and `startCreatedAt` filters, times written ISO 8601 with the store's +03:00,
and webhooks that carry the changed fields plus `id`, signed `X-Ideashop-Hmac-Sha256` with the app's client
secret. Where nothing public says what IdeaSoft does (its words for a refusal, how it totals an order, the
referrer filter's matching) the choice is marked [sandbox].

The seller's hand in the panel is the methods `set_status` and `ship`; `order_for_reference` finds the hub's
order as the seller would by its referrer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request
from flask.typing import ResponseReturnValue

if TYPE_CHECKING:
    from sandbox.state import World
    from sandbox.webhooks import WebhookSender

PREFIX = "/ideasoft"
ISTANBUL = timezone(timedelta(hours=3), "Europe/Istanbul")
CENT = Decimal("0.01")
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
STATUSES = (
    "waiting_for_approval",
    "approved",
    "fulfilled",
    "cancelled",
    "delivered",
    "on_accumulation",
    "waiting_for_payment",
    "being_prepared",
    "refunded",
    "personal_status_1",
    "personal_status_2",
    "personal_status_3",
)
SIGNATURE = "X-Ideashop-Hmac-Sha256"
# What a PUT may change [sandbox: the mirror's body is a broken $ref].
WRITABLE = ("status", "shippingTrackingCode", "shippingProviderCode")


def _now_text(moment: float) -> str:
    return datetime.fromtimestamp(int(moment), ISTANBUL).isoformat()


class Refusal(Exception):
    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(json.dumps(payload))
        self.status = status
        self.payload = payload


def _refused(message: str, status: int = 400) -> Refusal:
    # [sandbox] IdeaSoft's error body: its message as `errorMessage`.
    return Refusal(status, {"errorMessage": message})


@dataclass
class IdeasoftShop:
    """IdeaSoft's side of the world: one store, its app's client id and secret, its tokens and orders."""

    client_id: str = "ideasoft-sandbox-client"
    client_secret: str = "ideasoft-sandbox-secret"
    token_seconds: int = 3600  # an access token's life (a knob)
    deny_consent: bool = False  # the seller refuses on the consent page
    rate_limited: int = 0  # the next n API calls answer 429
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    codes: dict[str, str] = field(default_factory=dict)  # code → its redirect_uri
    access: dict[str, float] = field(default_factory=dict)  # access token → when it expires
    refresh: set[str] = field(default_factory=set)  # refresh tokens not used yet
    refreshes: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.clock: Callable[[], float] = time.time  # a seam: the tests move the store's clock
        self.sender: WebhookSender | None = None
        self._ids = itertools.count(1001)

    # -- kept across restarts ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            next_id = next(self._ids)
            self._ids = itertools.count(next_id)
            return {
                "orders": list(self.orders.values()),
                "notes": list(self.notes),
                "subscriptions": list(self.subscriptions),
                "access": dict(self.access),
                "refresh": sorted(self.refresh),
                "next_id": next_id,
            }

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.orders = {int(order["id"]): order for order in state.get("orders", [])}
            self.notes = list(state.get("notes", []))
            self.subscriptions = list(state.get("subscriptions", []))
            self.access = dict(state.get("access") or {})
            self.refresh = set(state.get("refresh") or [])
            self._ids = itertools.count(int(state.get("next_id", 1001)))

    # -- OAuth2 -----------------------------------------------------------------------------------

    def consent(self, client_id: str, redirect_uri: str, state: str) -> str:
        """Where the consent page sends the seller back: with a code, or access_denied."""
        with self.lock:
            if client_id != self.client_id:
                raise _refused("Geçersiz client_id.")
            if self.deny_consent:
                query = {"error": "access_denied", "state": state}
            else:
                code = secrets.token_urlsafe(16)
                self.codes[code] = redirect_uri
                query = {"code": code, "state": state}
        return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(query)}"

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
                raise Refusal(
                    400,
                    {"error": "invalid_client", "error_description": "The client credentials are invalid"},
                )
            grant = form.get("grant_type")
            if grant == "authorization_code":
                if self.codes.get(form.get("code", "")) != form.get("redirect_uri") or not form.get(
                    "redirect_uri"
                ):
                    raise _invalid_grant("Code doesn't exist or is invalid for the client")
                del self.codes[form["code"]]
            elif grant == "refresh_token":
                if form.get("refresh_token") not in self.refresh:
                    raise _invalid_grant("Invalid refresh token")
                self.refresh.discard(form["refresh_token"])  # rotating: the old one stops working
                self.refreshes += 1
            else:
                raise Refusal(
                    400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}
                )
            access, renewal = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            self.access[access] = self.clock() + self.token_seconds
            self.refresh.add(renewal)
            return {
                "access_token": access,
                "expires_in": self.token_seconds,
                "token_type": "bearer",
                "scope": "order_read order_write",
                "refresh_token": renewal,
            }

    def check_bearer(self, header: str) -> None:
        with self.lock:
            token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
            expires = self.access.get(token)
            if expires is None or expires <= self.clock():
                raise Refusal(
                    401,
                    {"error": "invalid_grant", "error_description": "The access token provided has expired."},
                )

    def expire_tokens(self) -> None:
        """Every access token ends now."""
        with self.lock:
            self.access = dict.fromkeys(self.access, self.clock())

    # -- orders -----------------------------------------------------------------------------------

    def create(self, body: Any) -> dict[str, Any]:
        """The Store API's order create: each item by SKU; the total the store's own, from the lines at
        their prices and the shipping amount [sandbox], the sent finalAmount ignored."""
        if not isinstance(body, dict):
            raise _refused("Geçersiz istek gövdesi.")
        items = body.get("orderItems")
        if not isinstance(items, list) or not items:
            raise _refused("orderItems alanı boş olamaz.")
        status = body.get("status") or "waiting_for_approval"
        if status not in STATUSES:
            raise _refused(f"Geçersiz sipariş durumu: {status}")
        built = [_item(item) for item in items]
        shipping = _decimal(body.get("shippingAmount", "0"), "shippingAmount")
        amount = sum((Decimal(item["productPrice"]) * item["productQuantity"] for item in built), Decimal(0))
        with self.lock:
            stamp, order_id = _now_text(self.clock()), next(self._ids)
            order: dict[str, Any] = {
                "id": order_id,
                "referrer": str(body.get("referrer") or ""),
                "status": status,
                "paymentStatus": str(body.get("paymentStatus") or "success"),
                "paymentTypeName": str(body.get("paymentTypeName") or ""),
                "currency": str(body.get("currency") or "TRY"),
                "customerFirstname": str(body.get("customerFirstname") or ""),
                "customerSurname": str(body.get("customerSurname") or ""),
                "customerEmail": str(body.get("customerEmail") or ""),
                "customerPhone": str(body.get("customerPhone") or ""),
                "amount": str(amount.quantize(CENT, rounding=ROUND_HALF_UP)),
                "shippingAmount": str(shipping.quantize(CENT, rounding=ROUND_HALF_UP)),
                "finalAmount": str((amount + shipping).quantize(CENT, rounding=ROUND_HALF_UP)),
                "shippingProviderCode": "",
                "shippingTrackingCode": "",
                "shippingAddress": body.get("shippingAddress") or {},
                "billingAddress": body.get("billingAddress") or {},
                "orderItems": built,
                "createdAt": stamp,
                "updatedAt": stamp,
            }
            self.orders[order_id] = order
            self._notify("order/create", order)
            return order

    def get(self, order_id: int) -> dict[str, Any]:
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                raise _refused("Sipariş bulunamadı.", 404)
            return order

    def update(self, order_id: int, fields: Any) -> dict[str, Any]:
        """PUT /admin-api/orders/{id}: the writable fields that differ change, updatedAt moves, and
        order/update goes out with the changed fields and id."""
        if not isinstance(fields, dict):
            raise _refused("Geçersiz istek gövdesi.")
        if "status" in fields and fields["status"] not in STATUSES:
            raise _refused(f"Geçersiz sipariş durumu: {fields['status']}")
        with self.lock:
            order = self.get(order_id)
            changed = {
                name: str(fields[name])
                for name in WRITABLE
                if name in fields and str(fields[name]) != order[name]
            }
            if changed:
                order.update(changed, updatedAt=_now_text(self.clock()))
                self._notify("order/update", {"id": order_id, **changed, "updatedAt": order["updatedAt"]})
            return order

    def listed(self, args: dict[str, str]) -> list[dict[str, Any]]:
        try:
            limit = int(args.get("limit", DEFAULT_LIMIT))
            page = int(args.get("page", 1))
        except ValueError:
            raise _refused("limit ve page sayı olmalıdır.") from None
        if not 1 <= limit <= MAX_LIMIT or page < 1:
            raise _refused(f"limit 1 ile {MAX_LIMIT} arasında, page en az 1 olmalıdır.")
        start = args.get("startCreatedAt", "")
        with self.lock:
            rows = sorted(
                self.orders.values(), key=lambda order: order["id"], reverse=args.get("sort") == "-id"
            )
            if "referrer" in args:
                rows = [order for order in rows if order["referrer"] == args["referrer"]]  # [sandbox] exact
            if start:
                rows = [order for order in rows if order["createdAt"][:10] >= start]
            if "status" in args:
                rows = [order for order in rows if order["status"] == args["status"]]
            return rows[(page - 1) * limit : page * limit]

    def add_note(self, body: Any) -> dict[str, Any]:
        order = body.get("order") if isinstance(body, dict) else None
        note = body.get("note") if isinstance(body, dict) else None
        order_id = order.get("id") if isinstance(order, dict) else None
        if not isinstance(order_id, int) or not isinstance(note, str) or not note:
            raise _refused("order ve note alanları zorunludur.")
        with self.lock:
            self.get(order_id)
            entry = {
                "id": len(self.notes) + 1,
                "order": {"id": order_id},
                "note": note,
                "createdAt": _now_text(self.clock()),
            }
            self.notes.append(entry)
            return entry

    def subscribe(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("topic") or not body.get("address"):
            raise _refused("topic ve address alanları zorunludur.")
        with self.lock:
            entry = {
                "id": len(self.subscriptions) + 1,
                "topic": str(body["topic"]),
                "address": str(body["address"]),
                "status": int(body.get("status", 1)),
                "createdAt": _now_text(self.clock()),
            }
            self.subscriptions.append(entry)
            return entry

    def drop_subscriptions(self) -> None:
        """IdeaSoft deletes a subscription after failed deliveries: all of them gone."""
        with self.lock:
            self.subscriptions.clear()

    # -- the seller, in the panel -------------------------------------------------------------------

    def order_for_reference(self, reference: str) -> dict[str, Any] | None:
        with self.lock:
            return next((order for order in self.orders.values() if order["referrer"] == reference), None)

    def set_status(self, order_id: int, status: str) -> None:
        self.update(order_id, {"status": status})

    def ship(self, order_id: int, provider: str, code: str) -> None:
        self.update(order_id, {"shippingProviderCode": provider, "shippingTrackingCode": code})

    def _notify(self, topic: str, payload: dict[str, Any]) -> None:
        """Signed deliveries to every active subscription to the topic."""
        if self.sender is None:
            return
        body = json.dumps(payload, ensure_ascii=False).encode()
        signature = base64.b64encode(
            hmac.new(self.client_secret.encode(), body, hashlib.sha256).digest()
        ).decode()
        headers = {"Content-Type": "application/json", SIGNATURE: signature}
        for entry in self.subscriptions:
            if entry["topic"] == topic and entry["status"] == 1:
                self.sender.post(entry["address"], body, headers, proof=(SIGNATURE,))


def _invalid_grant(description: str) -> Refusal:
    return Refusal(400, {"error": "invalid_grant", "error_description": description})


def _decimal(value: Any, name: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _refused(f"{name} geçerli bir tutar değil.") from None
    if not amount.is_finite() or amount < 0:
        raise _refused(f"{name} geçerli bir tutar değil.")
    return amount


def _item(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or not item.get("productSku"):
        raise _refused("Her sipariş kalemi productSku içermelidir.")
    quantity = item.get("productQuantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise _refused("productQuantity pozitif bir tam sayı olmalıdır.")
    return {
        "productSku": str(item["productSku"]),
        "productName": str(item.get("productName") or ""),
        "productQuantity": quantity,
        "productPrice": str(_decimal(item.get("productPrice"), "productPrice")),
        "productTax": str(_decimal(item.get("productTax", "0"), "productTax")),
    }


def register(app: Flask, world: World) -> None:
    shop = world.ideasoft
    shop.sender = world.webhooks

    def answer(call: Callable[[], Any], status: int = 200) -> ResponseReturnValue:
        try:
            return jsonify(call()), status
        except Refusal as refusal:
            return jsonify(refusal.payload), refusal.status

    def api(call: Callable[[], Any], status: int = 200) -> ResponseReturnValue:
        with shop.lock:
            if shop.rate_limited > 0:
                shop.rate_limited -= 1
                return jsonify({"errorMessage": "Too Many Requests"}), 429
        try:
            shop.check_bearer(request.headers.get("Authorization", ""))
        except Refusal as refusal:
            return jsonify(refusal.payload), refusal.status
        return answer(call, status)

    @app.get(f"{PREFIX}/panel/auth")
    def ideasoft_consent() -> ResponseReturnValue:
        """The consent page, as if the seller approved (or refused, with the knob)."""
        args = request.args
        if args.get("response_type") != "code" or not args.get("redirect_uri"):
            return jsonify({"errorMessage": "response_type=code ve redirect_uri zorunludur."}), 400
        try:
            target = shop.consent(args.get("client_id", ""), args["redirect_uri"], args.get("state", ""))
        except Refusal as refusal:
            return jsonify(refusal.payload), refusal.status
        return redirect(target, 302)

    @app.post(f"{PREFIX}/oauth/v2/token")
    def ideasoft_token() -> ResponseReturnValue:
        return answer(lambda: shop.token(request.form.to_dict()))

    @app.post(f"{PREFIX}/api/orders")
    def ideasoft_create_order() -> ResponseReturnValue:
        return api(lambda: shop.create(request.get_json(silent=True)), 201)

    @app.get(f"{PREFIX}/admin-api/orders")
    def ideasoft_orders() -> ResponseReturnValue:
        return api(lambda: shop.listed(request.args.to_dict()))

    @app.get(f"{PREFIX}/admin-api/orders/<int:order_id>")
    def ideasoft_order(order_id: int) -> ResponseReturnValue:
        return api(lambda: shop.get(order_id))

    @app.put(f"{PREFIX}/admin-api/orders/<int:order_id>")
    def ideasoft_update_order(order_id: int) -> ResponseReturnValue:
        return api(lambda: shop.update(order_id, request.get_json(silent=True)))

    @app.get(f"{PREFIX}/admin-api/order_user_notes")
    def ideasoft_notes() -> ResponseReturnValue:
        wanted = request.args.get("order", "")
        return api(lambda: [note for note in shop.notes if str(note["order"]["id"]) == wanted or not wanted])

    @app.post(f"{PREFIX}/admin-api/order_user_notes")
    def ideasoft_add_note() -> ResponseReturnValue:
        return api(lambda: shop.add_note(request.get_json(silent=True)), 201)

    @app.get(f"{PREFIX}/admin-api/client_webhooks")
    def ideasoft_webhooks() -> ResponseReturnValue:
        return api(lambda: list(shop.subscriptions))

    @app.post(f"{PREFIX}/admin-api/client_webhooks")
    def ideasoft_subscribe() -> ResponseReturnValue:
        return api(lambda: shop.subscribe(request.get_json(silent=True)), 201)
