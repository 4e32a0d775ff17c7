"""The sandbox's world: Trendyol packages and WooCommerce orders, kept as the JSON each API returns.

One lock guards it all; the sandbox is a test double, not a database.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, ClassVar

from sandbox import generator

# Trendyol's lifecycle: who may move a package where. Statuses only go forward.
FORWARD = (
    "Awaiting",
    "Created",
    "Picking",
    "Invoiced",
    "Shipped",
    "AtCollectionPoint",
    "Delivered",
)
FINAL = ("Delivered", "Cancelled", "UnSupplied", "Returned", "UnDelivered")
SELLER_STATUSES = ("Picking", "Invoiced")
WOO_STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed")


def now_ms() -> int:
    return int(time.time() * 1000)


def money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def woo_time(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000))


@dataclass
class Faults:
    """Knobs that make the sandbox misbehave like a real API on a bad day."""

    latency_ms: int = 0
    error_rate: float = 0.0  # share of answers that are a 5xx
    rate_limit_rate: float = 0.0  # share of answers that are a 429 with Retry-After
    rate_limit_method: str = ""  # only requests of this method are rate limited ("" for all)
    retry_after: int = 1
    timeout_rate: float = 0.0  # share of answers held back past the client's timeout (after the effect)
    timeout_seconds: float = 3.0
    timeout_method: str = ""  # only answers to this method are lost ("" for all)
    duplicate_rate: float = 0.0  # share of listing pages that repeat packages of the page before
    search_covers_meta: bool = True  # off: the shop's order search ignores custom meta, as many stores do

    def update(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if not hasattr(self, name):
                raise KeyError(name)
            setattr(self, name, type(getattr(self, name))(value))


@dataclass
class World:
    seller_id: str = "100200"
    api_key: str = "sandbox-key"
    api_secret: str = "sandbox-secret"
    consumer_key: str = "ck_sandbox"
    consumer_secret: str = "cs_sandbox"
    seed: int = 7
    packages: dict[int, dict[str, Any]] = field(default_factory=dict)
    shop_orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    shop_products: dict[str, int] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.rng = random.Random(self.seed)
        self._package_ids = itertools.count(3_100_000_001)
        self._line_ids = itertools.count(77_000_001)
        self._order_numbers = itertools.count(10_400_000_001)
        self._shop_ids = itertools.count(5001)
        self._note_ids = itertools.count(9001)
        self._meta_ids = itertools.count(1)
        self.shop_products = {
            product.stock_code: 200 + index for index, product in enumerate(generator.CATALOGUE)
        }

    # -- kept across restarts (`python -m sandbox --state FILE`) ---------------------------------------

    COUNTERS: ClassVar[tuple[str, ...]] = (
        "_package_ids",
        "_line_ids",
        "_order_numbers",
        "_shop_ids",
        "_note_ids",
        "_meta_ids",
    )

    def snapshot(self) -> dict[str, Any]:
        """The orders on both sides, the shop's stock and where each id sequence stands: what a restarted
        sandbox needs to answer about the orders the hub already holds (not the faults, not the log)."""
        with self.lock:
            counters = {}
            for name in self.COUNTERS:
                counters[name] = next(getattr(self, name))
                setattr(self, name, itertools.count(counters[name]))  # the peeked id stays the next one
            return {
                "packages": list(self.packages.values()),
                "shop_orders": list(self.shop_orders.values()),
                "shop_products": dict(self.shop_products),
                "counters": counters,
            }

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.packages = {package["shipmentPackageId"]: package for package in state["packages"]}
            self.shop_orders = {order["id"]: order for order in state["shop_orders"]}
            self.shop_products = dict(state["shop_products"])
            for name, value in state["counters"].items():
                if name in self.COUNTERS:
                    setattr(self, name, itertools.count(value))

    def save(self, path: Path, last: str = "") -> str:
        """Write the snapshot to `path` unless it is `last` (what was written before), whole or not at
        all (a new file, then renamed over the old); returns what the file holds."""
        text = json.dumps(self.snapshot())
        if text != last:
            part = path.with_name(path.name + ".part")
            part.write_text(text)
            part.replace(path)
        return text

    def load(self, path: Path) -> bool:
        """Take up the snapshot at `path`, if there is one; False when the sandbox starts afresh."""
        if not path.exists():
            return False
        self.restore(json.loads(path.read_text()))
        return True

    # -- marketplace -------------------------------------------------------------------------------

    def create_package(self, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new order package; `spec` may fix lines ([{barcode, quantity}]), status or customer names."""
        spec = spec or {}
        with self.lock:
            person = generator.customer(self.rng)
            if "firstName" in spec:
                person["firstName"] = person["address"]["firstName"] = spec["firstName"]  # type: ignore[index]
            if "lastName" in spec:
                person["lastName"] = person["address"]["lastName"] = spec["lastName"]  # type: ignore[index]
            catalogue = {product.barcode: product for product in generator.CATALOGUE}
            if "lines" in spec:
                chosen = [
                    (catalogue[line["barcode"]], int(line.get("quantity", 1))) for line in spec["lines"]
                ]
            else:
                chosen = generator.lines(self.rng)
            stamp = now_ms()
            lines = [self._line(product, quantity) for product, quantity in chosen]
            package_id = next(self._package_ids)
            package: dict[str, Any] = {
                "shipmentPackageId": package_id,
                "orderNumber": str(next(self._order_numbers)),
                "orderDate": stamp + 3 * 3600 * 1000,  # GMT+3, as Trendyol sends it
                "status": spec.get("status", "Created"),
                "shipmentPackageStatus": spec.get("status", "Created"),
                "cargoTrackingNumber": None,
                "cargoTrackingLink": None,
                "cargoSenderNumber": None,
                "cargoProviderName": None,
                "customerFirstName": person["firstName"],
                "customerLastName": person["lastName"],
                "customerEmail": f"pf+{package_id}@trendyolmail.com",
                "customerId": self.rng.randint(10_000_000, 99_999_999),
                "currencyCode": "TRY",
                "shipmentAddress": dict(person["address"]),  # type: ignore[call-overload]
                "invoiceAddress": dict(person["address"]),  # type: ignore[call-overload]
                "lines": lines,
                "packageHistories": [{"createdDate": stamp, "status": spec.get("status", "Created")}],
                "deliveryAddressType": "Shipment",
                "lastModifiedDate": stamp,
                "createdBy": "order-creation",
                "originPackageIds": None,
                "commercial": False,
                "fastDelivery": False,
            }
            self._price(package)
            self.packages[package_id] = package
            return package

    def _line(self, product: generator.Product, quantity: int) -> dict[str, Any]:
        gross = product.price * quantity
        return {
            "lineId": next(self._line_ids),
            "quantity": quantity,
            "barcode": product.barcode,
            "stockCode": product.stock_code,
            "contentId": int(product.barcode[-6:]),
            "productName": product.name,
            "productColor": product.color,
            "productSize": product.size,
            "productOrigin": "TR",
            "lineGrossAmount": money(gross),
            "lineSellerDiscount": 0,
            "lineTyDiscount": 0,
            "lineUnitPrice": money(product.price),
            "vatRate": product.vat_rate,
            "currencyCode": "TRY",
            "orderLineItemStatusName": "Created",
        }

    def _price(self, package: dict[str, Any]) -> None:
        goods = sum((Decimal(str(line["lineGrossAmount"])) for line in package["lines"]), Decimal(0))
        fee = generator.CARGO_FEE if goods and goods < generator.FREE_SHIPPING_FROM else Decimal(0)
        package["packageGrossAmount"] = money(goods)
        package["packageSellerDiscount"] = 0
        package["packageTyDiscount"] = 0
        package["packageTotalPrice"] = money(goods + fee)

    def set_status(self, package: dict[str, Any], status: str) -> None:
        stamp = now_ms()
        package["status"] = package["shipmentPackageStatus"] = status
        package["packageHistories"].append({"createdDate": stamp, "status": status})
        package["lastModifiedDate"] = stamp
        for line in package["lines"]:
            line["orderLineItemStatusName"] = status
        if status == "Shipped" and not package["cargoTrackingNumber"]:
            prefix, carrier = self.rng.choice(generator.CARRIERS)
            number = f"{prefix}{self.rng.randint(10**9, 10**10 - 1)}"
            package["cargoTrackingNumber"] = int(number)
            if not package.get("cargoSenderNumber"):  # else the seller's own carrier took it, as told
                package["cargoProviderName"] = carrier
                package["cargoSenderNumber"] = str(self.rng.randint(10**11, 10**12 - 1))
            package["cargoTrackingLink"] = (
                f"https://kargotakip.trendyol.com/?token={package['shipmentPackageId']}"
            )

    def cancel_lines(self, package: dict[str, Any], line_ids: set[int]) -> dict[str, Any] | None:
        """Trendyol's line cancellation: the cancelled lines stay on the old package, now Cancelled; the
        rest move to a new package id (createdBy "cancel"). Returns the new package, if any."""
        keep = [line for line in package["lines"] if line["lineId"] not in line_ids]
        gone = [line for line in package["lines"] if line["lineId"] in line_ids]
        successor = None
        if keep:
            successor = {
                **package,
                "shipmentPackageId": next(self._package_ids),
                "lines": keep,
                "packageHistories": list(package["packageHistories"]),
                "createdBy": "cancel",
                "originPackageIds": [package["shipmentPackageId"]],
                "lastModifiedDate": now_ms(),
            }
            self._price(successor)
            self.packages[successor["shipmentPackageId"]] = successor
        package["lines"] = gone
        self._price(package)
        self.set_status(package, "Cancelled")
        return successor

    def advance(self) -> None:
        """One step of life: new orders arrive elsewhere; here packages ship, arrive, some get cancelled."""
        with self.lock:
            stamp = now_ms()
            for package in list(self.packages.values()):
                status = package["status"]
                age = (stamp - package["lastModifiedDate"]) / 1000
                roll = self.rng.random()
                if status == "Created" and roll < 0.05:
                    self.set_status(package, "Cancelled")
                elif status in ("Created", "Picking", "Invoiced") and age > 4 and roll < 0.4:
                    self.set_status(package, "Shipped")
                elif status == "Shipped" and age > 4 and roll < 0.4:
                    self.set_status(package, "UnDelivered" if roll < 0.03 else "Delivered")
            for order in self.shop_orders.values():
                if order["status"] == "processing" and self.rng.random() < 0.02:
                    self.set_shop_status(order, "on-hold")

    def listing(
        self,
        start: int,
        end: int,
        statuses: set[str],
        page: int,
        size: int,
        ids: set[int] | None = None,
        newest_first: bool = True,
    ) -> dict[str, Any]:
        with self.lock:
            matching = sorted(
                (
                    package
                    for package in self.packages.values()
                    if (
                        package["shipmentPackageId"] in ids
                        if ids
                        else start <= package["lastModifiedDate"] <= end
                    )
                    and (not statuses or package["status"] in statuses)
                ),
                key=lambda package: (package["lastModifiedDate"], package["shipmentPackageId"]),
                reverse=newest_first,
            )
            content = matching[page * size : (page + 1) * size]
            if page > 0 and self.rng.random() < self.faults.duplicate_rate:
                # A page that shifted while the client paged: the tail of the page before, again.
                content = matching[max(0, page * size - 3) : page * size] + content
            return {
                "page": page,
                "size": size,
                "totalPages": max(1, -(-len(matching) // size)),
                "totalElements": len(matching),
                "content": [_public(package) for package in content],
            }

    # -- shop --------------------------------------------------------------------------------------

    def create_shop_order(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            items = []
            for index, item in enumerate(body.get("line_items") or []):
                sku = str(item.get("sku") or "")
                if sku not in self.shop_products:
                    raise LookupError(sku)
                quantity = int(item.get("quantity", 1))
                total = Decimal(str(item.get("total") or "0"))
                meta = {entry["key"]: entry["value"] for entry in item.get("meta_data") or []}
                tax = Decimal(str(meta.get("hub_vat_amount", "0")))
                items.append(
                    {
                        "id": 100 + index,
                        "name": item.get("name") or sku,
                        "product_id": self.shop_products[sku],
                        "sku": sku,
                        "quantity": quantity,
                        "subtotal": str(total),
                        "total": str(total),
                        "total_tax": str(tax),
                        "price": money(total / quantity) if quantity else 0,
                    }
                )
            shipping = []
            for index, line in enumerate(body.get("shipping_lines") or []):
                shipping.append(
                    {
                        "id": 500 + index,
                        "method_id": line.get("method_id", "flat_rate"),
                        "method_title": line.get("method_title", ""),
                        "total": line.get("total", "0.00"),
                        "total_tax": line.get("total_tax", "0.00"),
                        "meta_data": self._meta(line.get("meta_data") or []),
                    }
                )
            stamp = now_ms()
            order_id = next(self._shop_ids)
            order = {
                "id": order_id,
                "number": str(order_id),
                "status": body.get("status") or ("processing" if body.get("set_paid") else "pending"),
                "currency": body.get("currency", "TRY"),
                "date_created_gmt": woo_time(stamp),
                "date_modified_gmt": woo_time(stamp),
                "_modified_ms": stamp,
                "payment_method": body.get("payment_method", ""),
                "payment_method_title": body.get("payment_method_title", ""),
                "billing": body.get("billing") or {},
                "shipping": body.get("shipping") or {},
                "customer_note": body.get("customer_note", ""),
                "line_items": items,
                "shipping_lines": shipping,
                "meta_data": self._meta(body.get("meta_data") or []),
                "notes": [],
            }
            order["total"] = str(
                sum(Decimal(item["total"]) + Decimal(item["total_tax"]) for item in items)
                + sum(Decimal(line["total"]) + Decimal(line["total_tax"]) for line in shipping)
            )
            self.shop_orders[order_id] = order
            return order

    def _meta(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"id": next(self._meta_ids), "key": entry["key"], "value": entry["value"]} for entry in entries
        ]

    def update_shop_order(self, order: dict[str, Any], body: dict[str, Any]) -> None:
        with self.lock:
            if "status" in body:
                self.set_shop_status(order, body["status"])
            for entry in body.get("meta_data") or []:
                existing = next((meta for meta in order["meta_data"] if meta["key"] == entry["key"]), None)
                if existing is None:
                    order["meta_data"].extend(self._meta([entry]))
                else:
                    existing["value"] = entry["value"]
            self.touch(order)

    def set_shop_status(self, order: dict[str, Any], status: str) -> None:
        if status not in WOO_STATUSES:
            raise ValueError(status)
        order["status"] = status
        self.touch(order)

    def add_note(self, order: dict[str, Any], note: str, customer_note: bool) -> dict[str, Any]:
        with self.lock:
            entry = {
                "id": next(self._note_ids),
                "author": "WooCommerce",
                "date_created_gmt": woo_time(now_ms()),
                "note": note,
                "customer_note": customer_note,
            }
            order["notes"].append(entry)
            self.touch(order)
            return entry

    def touch(self, order: dict[str, Any]) -> None:
        stamp = max(now_ms(), order["_modified_ms"] + 1)
        order["_modified_ms"] = stamp
        order["date_modified_gmt"] = woo_time(stamp)


def _public(package: dict[str, Any]) -> dict[str, Any]:
    return {**package, "lines": [dict(line) for line in package["lines"]]}


def shop_public(order: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in order.items() if not key.startswith("_") and key != "notes"}
