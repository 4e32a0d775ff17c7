"""The sandbox over HTTP: Trendyol's seller API under /trendyol, WooCommerce REST v3 under /woocommerce,
control endpoints under /_control, and a page at / that shows both sides."""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from typing import Any

from flask import Flask, Response, abort, jsonify, redirect, render_template_string, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from sandbox import amazon, ciceksepeti, hepsiburada, hooks, ideasoft, n11, pazarama, shopify, ticimax, tsoft
from sandbox.state import SELLER_STATUSES, Refused, World, now_ms, shop_public

TRENDYOL = "/trendyol/integration/order/sellers/<seller_id>"
WOO = "/woocommerce/wp-json/wc/v3"
# The platforms' APIs: what the fault knobs act on and the request log keeps.
APIS = (
    "/trendyol/",
    "/woocommerce/",
    f"{n11.PREFIX}/",
    f"{hepsiburada.PREFIX}/",
    f"{amazon.PREFIX}/",
    f"{shopify.PREFIX}/",
    f"{tsoft.PREFIX}/",
    f"{ciceksepeti.PREFIX}/",
    f"{pazarama.PREFIX}/",
    f"{ticimax.PREFIX}/",
    f"{ideasoft.PREFIX}/",
)
MAX_PAGE_SIZE = 200
TWO_WEEKS_MS = 14 * 24 * 3600 * 1000
# Where a seller may still declare a package unsupplied (before the carrier has it).
UNSUPPLIABLE = ("Awaiting", "Created", "Picking", "Invoiced")
# Trendyol's carriers by their providerCode (developers.trendyol.com, "Trendyol Shipment Providers List").
PROVIDERS = {
    "TEXMP": "Trendyol Express Marketplace",
    "YKMP": "Yurtiçi Kargo Marketplace",
    "ARASMP": "Aras Kargo Marketplace",
    "SURATMP": "Sürat Kargo Marketplace",
    "PTTMP": "PTT Kargo Marketplace",
    "HOROZMP": "Horoz Kargo Marketplace",
    "DHLECOMMP": "DHL eCommerce Marketplace",
    "CEVAMP": "CEVA Marketplace",
    "CEVATEDARIK": "Ceva Tedarik Marketplace",
    "SENDEOMP": "Kolay Gelsin Marketplace",
}
CARGO_FIELDS = ("cargoTrackingNumber", "cargoTrackingLink", "cargoProviderName", "cargoSenderNumber")


def create_sandbox(world: World | None = None) -> Flask:
    app = Flask(__name__)
    world = world or World()
    app.extensions["sandbox"] = world

    @app.before_request
    def misbehave() -> ResponseReturnValue | None:
        """The fault knobs act on the APIs, never on the control endpoints or the page."""
        if not request.path.startswith(APIS):
            return None
        faults = world.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        roll = world.rng.random()
        limited = faults.rate_limit_rate if faults.rate_limit_method in ("", request.method) else 0.0
        if roll < limited:
            return _error(429, "too.many.requests", {"Retry-After": str(faults.retry_after)})
        if roll < limited + faults.error_rate:
            return _error(503, "service unavailable")
        return None

    @app.after_request
    def record(response: Response) -> Response:
        if request.path.startswith(APIS):
            world.requests.append((request.method, request.path, response.status_code))
            # A lost answer: the effect happened, the client times out before it hears so.
            faults = world.faults
            targeted = faults.timeout_method in ("", request.method)
            if response.status_code < 400 and targeted and world.rng.random() < faults.timeout_rate:
                time.sleep(faults.timeout_seconds)
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        return _error(error.code or 500, error.description or "error")

    # -- Trendyol ----------------------------------------------------------------------------------

    def trendyol_auth(seller_id: str) -> None:
        agent = request.headers.get("User-Agent", "")
        if not agent.startswith(f"{seller_id} - ") or len(agent.split(" - ", 1)[1]) > 30:
            abort(403, "User-Agent must be '{sellerId} - {integrator}'")
        if _basic() != (world.api_key, world.api_secret) or seller_id != world.seller_id:
            abort(401, "ClientApiAuthenticationException")

    @app.get(f"{TRENDYOL}/orders")
    def list_packages(seller_id: str) -> ResponseReturnValue:
        trendyol_auth(seller_id)
        end = request.args.get("endDate", type=int) or now_ms()
        start = request.args.get("startDate", type=int) or end - 7 * 24 * 3600 * 1000
        if end - start > TWO_WEEKS_MS:
            abort(400, "startDate and endDate may be at most two weeks apart")
        size = request.args.get("size", 50, type=int)
        if not 1 <= size <= MAX_PAGE_SIZE:
            abort(400, f"size must be between 1 and {MAX_PAGE_SIZE}")
        statuses = {value for value in request.args.get("status", "").split(",") if value}
        page = request.args.get("page", 0, type=int)
        ids = {
            int(value) for value in request.args.get("shipmentPackageIds", "").split(",") if value.isdigit()
        }
        newest_first = request.args.get("orderByDirection", "DESC").upper() != "ASC"
        order_number = request.args.get("orderNumber", "")
        return jsonify(world.listing(start, end, statuses, page, size, ids, newest_first, order_number))

    @app.put(f"{TRENDYOL}/shipment-packages/<int:package_id>")
    def update_package(seller_id: str, package_id: int) -> ResponseReturnValue:
        trendyol_auth(seller_id)
        body = request.get_json(silent=True) or {}
        status = body.get("status")
        with world.lock:
            package = world.packages.get(package_id) or abort(404, "package not found")
            if status not in SELLER_STATUSES:
                abort(400, "only Picking and Invoiced can be set")
            order = ("Created", "Picking", "Invoiced")
            if package["status"] not in order or order.index(status) < order.index(package["status"]):
                abort(400, f"package is {package['status']}: cannot go to {status}")
            known = {line["lineId"] for line in package["lines"]}
            if not body.get("lines") or {line.get("lineId") for line in body["lines"]} - known:
                abort(400, "lines must name this package's lineIds")
            if status == "Invoiced" and not (body.get("params") or {}).get("invoiceNumber"):
                abort(400, "invoiceNumber is required for Invoiced")
            if package["status"] != status:
                world.set_status(package, status)
        return "", 200

    @app.put(f"{TRENDYOL}/shipment-packages/<int:package_id>/tracking-details")
    def update_tracking(seller_id: str, package_id: int) -> ResponseReturnValue:
        """Trendyol's Update Tracking Number (the deprecated `update-tracking-number` is gone here):
        the seller's own carrier's number as cargoSenderNumber, with the carrier's providerCode; only
        once the package is accepted (Picking), changed at most until it is shipped."""
        trendyol_auth(seller_id)
        body = request.get_json(silent=True) or {}
        number, code = str(body.get("cargoSenderNumber") or ""), str(body.get("providerCode") or "")
        with world.lock:
            package = world.packages.get(package_id) or abort(404, "package not found")
            if not number or not code:
                abort(400, "cargoSenderNumber and providerCode are required")
            if code not in PROVIDERS:
                abort(400, f"unknown providerCode {code}")
            status = package["status"]
            if status not in ("Picking", "Invoiced", "Shipped"):
                abort(400, "Shipment tracking number cannot be updated")  # Trendyol's words, any other status
            if status == "Shipped" and package.get("cargoSenderNumber") not in (None, "", number):
                abort(400, "Shipment tracking number cannot be updated")  # a new code after shipping
            package["cargoSenderNumber"] = number
            package["cargoProviderName"] = PROVIDERS[code]
            package["lastModifiedDate"] = now_ms()
        return "", 200

    @app.put(f"{TRENDYOL}/shipment-packages/<int:package_id>/items/unsupplied")
    def unsupply(seller_id: str, package_id: int) -> ResponseReturnValue:
        trendyol_auth(seller_id)
        body = request.get_json(silent=True) or {}
        with world.lock:
            package = world.packages.get(package_id) or abort(404, "package not found")
            if package["status"] not in UNSUPPLIABLE:
                # Trendyol's rule: a seller cannot supply a package it has not yet handed to the carrier.
                abort(400, f"package in status {package['status']} cannot be unsupplied")
            world.cancel_lines(package, *_unsupplied(package, body.get("lines")))
        return "", 200

    # -- WooCommerce -------------------------------------------------------------------------------

    def woo_auth() -> None:
        if _basic() != (world.consumer_key, world.consumer_secret):
            abort(_woo_error(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources."))

    def shop_order(order_id: int, status: int = 404, message: str = "Invalid ID.") -> dict[str, Any]:
        """The order, or WooCommerce's answer for a missing one: 404 to a read, 400 to an update."""
        order = world.shop_orders.get(order_id)
        if order is None:
            abort(_woo_error(status, "woocommerce_rest_shop_order_invalid_id", message))
        return order

    def page_size(maximum: int) -> int:
        per_page = request.args.get("per_page", 10, type=int)
        if not 1 <= per_page <= maximum:
            abort(_woo_error(400, "rest_invalid_param", "Invalid parameter(s): per_page"))
        return per_page

    @app.get(f"{WOO}/orders")
    def woo_list() -> ResponseReturnValue:
        woo_auth()
        per_page = page_size(100)
        page = request.args.get("page", 1, type=int)
        search = request.args.get("search", "")
        modified_after = request.args.get("modified_after", "")
        created_after = request.args.get("after", "")
        with world.lock:
            orders = [
                order
                for order in world.shop_orders.values()
                if (
                    not search
                    or (
                        world.faults.search_covers_meta
                        and any(search in str(m["value"]) for m in order["meta_data"])
                    )
                    or search in str(order["id"])
                )
                and (not modified_after or order["date_modified_gmt"] > modified_after)
                and (not created_after or order["date_created_gmt"] > created_after)
            ]
            orders.sort(key=lambda order: order["id"])
            chunk = [shop_public(order) for order in orders[(page - 1) * per_page : page * per_page]]
        return _paged(chunk, len(orders), per_page)

    @app.post(f"{WOO}/orders")
    def woo_create() -> ResponseReturnValue:
        woo_auth()
        try:
            order = world.create_shop_order(request.get_json(silent=True) or {})
        except Refused as refused:
            return _woo_error(400, refused.code, refused.message)
        return jsonify(shop_public(order)), 201

    @app.get(f"{WOO}/orders/<int:order_id>")
    def woo_get(order_id: int) -> ResponseReturnValue:
        woo_auth()
        return jsonify(shop_public(shop_order(order_id)))

    @app.put(f"{WOO}/orders/<int:order_id>")
    def woo_update(order_id: int) -> ResponseReturnValue:
        woo_auth()
        order = shop_order(order_id, status=400)
        try:
            world.update_shop_order(order, request.get_json(silent=True) or {})
        except Refused as refused:
            return _woo_error(400, refused.code, refused.message)
        return jsonify(shop_public(order))

    @app.route(f"{WOO}/orders/<int:order_id>/notes", methods=["GET", "POST"])
    def woo_notes(order_id: int) -> ResponseReturnValue:
        woo_auth()
        order = shop_order(order_id, message="Invalid order ID.")
        if request.method == "GET":
            return jsonify(order["notes"])
        body = request.get_json(silent=True) or {}
        if not body.get("note"):
            return _woo_error(400, "rest_missing_callback_param", "Missing parameter(s): note")
        return jsonify(world.add_note(order, body["note"], bool(body.get("customer_note")))), 201

    @app.get(f"{WOO}/taxes")
    def woo_taxes() -> ResponseReturnValue:
        """The store's tax rates, in their order, a page at a time (read-only here: set them through
        /_control/taxes)."""
        woo_auth()
        per_page = page_size(100)
        page = request.args.get("page", 1, type=int)
        wanted = request.args.get("class")
        with world.lock:
            if wanted is not None and wanted not in world.taxes.slugs():
                return _woo_error(400, "rest_invalid_param", "Invalid parameter(s): class")
            rates = [rate for rate in world.taxes.rates if wanted is None or rate["class"] == wanted]
            chunk = rates[(page - 1) * per_page : page * per_page]
            return _paged(chunk, len(rates), per_page)

    @app.get(f"{WOO}/taxes/classes")
    def woo_tax_classes() -> ResponseReturnValue:
        woo_auth()
        with world.lock:
            return jsonify([{"slug": "standard", "name": "Standard rate"}, *world.taxes.classes])

    @app.get(f"{WOO}/reports/orders/totals")
    def woo_order_totals() -> ResponseReturnValue:
        """The orders totals report: every order status of the store (its custom ones too), with its name
        and how many orders have it."""
        woo_auth()
        with world.lock:
            counts = Counter(order["status"] for order in world.shop_orders.values())
            statuses = dict(world.shop_statuses)
        return jsonify(
            [{"slug": slug, "name": name, "total": counts[slug]} for slug, name in statuses.items()]
        )

    hooks.register(app, world, trendyol_auth, woo_auth)
    n11.register(app, world)
    hepsiburada.register(app, world)
    amazon.register(app, world)
    shopify.register(app, world)
    tsoft.register(app, world)
    ciceksepeti.register(app, world)
    pazarama.register(app, world)
    ticimax.register(app, world)
    ideasoft.register(app, world)

    # -- control -----------------------------------------------------------------------------------

    @app.post("/_control/packages")
    def control_create() -> ResponseReturnValue:
        """Create an order package: {"lines": [{"barcode", "quantity"}], "status", "firstName", ...}."""
        count = request.args.get("count", 1, type=int)
        packages = [world.create_package(request.get_json(silent=True) or {}) for _ in range(count)]
        return jsonify(packages), 201

    @app.post("/_control/packages/<int:package_id>/status")
    def control_status(package_id: int) -> ResponseReturnValue:
        body = request.get_json(silent=True) or {}
        with world.lock:
            package = world.packages.get(package_id) or abort(404, "package not found")
            for field in CARGO_FIELDS:
                if field in body:
                    package[field] = body[field]
            world.set_status(package, body["status"])
            return jsonify(package)

    @app.post("/_control/packages/<int:package_id>/cancel-lines")
    def control_cancel_lines(package_id: int) -> ResponseReturnValue:
        body = request.get_json(silent=True) or {}
        with world.lock:
            package = world.packages.get(package_id) or abort(404, "package not found")
            successor = world.cancel_lines(package, {int(line_id) for line_id in body["lineIds"]})
            return jsonify({"cancelled": package, "successor": successor})

    @app.post("/_control/shop/orders/<int:order_id>")
    def control_shop_order(order_id: int) -> ResponseReturnValue:
        """A change the seller makes in the shop: {"status": ..., "meta_data": [...]}."""
        order = shop_order(order_id)
        try:
            world.update_shop_order(order, request.get_json(silent=True) or {})
        except Refused as refused:
            abort(400, refused.message)
        return jsonify(shop_public(order))

    @app.post("/_control/taxes")
    def control_taxes() -> ResponseReturnValue:
        """The shop's tax settings: {"enabled", "prices_include_tax", "round_at_subtotal", "shipping_class",
        "classes": [{slug, name}], "rates": [{country, rate, name, class, shipping, priority}]}, any of them;
        answers them all."""
        with world.lock:
            try:
                world.taxes.update(request.get_json(silent=True) or {})
            except (KeyError, ValueError, TypeError) as error:
                abort(400, f"unknown or bad tax setting: {error}")
            return jsonify(vars(world.taxes))

    @app.post("/_control/faults")
    def control_faults() -> ResponseReturnValue:
        try:
            world.faults.update(request.get_json(silent=True) or {})
        except (KeyError, ValueError) as error:
            abort(400, f"unknown or bad fault knob: {error}")
        return jsonify(vars(world.faults))

    @app.post("/_control/advance")
    def control_advance() -> ResponseReturnValue:
        world.advance()
        return "", 204

    @app.get("/_control/state")
    def control_state() -> ResponseReturnValue:
        with world.lock:
            return jsonify(
                {
                    "packages": list(world.packages.values()),
                    "shop_orders": list(world.shop_orders.values()),
                }
            )

    # The overview's buttons, for a person trying the demo: plain forms, back to the overview.
    @app.post("/new-order")
    def new_order() -> ResponseReturnValue:
        world.create_package({})
        return redirect("/", 303)

    @app.post("/packages/<int:package_id>/status")
    def set_status(package_id: int) -> ResponseReturnValue:
        with world.lock:
            package = world.packages.get(package_id) or abort(404, "package not found")
            status = request.form.get("status", "")
            if status not in OVERVIEW_STATUSES:
                abort(400, f"unknown status {status!r}")
            world.set_status(package, status)
        return redirect("/", 303)

    @app.get("/")
    def overview() -> ResponseReturnValue:
        """Both sides at a glance, newest first, refreshed every few seconds."""
        with world.lock:
            packages = sorted(world.packages.values(), key=lambda p: p["lastModifiedDate"], reverse=True)
            orders = sorted(world.shop_orders.values(), key=lambda o: o["id"], reverse=True)
            return render_template_string(
                OVERVIEW,
                packages=packages[:100],
                orders=orders[:100],
                world=world,
                statuses=OVERVIEW_STATUSES,
            )

    return app


def _unsupplied(package: dict[str, Any], lines: Any) -> tuple[set[int], dict[int, int]]:
    """The lines and units an unsupply request cancels, each of this package's lines at most once and for
    1 up to its quantity, as Trendyol refuses anything else (a 400, nothing changed)."""
    held = {line["lineId"]: line["quantity"] for line in package["lines"]}
    if not lines or not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
        abort(400, "lines must name this package's lineIds")
    quantities: dict[int, int] = {}
    for line in lines:
        line_id, quantity = line.get("lineId"), line.get("quantity")
        if not isinstance(line_id, int) or line_id not in held or line_id in quantities:
            abort(400, "lines must name this package's lineIds, each once")
        if not isinstance(quantity, int) or not 1 <= quantity <= held[line_id]:
            abort(400, f"quantity of line {line_id} must be from 1 to {held[line_id]}")
        quantities[line_id] = quantity
    return set(quantities), quantities


def _basic() -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    return user, password


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"exception": message, "errors": [{"message": message}], "status": status})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _paged(items: list[dict[str, Any]], total: int, per_page: int) -> Response:
    """A page of a WooCommerce collection, with its counts in WordPress's headers."""
    response = jsonify(items)
    response.headers["X-WP-Total"] = str(total)
    response.headers["X-WP-TotalPages"] = str(max(1, -(-total // per_page)))
    return response


def _woo_error(status: int, code: str, message: str) -> Response:
    """An error as WordPress answers a WP_Error."""
    response = jsonify({"code": code, "message": message, "data": {"status": status}})
    response.status_code = status
    return response


def run_generator(world: World, orders_per_minute: float, stop: threading.Event) -> None:
    """The demo's life: new orders at the given rate, and every package moving on."""
    interval = 60 / orders_per_minute if orders_per_minute > 0 else None
    next_order = time.monotonic()
    while not stop.wait(1):
        if interval and time.monotonic() >= next_order:
            # Most sellers sell most on Trendyol: half the orders there, the rest on the others. An Amazon
            # order comes pending (its payment being checked) and is to be shipped a little later.
            roll = world.rng.random()
            if roll < 0.45:
                world.create_package()
            elif roll < 0.6:
                world.hepsiburada.create_order()
            elif roll < 0.72:
                world.n11.create_package()
            elif roll < 0.84:
                world.amazon.create_order({"status": "PENDING"})
            elif roll < 0.92:
                world.ciceksepeti.create_order()
            else:
                world.pazarama.create_order()
            next_order = time.monotonic() + interval * (0.5 + world.rng.random())
        world.advance()
        world.n11.advance()
        world.hepsiburada.advance()
        world.amazon.advance()
        world.ciceksepeti.advance()
        world.pazarama.advance()


OVERVIEW_STATUSES = ("Picking", "Invoiced", "Shipped", "Delivered", "Cancelled")
OVERVIEW = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>Sandbox · Trendyol and WooCommerce</title><link rel="icon" href="data:,">
<style>body{font:14px system-ui;margin:1rem 2rem}table{border-collapse:collapse;width:100%;margin-bottom:2rem}
td,th{border-bottom:1px solid #ddd;padding:.25rem .5rem;text-align:left}h1{font-size:1.3rem}</style></head>
<body><h1>Sandbox</h1>
<p>Seller {{ world.seller_id }} · faults: {{ world.faults }}</p>
<form method="post" action="/new-order"><button>New order</button></form>
<div style="display:grid;grid-template-columns:1fr 1fr;gap:2rem">
<section><h2>Trendyol packages</h2><table><tr><th>Package</th><th>Order</th><th>Customer</th><th>Status</th>
<th>Total</th><th>Tracking</th></tr>
{% for p in packages %}<tr><td>{{ p.shipmentPackageId }}</td><td>{{ p.orderNumber }}</td>
<td>{{ p.customerFirstName }} {{ p.customerLastName }}</td><td>{{ p.status }}
<form method="post" action="/packages/{{ p.shipmentPackageId }}/status" style="display:inline">
{% for status in statuses if status != p.status %}
<button name="status" value="{{ status }}"
 aria-label="{{ status }} {{ p.shipmentPackageId }}">{{ status }}</button>
{% endfor %}</form></td>
<td>{{ p.packageTotalPrice }}</td>
<td>{{ p.cargoTrackingNumber or "" }}</td></tr>{% endfor %}</table></section>
<section><h2>WooCommerce orders</h2><table><tr><th>Order</th><th>Status</th><th>Customer</th><th>Total</th>
<th>Reference</th></tr>
{% for o in orders %}<tr><td>#{{ o.id }}</td><td>{{ o.status }}</td>
<td>{{ o.billing.first_name }} {{ o.billing.last_name }}</td><td>{{ o.total }}</td>
<td>{% for m in o.meta_data if m.key == "hub_reference" %}{{ m.value }}{% endfor %}</td></tr>{% endfor %}
</table></section></div></body></html>"""
