"""Amazon's Selling Partner API for Amazon.com.tr in the sandbox, under /amazon, in the shapes of the official
models (specs/amazon-orders-2026-01-01.json, specs/amazon-orders-v0.json, specs/amazon-feeds-2021-06-30.yml):
Login with Amazon's token endpoint (/amazon/auth/o2/token, the refresh-token grant, tokens that expire),
searchOrders and getOrder of the Orders API 2026-01-01 with their rules (lastUpdatedBefore at least two
minutes before now, at most 100 a page, pagination tokens, includedData honoured), confirmShipment of
Orders v0 (204), and the seller's cancellation by the Feeds API 2021-06-30 (createFeedDocument, the upload
to the URL it gives, createFeed of POST_ORDER_ACKNOWLEDGEMENT_DATA, processed at once). Every answer
carries x-amzn-RequestId; a missing or expired x-amz-access-token is a 403 Unauthorized; errors are
{"errors":[{"code","message","details"}]}. The fault knobs of sandbox/app.py reach every path under /amazon,
their answers rewritten here into Amazon's (a 429 carries x-amzn-RateLimit-Limit, not Retry-After).
Control endpoints under /_control/amazon.

Where the models are silent (the words of an error, what searchOrders lists first, how a cancelled unit
is counted) the sandbox's choice is named where it is made, [sandbox].
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox import generator

if TYPE_CHECKING:
    from sandbox.state import World

PREFIX = "/amazon"
ORDERS = f"{PREFIX}/orders/2026-01-01/orders"
CONFIRM = f"{PREFIX}/orders/v0/orders/<order_id>/shipmentConfirmation"
FEED_DOCUMENTS = f"{PREFIX}/feeds/2021-06-30/documents"
FEEDS = f"{PREFIX}/feeds/2021-06-30/feeds"
UPLOAD = f"{PREFIX}/_storage/feed-documents"  # [sandbox] where a feed document is uploaded (Amazon: S3)
CANCEL_REASONS = ("NoInventory", "ShippingAddressUndeliverable", "CustomerExchange", "BuyerCanceled",
                  "GeneralAdjustment", "CarrierCreditDecision", "RiskAssessmentInformationNotValid",
                  "CarrierCoverageFailure", "CustomerReturn", "MerchandiseNotReceived")  # fmt: skip
TOKEN = f"{PREFIX}/auth/o2/token"
MARKETPLACE_ID = "A33AVAJ2PDY3EV"
MARKETPLACE_NAME = "Amazon.com.tr"
LAG = timedelta(minutes=2)  # lastUpdatedBefore / createdBefore: at least this long before now
MAX_PAGE_SIZE = 100
MAX_CURSORS = 1000
STATUSES = ("PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "CANCELLED",
            "UNFULFILLABLE")  # fmt: skip
TO_SHIP = ("UNSHIPPED", "PARTIALLY_SHIPPED")
DATASETS = ("BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION", "CANCELLATION", "FULFILLMENT",
            "PACKAGES", "TAX", "PAYMENT", "FULFILLMENT_ORDERS")  # fmt: skip
# Which parts of an order and of an item each dataset brings (the rest is always there).
ORDER_PARTS = {
    "buyer": "BUYER",
    "recipient": "RECIPIENT",
    "proceeds": "PROCEEDS",
    "fulfillment": "FULFILLMENT",
    "packages": "PACKAGES",
}
ITEM_PARTS = {"proceeds": "PROCEEDS", "fulfillment": "FULFILLMENT", "cancellation": "CANCELLATION"}
# The operations' default rates (requests per second), sent as x-amzn-RateLimit-Limit.
RATES = {"searchOrders": "0.0056", "getOrder": "0.5", "confirmShipment": "2.0", "createFeedDocument": "0.5",
         "createFeed": "0.0083", "token": "", "upload": ""}  # fmt: skip
CENT = Decimal("0.01")
UNAUTHORIZED = "Access to requested resource is denied."


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment.astimezone(UTC)


def _money(amount: Decimal) -> dict[str, str]:
    return {"amount": str(amount.quantize(CENT, rounding=ROUND_HALF_UP)), "currencyCode": "TRY"}


class Refusal(Exception):
    """What Amazon turns down: the status, the code and the message of its error list."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass
class AmazonMarket:
    """Amazon's side of the world: the seller's app credentials, the tokens issued, the orders. It has its
    own lock; nothing holds it while taking another."""

    seller_id: str = "A1SANDBOXSELLER"
    refresh_token: str = "Atzr|sandbox-refresh"
    client_id: str = "amzn1.application-oa2-client.sandbox"
    client_secret: str = "sandbox-secret"
    token_lifetime: int = 3600  # seconds, as LWA's expires_in
    # Knobs: the app's roles (without the orders one every orders call is a 403 Unauthorized; without the
    # restricted PII one RECIPIENT comes back empty), and whether a 429 carries x-amzn-RateLimit-Limit
    # (Amazon sends it "when available").
    orders_role: bool = True
    pii_role: bool = True
    rate_limit_header: bool = True
    # The account's usage plan, per operation (x-amzn-RateLimit-Limit): Amazon's defaults; a test may
    # give its account a larger one, as Amazon does for some sellers.
    rates: dict[str, str] = field(default_factory=lambda: dict(RATES))
    # How long before now lastUpdatedBefore must lie (Amazon: two minutes); fast tests lower it, with the
    # connector's LISTING_LAG.
    listing_lag: float = LAG.total_seconds()
    # [sandbox] How far back this Amazon writes the times of the changes it makes: fast tests and the e2e
    # run set it past the listing lag, so a change is listed at once while the connector keeps to
    # Amazon's rule (lastUpdatedBefore two minutes before now). 0: now, as Amazon.
    stamped_behind: float = 0.0
    seed: int = 5
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)

    COUNTERS = ("_item_ids",)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.rng = random.Random(self.seed)
        self._item_ids = itertools.count(50_000_000_000_001)  # 14 digits, as Amazon's
        self.tokens: dict[str, float] = {}  # access token → when it expires (epoch seconds); not kept
        self.token_requests = 0
        self.cursors: dict[str, dict[str, Any]] = {}  # pagination tokens → the query and what is left
        self.documents: dict[str, dict[str, Any]] = {}  # feed documents: contentType, content uploaded
        self.feeds: list[dict[str, Any]] = []  # feeds created, with what processing them found

    # -- kept across restarts, with the rest of the world ------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            counters = {}
            for name in self.COUNTERS:
                counters[name] = next(getattr(self, name))
                setattr(self, name, itertools.count(counters[name]))  # the peeked one stays next
            return {"orders": [json.loads(json.dumps(order)) for order in self.orders.values()],
                    "counters": counters}  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.orders = {order["orderId"]: order for order in state["orders"]}
            for name, value in state["counters"].items():
                if name in self.COUNTERS:
                    setattr(self, name, itertools.count(value))

    # -- orders ------------------------------------------------------------------------------------

    def create_order(self, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new order: `spec` may fix items ([{barcode, quantity}] from the catalogue), status (a
        FulfillmentStatus, UNSHIPPED by default), fulfilledBy (MERCHANT or AMAZON), at (when it was
        placed and last changed, ISO 8601; now by default) and buyerName."""
        spec = spec or {}
        with self.lock:
            person = generator.customer(self.rng)
            catalogue = {product.barcode: product for product in generator.CATALOGUE}
            if "items" in spec:
                chosen = [
                    (catalogue[item["barcode"]], int(item.get("quantity", 1))) for item in spec["items"]
                ]
            else:
                chosen = generator.lines(self.rng)
            status = str(spec.get("status", "UNSHIPPED"))
            if status not in STATUSES:
                raise ValueError(f"status is one of {', '.join(STATUSES)}")
            stamp = iso(parse_time(spec["at"])) if spec.get("at") else iso(self.now())
            name = str(spec.get("buyerName") or f"{person['firstName']} {person['lastName']}")
            order_id = self._order_id()
            items = [self._item(product, quantity) for product, quantity in chosen]
            source: dict[str, Any] = person["address"]  # type: ignore[assignment]
            order: dict[str, Any] = {
                "orderId": order_id,
                "createdTime": stamp,
                "lastUpdatedTime": stamp,
                "programs": [],
                "salesChannel": {
                    "channelName": "AMAZON",
                    "marketplaceId": MARKETPLACE_ID,
                    "marketplaceName": MARKETPLACE_NAME,
                },
                "buyer": {
                    "buyerName": name,
                    "buyerEmail": f"{secrets.token_hex(8)}@marketplace.amazon.com.tr",
                },
                # [sandbox] a Turkish address as Amazon.com.tr is read to write it: the province (il) in
                # stateOrRegion, the district (ilçe) in city, the neighbourhood in the first line.
                "recipient": {
                    "deliveryAddress": {
                        "name": name,
                        "addressLine1": source["address1"],
                        "city": source["district"],
                        "stateOrRegion": source["city"],
                        "postalCode": source["postalCode"],
                        "countryCode": "TR",
                        "phone": source["phone"],
                        "addressType": "RESIDENTIAL",
                    }
                },
                "fulfillment": {
                    "fulfillmentStatus": status,
                    "fulfilledBy": str(spec.get("fulfilledBy", "MERCHANT")),
                    "fulfillmentServiceLevel": "STANDARD",
                },
                "orderItems": items,
                "packages": [],
            }
            _proceeds(order)
            if status == "CANCELLED":
                for item in items:
                    _cancel_item(item, item["fulfillment"]["quantityUnfulfilled"], "BUYER")
            elif status == "SHIPPED":
                for item in items:
                    item["fulfillment"].update(
                        quantityFulfilled=item["quantityOrdered"], quantityUnfulfilled=0
                    )
            self.orders[order_id] = order
            return order

    def _order_id(self) -> str:
        while True:
            number = (f"{self.rng.randint(402, 408)}-{self.rng.randint(0, 9_999_999):07d}-"
                      f"{self.rng.randint(0, 9_999_999):07d}")  # fmt: skip
            if number not in self.orders:
                return number

    def _item(self, product: generator.Product, quantity: int) -> dict[str, Any]:
        return {
            "orderItemId": str(next(self._item_ids)),
            "quantityOrdered": quantity,
            "programs": [],
            "product": {
                "asin": f"B0{product.barcode[-8:]}",
                "title": product.name,
                "sellerSku": product.stock_code,
                "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"},
                "price": {"unitPrice": _money(product.price)},
            },
            "_vatRate": product.vat_rate,
            "fulfillment": {"quantityFulfilled": 0, "quantityUnfulfilled": quantity},
        }

    def advance(self) -> None:
        """One step of the demo's life: a pending order's payment is confirmed after a while (it is then
        to be shipped), and now and then a buyer cancels one not shipped yet."""
        with self.lock:
            moment = self.now()
            for order in self.orders.values():
                status = order["fulfillment"]["fulfillmentStatus"]
                if status not in ("PENDING", "UNSHIPPED"):
                    continue
                age = (moment - parse_time(order["lastUpdatedTime"])).total_seconds()
                roll = self.rng.random()
                if status == "PENDING" and age > 20 and roll < 0.3:
                    self.set_status(order, "UNSHIPPED")
                elif status == "UNSHIPPED" and age > 60 and roll < 0.002:
                    self.cancel(order["orderId"])

    def now(self) -> datetime:
        """The time this Amazon writes on a change (`stamped_behind` back)."""
        return now() - timedelta(seconds=self.stamped_behind)

    def touch(self, order: dict[str, Any]) -> None:
        """The order changed now (never before its last change)."""
        order["lastUpdatedTime"] = iso(max(self.now(), parse_time(order["lastUpdatedTime"])))

    def set_status(self, order: dict[str, Any], status: str) -> None:
        with self.lock:
            if status not in STATUSES:
                raise ValueError(f"status is one of {', '.join(STATUSES)}")
            order["fulfillment"]["fulfillmentStatus"] = status
            self.touch(order)

    def cancel(self, order_id: str, items: dict[str, int] | None = None, by: str = "BUYER") -> dict[str, Any]:
        """A cancellation by the buyer or Amazon: the units named ({orderItemId: units}), or every unit
        not shipped. [sandbox] quantityOrdered stays; the units leave quantityUnfulfilled, and the item
        carries its cancellation. An order with nothing left to ship and nothing shipped is CANCELLED."""
        with self.lock:
            order = self.orders[order_id]
            for item in order["orderItems"]:
                left = item["fulfillment"]["quantityUnfulfilled"]
                units = left if items is None else min(int(items.get(item["orderItemId"], 0)), left)
                if units:
                    _cancel_item(item, units, by)
            fulfilled = sum(item["fulfillment"]["quantityFulfilled"] for item in order["orderItems"])
            left = sum(item["fulfillment"]["quantityUnfulfilled"] for item in order["orderItems"])
            if not left:
                order["fulfillment"]["fulfillmentStatus"] = "SHIPPED" if fulfilled else "CANCELLED"
            self.touch(order)
            return order

    def confirm(self, order_id: str, body: Any) -> None:
        """confirmShipment: the units named leave quantityUnfulfilled for quantityFulfilled, a parcel is
        added, and the order is SHIPPED or PARTIALLY_SHIPPED. Raises Refusal as Amazon would answer."""
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                raise Refusal(404, "NotFound", f"Order {order_id} not found")
            if not isinstance(body, dict) or body.get("marketplaceId") != MARKETPLACE_ID:
                raise Refusal(400, "InvalidInput", "marketplaceId is not the order's marketplace")
            detail = body.get("packageDetail")
            if not isinstance(detail, dict):
                raise Refusal(400, "InvalidInput", "packageDetail is required")
            for name in ("packageReferenceId", "carrierCode", "trackingNumber", "shipDate", "orderItems"):
                if not detail.get(name):
                    raise Refusal(400, "InvalidInput", f"packageDetail.{name} is required")
            reference = str(detail["packageReferenceId"])
            if not reference.isdigit() or int(reference) < 1:
                raise Refusal(400, "InvalidInput", "packageReferenceId must be a positive number")
            if any(parcel["packageReferenceId"] == reference for parcel in order["packages"]):
                raise Refusal(400, "InvalidInput", f"packageReferenceId {reference} is in use in this order")
            if detail["carrierCode"] == "Other" and not detail.get("carrierName"):
                raise Refusal(400, "InvalidInput", "carrierName is required when carrierCode is Other")
            try:
                shipped_at = parse_time(str(detail["shipDate"]))
            except ValueError:
                raise Refusal(400, "InvalidInput", "shipDate is not an ISO 8601 time") from None
            if order["fulfillment"]["fulfillmentStatus"] not in TO_SHIP:
                raise Refusal(
                    400,
                    "InvalidInput",
                    f"The order is {order['fulfillment']['fulfillmentStatus']}, not to ship",
                )
            by_id = {item["orderItemId"]: item for item in order["orderItems"]}
            wanted: dict[str, int] = {}
            for entry in detail["orderItems"]:
                item = by_id.get(entry.get("orderItemId")) if isinstance(entry, dict) else None
                if item is None:
                    raise Refusal(400, "InvalidInput", f"Unknown orderItemId {entry!r}"[:120])
                quantity = entry.get("quantity")
                total = wanted.get(item["orderItemId"], 0) + (quantity if isinstance(quantity, int) else 0)
                if (
                    not isinstance(quantity, int)
                    or quantity < 1
                    or total > item["fulfillment"]["quantityUnfulfilled"]
                ):
                    raise Refusal(
                        400,
                        "InvalidInput",
                        f"quantity {quantity!r} of item {item['orderItemId']} is not to ship",
                    )
                wanted[item["orderItemId"]] = total
            for item_id, quantity in wanted.items():
                counts = by_id[item_id]["fulfillment"]
                counts["quantityFulfilled"] += quantity
                counts["quantityUnfulfilled"] -= quantity
            order["packages"].append(
                {
                    "packageReferenceId": reference,
                    "createdTime": iso(self.now()),
                    "packageStatus": {"status": "IN_TRANSIT"},
                    "carrier": str(detail.get("carrierName") or detail["carrierCode"]),
                    "shipTime": iso(shipped_at),
                    "shippingService": str(detail.get("shippingMethod", "")),
                    "trackingNumber": str(detail["trackingNumber"]),
                    "packageItems": [
                        {"orderItemId": key, "quantity": value} for key, value in wanted.items()
                    ],
                }
            )
            left = sum(item["fulfillment"]["quantityUnfulfilled"] for item in order["orderItems"])
            order["fulfillment"]["fulfillmentStatus"] = "PARTIALLY_SHIPPED" if left else "SHIPPED"
            self.touch(order)

    # -- feeds ---------------------------------------------------------------------------------------

    def process_feed(self, feed: dict[str, Any], content: bytes) -> None:
        """[sandbox] at once, where Amazon takes minutes: an order-acknowledgement feed's cancellations.
        StatusCode Failure cancels every unit not shipped; Success with a CancelReason on items cancels
        those items; what cannot be applied is kept as the feed's errors (Amazon's processing report)."""
        with self.lock:
            found: list[str] = []
            try:
                envelope = ElementTree.fromstring(content)
            except ElementTree.ParseError as error:
                envelope, found = None, [f"the document is not XML: {error}"]
            if envelope is not None:
                feed["merchantIdentifier"] = envelope.findtext("Header/MerchantIdentifier", "")
                # [sandbox] the Merchant Token checked: whether Amazon checks it is not in the notes.
                if feed["merchantIdentifier"] != self.seller_id:
                    feed.update(processingStatus="DONE", errors=["MerchantIdentifier is not the seller's"])
                    return
                if envelope.findtext("MessageType") != "OrderAcknowledgement":
                    found.append("MessageType is not OrderAcknowledgement")
                for message in envelope.findall("Message/OrderAcknowledgement"):
                    found += self._acknowledge(message)
            feed.update(processingStatus="FATAL" if envelope is None else "DONE", errors=found)

    def _acknowledge(self, message: ElementTree.Element) -> list[str]:
        order_id = message.findtext("AmazonOrderID", "")
        order = self.orders.get(order_id)
        if order is None:
            return [f"order {order_id} not found"]
        if order["fulfillment"]["fulfillmentStatus"] != "UNSHIPPED":
            return [f"order {order_id} is {order['fulfillment']['fulfillmentStatus']}, not Unshipped"]
        code = message.findtext("StatusCode", "")
        items: dict[str, str] = {}
        for item in message.findall("Item"):
            item_id, reason = item.findtext("AmazonOrderItemCode", ""), item.findtext("CancelReason", "")
            if reason not in CANCEL_REASONS:
                return [f"CancelReason {reason!r} of item {item_id} is not one Amazon knows"]
            items[item_id] = reason
        known = {item["orderItemId"] for item in order["orderItems"]}
        if set(items) - known:
            return [f"order {order_id} has no item {sorted(set(items) - known)[0]}"]
        if code == "Failure":
            self.cancel(order_id, by="MERCHANT")
        elif code == "Success" and items:
            self.cancel(order_id, {item_id: 10**6 for item_id in items}, by="MERCHANT")
        elif code != "Success":
            return [f"StatusCode {code!r} is neither Success nor Failure"]
        return []

    # -- the API's reading -------------------------------------------------------------------------

    def issue_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """LWA's token endpoint for the refresh-token grant: the answer's status and body."""
        with self.lock:
            self.token_requests += 1
            if form.get("grant_type") != "refresh_token":
                return 400, {"error": "unsupported_grant_type", "error_description": "Unsupported grant type"}
            if not all(form.get(name) for name in ("refresh_token", "client_id", "client_secret")):
                return 400, {
                    "error": "invalid_request",
                    "error_description": "A required parameter is missing",
                }
            if (form["client_id"], form["client_secret"]) != (self.client_id, self.client_secret):
                return 401, {"error": "invalid_client", "error_description": "Client authentication failed"}
            if form["refresh_token"] != self.refresh_token:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "The request has an invalid grant parameter : refresh_token",
                }
            token = f"Atza|{secrets.token_urlsafe(24)}"
            self.tokens[token] = time.time() + self.token_lifetime
            return 200, {
                "access_token": token,
                "refresh_token": self.refresh_token,
                "token_type": "bearer",
                "expires_in": self.token_lifetime,
            }

    def authorised(self, token: str | None) -> bool:
        with self.lock:
            expires = self.tokens.get(token or "")
            return expires is not None and time.time() < expires

    def expire_tokens(self) -> None:
        """Every token issued expires now (what an hour does)."""
        with self.lock:
            for token in self.tokens:
                self.tokens[token] = 0.0

    def shown(self, order: dict[str, Any], datasets: set[str]) -> dict[str, Any]:
        """The order as Amazon answers it, with the datasets asked for; nothing of the sandbox's own."""
        status = order["fulfillment"]["fulfillmentStatus"]
        result = {}
        for key, value in order.items():
            if key.startswith("_") or (key in ORDER_PARTS and ORDER_PARTS[key] not in datasets):
                continue
            if key == "recipient" and (not self.pii_role or status.startswith("PENDING")):
                continue  # no address without the role, nor before the payment is confirmed
            result[key] = json.loads(json.dumps(value))
        result["orderItems"] = [
            {
                key: json.loads(json.dumps(value))
                for key, value in item.items()
                if not key.startswith("_") and not (key in ITEM_PARTS and ITEM_PARTS[key] not in datasets)
            }
            for item in order["orderItems"]
        ]
        return result

    def search(self, query: dict[str, Any]) -> list[str]:
        """The ids of the orders a searchOrders query finds, in the order Amazon lists them: [sandbox] by
        order id, which is not the order of their changes (the model does not say)."""
        with self.lock:
            field_name, after, before = query["field"], query["after"], query["before"]
            return sorted(
                order["orderId"]
                for order in self.orders.values()
                if after <= parse_time(order[field_name]) <= before
                and order["salesChannel"]["marketplaceId"] in query["marketplaces"]
                and (not query["by"] or order["fulfillment"]["fulfilledBy"] in query["by"])
                and (not query["statuses"] or order["fulfillment"]["fulfillmentStatus"] in query["statuses"])
            )


def _proceeds(order: dict[str, Any]) -> None:
    """Each item's proceeds and the order's: the prices with VAT included, the TAX breakdown the VAT inside
    them ([sandbox] as Amazon's VAT marketplaces are read); a cargo fee on the first item under the free
    shipping threshold."""
    goods = sum(
        (
            Decimal(item["product"]["price"]["unitPrice"]["amount"]) * item["quantityOrdered"]
            for item in order["orderItems"]
        ),
        Decimal(0),
    )
    totals: dict[str, Decimal] = {}
    for index, item in enumerate(order["orderItems"]):
        rate = Decimal(item["_vatRate"])
        price = Decimal(item["product"]["price"]["unitPrice"]["amount"]) * item["quantityOrdered"]
        shipping = generator.CARGO_FEE if index == 0 and goods < generator.FREE_SHIPPING_FROM else Decimal(0)
        tax = (price * rate / (100 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
        shipping_tax = (shipping * 20 / 120).quantize(CENT, rounding=ROUND_HALF_UP)
        breakdowns: list[dict[str, Any]] = [{"type": "ITEM", "subtotal": _money(price)}]
        if shipping:
            breakdowns.append({"type": "SHIPPING", "subtotal": _money(shipping)})
        details = [{"subtype": "ITEM", "value": _money(tax)}]
        if shipping:
            details.append({"subtype": "SHIPPING", "value": _money(shipping_tax)})
        breakdowns.append(
            {"type": "TAX", "subtotal": _money(tax + shipping_tax), "detailedBreakdowns": details}
        )
        item["proceeds"] = {"proceedsTotal": _money(price + shipping), "breakdowns": breakdowns}
        for kind, amount in (("ITEM", price), ("SHIPPING", shipping), ("TAX", tax + shipping_tax)):
            totals[kind] = totals.get(kind, Decimal(0)) + amount
    order["proceeds"] = {
        "grandTotal": _money(totals["ITEM"] + totals["SHIPPING"]),
        "breakdowns": [
            {"type": kind, "subtotal": _money(amount)} for kind, amount in totals.items() if amount
        ],
    }


def _cancel_item(item: dict[str, Any], units: int, by: str) -> None:
    item["fulfillment"]["quantityUnfulfilled"] -= units
    item["cancellation"] = (
        {
            "cancellationRequest": {"requester": "BUYER", "cancelReason": "Fikrimi değiştirdim"},
            "cancellationExecution": {"cancelledBy": by, "cancelReason": "Alıcının isteğiyle"},
        }
        if by == "BUYER"
        else {"cancellationExecution": {"cancelledBy": by, "cancelReason": "Stokta yok"}}
    )


def errors(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """Amazon's error list."""
    response = jsonify({"errors": [{"code": code, "message": message, "details": ""}]})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _csv(name: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    """A query array as the models write it (Swagger 2.0's default, comma-separated); repeated names too."""
    values = [
        part.strip() for value in request.args.getlist(name) for part in value.split(",") if part.strip()
    ]
    if allowed is not None:
        wrong = [value for value in values if value not in allowed]
        if wrong:
            raise Refusal(400, "InvalidInput", f"{wrong[0]!r} is not a valid {name} value")
    return values


def _operation(path: str) -> str:
    if path.endswith("/shipmentConfirmation"):
        return "confirmShipment"
    if path.startswith(TOKEN):
        return "token"
    if path.startswith(UPLOAD):
        return "upload"
    if path.startswith(FEED_DOCUMENTS):
        return "createFeedDocument"
    if path.startswith(FEEDS):
        return "createFeed"
    return "searchOrders" if path.rstrip("/") == ORDERS else "getOrder"


def register(app: Flask, world: World) -> None:
    """Amazon's routes and its control endpoints on the sandbox app; the fault knobs reach them through the
    app's own hooks (every path under PREFIX), their answers rewritten into Amazon's here."""
    market = world.amazon

    @app.after_request
    def amazon_answer(response: Response) -> Response:
        """Every answer under /amazon in Amazon's manner: x-amzn-RequestId always, the operation's rate,
        and the app's own error bodies (a fault knob's 429 or 503, a 404 of routing) as Amazon's list."""
        if not request.path.startswith(f"{PREFIX}/"):
            return response
        operation = _operation(request.path)
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        body = response.get_json(silent=True) if response.is_json else None
        if isinstance(body, dict) and "exception" in body:  # the app's own error, not one of the routes'
            code = {429: "QuotaExceeded", 503: "ServiceUnavailable", 404: "NotFound"}.get(
                response.status_code, "InternalFailure"
            )
            message = {429: "You exceeded your quota for the requested resource."}.get(
                response.status_code, str(body["exception"])
            )
            response.set_data(json.dumps({"errors": [{"code": code, "message": message, "details": ""}]}))
            response.headers.pop("Retry-After", None)  # Amazon names none
        if market.rates.get(operation) and (response.status_code != 429 or market.rate_limit_header):
            response.headers["x-amzn-RateLimit-Limit"] = market.rates[operation]
        return response

    def unauthorised() -> Response | None:
        if market.orders_role and market.authorised(request.headers.get("x-amz-access-token")):
            return None
        return errors(403, "Unauthorized", UNAUTHORIZED)

    @app.post(TOKEN)
    def amazon_token() -> ResponseReturnValue:
        """Login with Amazon: the refresh-token grant, as a form."""
        if request.mimetype != "application/x-www-form-urlencoded":
            return jsonify({"error": "invalid_request", "error_description": "Form encoding expected"}), 400
        status, body = market.issue_token({key: request.form[key] for key in request.form})
        response = jsonify(body)
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get(ORDERS)
    def amazon_search() -> ResponseReturnValue:
        """searchOrders: a page of the orders created or changed in a window, with a token for the next."""
        refused = unauthorised()
        if refused is not None:
            return refused
        try:
            return jsonify(search(request.args.get("paginationToken")))
        except Refusal as refusal:
            return errors(refusal.status, refusal.code, str(refusal))

    def search(token: str | None) -> dict[str, Any]:
        datasets = set(_csv("includedData", DATASETS))
        marketplaces = _csv("marketplaceIds")
        if not marketplaces:
            raise Refusal(400, "InvalidInput", "marketplaceIds is required")
        by = _csv("fulfilledBy", ("MERCHANT", "AMAZON"))
        statuses = _csv("fulfillmentStatuses", STATUSES)
        size_text = request.args.get("maxResultsPerPage", str(MAX_PAGE_SIZE)).strip()
        size = int(size_text) if size_text.isascii() and size_text.isdigit() else 0
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise Refusal(400, "InvalidInput", f"maxResultsPerPage must be between 1 and {MAX_PAGE_SIZE}")
        args = request.args
        created, updated = "createdAfter" in args, "lastUpdatedAfter" in args
        if (
            created == updated
            or (created and "lastUpdatedBefore" in args)
            or (updated and "createdBefore" in args)
        ):
            raise Refusal(400, "InvalidInput", "Exactly one of createdAfter and lastUpdatedAfter is required")
        prefix = "created" if created else "lastUpdated"
        latest = datetime.now(UTC) - timedelta(seconds=market.listing_lag)
        try:
            after = parse_time(args[f"{prefix}After"])
            before = parse_time(args[f"{prefix}Before"]) if f"{prefix}Before" in args else latest
        except ValueError:
            raise Refusal(400, "InvalidInput", "Dates must be in ISO 8601 format") from None
        if before > latest:
            raise Refusal(400, "InvalidInput", f"{prefix}Before must be at least two minutes before now")

        if before < after:
            raise Refusal(400, "InvalidInput", f"{prefix}Before must be equal to or after {prefix}After")
        query = {
            "field": "createdTime" if created else "lastUpdatedTime",
            "after": after,
            "before": before,
            "marketplaces": marketplaces,
            "by": by,
            "statuses": statuses,
        }
        # A token goes with the filters it was made for, as they were asked (a default end moves on).
        signature = json.dumps(
            sorted((key, value) for key, value in args.items(multi=True) if key != "paginationToken")
        )
        with market.lock:
            if token:
                cursor = market.cursors.get(token)
                if cursor is None or cursor["signature"] != signature:
                    raise Refusal(400, "InvalidInput", "Invalid paginationToken, or not for these filters")
                ids = market.cursors.pop(token)["ids"]
            else:
                ids = market.search(query)
            page, rest = ids[:size], ids[size:]
            answer: dict[str, Any] = {
                "orders": [market.shown(market.orders[order_id], datasets) for order_id in page],
            }
            if rest:
                next_token = secrets.token_urlsafe(16)
                market.cursors[next_token] = {"signature": signature, "ids": rest}
                while len(market.cursors) > MAX_CURSORS:  # pages nobody asked for (Amazon's expire in 24 h)
                    market.cursors.pop(next(iter(market.cursors)))
                answer["pagination"] = {"nextToken": next_token}
            answer["lastUpdatedBefore" if updated else "createdBefore"] = iso(before)
            return answer

    @app.get(f"{ORDERS}/<order_id>")
    def amazon_order(order_id: str) -> ResponseReturnValue:
        """getOrder: one order with the datasets asked for."""
        refused = unauthorised()
        if refused is not None:
            return refused
        try:
            datasets = set(_csv("includedData", DATASETS))
        except Refusal as refusal:
            return errors(refusal.status, refusal.code, str(refusal))
        with market.lock:
            order = market.orders.get(order_id)
            if order is None:
                return errors(404, "NotFound", f"Order {order_id} not found")
            return jsonify({"order": market.shown(order, datasets)})

    @app.post(CONFIRM)
    def amazon_confirm(order_id: str) -> ResponseReturnValue:
        """confirmShipment: 204 and no body."""
        refused = unauthorised()
        if refused is not None:
            return refused
        try:
            market.confirm(order_id, request.get_json(silent=True))
        except Refusal as refusal:
            return errors(refusal.status, refusal.code, str(refusal))
        return Response(status=204)

    @app.post(FEED_DOCUMENTS)
    def amazon_feed_document() -> ResponseReturnValue:
        """createFeedDocument: an id and the URL to upload the document to."""
        refused = unauthorised()
        if refused is not None:
            return refused
        body = request.get_json(silent=True)
        content_type = body.get("contentType") if isinstance(body, dict) else None
        if not isinstance(content_type, str) or not content_type:
            return errors(400, "InvalidInput", "contentType is required")
        document_id = f"amzn1.tortuga.4.eu.{uuid.uuid4()}"
        signature = uuid.uuid4().hex
        with market.lock:
            market.documents[document_id] = {
                "contentType": content_type,
                "content": None,
                "signature": signature,
            }
        # Pre-signed as Amazon's storage signs it: the credentials are in the query ([sandbox] values).
        query = f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIASANDBOX&X-Amz-Signature={signature}"
        url = f"{request.host_url.rstrip('/')}{UPLOAD}/{document_id}?{query}"
        return jsonify({"feedDocumentId": document_id, "url": url}), 201

    @app.put(f"{UPLOAD}/<document_id>")
    def amazon_upload(document_id: str) -> ResponseReturnValue:
        """The presigned upload URL: no access token; the content type the document was made for."""
        with market.lock:
            document = market.documents.get(document_id)
            if document is None:
                return Response("NoSuchKey", status=404, mimetype="application/xml")
            if request.headers.get("Content-Type") != document["contentType"] or request.args.get(
                "X-Amz-Signature"
            ) != document.get("signature"):
                return Response("SignatureDoesNotMatch", status=403, mimetype="application/xml")
            document["content"] = request.get_data()
        return Response(status=200)

    @app.post(FEEDS)
    def amazon_feed() -> ResponseReturnValue:
        """createFeed: 202 and the feed's id; the sandbox processes it at once."""
        refused = unauthorised()
        if refused is not None:
            return refused
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not all(
            body.get(name) for name in ("feedType", "marketplaceIds", "inputFeedDocumentId")
        ):
            return errors(
                400, "InvalidInput", "feedType, marketplaceIds and inputFeedDocumentId are required"
            )
        if body["feedType"] != "POST_ORDER_ACKNOWLEDGEMENT_DATA":
            return errors(400, "InvalidInput", f"The sandbox plays no {body['feedType']} feed")
        if body["marketplaceIds"] != [MARKETPLACE_ID]:
            return errors(400, "InvalidInput", "marketplaceIds must name the seller's marketplace")
        with market.lock:
            document = market.documents.get(str(body["inputFeedDocumentId"]))
            if document is None or document["content"] is None:
                return errors(400, "InvalidInput", "The feed document is unknown or was not uploaded")
            feed = {"feedId": str(50_000 + len(market.feeds)), "feedType": body["feedType"],
                    "processingStatus": "IN_QUEUE", "errors": []}  # fmt: skip
            market.feeds.append(feed)
            market.process_feed(feed, document["content"])
        return jsonify({"feedId": feed["feedId"]}), 202

    # -- control -----------------------------------------------------------------------------------

    @app.post("/_control/amazon/orders")
    def amazon_control_create() -> ResponseReturnValue:
        """Create orders: {"items": [{barcode, quantity}], "status", "fulfilledBy", "at", "buyerName"},
        `count` times."""
        count = request.args.get("count", 1, type=int)
        spec = request.get_json(silent=True) or {}
        try:
            made = [market.create_order(spec) for _ in range(count)]
        except (ValueError, KeyError) as wrong:
            return jsonify({"message": str(wrong)}), 400
        return jsonify([market.shown(order, set(DATASETS)) for order in made]), 201

    @app.post("/_control/amazon/orders/<order_id>/status")
    def amazon_control_status(order_id: str) -> ResponseReturnValue:
        """Move an order as Amazon would: {"status"}."""
        body = request.get_json(silent=True) or {}
        with market.lock:
            order = market.orders.get(order_id)
            if order is None:
                return jsonify({"message": "order not found"}), 404
            try:
                market.set_status(order, str(body.get("status")))
            except ValueError as wrong:
                return jsonify({"message": str(wrong)}), 400
            return jsonify(market.shown(order, set(DATASETS)))

    @app.post("/_control/amazon/orders/<order_id>/cancel")
    def amazon_control_cancel(order_id: str) -> ResponseReturnValue:
        """A buyer's or Amazon's cancellation: {"items": {orderItemId: units}} (none: the whole order),
        "by": BUYER or AMAZON."""
        body = request.get_json(silent=True) or {}
        if order_id not in market.orders:
            return jsonify({"message": "order not found"}), 404
        order = market.cancel(order_id, body.get("items"), str(body.get("by", "BUYER")))
        return jsonify(market.shown(order, set(DATASETS)))

    @app.get("/_control/amazon/state")
    def amazon_control_state() -> ResponseReturnValue:
        with market.lock:
            return jsonify(
                {
                    "orders": [market.shown(order, set(DATASETS)) for order in market.orders.values()],
                    "token_requests": market.token_requests,
                }
            )
