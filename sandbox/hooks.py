"""The webhooks of the sandbox's Trendyol and WooCommerce: registered through their APIs as the real ones
are, and sent (sandbox/webhooks.py) when an order changes.

- Trendyol (developers.trendyol.com, webhook-model, webhook-yaratma; TY-OAS webhook.json): create, list,
  update, delete, activate and deactivate under /integration/webhook/sellers/{sellerId}/webhooks; the
  whole package is POSTed to the url each time its status moves, with the API key as `x-api-key` (or Basic
  with the username and password), to the webhooks subscribed to that status (all when none are listed).
- WooCommerce (REST API v3 webhooks; WC_Webhook::deliver): create, list, read, update and delete under
  /wp-json/wc/v3/webhooks; order.created and order.updated deliver the order as the REST API shows it,
  with X-WC-Webhook-Source, -Topic, -Resource, -Event, -ID, -Delivery-ID and -Signature (base64 of the
  HMAC-SHA256 of the body with the webhook's secret); a webhook created or set active is first pinged
  with a form body `webhook_id=N` and no signature.
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
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, abort, jsonify, request
from flask.typing import ResponseReturnValue

if TYPE_CHECKING:
    from sandbox.state import World
    from sandbox.webhooks import WebhookSender

TRENDYOL_HOOKS = "/trendyol/integration/webhook/sellers/<seller_id>/webhooks"
WOO_HOOKS = "/woocommerce/wp-json/wc/v3/webhooks"
# A package's status as Trendyol's webhooks name it (subscribedStatuses).
TRENDYOL_STATUSES = {
    "Awaiting": "AWAITING",
    "Created": "CREATED",
    "Picking": "PICKING",
    "Invoiced": "INVOICED",
    "Shipped": "SHIPPED",
    "AtCollectionPoint": "AT_COLLECTION_POINT",
    "Delivered": "DELIVERED",
    "UnDelivered": "UNDELIVERED",
    "Cancelled": "CANCELLED",
    "UnSupplied": "UNSUPPLIED",
    "Returned": "RETURNED",
    "UnPacked": "UNPACKED",
    "Verified": "VERIFIED",
}
WOO_TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored")
WOO_STATUSES = ("active", "paused", "disabled")


@dataclass
class Hooks:
    """Both platforms' webhooks. Its own lock; a push only hands a copy of the body to the sender."""

    trendyol: dict[str, dict[str, Any]] = field(default_factory=dict)
    woo: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.sender: WebhookSender | None = None  # set by the world
        self._woo_ids = itertools.count(1)
        self._deliveries = itertools.count(1)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"trendyol": list(self.trendyol.values()), "woo": list(self.woo.values())}

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.trendyol = {hook["id"]: hook for hook in state["trendyol"]}
            self.woo = {hook["id"]: hook for hook in state["woo"]}
            self._woo_ids = itertools.count(max(self.woo, default=0) + 1)

    def push_package(self, package: dict[str, Any]) -> None:
        """Trendyol's order webhook: the package, to each active webhook subscribed to its status."""
        status = TRENDYOL_STATUSES.get(package["status"], package["status"].upper())
        body = json.dumps({**package, "lines": [dict(line) for line in package["lines"]]}).encode()
        with self.lock:
            hooks = [dict(hook) for hook in self.trendyol.values() if hook["status"] == "ACTIVE"]
        for hook in hooks:
            if hook["subscribedStatuses"] and status not in hook["subscribedStatuses"]:
                continue
            if hook["authenticationType"] == "API_KEY":
                headers, proof = {"x-api-key": hook["apiKey"]}, ("x-api-key",)
            else:
                pair = f"{hook['username']}:{hook['password']}".encode()
                headers, proof = (
                    {"Authorization": f"Basic {base64.b64encode(pair).decode()}"},
                    ("Authorization",),
                )
            self._send(hook["url"], body, {**headers, "Content-Type": "application/json"}, proof)

    def push_order(self, public: dict[str, Any], event: str) -> None:
        """WooCommerce's order.<event>: the order as the REST API shows it, to each active webhook."""
        body = json.dumps(public).encode()
        topic = f"order.{event}"
        with self.lock:
            hooks = [
                dict(hook)
                for hook in self.woo.values()
                if hook["status"] == "active" and hook["topic"] == topic
            ]
            deliveries = [next(self._deliveries) for _ in hooks]
        for hook, delivery in zip(hooks, deliveries, strict=True):
            signature = base64.b64encode(
                hmac.new(hook["secret"].encode(), body, hashlib.sha256).digest()
            ).decode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "WooCommerce/10.3.0 Hookshot (WordPress/6.8)",
                "X-WC-Webhook-Source": "https://shop.sandbox/",
                "X-WC-Webhook-Topic": topic,
                "X-WC-Webhook-Resource": "order",
                "X-WC-Webhook-Event": event,
                "X-WC-Webhook-Signature": signature,
                "X-WC-Webhook-ID": str(hook["id"]),
                "X-WC-Webhook-Delivery-ID": str(delivery),
            }
            self._send(hook["delivery_url"], body, headers, ("X-WC-Webhook-Signature",))

    def _ping(self, hook: dict[str, Any]) -> None:
        body = f"webhook_id={hook['id']}".encode()
        self._send(hook["delivery_url"], body, {"Content-Type": "application/x-www-form-urlencoded"}, ())

    def _send(self, url: str, body: bytes, headers: dict[str, str], proof: tuple[str, ...]) -> None:
        if self.sender is not None:
            self.sender.post(url, body, headers, proof)


def register(
    app: Flask, world: World, trendyol_auth: Callable[[str], None], woo_auth: Callable[[], None]
) -> None:
    """The webhook routes, behind each platform's own authentication (sandbox/app.py's)."""
    hooks = world.hooks

    # -- Trendyol ----------------------------------------------------------------------------------

    def trendyol_hook_body() -> dict[str, Any]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not body["url"]:
            abort(400, "url is required")
        kind = body.get("authenticationType")
        if kind not in ("BASIC_AUTHENTICATION", "API_KEY"):
            abort(400, "authenticationType must be BASIC_AUTHENTICATION or API_KEY")
        if kind == "API_KEY" and not body.get("apiKey"):
            abort(400, "apiKey is required for API_KEY")
        if kind == "BASIC_AUTHENTICATION" and not (body.get("username") and body.get("password")):
            abort(400, "username and password are required for BASIC_AUTHENTICATION")
        statuses = body.get("subscribedStatuses") or []
        if not isinstance(statuses, list) or set(statuses) - set(TRENDYOL_STATUSES.values()):
            abort(400, "subscribedStatuses has an unknown status")
        return {
            "url": body["url"],
            "authenticationType": kind,
            "apiKey": body.get("apiKey") or "",
            "username": body.get("username") or "",
            "password": body.get("password") or "",
            "subscribedStatuses": statuses,
        }

    def trendyol_hook(hook_id: str) -> dict[str, Any]:
        hook = hooks.trendyol.get(hook_id)
        if hook is None:
            abort(404, "webhook not found")
        return hook

    def trendyol_public(hook: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in hook.items() if key not in ("apiKey", "password")}

    @app.route(TRENDYOL_HOOKS, methods=["GET", "POST"])
    def trendyol_webhooks(seller_id: str) -> ResponseReturnValue:
        trendyol_auth(seller_id)
        with hooks.lock:
            if request.method == "GET":
                return jsonify([trendyol_public(hook) for hook in hooks.trendyol.values()])
            body = trendyol_hook_body()
            hook_id = str(uuid.UUID(int=world.rng.getrandbits(128), version=4))
            stamp = _now_ms()
            hooks.trendyol[hook_id] = {
                "id": hook_id,
                "createdDate": stamp,
                "lastModifiedDate": None,
                "status": "ACTIVE",
                **body,
            }
            return jsonify({"id": hook_id})

    @app.route(f"{TRENDYOL_HOOKS}/<hook_id>", methods=["PUT", "DELETE"])
    def trendyol_webhook(seller_id: str, hook_id: str) -> ResponseReturnValue:
        trendyol_auth(seller_id)
        with hooks.lock:
            hook = trendyol_hook(hook_id)
            if request.method == "DELETE":
                del hooks.trendyol[hook_id]
            else:
                hook.update(trendyol_hook_body(), lastModifiedDate=_now_ms())
        return Response("200 OK", mimetype="text/plain")

    @app.put(f"{TRENDYOL_HOOKS}/<hook_id>/<switch>")
    def trendyol_webhook_switch(seller_id: str, hook_id: str, switch: str) -> ResponseReturnValue:
        trendyol_auth(seller_id)
        if switch not in ("activate", "deactivate"):
            abort(404, "not found")
        with hooks.lock:
            trendyol_hook(hook_id).update(status="ACTIVE" if switch == "activate" else "PASSIVE")
        return Response("200 OK", mimetype="text/plain")

    # -- WooCommerce -------------------------------------------------------------------------------

    def woo_hook(hook_id: int) -> dict[str, Any]:
        hook = hooks.woo.get(hook_id)
        if hook is None:
            abort(_woo_error(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID."))
        return hook

    def woo_public(hook: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in hook.items() if key != "secret"}

    def woo_fields(body: dict[str, Any], hook: dict[str, Any]) -> None:
        if "topic" in body and body["topic"] not in WOO_TOPICS:
            abort(_woo_error(400, "rest_invalid_param", "Invalid parameter(s): topic"))
        if "status" in body and body["status"] not in WOO_STATUSES:
            abort(_woo_error(400, "rest_invalid_param", "Invalid parameter(s): status"))
        for name in ("name", "topic", "delivery_url", "secret", "status"):
            if isinstance(body.get(name), str):
                hook[name] = body[name]
        hook["resource"], hook["event"] = hook["topic"].split(".", 1)

    @app.route(WOO_HOOKS, methods=["GET", "POST"])
    def woo_webhooks() -> ResponseReturnValue:
        woo_auth()
        if request.method == "GET":
            per_page = request.args.get("per_page", 10, type=int)
            page = request.args.get("page", 1, type=int)
            if not 1 <= per_page <= 100:
                return _woo_error(400, "rest_invalid_param", "Invalid parameter(s): per_page")
            with hooks.lock:
                listed = [woo_public(hook) for hook in hooks.woo.values()]
            chunk = listed[(page - 1) * per_page : page * per_page]
            response = jsonify(chunk)
            response.headers["X-WP-Total"] = str(len(listed))
            response.headers["X-WP-TotalPages"] = str(max(1, -(-len(listed) // per_page)))
            return response
        body = request.get_json(silent=True) or {}
        if not body.get("topic") or not body.get("delivery_url"):
            return _woo_error(400, "rest_missing_callback_param", "Missing parameter(s): topic, delivery_url")
        with hooks.lock:
            hook_id = next(hooks._woo_ids)
            hook: dict[str, Any] = {
                "id": hook_id,
                "name": "",
                "status": "active",
                "secret": secrets.token_hex(16),
            }
            hook["topic"] = body["topic"]
            woo_fields(body, hook)
            hooks.woo[hook_id] = hook
        if hook["status"] == "active":
            hooks._ping(hook)
        return jsonify(woo_public(hook)), 201

    @app.route(f"{WOO_HOOKS}/<int:hook_id>", methods=["GET", "PUT", "DELETE"])
    def woo_webhook(hook_id: int) -> ResponseReturnValue:
        woo_auth()
        with hooks.lock:
            hook = woo_hook(hook_id)
            if request.method == "DELETE":
                del hooks.woo[hook_id]
                return jsonify(woo_public(hook))
            if request.method == "PUT":
                was = hook["status"]
                woo_fields(request.get_json(silent=True) or {}, hook)
                if hook["status"] == "active" and was != "active":
                    hooks._ping(hook)
            return jsonify(woo_public(hook))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _woo_error(status: int, code: str, message: str) -> Response:
    response = jsonify({"code": code, "message": message, "data": {"status": status}})
    response.status_code = status
    return response
