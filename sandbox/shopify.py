"""Shopify's Admin GraphQL API in the sandbox, under /shopify: one shop with one Dev Dashboard app.

The client credentials grant (`POST /shopify/admin/oauth/access_token`, tokens that expire) and the GraphQL
endpoint (`POST /shopify/admin/api/<version>/graphql.json`). Every document is parsed, validated and
executed by graphql-core against specs/shopify-admin-graphql.graphql, the subset of Shopify's 2026-10
schema the hub uses, so a document Shopify would refuse is refused here in Shopify's shape (HTTP 200,
top-level `errors`). Queries cost points from a bucket per shop, estimated as Shopify documents it (one
per object, two plus `first` times the node's cost per connection, ten per mutation); a query the bucket
cannot pay is THROTTLED, HTTP 200, with `extensions.cost` on every answer.

The shop's orders keep what orderCreate sent (lines, tax lines, shipping, transactions, tags, metafields,
note), one fulfillment order per order, fulfillments with their tracking, and a total computed from what
was sent. Search understands what the hub uses (`tag:`, `sku:`, `updated_at:`, `created_at:` with quoted
values and comparisons) and lags writes by `search_lag_seconds`, as Shopify's index does: a new order is
listed at once, found by a search only after the lag. Webhooks go out as Shopify's REST-shaped JSON bodies,
signed with the app's client secret, after the shop's lock is released.

Where Shopify's documents are silent (the words of a userError, what an unknown version answers) the
sandbox's choice is marked [sandbox]. Control endpoints under /_control/shopify.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import graphql
from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from graphql import GraphQLError, GraphQLSchema
from graphql.language import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode

from sandbox import generator

if TYPE_CHECKING:
    from sandbox.state import World
    from sandbox.webhooks import WebhookSender

PREFIX = "/shopify"
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "specs" / "shopify-admin-graphql.graphql"
VERSIONS = ("2026-10",)  # the versions this Shopify serves (the schema file's)
SHOP_DOMAIN = "hub-sandbox.myshopify.com"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
SCOPES = "read_orders,write_orders,read_products,read_merchant_managed_fulfillment_orders," + (
    "write_merchant_managed_fulfillment_orders"
)
MAX_QUERY_COST = 1000  # Shopify refuses a single query that would cost more
MAX_PAGE = 250
MUTATION_COST = 10
CENT = Decimal("0.01")
TOPICS = {
    "ORDERS_CREATE": "orders/create",
    "ORDERS_UPDATED": "orders/updated",
    "ORDERS_CANCELLED": "orders/cancelled",
    "ORDERS_FULFILLED": "orders/fulfilled",
    "FULFILLMENTS_CREATE": "fulfillments/create",
    "FULFILLMENTS_UPDATE": "fulfillments/update",
    "APP_UNINSTALLED": "app/uninstalled",
}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
TERM = re.compile(r"""(\w+):(>=|<=|>|<)?('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|\S+)""")
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gid(kind: str, number: str | int) -> str:
    return f"gid://shopify/{kind}/{number}"


def _amount(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


class Refused(Exception):
    """A userError: where (the input's path) and Shopify's words."""

    def __init__(self, field: list[str], message: str) -> None:
        super().__init__(message)
        self.field = field


@functools.cache
def schema() -> GraphQLSchema:
    """The schema subset, its root fields resolved by the shop in the context."""
    built = graphql.build_schema(SCHEMA_FILE.read_text())
    for root in (built.query_type, built.mutation_type):
        assert root is not None
        for name, root_field in root.fields.items():
            root_field.resolve = _root_resolver(name)
    return built


def _root_resolver(name: str) -> Callable[..., Any]:
    def resolve(_root: Any, info: graphql.GraphQLResolveInfo, **args: Any) -> Any:
        shop: ShopifyShop = info.context
        return getattr(shop, f"resolve_{name}")(**args)

    return resolve


@dataclass
class ShopifyShop:
    """Shopify's side of the world. It has its own lock; nothing holds it while taking another."""

    client_id: str = "shopify-sandbox-client"
    client_secret: str = "shpss_sandbox_secret"
    token_lifetime: int = 86_399  # seconds, as the grant's expires_in
    # The calculated-cost bucket (Shopify's standard plan): points, and points restored per second.
    bucket_size: float = 2000.0
    restore_rate: float = 100.0
    # How long a new order stays out of search results (Shopify's index follows writes by seconds).
    search_lag_seconds: float = 0.0
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)

    COUNTERS = ("_ids", "_numbers")
    KNOBS = ("token_lifetime", "bucket_size", "restore_rate", "search_lag_seconds")

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.webhooks: WebhookSender | None = None  # set by the world
        self._ids = itertools.count(6_100_000_000_001)  # one sequence for every numeric id
        self._numbers = itertools.count(1001)  # order names, #1001 on
        self.tokens: dict[str, float] = {}  # access token → when it expires (epoch seconds); not kept
        self.token_requests = 0
        self.available = self.bucket_size
        self._refilled = time.monotonic()
        self._written: dict[str, float] = {}  # order id → when created (monotonic), for the search lag
        self._outbox: list[tuple[str, dict[str, Any]]] = []
        self._executing = False  # a GraphQL execution holds the lock and sends the outbox itself
        self.variants = [
            {
                "id": str(44_000_000_001 + index),
                "sku": product.stock_code,
                "title": product.name,
                "price": str(product.price),
            }
            for index, product in enumerate(generator.CATALOGUE)
        ]

    # -- kept across restarts, with the rest of the world ------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            counters = {}
            for name in self.COUNTERS:
                counters[name] = next(getattr(self, name))
                setattr(self, name, itertools.count(counters[name]))  # the peeked one stays next
            return json.loads(
                json.dumps(
                    {
                        "orders": list(self.orders.values()),
                        "subscriptions": list(self.subscriptions.values()),
                        "counters": counters,
                    }
                )
            )

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.orders = {str(order["id"]): order for order in state.get("orders", [])}
            self.subscriptions = {str(sub["id"]): sub for sub in state.get("subscriptions", [])}
            for name, value in state.get("counters", {}).items():
                if name in self.COUNTERS:
                    setattr(self, name, itertools.count(value))
            self._written.clear()

    def knobs(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Set knobs by name (and `currently_available`, the bucket's points now); answers them all."""
        with self.lock:
            for name, value in changes.items():
                if name == "currently_available":
                    self._refill()
                    self.available = float(value)
                elif name in self.KNOBS:
                    setattr(self, name, type(getattr(self, name))(value))
                else:
                    raise KeyError(name)
            self._refill()
            return {
                **{name: getattr(self, name) for name in self.KNOBS},
                "currently_available": self.available,
            }

    # -- auth --------------------------------------------------------------------------------------

    def issue_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The client credentials grant."""
        with self.lock:
            self.token_requests += 1
            if form.get("grant_type") != "client_credentials":
                return 400, {
                    "error": "unsupported_grant_type",
                    "error_description": "The grant type is not supported.",
                }
            if not (
                hmac.compare_digest(form.get("client_id", ""), self.client_id)
                and hmac.compare_digest(form.get("client_secret", ""), self.client_secret)
            ):
                # [sandbox] Shopify's words for a wrong client.
                return 400, {
                    "error": "invalid_client",
                    "error_description": "Client authentication failed due to unknown client.",
                }
            token = f"shpat_{secrets.token_hex(16)}"
            self.tokens[token] = time.time() + self.token_lifetime
            return 200, {"access_token": token, "scope": SCOPES, "expires_in": self.token_lifetime}

    def authorised(self, token: str | None) -> bool:
        with self.lock:
            expires = self.tokens.get(token or "")
            return expires is not None and time.time() < expires

    def expire_tokens(self) -> None:
        """Every token issued so far lapses (as after a day, or a rotated secret)."""
        with self.lock:
            self.tokens.clear()

    # -- the bucket --------------------------------------------------------------------------------

    def _refill(self) -> None:
        moment = time.monotonic()
        self.available = min(self.bucket_size, self.available + (moment - self._refilled) * self.restore_rate)
        self._refilled = moment

    def _cost_status(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": {
                    "maximumAvailable": self.bucket_size,
                    "currentlyAvailable": round(self.available, 1),
                    "restoreRate": self.restore_rate,
                },
            }
        }

    # -- executing a document ----------------------------------------------------------------------

    def execute(self, query: str, variables: Any, operation_name: Any) -> dict[str, Any]:
        """Parse, validate, cost, and run a document as Shopify does: always an answer to send with 200."""
        try:
            document = graphql.parse(query)
        except GraphQLError as error:
            return {"errors": [error.formatted]}
        problems = graphql.validate(schema(), document)
        if problems:
            return {"errors": [problem.formatted for problem in problems]}
        if not isinstance(variables, dict):
            variables = {}
        operation = graphql.utilities.get_operation_ast(document, operation_name or None)
        if operation is None:
            return {"errors": [{"message": "An operation name is required"}]}
        fragments = {
            node.name.value: node
            for node in document.definitions
            if isinstance(node, graphql.language.FragmentDefinitionNode)
        }
        mutation = operation.operation == graphql.language.OperationType.MUTATION
        requested = _cost(operation.selection_set, fragments, variables, mutation)
        with self.lock:
            self._refill()
            if requested > MAX_QUERY_COST:
                message = f"Query cost is {requested}, which exceeds the single query max cost limit (1000)."
                extensions = {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST}
                return {
                    "errors": [{"message": message, "extensions": extensions}],
                    "extensions": self._cost_status(requested, None),
                }
            if requested > self.available:
                throttled = {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/limits"}
                return {
                    "errors": [{"message": "Throttled", "extensions": throttled}],
                    "extensions": self._cost_status(requested, None),
                }
            self.available -= requested
            self._executing = True
            try:
                result = graphql.execute_sync(
                    schema(),
                    document,
                    variable_values=variables,
                    operation_name=operation_name,
                    context_value=self,
                )
            finally:
                self._executing = False
            outbox, self._outbox = self._outbox, []
            actual = _actual(operation.selection_set, fragments, result.data, mutation)
            self.available = min(self.bucket_size, self.available + max(requested - actual, 0))
            extensions = self._cost_status(requested, actual)
        self._send(outbox)
        answer: dict[str, Any] = {}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        answer["data"] = result.data
        answer["extensions"] = extensions
        return answer

    # -- views: the stored order as the schema's objects ------------------------------------------

    def _order_view(self, order: dict[str, Any]) -> dict[str, Any]:
        total = _bag(order_total(order), order["currency"])

        def metafield(_info: Any, key: str, namespace: str | None = None) -> dict[str, Any] | None:
            for entry in order["metafields"]:
                if entry["key"] == key and entry["namespace"] == namespace:
                    return {**entry, "id": gid("Metafield", entry["id"])}
            return None

        def fulfillments(_info: Any, first: int | None = None) -> list[dict[str, Any]]:
            views = [_fulfillment_view(item) for item in order["fulfillments"]]
            return views[:first] if first is not None else views

        def fulfillment_orders(_info: Any, **args: Any) -> dict[str, Any]:
            views = [_fulfillment_order_view(work) for work in order["fulfillmentOrders"]]
            return _connection(views, args)

        return {
            **{key: order[key] for key in ORDER_SCALARS},
            "id": gid("Order", order["id"]),
            "displayFinancialStatus": order["financialStatus"],
            "displayFulfillmentStatus": fulfilment_status(order),
            "currentTotalPriceSet": total,
            "totalPriceSet": total,
            "metafield": metafield,
            "fulfillments": fulfillments,
            "fulfillmentOrders": fulfillment_orders,
        }

    # -- queries -----------------------------------------------------------------------------------

    def _by_gid(self, value: str) -> dict[str, Any] | None:
        prefix = "gid://shopify/Order/"
        if not value.startswith(prefix):
            raise GraphQLError(
                f"Invalid global id '{value}'", extensions={"code": "argumentLiteralsIncompatible"}
            )
        return self.orders.get(value[len(prefix) :])

    def resolve_order(self, id: str) -> dict[str, Any] | None:
        order = self._by_gid(id)
        return self._order_view(order) if order else None

    def resolve_orders(self, **args: Any) -> dict[str, Any]:
        terms = parse_search(args.get("query") or "")
        lag = self.search_lag_seconds
        moment = time.monotonic()
        found = [
            order
            for order in self.orders.values()
            if all(_order_matches(order, term) for term in terms)
            and not (terms and moment - self._written.get(order["id"], float("-inf")) < lag)
        ]
        key = {"CREATED_AT": "createdAt", "UPDATED_AT": "updatedAt", "PROCESSED_AT": "processedAt"}.get(
            args.get("sortKey") or "ID", ""
        )
        found.sort(key=lambda order: (order[key] if key else "", int(order["id"])))
        return _connection([self._order_view(order) for order in found], args)

    def resolve_productVariants(self, **args: Any) -> dict[str, Any]:
        terms = parse_search(args.get("query") or "")
        for name, _operator, _value in terms:
            if name != "sku":
                raise GraphQLError(f"[sandbox] productVariants searches by sku only, not {name}")
        found = [
            {"id": gid("ProductVariant", variant["id"]), "sku": variant["sku"], "title": variant["title"]}
            for variant in self.variants
            if all(variant["sku"].lower() == value.lower() for _name, _operator, value in terms)
        ]
        return _connection(found, args)

    def resolve_webhookSubscriptions(self, **args: Any) -> dict[str, Any]:
        views = [
            {**sub, "id": gid("WebhookSubscription", sub["id"])}
            for sub in sorted(self.subscriptions.values(), key=lambda sub: int(sub["id"]))
        ]
        return _connection(views, args)

    # -- mutations ---------------------------------------------------------------------------------

    def resolve_orderCreate(
        self, order: dict[str, Any], options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            created = self.order_create(order, options or {})
        except Refused as refused:
            return {"order": None, "userErrors": [{"field": refused.field, "message": str(refused)}]}
        return {"order": self._order_view(created), "userErrors": []}

    def order_create(self, spec: dict[str, Any], options: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new order from orderCreate's `order` input (Python values); Refused for what Shopify refuses."""
        with self.lock:
            currency = spec.get("currency") or "TRY"
            email = spec.get("email")
            if email is not None and not EMAIL.fullmatch(email):
                raise Refused(["order", "email"], "Email is invalid")
            for tag in spec.get("tags") or []:
                if len(tag) > 40:
                    raise Refused(["order", "tags"], "Tags is too long (maximum is 40 characters)")
            items = spec.get("lineItems") or []
            if not items:
                raise Refused(["order", "lineItems"], "Line items must have at least one line item")
            lines = [self._line(item, index, currency) for index, item in enumerate(items)]
            stamp = now()
            order_id = str(next(self._ids))
            order: dict[str, Any] = {
                "id": order_id,
                "name": f"#{next(self._numbers)}",
                "createdAt": stamp,
                "updatedAt": stamp,
                "processedAt": spec.get("processedAt") or stamp,
                "cancelledAt": None,
                "cancelReason": None,
                "closed": False,
                "email": email,
                "note": spec.get("note"),
                "tags": sorted(dict.fromkeys(spec.get("tags") or []), key=str.lower),
                "sourceIdentifier": spec.get("sourceIdentifier"),
                "sourceName": spec.get("sourceName") or "shopify_draft_order",
                "taxesIncluded": bool(spec.get("taxesIncluded")),
                "currency": currency,
                "financialStatus": spec.get("financialStatus") or "PAID",
                "metafields": [
                    {**entry, "id": str(next(self._ids))} for entry in spec.get("metafields") or []
                ],
                "lineItems": lines,
                "shippingLines": [
                    {
                        "title": line["title"],
                        "code": line.get("code"),
                        "source": line.get("source"),
                        "price": _money_in(
                            line["priceSet"], currency, ["order", "shippingLines", str(index)]
                        ),
                        "taxLines": [_tax_in(tax, currency) for tax in line.get("taxLines") or []],
                    }
                    for index, line in enumerate(spec.get("shippingLines") or [])
                ],
                "transactions": [
                    {
                        "kind": entry.get("kind") or "SALE",
                        "status": entry.get("status") or "SUCCESS",
                        "gateway": entry.get("gateway") or "manual",
                        "amount": _money_in(entry["amountSet"], currency, ["order", "transactions"]),
                    }
                    for entry in spec.get("transactions") or []
                ],
                "billingAddress": spec.get("billingAddress"),
                "shippingAddress": spec.get("shippingAddress"),
                "inventoryBehaviour": (options or {}).get("inventoryBehaviour") or "BYPASS",
                "fulfillmentOrders": [],
                "fulfillments": [],
            }
            shippable = [line for line in lines if line["requiresShipping"]]
            if shippable:
                order["fulfillmentOrders"].append(
                    {
                        "id": str(next(self._ids)),
                        "status": "OPEN",
                        "lineItems": [
                            {
                                "id": str(next(self._ids)),
                                "lineItemId": line["id"],
                                "totalQuantity": line["quantity"],
                                "remainingQuantity": line["quantity"],
                            }
                            for line in shippable
                        ],
                    }
                )
            self.orders[order_id] = order
            self._written[order_id] = time.monotonic()
            self._emit("ORDERS_CREATE", order)
            self._emit("ORDERS_UPDATED", order)
            return order

    def _line(self, item: dict[str, Any], index: int, currency: str) -> dict[str, Any]:
        where = ["order", "lineItems", str(index)]
        quantity = item["quantity"]
        if quantity < 1:
            raise Refused([*where, "quantity"], "Quantity must be greater than or equal to 1")
        variant = None
        if item.get("variantId"):
            number = item["variantId"].removeprefix("gid://shopify/ProductVariant/")
            variant = next((v for v in self.variants if v["id"] == number), None)
            if variant is None:
                raise Refused([*where, "variantId"], "invalid id")  # [sandbox] Shopify's words unknown
        elif not item.get("title"):
            raise Refused([*where, "title"], "Title can't be blank")
        if item.get("priceSet"):
            price = _money_in(item["priceSet"], currency, [*where, "priceSet"])
        elif variant is not None:
            price = variant["price"]
        else:
            raise Refused([*where, "priceSet"], "Price can't be blank")
        return {
            "id": str(next(self._ids)),
            "variantId": variant["id"] if variant else None,
            "sku": variant["sku"] if variant else item.get("sku"),
            "title": variant["title"] if variant else item["title"],
            "quantity": quantity,
            "price": price,
            "requiresShipping": item.get("requiresShipping", True) is not False,
            "taxLines": [_tax_in(tax, currency) for tax in item.get("taxLines") or []],
        }

    def _order_for(self, value: str, where: list[str]) -> dict[str, Any]:
        order = self._by_gid(value)
        if order is None:
            raise Refused(where, "Order does not exist")
        return order

    def resolve_orderUpdate(self, input: dict[str, Any]) -> dict[str, Any]:
        try:
            order = self._order_for(input["id"], ["id"])
        except Refused as refused:
            return {"order": None, "userErrors": [{"field": refused.field, "message": str(refused)}]}
        for key in ("note", "email", "tags"):
            if key in input:
                order[key] = input[key]
        for entry in input.get("metafields") or []:
            kept = next(
                (
                    m
                    for m in order["metafields"]
                    if (m["namespace"], m["key"]) == (entry["namespace"], entry["key"])
                ),
                None,
            )
            if kept:
                kept.update(entry)
            else:
                order["metafields"].append({**entry, "id": str(next(self._ids))})
        self._touch(order)
        return {"order": self._order_view(order), "userErrors": []}

    def resolve_orderCancel(self, orderId: str, reason: str, restock: bool, **args: Any) -> dict[str, Any]:
        try:
            order = self._order_for(orderId, ["orderId"])
            self.cancel(
                order["id"],
                reason,
                refund=bool((args.get("refundMethod") or {}).get("originalPaymentMethodsRefund")),
            )
        except Refused as refused:
            errors = [{"field": refused.field, "message": str(refused)}]
            return {"job": None, "orderCancelUserErrors": errors, "userErrors": errors}
        return {
            "job": {"id": gid("Job", str(uuid.uuid4())), "done": True},
            "orderCancelUserErrors": [],
            "userErrors": [],
        }

    def cancel(self, order_id: str, reason: str = "OTHER", refund: bool = False) -> dict[str, Any]:
        """Cancel the order (Shopify does it in a job; here it is done at once)."""
        with self.lock:
            order = self.orders[str(order_id)]
            if order["cancelledAt"]:
                raise Refused(["orderId"], "Order has already been cancelled")  # [sandbox] wording
            order["cancelledAt"] = now()
            order["cancelReason"] = reason
            order["closed"] = True
            if refund:
                order["financialStatus"] = "REFUNDED"
            for work in order["fulfillmentOrders"]:
                if work["status"] in ("OPEN", "IN_PROGRESS", "SCHEDULED", "ON_HOLD"):
                    work["status"] = "CANCELLED"
            self._touch(order)
            self._emit("ORDERS_CANCELLED", order)
            outbox = self._take_outbox_if_outside()
        self._send(outbox)
        return order

    def resolve_fulfillmentCreate(
        self, fulfillment: dict[str, Any], message: str | None = None
    ) -> dict[str, Any]:
        try:
            made = self._fulfil(fulfillment)
        except Refused as refused:
            return {"fulfillment": None, "userErrors": [{"field": refused.field, "message": str(refused)}]}
        return {"fulfillment": _fulfillment_view(made), "userErrors": []}

    def _fulfil(self, spec: dict[str, Any]) -> dict[str, Any]:
        groups = spec["lineItemsByFulfillmentOrder"]
        if not groups:
            raise Refused(["fulfillment", "lineItemsByFulfillmentOrder"], "can't be blank")
        owner: dict[str, Any] | None = None
        taken: list[tuple[dict[str, Any], int]] = []
        for group in groups:
            number = group["fulfillmentOrderId"].removeprefix("gid://shopify/FulfillmentOrder/")
            found = [
                (order, work)
                for order in self.orders.values()
                for work in order["fulfillmentOrders"]
                if work["id"] == number
            ]
            if not found:
                raise Refused(["fulfillment"], "Invalid fulfillment order line item quantity requested.")
            order, work = found[0]
            if owner is not None and owner is not order:
                raise Refused(["fulfillment"], "Fulfillment orders must belong to the same order.")
            owner = order
            if work["status"] not in ("OPEN", "IN_PROGRESS"):
                # [sandbox] Shopify's words for a closed or cancelled fulfillment order.
                raise Refused(
                    ["fulfillment"],
                    f"Fulfillment order {group['fulfillmentOrderId']} has an "
                    f"unfulfillable status= {work['status'].lower()}.",
                )
            asked = group.get("fulfillmentOrderLineItems")
            items = {item["id"]: item for item in work["lineItems"]}
            if asked is None:
                taken += [
                    (item, item["remainingQuantity"])
                    for item in work["lineItems"]
                    if item["remainingQuantity"]
                ]
            for line in asked or []:
                item = items.get(line["id"].removeprefix("gid://shopify/FulfillmentOrderLineItem/"))
                if item is None or not 0 < line["quantity"] <= item["remainingQuantity"]:
                    raise Refused(["fulfillment"], "Invalid fulfillment order line item quantity requested.")
                taken.append((item, line["quantity"]))
        assert owner is not None
        if not taken:
            raise Refused(["fulfillment"], "Invalid fulfillment order line item quantity requested.")
        for item, quantity in taken:
            item["remainingQuantity"] -= quantity
        for work in owner["fulfillmentOrders"]:
            if work["status"] in ("OPEN", "IN_PROGRESS"):
                left = any(item["remainingQuantity"] for item in work["lineItems"])
                work["status"] = "IN_PROGRESS" if left else "CLOSED"
        stamp = now()
        made = {
            "id": str(next(self._ids)),
            "name": f"{owner['name']}-F{len(owner['fulfillments']) + 1}",
            "status": "SUCCESS",
            "createdAt": stamp,
            "updatedAt": stamp,
            "trackingInfo": _tracking_in(spec.get("trackingInfo")),
            "lines": [{"fulfillmentOrderLineItemId": item["id"], "quantity": q} for item, q in taken],
            "orderId": owner["id"],
        }
        owner["fulfillments"].append(made)
        self._touch(owner)
        self._emit("FULFILLMENTS_CREATE", made)
        if fulfilment_status(owner) == "FULFILLED":
            self._emit("ORDERS_FULFILLED", owner)
        return made

    def resolve_fulfillmentTrackingInfoUpdate(
        self, fulfillmentId: str, trackingInfoInput: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        number = fulfillmentId.removeprefix("gid://shopify/Fulfillment/")
        for order in self.orders.values():
            for made in order["fulfillments"]:
                if made["id"] == number:
                    made["trackingInfo"] = _tracking_in(trackingInfoInput)
                    made["updatedAt"] = now()
                    self._touch(order)
                    self._emit("FULFILLMENTS_UPDATE", made)
                    return {"fulfillment": _fulfillment_view(made), "userErrors": []}
        return {
            "fulfillment": None,
            "userErrors": [{"field": ["fulfillmentId"], "message": "Fulfillment does not exist."}],
        }

    def resolve_webhookSubscriptionCreate(
        self, topic: str, webhookSubscription: dict[str, Any]
    ) -> dict[str, Any]:
        uri = webhookSubscription.get("uri") or ""
        host = re.match(r"^(https?)://([^/:]+)", uri)
        problem = ""
        if host is None:
            problem = "Address is invalid"
        elif host.group(1) == "http" and host.group(2) not in LOCAL_HOSTS:
            problem = "Address protocol http:// is not supported"  # [sandbox] loopback allowed for tests
        elif any(sub["topic"] == topic and sub["uri"] == uri for sub in self.subscriptions.values()):
            problem = "Address for this topic has already been taken"
        if problem:
            return {
                "webhookSubscription": None,
                "userErrors": [{"field": ["webhookSubscription", "callbackUrl"], "message": problem}],
            }
        stamp = now()
        sub = {
            "id": str(next(self._ids)),
            "topic": topic,
            "uri": uri,
            "format": webhookSubscription.get("format") or "JSON",
            "createdAt": stamp,
            "updatedAt": stamp,
        }
        self.subscriptions[sub["id"]] = sub
        return {"webhookSubscription": {**sub, "id": gid("WebhookSubscription", sub["id"])}, "userErrors": []}

    def resolve_webhookSubscriptionDelete(self, id: str) -> dict[str, Any]:
        number = id.removeprefix("gid://shopify/WebhookSubscription/")
        if self.subscriptions.pop(number, None) is None:
            problem = {"field": ["id"], "message": "Webhook subscription does not exist"}
            return {"deletedWebhookSubscriptionId": None, "userErrors": [problem]}
        return {"deletedWebhookSubscriptionId": id, "userErrors": []}

    # -- as a seller acts in Shopify's admin -------------------------------------------------------

    def fulfil(
        self, order_id: str, tracking_number: str = "", company: str = "", url: str = ""
    ) -> dict[str, Any]:
        """Fulfil what is left of the order, with a tracking number if given."""
        with self.lock:
            order = self.orders[str(order_id)]
            tracking = {"number": tracking_number, "company": company, "url": url}
            spec = {
                "lineItemsByFulfillmentOrder": [
                    {"fulfillmentOrderId": gid("FulfillmentOrder", work["id"])}
                    for work in order["fulfillmentOrders"]
                    if work["status"] in ("OPEN", "IN_PROGRESS")
                ],
                "trackingInfo": {key: value for key, value in tracking.items() if value},
            }
            made = self._fulfil(spec)
            outbox = self._take_outbox_if_outside()
        self._send(outbox)
        return made

    def create_order(self, spec: dict[str, Any]) -> dict[str, Any]:
        """An order as another channel would make it (orderCreate's input, Python values)."""
        with self.lock:
            order = self.order_create(spec)
            outbox = self._take_outbox_if_outside()
        self._send(outbox)
        return order

    def order_for_reference(self, reference: str) -> dict[str, Any] | None:
        """The order carrying the hub's reference in its metafield, if any; more than one is a bug."""
        with self.lock:
            found = [
                order
                for order in self.orders.values()
                if any(
                    (m["namespace"], m["key"], m["value"]) == ("hub", "external_ref", reference)
                    for m in order["metafields"]
                )
            ]
            assert len(found) <= 1, f"reference {reference} is in the shop {len(found)} times"
            return found[0] if found else None

    # -- webhooks ----------------------------------------------------------------------------------

    def _touch(self, order: dict[str, Any]) -> None:
        order["updatedAt"] = now()
        self._emit("ORDERS_UPDATED", order)

    def _emit(self, topic: str, subject: dict[str, Any]) -> None:
        """Queue the deliveries of an event (sent once the lock is released)."""
        body = _fulfillment_body(subject) if topic.startswith("FULFILLMENTS") else _order_body(subject)
        self._outbox.append((topic, body))

    def _take_outbox_if_outside(self) -> list[tuple[str, dict[str, Any]]]:
        """The queued deliveries, unless a GraphQL execution higher up will send them itself."""
        if self._executing:
            return []
        outbox, self._outbox = self._outbox, []
        return outbox

    def _send(self, outbox: list[tuple[str, dict[str, Any]]]) -> None:
        sender = self.webhooks
        if sender is None or not outbox:
            return
        with self.lock:
            targets = [(sub["topic"], sub["uri"]) for sub in self.subscriptions.values()]
            secret = self.client_secret
        for topic, payload in outbox:
            event = str(uuid.uuid4())
            body = json.dumps(payload).encode()
            signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
            for wanted, uri in targets:
                if wanted != topic:
                    continue
                headers = {
                    "Content-Type": "application/json",
                    "X-Shopify-Topic": TOPICS[topic],
                    "X-Shopify-Hmac-Sha256": signature,
                    "X-Shopify-Shop-Domain": SHOP_DOMAIN,
                    "X-Shopify-API-Version": VERSIONS[-1],
                    "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                    "X-Shopify-Event-Id": event,
                    "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
                }
                sender.post(uri, body, headers, proof=("X-Shopify-Hmac-Sha256",))


ORDER_SCALARS = (
    "name",
    "createdAt",
    "updatedAt",
    "processedAt",
    "cancelledAt",
    "cancelReason",
    "closed",
    "email",
    "note",
    "tags",
    "sourceIdentifier",
    "sourceName",
    "taxesIncluded",
)


def order_total(order: dict[str, Any]) -> Decimal:
    """What the customer pays: lines and shipping as sent, plus their taxes where prices exclude them."""
    lines = sum((Decimal(line["price"]) * line["quantity"] for line in order["lineItems"]), Decimal(0))
    shipping = sum((Decimal(line["price"]) for line in order["shippingLines"]), Decimal(0))
    total = lines + shipping
    if not order["taxesIncluded"]:
        taxed = [*order["lineItems"], *order["shippingLines"]]
        total += sum((Decimal(tax["amount"]) for line in taxed for tax in line["taxLines"]), Decimal(0))
    return total


def fulfilment_status(order: dict[str, Any]) -> str:
    items = [item for work in order["fulfillmentOrders"] for item in work["lineItems"]]
    if not items:
        return "FULFILLMENT_NOT_REQUIRED"
    left = sum(item["remainingQuantity"] for item in items)
    if left == 0:
        return "FULFILLED"
    return "UNFULFILLED" if left == sum(item["totalQuantity"] for item in items) else "PARTIALLY_FULFILLED"


def _bag(amount: Decimal, currency: str) -> dict[str, Any]:
    money = {"amount": _amount(amount), "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": money}


def _money_in(bag: dict[str, Any], currency: str, where: list[str]) -> str:
    money = bag["shopMoney"]
    if money["currencyCode"] != currency:
        raise Refused(where, "Currency must match the order's currency")  # [sandbox] wording
    try:
        amount = Decimal(str(money["amount"]))
    except InvalidOperation:
        raise Refused(where, "Amount is invalid") from None
    if not amount.is_finite() or amount < 0:
        raise Refused(where, "Amount can't be negative")
    return _amount(amount)


def _tax_in(tax: dict[str, Any], currency: str) -> dict[str, Any]:
    amount = _money_in(tax["priceSet"], currency, ["taxLines"]) if tax.get("priceSet") else "0.00"
    return {"title": tax["title"], "rate": str(tax["rate"]), "amount": amount}


def _tracking_in(spec: dict[str, Any] | None) -> list[dict[str, Any]]:
    spec = spec or {}
    numbers = spec.get("numbers") or ([spec["number"]] if spec.get("number") else [])
    urls = spec.get("urls") or ([spec["url"]] if spec.get("url") else [])
    return [
        {"company": spec.get("company"), "number": number, "url": urls[index] if index < len(urls) else None}
        for index, number in enumerate(numbers)
    ] or ([{"company": spec["company"], "number": None, "url": None}] if spec.get("company") else [])


def _fulfillment_view(made: dict[str, Any]) -> dict[str, Any]:
    def tracking(_info: Any, first: int | None = None) -> list[dict[str, Any]]:
        return made["trackingInfo"][:first] if first is not None else made["trackingInfo"]

    return {**made, "id": gid("Fulfillment", made["id"]), "trackingInfo": tracking}


def _fulfillment_order_view(work: dict[str, Any]) -> dict[str, Any]:
    def line_items(_info: Any, **args: Any) -> dict[str, Any]:
        views = [{**item, "id": gid("FulfillmentOrderLineItem", item["id"])} for item in work["lineItems"]]
        return _connection(views, args)

    return {"id": gid("FulfillmentOrder", work["id"]), "status": work["status"], "lineItems": line_items}


def _connection(views: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
    """A page of a connection, with cursors that name the item (so a page is stable while items come)."""
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    for count in (first, last):
        if count is not None and not 0 <= count <= MAX_PAGE:
            raise GraphQLError(f"The page size is limited to {MAX_PAGE}.")  # [sandbox] wording
    items = views[::-1] if args.get("reverse") else list(views)
    ids = [view["id"] for view in items]
    start, end = 0, len(items)
    for name in ("after", "before"):
        if args.get(name):
            try:
                position = ids.index(base64.b64decode(args[name]).decode())
            except (ValueError, UnicodeError):
                raise GraphQLError(f"Invalid cursor for current pagination sort: {args[name]}") from None
            if name == "after":
                start = position + 1
            else:
                end = position
    window = items[start:end]
    page = window[:first] if first is not None else window[max(len(window) - (last or 0), 0) :]
    cursors = [base64.b64encode(view["id"].encode()).decode() for view in page]
    return {
        "nodes": page,
        "edges": [{"cursor": cursor, "node": view} for cursor, view in zip(cursors, page, strict=True)],
        "pageInfo": {
            "hasNextPage": (first is not None and len(window) > first) or end < len(items),
            "hasPreviousPage": start > 0 or (last is not None and len(window) > last),
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def parse_search(query: str) -> list[tuple[str, str, str]]:
    """Shopify's search syntax, as far as the hub uses it: `field:value` terms, ANDed, a value quoted
    with ' or " (backslash escapes) and an optional comparison (field:>value)."""
    terms: list[tuple[str, str, str]] = []
    position = 0
    query = query.strip()
    while position < len(query):
        if query[position].isspace():
            position += 1
            continue
        found = TERM.match(query, position)
        if found is None:
            raise GraphQLError(f"[sandbox] search term not understood at: {query[position:][:40]}")
        name, operator, value = found.group(1), found.group(2) or "", found.group(3)
        if value[:1] in ("'", '"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if name not in ("tag", "sku", "updated_at", "created_at"):
            raise GraphQLError(f"[sandbox] search field {name} is not modelled")
        terms.append((name, operator, value))
        position = found.end()
    return terms


def _order_matches(order: dict[str, Any], term: tuple[str, str, str]) -> bool:
    name, operator, value = term
    if name == "tag":
        return any(tag.lower() == value.lower() for tag in order["tags"])
    moment = _moment(value)
    stored = _moment(order["updatedAt" if name == "updated_at" else "createdAt"])
    return {
        ">": stored > moment,
        ">=": stored >= moment,
        "<": stored < moment,
        "<=": stored <= moment,
        "": stored == moment,
    }[operator]


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise GraphQLError(f"[sandbox] not a date: {value}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fields(selection: SelectionSetNode, fragments: dict[str, Any]) -> Iterator[FieldNode]:
    """The fields of a selection, fragments spread."""
    for node in selection.selections:
        if isinstance(node, FragmentSpreadNode):
            yield from _fields(fragments[node.name.value].selection_set, fragments)
        elif isinstance(node, InlineFragmentNode):
            yield from _fields(node.selection_set, fragments)
        elif isinstance(node, FieldNode):
            yield node


def _node_selection(part: FieldNode, fragments: dict[str, Any]) -> tuple[SelectionSetNode, str]:
    """What one item of a connection or list selects: a connection's `nodes` (or `edges { node }`),
    else the list's own selection; and the key its items are under ("" for a list)."""
    assert part.selection_set is not None
    for child in _fields(part.selection_set, fragments):
        if child.name.value == "nodes" and child.selection_set is not None:
            return child.selection_set, (child.alias or child.name).value
        if child.name.value == "edges" and child.selection_set is not None:
            for inner in _fields(child.selection_set, fragments):
                if inner.name.value == "node" and inner.selection_set is not None:
                    return inner.selection_set, "edges"
    return part.selection_set, ""


def _cost(
    selection: SelectionSetNode, fragments: dict[str, Any], variables: dict[str, Any], mutation: bool
) -> int:
    """The requested cost, as Shopify calculates it (simplified): a mutation 10; an object 1; a
    connection or list asked with `first`/`last` 2 plus that many times one item's cost; scalars and
    `pageInfo` nothing."""
    total = 0
    for part in _fields(selection, fragments):
        if mutation:
            total += MUTATION_COST
        elif part.selection_set is not None and part.name.value != "pageInfo":
            count = _size(part, variables)
            if count is None:
                total += 1 + _cost(part.selection_set, fragments, variables, False)
            else:
                item, _key = _node_selection(part, fragments)
                total += 2 + count * (1 + _cost(item, fragments, variables, False))
    return total


def _actual(selection: SelectionSetNode, fragments: dict[str, Any], data: Any, mutation: bool) -> int:
    """The actual cost: the requested one, counting the items that came back rather than those asked
    for; the bucket is refunded the difference, as Shopify's is."""
    total = 0
    for part in _fields(selection, fragments):
        value = data.get((part.alias or part.name).value) if isinstance(data, dict) else None
        if mutation:
            total += MUTATION_COST
        elif part.selection_set is None or part.name.value == "pageInfo" or value is None:
            continue
        elif part.arguments and any(arg.name.value in ("first", "last") for arg in part.arguments):
            item, key = _node_selection(part, fragments)
            items = value if isinstance(value, list) else value.get(key) or []
            items = [entry.get("node") for entry in items] if key == "edges" else items
            total += 2 + sum(1 + _actual(item, fragments, entry, False) for entry in items)
        else:
            total += 1 + _actual(part.selection_set, fragments, value, False)
    return total


def _size(node: FieldNode, variables: dict[str, Any]) -> int | None:
    for argument in node.arguments:
        if argument.name.value in ("first", "last"):
            value = graphql.utilities.value_from_ast_untyped(argument.value, variables)
            return value if isinstance(value, int) else 0
    return None


def _order_body(order: dict[str, Any]) -> dict[str, Any]:
    """An orders/* webhook's body, in the REST Admin API's order shape (the part the hub may look at)."""
    status = fulfilment_status(order)
    return {
        "id": int(order["id"]),
        "admin_graphql_api_id": gid("Order", order["id"]),
        "name": order["name"],
        "created_at": order["createdAt"],
        "updated_at": order["updatedAt"],
        "cancelled_at": order["cancelledAt"],
        "financial_status": order["financialStatus"].lower(),
        "fulfillment_status": {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}.get(status),
        "tags": ", ".join(order["tags"]),
        "note": order["note"],
        "currency": order["currency"],
        "total_price": _amount(order_total(order)),
        "source_identifier": order["sourceIdentifier"],
    }


def _fulfillment_body(made: dict[str, Any]) -> dict[str, Any]:
    """A fulfillments/* webhook's body, in the REST Admin API's fulfillment shape."""
    first = made["trackingInfo"][0] if made["trackingInfo"] else {}
    return {
        "id": int(made["id"]),
        "admin_graphql_api_id": gid("Fulfillment", made["id"]),
        "order_id": int(made["orderId"]),
        "status": made["status"].lower(),
        "created_at": made["createdAt"],
        "updated_at": made["updatedAt"],
        "tracking_company": first.get("company"),
        "tracking_number": first.get("number"),
        "tracking_numbers": [item["number"] for item in made["trackingInfo"] if item.get("number")],
        "tracking_url": first.get("url"),
        "tracking_urls": [item["url"] for item in made["trackingInfo"] if item.get("url")],
        "name": made["name"],
    }


def register(app: Flask, world: World) -> None:
    """Shopify's routes and its control endpoints on the sandbox app."""
    shop = world.shopify

    @app.post(f"{PREFIX}/admin/oauth/access_token")
    def shopify_token() -> ResponseReturnValue:
        """The client credentials grant, as a form (or JSON, which Shopify also takes)."""
        form = dict(request.form) or (request.get_json(silent=True) or {})
        status, body = shop.issue_token({str(k): str(v) for k, v in form.items()})
        response = jsonify(body)
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post(f"{PREFIX}/admin/api/<version>/graphql.json")
    def shopify_graphql(version: str) -> ResponseReturnValue:
        """The Admin GraphQL API."""
        if version not in VERSIONS:
            # [sandbox] a version this Shopify does not serve: Shopify falls forward for retired ones and
            # answers 404 for ones that never were; here every other version is the latter.
            return jsonify({"errors": "Not Found"}), 404
        if not shop.authorised(request.headers.get("X-Shopify-Access-Token")):
            return jsonify({"errors": INVALID_TOKEN}), 401
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return jsonify({"errors": {"query": "Required parameter missing or invalid"}}), 400
        answer = shop.execute(body["query"], body.get("variables") or {}, body.get("operationName"))
        response = jsonify(answer)
        response.headers["X-Shopify-API-Version"] = version
        return response

    # -- control -----------------------------------------------------------------------------------

    def order_or_404(order_id: str) -> dict[str, Any] | None:
        return shop.orders.get(order_id)

    @app.post("/_control/shopify/orders/<order_id>/fulfil")
    def shopify_control_fulfil(order_id: str) -> ResponseReturnValue:
        """The seller fulfils the order in Shopify's admin: {tracking_number, company, url}, all optional."""
        if order_or_404(order_id) is None:
            return jsonify({"message": "order not found"}), 404
        body = request.get_json(silent=True) or {}
        try:
            made = shop.fulfil(
                order_id,
                str(body.get("tracking_number", "")),
                str(body.get("company", "")),
                str(body.get("url", "")),
            )
        except Refused as refused:
            return jsonify({"message": str(refused)}), 400
        return jsonify(made)

    @app.post("/_control/shopify/orders/<order_id>/cancel")
    def shopify_control_cancel(order_id: str) -> ResponseReturnValue:
        """The seller cancels the order in Shopify's admin."""
        if order_or_404(order_id) is None:
            return jsonify({"message": "order not found"}), 404
        try:
            return jsonify(shop.cancel(order_id, "CUSTOMER"))
        except Refused as refused:
            return jsonify({"message": str(refused)}), 400

    @app.get("/_control/shopify/state")
    def shopify_control_state() -> ResponseReturnValue:
        with shop.lock:
            state = shop.snapshot()
            state["token_requests"] = shop.token_requests
            return jsonify(state)

    @app.post("/_control/shopify/knobs")
    def shopify_control_knobs() -> ResponseReturnValue:
        """{"token_lifetime", "bucket_size", "restore_rate", "search_lag_seconds", "currently_available"}."""
        try:
            return jsonify(shop.knobs(request.get_json(silent=True) or {}))
        except (KeyError, ValueError, TypeError) as error:
            return Response(
                json.dumps({"message": f"unknown or bad knob: {error}"}), 400, mimetype="application/json"
            )
