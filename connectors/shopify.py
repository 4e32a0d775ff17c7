"""Shopify's Admin GraphQL API, version 2026-10 (`API_VERSION`): shop orders created by SKU, found again by
the hub's reference in a tag and a metafield.

Pinned to 2026-10, the newest stable version whose reference could be read and checked for every type the
connector uses (shopify.dev/docs/api/admin-graphql/2026-10; the subset is in
specs/shopify-admin-graphql.graphql, and the tests validate every document sent here against it).

Auth: a Dev Dashboard app in the seller's organisation, the client credentials grant (`POST
/admin/oauth/access_token`), a token of about 24 hours kept per process until five minutes before it
expires, keyed by a digest of everything that makes it; a 401 with a kept token fetches a new one once.

Every call is one GraphQL POST; Shopify answers 200 for most failures. A throttled query (the bucket of
calculated query cost lacks what it costs) is `RateLimited` with the wait the bucket says; mutation
`userErrors` are `Permanent` with Shopify's own words; other top-level errors are `Permanent` (the document
or its arguments are wrong, retrying cannot help).

Create: every ShopLine's SKU is looked up among the shop's variants (`productVariants`, kept per
connector); a SKU the shop does not have becomes a custom line (title, price, and its SKU). Prices go in
VAT included (`taxesIncluded`) with a KDV tax line at the marketplace's rate, so the shop order totals
what the customer paid to the cent: a line whose total does not divide by its quantity is split in two
lines of one cent apart. The order is paid (one SALE transaction through the marketplace as gateway),
inventory is left alone (`BYPASS`: the hub moves stock itself, a decrement here would count the sale
twice), and the customer gets no email from Shopify. The order keeps no `name` of the hub's: Shopify
numbers orders itself (#1001…), and a marketplace order split into packages would give two orders one
name; the marketplace's order number is in the note instead.

Finding an order again: the tag `hub-ref:<reference>` through search, and, since Shopify's search index
lags a few seconds behind a write, the orders created since `since`, newest first, without a search.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import httpx

from connectors.base import (
    Address,
    ConnectorError,
    InvalidAnswer,
    Permanent,
    RateLimited,
    Retryable,
    ShopLine,
    ShopOrder,
    ShopOrderPlan,
    WebhookNotice,
    WebhookRefused,
)
from connectors.http import Guard, Outbound, json_body, sanitised
from connectors.tokens import TokenCache
from sync.statuses import CanonicalStatus as S

log = logging.getLogger(__name__)

API_VERSION = "2026-10"
PLATFORM = "Shopify"
CENT = Decimal("0.01")
# An access token is used until this long before it expires, then fetched again.
REFRESH_MARGIN = 300.0
# Orders a page of a listing: Shopify refuses a query costing more than 1000 points, and an order with its
# fulfillments costs about 16.
PAGE_SIZE = 25
# How many of the newest orders `find_order` reads when the search has not caught up yet.
MAX_RECENT_PAGES = 40
# Hub orders carry these; the reference's tag is how a retry finds the order again.
HUB_TAG = "hub"
REFERENCE_TAG = "hub-ref:"
METAFIELD_NAMESPACE, METAFIELD_KEY = "hub", "external_ref"
# Shopify caps a tag at 40 characters.
MAX_TAG = 40
TAX_TITLE = "KDV"
# The order statuses as Shopify's admin shows them; Shopify has no others and no custom ones.
STATUSES: dict[str, str] = {
    "unfulfilled": "Unfulfilled",
    "partially_fulfilled": "Partially fulfilled",
    "fulfilled": "Fulfilled",
    # [UNSURE] Shopify's admin spells it "Canceled"; the key follows the API's cancelledAt.
    "cancelled": "Canceled",
}
DEFAULT_STATUS_MAP: dict[S, str] = {
    S.AWAITING: "unfulfilled",
    S.CREATED: "unfulfilled",
    S.PICKING: "unfulfilled",
    S.INVOICED: "unfulfilled",
    S.SHIPPED: "fulfilled",
    S.AT_COLLECTION_POINT: "fulfilled",
    S.DELIVERED: "fulfilled",
    # On its way back to the seller: the items left the shop, and Shopify cannot unfulfil them.
    S.UNDELIVERED: "fulfilled",
    S.CANCELLED: "cancelled",
    S.UNSUPPLIED: "cancelled",
    # A return is the seller's to take in Shopify's admin (a return, a refund); the order stays fulfilled.
    S.RETURNED: "fulfilled",
}
# What `displayFulfillmentStatus` says, in `STATUSES` keys (a cancelled order is cancelled whatever it says).
FULFILMENT_STATUSES = {
    "FULFILLED": "fulfilled",
    "PARTIALLY_FULFILLED": "partially_fulfilled",
    "UNFULFILLED": "unfulfilled",
    "OPEN": "unfulfilled",
    "IN_PROGRESS": "unfulfilled",
    "PENDING_FULFILLMENT": "unfulfilled",
    "ON_HOLD": "unfulfilled",
    "SCHEDULED": "unfulfilled",
    "RESTOCKED": "unfulfilled",
    "REQUEST_DECLINED": "unfulfilled",
    # Nothing in it to ship: done, as far as the hub is concerned.
    "FULFILLMENT_NOT_REQUIRED": "fulfilled",
}
# Fulfillment orders that still have something to fulfil.
FULFILLABLE = frozenset({"OPEN", "IN_PROGRESS"})
# The webhooks the hub follows.
TOPICS = ("ORDERS_UPDATED", "ORDERS_CANCELLED", "FULFILLMENTS_CREATE", "FULFILLMENTS_UPDATE")
AUTH_FAILED = (
    "Shopify refused the app's client id and secret (client credentials grant): check both in the Dev "
    "Dashboard (the app's Settings), and that the app is installed on this shop"
)
ACCESS_DENIED = "Shopify refused the access token (401): the app may have been uninstalled from the shop"

# -- the documents ---------------------------------------------------------------------------------

ORDER_FIELDS = """
fragment HubOrder on Order {
  id
  updatedAt
  cancelledAt
  displayFulfillmentStatus
  tags
  currentTotalPriceSet { shopMoney { amount currencyCode } }
  reference: metafield(namespace: "hub", key: "external_ref") { value }
  fulfillments(first: 5) { id status createdAt trackingInfo(first: 1) { company number url } }
}
"""
GET_ORDER = (
    """
query HubOrder($id: ID!) {
  order(id: $id) { ...HubOrder note }
}
"""
    + ORDER_FIELDS
)
ORDER_WORK = (
    """
query HubOrderWork($id: ID!) {
  order(id: $id) {
    ...HubOrder
    fulfillmentOrders(first: 10) {
      nodes { id status lineItems(first: 50) { nodes { id remainingQuantity } } }
    }
  }
}
"""
    + ORDER_FIELDS
)
SEARCH_ORDERS = (
    """
query HubOrders($first: Int!, $after: String, $query: String, $sortKey: OrderSortKeys, $reverse: Boolean) {
  orders(first: $first, after: $after, query: $query, sortKey: $sortKey, reverse: $reverse) {
    pageInfo { hasNextPage endCursor }
    nodes { ...HubOrder createdAt }
  }
}
"""
    + ORDER_FIELDS
)
VARIANT_BY_SKU = """
query HubVariant($query: String!) {
  productVariants(first: 1, query: $query) { nodes { id sku } }
}
"""
ORDER_CREATE = (
    """
mutation HubOrderCreate($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) {
    order { ...HubOrder }
    userErrors { field message }
  }
}
"""
    + ORDER_FIELDS
)
ORDER_UPDATE = """
mutation HubOrderUpdate($input: OrderInput!) {
  orderUpdate(input: $input) { order { id } userErrors { field message } }
}
"""
ORDER_CANCEL = """
mutation HubOrderCancel($orderId: ID!, $refundMethod: OrderCancelRefundMethodInput, $staffNote: String) {
  orderCancel(orderId: $orderId, reason: OTHER, restock: false, notifyCustomer: false,
              refundMethod: $refundMethod, staffNote: $staffNote) {
    job { id done }
    orderCancelUserErrors { field message }
  }
}
"""
FULFILLMENT_CREATE = """
mutation HubFulfil($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) { fulfillment { id } userErrors { field message } }
}
"""
TRACKING_UPDATE = """
mutation HubTracking($fulfillmentId: ID!, $tracking: FulfillmentTrackingInput!) {
  fulfillmentTrackingInfoUpdate(fulfillmentId: $fulfillmentId, trackingInfoInput: $tracking,
                                notifyCustomer: false) {
    fulfillment { id }
    userErrors { field message }
  }
}
"""
WEBHOOKS = """
query HubWebhooks($after: String) {
  webhookSubscriptions(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id topic uri }
  }
}
"""
WEBHOOK_CREATE = """
mutation HubWebhook($topic: WebhookSubscriptionTopic!, $subscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $subscription) {
    webhookSubscription { id }
    userErrors { field message }
  }
}
"""
# Every document the connector sends: the tests validate each against the schema subset.
DOCUMENTS = (
    GET_ORDER,
    ORDER_WORK,
    SEARCH_ORDERS,
    VARIANT_BY_SKU,
    ORDER_CREATE,
    ORDER_UPDATE,
    ORDER_CANCEL,
    FULFILLMENT_CREATE,
    TRACKING_UPDATE,
    WEBHOOKS,
    WEBHOOK_CREATE,
)


# -- the access token, per process ------------------------------------------------------------------


# Access tokens, per process (connectors/tokens.py).
TOKENS = TokenCache(margin=REFRESH_MARGIN)
forget_tokens = TOKENS.clear


class ShopifyConnector:
    kind = "shopify"
    page_size = PAGE_SIZE

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        guard: Guard,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.endpoint = f"{self.base}/admin/api/{API_VERSION}/graphql.json"
        self.client_id = credentials["shopify_client_id"]
        self.client_secret = credentials["shopify_client_secret"]
        # The cache's key: what makes the token, never kept itself.
        self.key = hashlib.sha256(
            "\0".join((self.base, self.client_id, self.client_secret)).encode()
        ).hexdigest()
        headers = {"User-Agent": "OrderHub", "Accept": "application/json"}
        self.http = Outbound(guard, platform=PLATFORM, headers=headers, transport=transport)
        self.oauth = Outbound(guard, platform=PLATFORM, headers=headers, transport=transport)
        self.variants: dict[str, str | None] = {}  # SKU → variant gid (None: the shop has none)

    def close(self) -> None:
        self.http.close()
        self.oauth.close()

    # -- the token and the one call ------------------------------------------------------------------

    def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        try:
            response = self.oauth.request("POST", f"{self.base}/admin/oauth/access_token", data=form)
        except Permanent as error:
            # invalid_client and the like: the seller's to fix, in words; Shopify's body never reaches them.
            if error.status in (400, 401, 403):
                raise Permanent(AUTH_FAILED, status=error.status, category="auth") from None
            raise
        payload = json_body(response, dict, PLATFORM)
        value, lifetime = payload.get("access_token"), payload.get("expires_in")
        if not isinstance(value, str) or not value or not value.isascii() or not value.isprintable():
            raise InvalidAnswer("Shopify's token endpoint answered without an access token")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or not 0 < lifetime <= 864_000:
            raise InvalidAnswer("Shopify's token endpoint answered without a usable expires_in")
        return value, float(lifetime)

    def _graphql(self, document: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One GraphQL call: its `data`, or the hub's error for what Shopify said instead."""
        body = {"query": document, "variables": dict(variables or {})}
        for attempt in (1, 2):
            token, cached = TOKENS.get(self.key, self._fetch_token)
            self.http.headers["X-Shopify-Access-Token"] = token
            try:
                response = self.http.request("POST", self.endpoint, json=body)
                break
            except Permanent as error:
                if error.status != 401:
                    raise
                TOKENS.forget(self.key, token)
                if not (cached and attempt == 1):
                    raise Permanent(ACCESS_DENIED, status=401, category="auth") from None
            finally:
                del self.http.headers["X-Shopify-Access-Token"]
        served = response.headers.get("X-Shopify-API-Version", API_VERSION)
        if served != API_VERSION:
            # Shopify answers an unsupported version with the oldest supported one: the documents may
            # no longer mean what they say.
            log.warning("Shopify answered with API version %s, not %s", sanitised(served, 20), API_VERSION)
        payload = json_body(response, dict, PLATFORM)
        errors = payload.get("errors")
        if errors:
            raise _top_level_error(errors, payload.get("extensions"))
        data = payload.get("data")
        if not isinstance(data, dict):
            raise InvalidAnswer("Shopify answered without data")
        return data

    def _mutate(self, document: str, name: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """A mutation's payload, or Permanent with Shopify's userErrors."""
        payload = self._graphql(document, variables).get(name)
        if not isinstance(payload, dict):
            raise InvalidAnswer(f"Shopify's {name} answered without its payload")
        problems = payload.get("userErrors") or payload.get("orderCancelUserErrors") or []
        if problems:
            words = "; ".join(_user_error(problem) for problem in problems if isinstance(problem, dict))
            raise Permanent(f"Shopify refused {name}: {sanitised(words)}", code="userErrors")
        return payload

    # -- reading -------------------------------------------------------------------------------------

    def _order(self, shop_id: str, document: str = GET_ORDER) -> dict[str, Any]:
        order = self._graphql(document, {"id": order_gid(shop_id)}).get("order")
        if not isinstance(order, dict):
            raise Permanent(f"Shopify has no order {shop_id}", code="not_found")
        return order

    def get_order(self, shop_id: str) -> ShopOrder:
        return parse_order(self._order(shop_id))

    def _pages(self, variables: Mapping[str, Any], pages: int | None = None) -> Iterator[dict[str, Any]]:
        """The orders a listing names, a page at a time as they are read."""
        after: str | None = None
        for _ in range(pages or 10_000):
            data = self._graphql(SEARCH_ORDERS, {**variables, "first": self.page_size, "after": after})
            orders = data.get("orders")
            if not isinstance(orders, dict) or not isinstance(orders.get("nodes"), list):
                raise InvalidAnswer("Shopify's orders answer has no nodes")
            yield from (node for node in orders["nodes"] if isinstance(node, dict))
            info = orders.get("pageInfo") or {}
            if not info.get("hasNextPage") or not isinstance(info.get("endCursor"), str):
                return
            after = info["endCursor"]

    def find_order(self, reference: str, since: datetime | None = None) -> ShopOrder | None:
        """The shop order carrying the reference: by its tag through search first; then, since the search
        index lags a few seconds behind a write, among the orders created since `since`, newest first and
        without a search, so a retry right after a lost answer finds what the first attempt created."""
        query = f"tag:{quoted(REFERENCE_TAG + reference)}"
        for raw in self._pages({"query": query}, pages=1):
            if _reference(raw) == reference:
                return parse_order(raw)
        if since is None:
            return None
        floor = since.astimezone(UTC).replace(microsecond=0)
        variables = {"sortKey": "CREATED_AT", "reverse": True}
        for raw in self._pages(variables, pages=MAX_RECENT_PAGES):
            if _reference(raw) == reference:
                return parse_order(raw)
            if _when(raw.get("createdAt"), "createdAt") < floor:
                return None
        return None

    def changed_since(self, since: datetime) -> Sequence[ShopOrder]:
        """Hub orders updated since `since`, oldest change first, every page. Shopify keeps whole seconds:
        the second `since` falls in is read again rather than missed."""
        moment = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        variables = {"query": f"tag:{HUB_TAG} updated_at:>={quoted(moment)}", "sortKey": "UPDATED_AT"}
        return [parse_order(raw) for raw in self._pages(variables) if _reference(raw)]

    def statuses(self) -> Mapping[str, str]:
        """Shopify's statuses are a fixed set (`STATUSES`, named in the seller's language by its kind):
        there is no list to read."""
        return {}

    # -- creating ------------------------------------------------------------------------------------

    def _variant(self, sku: str) -> str | None:
        """The variant carrying the SKU, if the shop has one; asked once per connector."""
        if sku not in self.variants:
            data = self._graphql(VARIANT_BY_SKU, {"query": f"sku:{quoted(sku)}"})
            nodes = (data.get("productVariants") or {}).get("nodes") or []
            found = [node["id"] for node in nodes if isinstance(node, dict) and node.get("sku") == sku]
            self.variants[sku] = found[0] if found else None
        return self.variants[sku]

    def create_order(self, plan: ShopOrderPlan) -> ShopOrder:
        """Create the order, exact to the cent, then move it to the plan's status where that is not
        Shopify's unfulfilled (a new order's only one); `find_order` first is the hub's (it knows `since`)."""
        tag = REFERENCE_TAG + plan.reference
        if len(tag) > MAX_TAG:
            raise Permanent(f"the hub's reference is too long for a Shopify tag ({len(tag)} > {MAX_TAG})")
        money = _money(plan.currency)
        items = [item for line in plan.lines for item in self._line_items(line, money)]
        charge = plan.shipping_charge
        shipping: dict[str, Any] = {
            "title": charge.title or "Kargo",
            "source": plan.marketplace,
            "priceSet": money(charge.net + charge.tax),
        }
        if charge.tax:
            shipping["taxLines"] = [_tax_line(charge.vat_rate, charge.tax, money)]
        order: dict[str, Any] = {
            "currency": plan.currency,
            "taxesIncluded": True,
            "financialStatus": "PAID",
            "sourceIdentifier": plan.reference,
            "tags": [HUB_TAG, f"{HUB_TAG}:{plan.marketplace}", tag],
            "metafields": [
                {
                    "namespace": METAFIELD_NAMESPACE,
                    "key": METAFIELD_KEY,
                    "type": "single_line_text_field",
                    "value": plan.reference,
                }
            ],
            "note": f"{plan.marketplace.title()} sipariş no: {plan.order_number} (paket {plan.package_id})",
            "billingAddress": _address(plan.billing),
            "shippingAddress": _address(plan.shipping),
            "lineItems": items,
            "shippingLines": [shipping],
            "transactions": [
                {
                    "kind": "SALE",
                    "status": "SUCCESS",
                    "gateway": plan.marketplace,
                    "amountSet": money(plan.total),
                }
            ],
        }
        if plan.customer_email:
            order["email"] = plan.customer_email
        options = {"inventoryBehaviour": "BYPASS", "sendReceipt": False, "sendFulfillmentReceipt": False}
        payload = self._mutate(ORDER_CREATE, "orderCreate", {"order": order, "options": options})
        if not isinstance(payload.get("order"), dict):
            raise InvalidAnswer("Shopify's orderCreate answered without the order")
        created = parse_order(payload["order"])
        if created.total != plan.total:
            log.warning("Shopify order %s totals %s, not %s", created.shop_id, created.total, plan.total)
        if plan.status in STATUSES and plan.status != created.status:
            # An order already shipped (or cancelled) on the marketplace. Only the create is this call's
            # to fail: the hub reads a refused create as "nothing was made", which must not be said of an
            # order that exists, so a move that fails is left to the hub's next set_status.
            try:
                return self.set_status(created.shop_id, plan.status)
            except ConnectorError as error:
                log.warning("Shopify order %s: not %s yet: %s", created.shop_id, plan.status, error)
        return created

    def _line_items(self, line: ShopLine, money: Any) -> list[dict[str, Any]]:
        """The line as Shopify takes it: a unit price times a quantity. A total that does not divide by the
        quantity goes in as two lines one cent apart (100.00 for 3: 2 × 33.33 and 1 × 33.34), so the order's
        total is the marketplace's to the cent."""
        if line.quantity < 1:
            raise Permanent(f"the line {line.sku or line.name} has no quantity")
        cents = int((line.total / CENT).to_integral_value(ROUND_HALF_UP))
        low, odd = divmod(cents, line.quantity)
        parts = [(line.quantity - odd, Decimal(low) * CENT), (odd, Decimal(low + 1) * CENT)]
        variant = self._variant(line.sku) if line.sku else None
        items = []
        for quantity, unit in parts:
            if not quantity:
                continue
            item: dict[str, Any] = {"quantity": quantity, "priceSet": money(unit)}
            if variant:
                item["variantId"] = variant
            else:
                # A custom line: Shopify keeps its title, price and SKU.
                item.update({"title": line.name or line.sku, "requiresShipping": True, "taxable": True})
                if line.sku:
                    item["sku"] = line.sku
            gross = unit * quantity
            tax = gross - (gross / (1 + line.vat_rate / 100)).quantize(CENT, ROUND_HALF_UP)
            item["taxLines"] = [_tax_line(line.vat_rate, tax, money)] if line.vat_rate else []
            items.append(item)
        return items

    def settle_total(self, shop_id: str, total: Decimal) -> ShopOrder:
        """The order as it is: a create is exact to the cent, so the totals agree. Where they do not (the
        seller edited the order in Shopify), the connector does not edit it: Shopify changes an order's
        items only through an order-editing session, which is the seller's to decide."""
        order = self.get_order(shop_id)
        if order.total != total:
            raise Permanent(
                f"the Shopify order totals {order.total}, not the marketplace's {total}: Shopify changes an "
                "order's items only by editing the order in its admin"
            )
        return order

    # -- changing ------------------------------------------------------------------------------------

    def set_status(self, shop_id: str, status: str) -> ShopOrder:
        """Move the order on as Shopify can: "fulfilled" fulfils what is left of every fulfillment order,
        "cancelled" cancels it (no refund to the buyer: the marketplace refunds; no restock: the hub moves
        stock itself). Asked again after a lost answer, it does only what is left."""
        if status not in STATUSES:
            raise Permanent(f"Shopify has no order status {status!r}")
        raw = self._order(shop_id, ORDER_WORK)
        current = parse_order(raw).status
        if current == status:
            return parse_order(raw)
        if current == "cancelled":
            raise Permanent(f"the Shopify order is cancelled: it cannot become {STATUSES[status].lower()}")
        if status == "cancelled":
            variables = {
                "orderId": raw["id"],
                "refundMethod": {"originalPaymentMethodsRefund": False},
                "staffNote": "Pazaryerinde iptal edildi (hub)",
            }
            self._mutate(ORDER_CANCEL, "orderCancel", variables)
        elif status == "fulfilled":
            self._fulfil(raw, None)
            done = self.get_order(shop_id)
            if done.status != "fulfilled":  # fulfillment orders on hold, or scheduled: not the hub's to lift
                raise Permanent(
                    "Shopify has not fulfilled the order: its fulfillment orders are on hold or scheduled; "
                    "release them in Shopify, then push the status again"
                )
            return done
        elif status == "partially_fulfilled":
            raise Permanent("Shopify's partially fulfilled is the seller's to make, item by item, in Shopify")
        else:
            raise Permanent(f"Shopify cannot move a {STATUSES[current].lower()} order back to unfulfilled")
        return self.get_order(shop_id)

    def _fulfil(self, raw: Mapping[str, Any], tracking: dict[str, str] | None) -> bool:
        """Fulfil what is left, one fulfillment per fulfillment order (Shopify fulfils one location's at
        a time); whether anything was left."""
        left = False
        for work in _nodes(raw.get("fulfillmentOrders")):
            if work.get("status") not in FULFILLABLE:
                continue
            lines = [
                {"id": item["id"], "quantity": item["remainingQuantity"]}
                for item in _nodes(work.get("lineItems"))
                if isinstance(item.get("remainingQuantity"), int) and item["remainingQuantity"] > 0
            ]
            if not lines:
                continue
            fulfillment: dict[str, Any] = {
                "lineItemsByFulfillmentOrder": [
                    {"fulfillmentOrderId": work["id"], "fulfillmentOrderLineItems": lines}
                ],
                "notifyCustomer": False,
            }
            if tracking:
                fulfillment["trackingInfo"] = tracking
            self._mutate(FULFILLMENT_CREATE, "fulfillmentCreate", {"fulfillment": fulfillment})
            left = True
        return left

    def set_tracking(self, shop_id: str, carrier: str, code: str, link: str) -> ShopOrder:
        """Tracking lives on a fulfillment: what is still unfulfilled ships with this code; if nothing is,
        the newest fulfillment's tracking becomes this one. Each only if not so already."""
        raw = self._order(shop_id, ORDER_WORK)
        order = parse_order(raw)
        if order.status == "cancelled":
            raise Permanent("the Shopify order is cancelled: it takes no tracking code")
        tracking = {"company": carrier, "number": code, "url": link}
        tracking = {key: value for key, value in tracking.items() if value}
        if self._fulfil(raw, tracking):
            return self.get_order(shop_id)
        newest = _newest_fulfillment(raw)
        if newest is None:
            raise Permanent("the Shopify order has nothing to fulfil and no fulfillment to carry tracking")
        if (order.carrier, order.tracking_number, order.tracking_link) != (carrier, code, link):
            variables = {"fulfillmentId": newest["id"], "tracking": tracking}
            self._mutate(TRACKING_UPDATE, "fulfillmentTrackingInfoUpdate", variables)
        return self.get_order(shop_id)

    def add_note(self, shop_id: str, note: str) -> None:
        """Shopify has one note per order: the line is appended, unless it is there already."""
        existing = self._order(shop_id).get("note") or ""
        if note in existing.splitlines():
            return
        text = f"{existing}\n{note}" if existing else note
        self._mutate(ORDER_UPDATE, "orderUpdate", {"input": {"id": order_gid(shop_id), "note": text}})

    def subscribe(self, callback_url: str, secret: str) -> str:
        """The order webhooks at `callback_url`: the topics not yet sent there are subscribed, others'
        subscriptions are left alone. `secret` is not Shopify's to take: it signs with the app's client
        secret."""
        have: set[str] = set()
        after: str | None = None
        while True:
            listing = self._graphql(WEBHOOKS, {"after": after}).get("webhookSubscriptions") or {}
            have |= {str(node.get("topic")) for node in _nodes(listing) if node.get("uri") == callback_url}
            info = listing.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            after = info.get("endCursor")
        for topic in TOPICS:
            if topic not in have:
                variables = {"topic": topic, "subscription": {"uri": callback_url, "format": "JSON"}}
                self._mutate(WEBHOOK_CREATE, "webhookSubscriptionCreate", variables)
        return f"{len(TOPICS)} webhooks registered at {callback_url}"


# -- reading Shopify's answers --------------------------------------------------------------------------


def order_gid(shop_id: str) -> str:
    """The GraphQL id of the order the hub knows by its number."""
    if not shop_id.isascii() or not shop_id.isdigit():
        raise Permanent(f"{shop_id!r} is not a Shopify order number")
    return f"gid://shopify/Order/{shop_id}"


def numeric_id(gid: Any, kind: str = "Order") -> str:
    prefix = f"gid://shopify/{kind}/"
    if not isinstance(gid, str) or not gid.startswith(prefix) or not gid[len(prefix) :].isdigit():
        raise InvalidAnswer(f"Shopify answered with an id that is not a {kind}'s")
    return gid[len(prefix) :]


def parse_order(raw: Mapping[str, Any]) -> ShopOrder:
    if not isinstance(raw, Mapping):
        raise InvalidAnswer("Shopify answered with something that is not an order")
    shop_id = numeric_id(raw.get("id"))
    if raw.get("cancelledAt"):
        status = "cancelled"
    else:
        shown = raw.get("displayFulfillmentStatus")
        if shown not in FULFILMENT_STATUSES:
            raise InvalidAnswer("Shopify's displayFulfillmentStatus is not one the hub knows")
        status = FULFILMENT_STATUSES[str(shown)]
    newest = _newest_fulfillment(raw)
    info = (newest or {}).get("trackingInfo") or [{}]
    tracking = info[0] if isinstance(info[0], dict) else {}
    return ShopOrder(
        shop_id=shop_id,
        status=status,
        reference=_reference(raw),
        modified_at=_when(raw.get("updatedAt"), "updatedAt") if raw.get("updatedAt") else None,
        tracking_number=str(tracking.get("number") or ""),
        tracking_link=str(tracking.get("url") or ""),
        carrier=str(tracking.get("company") or ""),
        total=_total(raw.get("currentTotalPriceSet")),
    )


def _reference(raw: Mapping[str, Any]) -> str:
    """The hub's reference: the metafield, or the tag where the metafield is gone (a seller's edit)."""
    field = raw.get("reference")
    if isinstance(field, dict) and isinstance(field.get("value"), str) and field["value"]:
        return str(field["value"])
    tags = raw.get("tags") or []
    found = [
        tag[len(REFERENCE_TAG) :] for tag in tags if isinstance(tag, str) and tag.startswith(REFERENCE_TAG)
    ]
    return found[0] if found else ""


def _newest_fulfillment(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    done = [
        item
        for item in raw.get("fulfillments") or []
        if isinstance(item, dict) and item.get("status") == "SUCCESS"
    ]
    return max(done, key=lambda item: str(item.get("createdAt") or ""), default=None)


def _total(value: Any) -> Decimal | None:
    """The order's current total, if it reads as one: an order with an odd total is still one to follow."""
    try:
        amount = Decimal(str(value["shopMoney"]["amount"]))
    except (KeyError, TypeError, InvalidOperation):
        return None
    return amount if amount.is_finite() else None


def _when(value: Any, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidAnswer(f"Shopify's {name} is not a date") from None
    if moment.tzinfo is None:
        raise InvalidAnswer(f"Shopify's {name} has no time zone")
    return moment.astimezone(UTC)


def _nodes(connection: Any) -> list[dict[str, Any]]:
    nodes = connection.get("nodes") if isinstance(connection, dict) else None
    return [node for node in nodes or [] if isinstance(node, dict)]


def _user_error(problem: Mapping[str, Any]) -> str:
    field = problem.get("field")
    where = ".".join(str(part) for part in field) if isinstance(field, list) else ""
    message = str(problem.get("message") or "refused")
    return f"{where}: {message}" if where else message


def _top_level_error(errors: Any, extensions: Any) -> Exception:
    """What a top-level `errors` means for the hub: throttled (wait what the bucket says), access denied
    (the app's scopes), a server error (later), or a document Shopify refuses as it is."""
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    code = str((first.get("extensions") or {}).get("code") or "")
    message = sanitised(str(first.get("message") or errors))
    if code == "THROTTLED":
        return RateLimited(
            f"Shopify throttled the query: {message}", retry_after=_wait(extensions), code=code
        )
    if code == "ACCESS_DENIED":
        return Permanent(f"Shopify denied access: {message}", code=code, category="auth")
    if code == "INTERNAL_SERVER_ERROR":
        return Retryable(f"Shopify failed: {message}", code=code)
    return Permanent(f"Shopify refused the query: {message}", code=code)


def _wait(extensions: Any) -> float:
    """(cost − available) / restore rate, from the answer's extensions.cost; a second where it says none."""
    try:
        cost = extensions["cost"]
        status = cost["throttleStatus"]
        wait = (float(cost["requestedQueryCost"]) - float(status["currentlyAvailable"])) / float(
            status["restoreRate"]
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return 1.0
    return min(max(wait, 1.0), 60.0) if math.isfinite(wait) else 1.0


def quoted(value: str) -> str:
    """A value for Shopify's search syntax: single-quoted, backslash and quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _money(currency: str) -> Any:
    def money(amount: Decimal) -> dict[str, Any]:
        text = str(amount.quantize(CENT, ROUND_HALF_UP))
        return {"shopMoney": {"amount": text, "currencyCode": currency}}

    return money


def _tax_line(vat_rate: Decimal, amount: Decimal, money: Any) -> dict[str, Any]:
    """KDV at the rate as Shopify wants it: a fraction (20 % is 0.2)."""
    return {"title": TAX_TITLE, "rate": str((vat_rate / 100).normalize()), "priceSet": money(amount)}


def _address(address: Address) -> dict[str, str]:
    """Shopify's address has no district: it goes on the second line. The province (il) is Shopify's by
    code only (`provinceCode`), which the hub's address does not carry; the city is the il as the
    marketplace wrote it. [UNSURE] whether Shopify wants a provinceCode for Turkish addresses created
    through orderCreate; the sandbox does not ask for one."""
    fields = {
        "firstName": address.first_name,
        "lastName": address.last_name,
        "address1": address.address1,
        "address2": address.district,
        "city": address.city,
        "zip": address.postcode,
        "countryCode": address.country,
        "phone": _phone(address.phone, address.country),
        "company": address.company,
    }
    return {key: value for key, value in fields.items() if value}


def _phone(phone: str, country: str) -> str:
    """A Turkish number as the marketplaces write it (05321234567) in E.164 (+905321234567), as Shopify
    documents its addresses' phone; any other as it came. [UNSURE] whether Shopify refuses an address
    phone it cannot read or keeps it as text: the sandbox keeps it."""
    digits = "".join(char for char in phone if char.isdigit())
    if country == "TR" and len(digits) == 11 and digits.startswith("05"):
        return f"+90{digits[1:]}"
    return phone


def read_webhook(headers: Mapping[str, str], body: bytes, secret: str, path: str = "") -> WebhookNotice:
    """A Shopify webhook delivery: `X-Shopify-Hmac-Sha256`, base64(HMAC-SHA256(raw body, the app's client
    secret)), checked before anything is read. The key is the event's id (the same change delivered
    again, or to a second subscription, has the same one); the subject the order's number."""
    named = {name.lower(): value for name, value in headers.items()}
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    given = named.get("x-shopify-hmac-sha256", "").encode()
    if not secret or not hmac.compare_digest(expected, given):
        raise WebhookRefused("the X-Shopify-Hmac-Sha256 is missing or wrong")
    key = (
        named.get("x-shopify-event-id")
        or named.get("x-shopify-webhook-id")
        or hashlib.sha256(body).hexdigest()
    )
    topic = named.get("x-shopify-topic", "")[:100]
    field = "id" if topic.startswith("orders/") else "order_id" if topic.startswith("fulfillments/") else ""
    if not field:
        return WebhookNotice(key[:200], topic, "")
    try:
        raw = json.loads(body)
    except ValueError:
        raise WebhookRefused("the body is not JSON") from None
    order_id = raw.get(field) if isinstance(raw, dict) else None
    if isinstance(order_id, bool) or not isinstance(order_id, int):
        return WebhookNotice(key[:200], topic, "")
    return WebhookNotice(key[:200], topic, str(order_id))
