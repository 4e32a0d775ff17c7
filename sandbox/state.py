"""The sandbox's world: Trendyol packages and WooCommerce orders, kept as the JSON each API returns.

One lock guards it all; the sandbox is a test double, not a database.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, ClassVar

from sandbox import generator
from sandbox.amazon import AmazonMarket
from sandbox.ciceksepeti import CiceksepetiMarket
from sandbox.hepsiburada import HepsiburadaMarket
from sandbox.hooks import Hooks
from sandbox.ideasoft import IdeasoftShop
from sandbox.n11 import N11Market
from sandbox.pazarama import PazaramaMarket
from sandbox.shopify import ShopifyShop
from sandbox.ticimax import TicimaxShop
from sandbox.tsoft import TsoftShop
from sandbox.webhooks import WebhookSender

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
# WooCommerce's own order statuses and names; a store may have more (a plugin's): `World.shop_statuses`.
WOO_STATUS_NAMES = {
    "pending": "Pending payment",
    "processing": "Processing",
    "on-hold": "On hold",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "refunded": "Refunded",
    "failed": "Failed",
    "checkout-draft": "Draft",
}

# The shop's tax classes and KDV rates, as a Turkish store keeps them: 20 % at the standard class, 10 % at
# WooCommerce's "Reduced rate", 1 % at a class of its own, 0 % (exempt) at WooCommerce's "Zero rate". The
# order of the classes matters: shipping that inherits its class takes the first one an item has.
TAX_CLASSES = (("reduced-rate", "Reduced rate"), ("kdv-1", "KDV %1"), ("zero-rate", "Zero rate"))
KDV_RATES = (("standard", 20), ("reduced-rate", 10), ("kdv-1", 1), ("zero-rate", 0))
# The class each catalogue product has in the shop, by its VAT rate ("" is the standard class in an order).
TAX_CLASS_BY_VAT = {20: "", 10: "reduced-rate", 1: "kdv-1", 0: "zero-rate"}
BASE_COUNTRY = "TR"  # the store's address: taxes go by it when an order has no address
CENT = Decimal("0.01")
TAX_PRECISION = Decimal("0.000001")  # wc_get_rounding_precision(): a rate's tax is kept to six decimals
ITEM_KINDS = ("line_items", "shipping_lines", "fee_lines")
# An update that names any of these makes WooCommerce calculate the order's totals again.
RECALCULATING = ("billing", "shipping", "line_items", "shipping_lines", "fee_lines", "coupon_lines")
NULLING_KEYS = ("product_id", "method_id", "method_title", "name", "code")  # null removes the item
# What WooCommerce's REST answer rounds to the store's decimals (wc_format_decimal with `dp`).
ORDER_AMOUNTS = (
    "discount_total",
    "discount_tax",
    "shipping_total",
    "shipping_tax",
    "cart_tax",
    "total",
    "total_tax",
)
ITEM_AMOUNTS = ("subtotal", "subtotal_tax", "total", "total_tax", "tax_total", "shipping_tax_total")


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
    # What a package Trendyol cancelled lines of lists afterwards; its docs do not say, so the hub must
    # read the cancellation from the new package. "cancelled": the cancelled lines and units only; "all":
    # every line as it was before; "none": no lines.
    cancelled_package_lists: str = "cancelled"
    # Webhooks (sandbox/webhooks.py): shares of deliveries lost, sent twice, or followed by a forged copy,
    # and how long one may be held back at random (so they arrive out of order).
    webhook_drop_rate: float = 0.0
    webhook_duplicate_rate: float = 0.0
    webhook_forged_rate: float = 0.0
    webhook_delay_ms: int = 0

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"cancelled_package_lists": ("cancelled", "all", "none")}

    def update(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if not hasattr(self, name):
                raise KeyError(name)
            value = type(getattr(self, name))(value)
            if value not in self.CHOICES.get(name, (value,)):
                raise ValueError(f"{name} is one of {', '.join(self.CHOICES[name])}")
            setattr(self, name, value)


def _kdv_classes() -> list[dict[str, str]]:
    return [{"slug": slug, "name": name} for slug, name in TAX_CLASSES]


def _kdv_rates() -> list[dict[str, Any]]:
    return [
        _rate(index + 1, {"country": "TR", "rate": percent, "name": f"KDV %{percent}", "class": slug}, index)
        for index, (slug, percent) in enumerate(KDV_RATES)
    ]


def _rate(rate_id: int, entry: dict[str, Any], order: int) -> dict[str, Any]:
    """A tax rate as GET /taxes answers it, from {country, rate, name, class, shipping, priority}."""
    unknown = set(entry) - {"country", "rate", "name", "class", "shipping", "priority"}
    if unknown:
        raise KeyError(", ".join(sorted(unknown)))  # compound rates, states and postcodes are not played
    try:
        percent = Decimal(str(entry["rate"]))
    except ArithmeticError:
        raise ValueError(f"rate {entry['rate']!r} is not a percentage") from None
    if not 0 <= percent <= 100:
        raise ValueError(f"rate {entry['rate']!r} is not a percentage")
    return {
        "id": rate_id,
        "country": str(entry.get("country", "")).upper(),
        "state": "",
        "postcode": "",
        "city": "",
        "postcodes": [],
        "cities": [],
        "rate": f"{percent:.4f}",
        "name": str(entry.get("name", "")),
        "priority": int(entry.get("priority", 1)),
        "compound": False,
        "shipping": bool(entry.get("shipping", True)),
        "order": order,
        "class": str(entry.get("class", "standard")),
    }


@dataclass
class TaxSettings:
    """The store's tax settings (WooCommerce → Settings → Tax) and its rates; a Turkish store's by default."""

    enabled: bool = True  # woocommerce_calc_taxes
    # woocommerce_prices_include_tax: how the catalogue's prices are entered, and what an order says; an
    # order's line totals are before tax all the same.
    prices_include_tax: bool = True
    round_at_subtotal: bool = False  # woocommerce_tax_round_at_subtotal: off, each line's tax is rounded
    # woocommerce_shipping_tax_class: "inherit" (from the items, WooCommerce's default), "standard" or a slug.
    shipping_class: str = "inherit"
    classes: list[dict[str, str]] = field(default_factory=_kdv_classes)  # {slug, name}, beside the standard
    rates: list[dict[str, Any]] = field(default_factory=_kdv_rates)  # as GET /taxes answers them

    FLAGS: ClassVar[tuple[str, ...]] = ("enabled", "prices_include_tax", "round_at_subtotal")

    def slugs(self) -> list[str]:
        return ["standard", *(entry["slug"] for entry in self.classes)]

    def rates_for(self, tax_class: str, country: str, shipping: bool = False) -> list[dict[str, Any]]:
        """WC_Tax::find_rates(): the class's rates for the country or for every country, the most specific
        of each priority; for shipping, only the rates that apply to shipping."""
        slug = tax_class or "standard"
        matching = sorted(
            (
                rate
                for rate in self.rates
                if rate["class"] == slug
                and rate["country"] in (country, "")
                and (rate["shipping"] or not shipping)
            ),
            key=lambda rate: (rate["priority"], rate["country"] == "", rate["order"]),
        )
        first: dict[int, dict[str, Any]] = {}
        for rate in matching:
            first.setdefault(rate["priority"], rate)
        return list(first.values())

    def update(self, values: dict[str, Any]) -> None:
        """Set what `values` names, all or nothing: the three flags, `shipping_class`, `classes`
        ([{slug, name}]) and `rates` ([{country, rate, name, class, shipping, priority}], replacing all)."""
        draft = copy.deepcopy(self)
        for name, value in values.items():
            if name in self.FLAGS:
                if not isinstance(value, bool):
                    raise ValueError(f"{name} is true or false")
                setattr(draft, name, value)
            elif name == "shipping_class":
                draft.shipping_class = str(value)
            elif name == "classes":
                draft.classes = [{"slug": str(entry["slug"]), "name": str(entry["name"])} for entry in value]
            elif name == "rates":
                draft.rates = [_rate(index + 1, entry, index) for index, entry in enumerate(value)]
            else:
                raise KeyError(name)
        slugs = draft.slugs()
        for rate in draft.rates:
            if rate["class"] not in slugs:
                raise ValueError(f"no tax class {rate['class']!r}")
        if draft.shipping_class not in ("inherit", *slugs):
            raise ValueError(f"no tax class {draft.shipping_class!r}")
        vars(self).update(vars(draft))


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
    taxes: TaxSettings = field(default_factory=TaxSettings)  # the shop's, like the faults not kept on restart
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    n11: N11Market = field(default_factory=N11Market)  # N11's side (sandbox/n11.py)
    hepsiburada: HepsiburadaMarket = field(default_factory=HepsiburadaMarket)  # sandbox/hepsiburada.py
    amazon: AmazonMarket = field(default_factory=AmazonMarket)  # sandbox/amazon.py
    shopify: ShopifyShop = field(default_factory=ShopifyShop)  # sandbox/shopify.py
    tsoft: TsoftShop = field(default_factory=TsoftShop)  # sandbox/tsoft.py
    ciceksepeti: CiceksepetiMarket = field(default_factory=CiceksepetiMarket)  # sandbox/ciceksepeti.py
    pazarama: PazaramaMarket = field(default_factory=PazaramaMarket)  # sandbox/pazarama.py
    ticimax: TicimaxShop = field(default_factory=TicimaxShop)  # sandbox/ticimax.py
    ideasoft: IdeasoftShop = field(default_factory=IdeasoftShop)  # sandbox/ideasoft.py
    hooks: Hooks = field(default_factory=Hooks)  # Trendyol's and WooCommerce's webhooks (sandbox/hooks.py)
    # The shop's order statuses (slug → name): WooCommerce's, and any a test adds as a plugin would.
    shop_statuses: dict[str, str] = field(default_factory=lambda: dict(WOO_STATUS_NAMES))

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.rng = random.Random(self.seed)
        self.webhooks = WebhookSender(self.faults)  # the platforms' webhooks go out through it
        self.shopify.webhooks = self.webhooks
        self.hepsiburada.webhooks = self.webhooks
        self.hooks.sender = self.webhooks
        self._package_ids = itertools.count(3_100_000_001)
        self._line_ids = itertools.count(77_000_001)
        self._order_numbers = itertools.count(10_400_000_001)
        self._shop_ids = itertools.count(5001)
        self._note_ids = itertools.count(9001)
        self._meta_ids = itertools.count(1)
        # Order items of every kind (lines, shipping, fees, taxes) share one sequence, as in WooCommerce.
        self._item_ids = itertools.count(101)
        self.shop_products = {
            product.stock_code: 200 + index for index, product in enumerate(generator.CATALOGUE)
        }
        self.product_tax_classes = {
            product.stock_code: TAX_CLASS_BY_VAT[product.vat_rate] for product in generator.CATALOGUE
        }

    # -- kept across restarts (`python -m sandbox --state FILE`) ---------------------------------------

    COUNTERS: ClassVar[tuple[str, ...]] = (
        "_package_ids",
        "_line_ids",
        "_order_numbers",
        "_shop_ids",
        "_note_ids",
        "_meta_ids",
        "_item_ids",
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
                "n11": self.n11.snapshot(),
                "hepsiburada": self.hepsiburada.snapshot(),
                "amazon": self.amazon.snapshot(),
                "shopify": self.shopify.snapshot(),
                "tsoft": self.tsoft.snapshot(),
                "ciceksepeti": self.ciceksepeti.snapshot(),
                "pazarama": self.pazarama.snapshot(),
                "ticimax": self.ticimax.snapshot(),
                "ideasoft": self.ideasoft.snapshot(),
                "hooks": self.hooks.snapshot(),
            }

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.packages = {package["shipmentPackageId"]: package for package in state["packages"]}
            self.shop_orders = {order["id"]: order for order in state["shop_orders"]}
            self.shop_products = dict(state["shop_products"])
            for name, value in state["counters"].items():
                if name in self.COUNTERS:
                    setattr(self, name, itertools.count(value))
            # A state file from before a marketplace was played has none of it.
            if "n11" in state:
                self.n11.restore(state["n11"])
            if "hepsiburada" in state:
                self.hepsiburada.restore(state["hepsiburada"])
            if "amazon" in state:
                self.amazon.restore(state["amazon"])
            if "shopify" in state:
                self.shopify.restore(state["shopify"])
            if "tsoft" in state:
                self.tsoft.restore(state["tsoft"])
            for name in ("ciceksepeti", "pazarama", "ticimax", "ideasoft"):
                if name in state:
                    getattr(self, name).restore(state[name])
            if "hooks" in state:
                self.hooks.restore(state["hooks"])

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
            self.hooks.push_package(package)
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
        self.hooks.push_package(package)

    def cancel_lines(
        self, package: dict[str, Any], line_ids: set[int], quantities: Mapping[int, int] | None = None
    ) -> dict[str, Any] | None:
        """Trendyol's line cancellation: the cancelled units stay on the old package, now Cancelled; the
        rest move to a new package id (createdBy "cancel"). `quantities` says how many units of a line are
        cancelled (default: all of them); a line cancelled in part is on both packages under its lineId,
        the rest on the new one. What the old package lists afterwards is a fault knob, since Trendyol's
        documentation does not say (`cancelled_package_lists`). Returns the new package, if any."""
        quantities = quantities or {}
        before = [dict(line) for line in package["lines"]]
        keep, gone = [], []
        for line in package["lines"]:
            if line["lineId"] not in line_ids:
                keep.append(line)
                continue
            cancelled = quantities.get(line["lineId"], line["quantity"])
            if cancelled < line["quantity"]:
                keep.append(_with_quantity(line, line["quantity"] - cancelled))
            gone.append(_with_quantity(line, cancelled))
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
            self.hooks.push_package(successor)
        package["lines"] = gone
        self._price(package)  # the cancelled package's totals are those of what was cancelled
        package["lines"] = {"cancelled": gone, "all": before, "none": []}[self.faults.cancelled_package_lists]
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
        order_number: str = "",
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
                    and (not order_number or package["orderNumber"] == order_number)
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
        """POST /orders as WooCommerce takes it (WC_REST_Orders_V2_Controller::save_object): the items,
        products by SKU, then calculate_totals(): taxes and totals are the store's own, whatever the client
        sent for them. Raises `Refused` for what WooCommerce turns down, and stores nothing then."""
        with self.lock:
            status = body.get("status") or ("processing" if body.get("set_paid") else "pending")
            if status not in self.shop_statuses:
                raise Refused("rest_invalid_param", "Invalid parameter(s): status")
            order: dict[str, Any] = {
                "status": status,
                "currency": body.get("currency", "TRY"),
                "prices_include_tax": self.taxes.prices_include_tax,
                "payment_method": body.get("payment_method", ""),
                "payment_method_title": body.get("payment_method_title", ""),
                "billing": body.get("billing") or {},
                "shipping": body.get("shipping") or {},
                "customer_note": body.get("customer_note", ""),
                "line_items": [],
                "shipping_lines": [],
                "fee_lines": [],
                "tax_lines": [],
                "meta_data": [],
                "notes": [],
            }
            self._set_items(order, body)
            self._update_meta(order["meta_data"], body.get("meta_data"))
            self._calculate_totals(order)
            stamp = now_ms()
            order_id = next(self._shop_ids)
            order.update(
                id=order_id,
                number=str(order_id),
                date_created_gmt=woo_time(stamp),
                date_modified_gmt=woo_time(stamp),
                _modified_ms=stamp,
                _created_ms=stamp,  # to the millisecond, for the latency bench (WooCommerce keeps seconds)
            )
            self.shop_orders[order_id] = order
            self.hooks.push_order(shop_public(order), "created")
            return order

    def update_shop_order(self, order: dict[str, Any], body: dict[str, Any]) -> None:
        """PUT /orders/{id}: addresses, items, meta and status, all or nothing; the totals are calculated
        again when items or addresses came along, as WooCommerce does, and only then."""
        with self.lock:
            draft = copy.deepcopy(order)
            if "status" in body:
                self.set_shop_status(draft, body["status"])
            for kind in ("billing", "shipping"):
                if isinstance(body.get(kind), dict):
                    draft[kind].update(body[kind])
            self._set_items(draft, body)
            if any(key in body for key in RECALCULATING):
                self._calculate_totals(draft)
            self._update_meta(draft["meta_data"], body.get("meta_data"))
            order.clear()
            order.update(draft)
            self.touch(order)
            self.hooks.push_order(shop_public(order), "updated")

    def _update_meta(self, entries: list[dict[str, Any]], posted: list[dict[str, Any]] | None) -> None:
        """WooCommerce's update_meta_data(): a key already there takes the new value, a new key is added."""
        for entry in posted or []:
            existing = next((meta for meta in entries if meta["key"] == entry["key"]), None)
            if existing is None:
                entries.append({"id": next(self._meta_ids), "key": entry["key"], "value": entry.get("value")})
            else:
                existing["value"] = entry.get("value")

    def _set_items(self, order: dict[str, Any], body: dict[str, Any]) -> None:
        """WooCommerce's set_item() for each item the body lists: one with an id is changed (or removed, by a
        null name or method, or a quantity of 0), one without is added."""
        for kind, prepare in (
            ("line_items", self._line_item),
            ("shipping_lines", self._shipping_line),
            ("fee_lines", self._fee_line),
        ):
            items = order.setdefault(kind, [])
            for posted in body.get(kind) or []:
                item = next((item for item in items if posted.get("id") and item["id"] == posted["id"]), None)
                if posted.get("quantity") == 0 or any(
                    key in posted and posted[key] is None for key in NULLING_KEYS
                ):
                    if item is not None:
                        items.remove(item)
                elif not posted.get("id"):
                    items.append(prepare(posted, None))
                elif item is None:
                    raise Refused(
                        "woocommerce_rest_invalid_item_id",
                        "Order item ID provided is not associated with order.",
                    )
                else:
                    prepare(posted, item)

    def _line_item(self, posted: dict[str, Any], item: dict[str, Any] | None) -> dict[str, Any]:
        if item is None:
            sku = str(posted.get("sku") or "")
            if sku not in self.shop_products:
                raise Refused("woocommerce_rest_invalid_product_id", f"No product with SKU {sku}.")
            item = {
                "id": next(self._item_ids),
                "name": sku,
                "product_id": self.shop_products[sku],
                "variation_id": 0,
                "quantity": 1,
                "tax_class": self.product_tax_classes.get(sku, ""),  # unless the client names one
                "subtotal": _amount(posted.get("subtotal", posted.get("total", "0")), "subtotal"),
                "total": "0",
                "sku": sku,
                "meta_data": [],
            }
        if "name" in posted:
            item["name"] = str(posted["name"])
        if "quantity" in posted:
            item["quantity"] = _quantity(posted["quantity"])
        for prop in ("subtotal", "total"):
            if prop in posted:
                item[prop] = _amount(posted[prop], prop)
        if "tax_class" in posted:
            item["tax_class"] = self._tax_class(posted["tax_class"], "order_item_product_invalid_tax_class")
        self._update_meta(item["meta_data"], posted.get("meta_data"))
        return item

    def _shipping_line(self, posted: dict[str, Any], item: dict[str, Any] | None) -> dict[str, Any]:
        if item is None:
            if not posted.get("method_id"):
                raise Refused("woocommerce_rest_invalid_shipping_item", "Shipping method ID is required.")
            item = {"id": next(self._item_ids), "method_title": "", "total": "0", "meta_data": []}
        for prop in ("method_id", "method_title"):
            if prop in posted:
                item[prop] = str(posted[prop])
        if "total" in posted:
            item["total"] = _amount(posted["total"], "total")
        self._update_meta(item["meta_data"], posted.get("meta_data"))
        return item

    def _fee_line(self, posted: dict[str, Any], item: dict[str, Any] | None) -> dict[str, Any]:
        if item is None:
            if not posted.get("name"):
                raise Refused("woocommerce_rest_invalid_fee_item", "Fee name is required.")
            # WooCommerce's defaults for a fee: taxable, at the standard class.
            item = {
                "id": next(self._item_ids),
                "tax_class": "",
                "tax_status": "taxable",
                "total": "0",
                "meta_data": [],
            }
        if "name" in posted:
            item["name"] = str(posted["name"])
        if "total" in posted:
            item["total"] = _amount(posted["total"], "total")
        if "tax_status" in posted:
            if posted["tax_status"] not in ("taxable", "none"):
                raise Refused("rest_invalid_param", "Invalid parameter(s): fee_lines")
            item["tax_status"] = posted["tax_status"]
        if "tax_class" in posted:
            item["tax_class"] = self._tax_class(posted["tax_class"], "order_item_fee_invalid_tax_class")
        self._update_meta(item["meta_data"], posted.get("meta_data"))
        return item

    def _tax_class(self, value: Any, code: str) -> str:
        """An item's tax class as WooCommerce's set_tax_class() takes it: "" is the standard class, anything
        else must be one of the store's other classes ("standard" itself is refused)."""
        if value and value not in self.taxes.slugs()[1:]:
            raise Refused(code, "Invalid tax class")
        return str(value or "")

    def _calculate_totals(self, order: dict[str, Any]) -> None:
        """WooCommerce's calculate_totals(): each line's and fee's tax at its class's rates for the customer's
        country, shipping at the shipping tax class, each rate's tax kept to six decimals and rounded to the
        cent per line, or only in the total when the store rounds at subtotal; the totals from those."""
        taxes = self.taxes
        country = order["shipping"].get("country") or order["billing"].get("country") or BASE_COUNTRY
        per_line = not taxes.round_at_subtotal
        cart: dict[int, Decimal] = {}
        for item in order["line_items"] + order["fee_lines"]:
            taxable = taxes.enabled and item.get("tax_status", "taxable") == "taxable"
            rates = taxes.rates_for(item.get("tax_class", ""), country) if taxable else []
            _add(cart, _set_taxes(item, rates, per_line))
        shipping: dict[int, Decimal] = {}
        shipping_class = self._shipping_class(order)
        for item in order["shipping_lines"]:
            taxable = taxes.enabled and shipping_class is not None
            rates = taxes.rates_for(shipping_class or "", country, shipping=True) if taxable else []
            _add(shipping, _set_taxes(item, rates, per_line))
        goods = sum((_round(Decimal(item["total"]), per_line) for item in order["line_items"]), Decimal(0))
        carriage = sum((_cent(Decimal(line["total"])) for line in order["shipping_lines"]), Decimal(0))
        fees = sum((Decimal(fee["total"]) for fee in order["fee_lines"]), Decimal(0))
        cart_tax, shipping_tax = sum(cart.values(), Decimal(0)), sum(shipping.values(), Decimal(0))
        order.update(
            discount_total="0",
            discount_tax="0",
            shipping_total=str(carriage),
            shipping_tax=str(shipping_tax),
            cart_tax=str(cart_tax),
            total_tax=str(_cent(cart_tax + shipping_tax)),
            total=str(_cent(goods + fees + carriage + cart_tax + shipping_tax)),
            tax_lines=self._tax_lines(order.get("tax_lines", []), cart, shipping),
        )

    def _shipping_class(self, order: dict[str, Any]) -> str | None:
        """The class shipping is taxed at: the store's setting, or with "inherit" the first class of the
        store's list (standard first) that an item has; an order without items inherits the standard."""
        setting = self.taxes.shipping_class
        if setting != "inherit":
            return setting
        if not order["line_items"]:
            return "standard"
        found = {item.get("tax_class") or "standard" for item in order["line_items"]}
        return next((slug for slug in self.taxes.slugs() if slug in found), None)

    def _tax_lines(
        self, existing: list[dict[str, Any]], cart: dict[int, Decimal], shipping: dict[int, Decimal]
    ) -> list[dict[str, Any]]:
        """One tax line per rate the order was taxed at (WooCommerce's update_taxes()), keeping its id."""
        kept = {line["rate_id"]: line for line in existing}
        lines = []
        for rate in self.taxes.rates:
            if rate["id"] not in cart and rate["id"] not in shipping:
                continue
            line = kept.get(rate["id"]) or {"id": next(self._item_ids)}
            line.update(
                rate_code=rate_code(rate),
                rate_id=rate["id"],
                label=rate["name"],
                compound=False,
                tax_total=str(cart.get(rate["id"], Decimal(0))),
                shipping_tax_total=str(shipping.get(rate["id"], Decimal(0))),
                rate_percent=float(rate["rate"]),
                meta_data=[],
            )
            lines.append(line)
        return lines

    def set_shop_status(self, order: dict[str, Any], status: str) -> None:
        if status not in self.shop_statuses:
            raise Refused("rest_invalid_param", "Invalid parameter(s): status")
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


class Refused(Exception):
    """What WooCommerce turns down with a 400 (a WP_Error): its code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def rate_code(rate: dict[str, Any]) -> str:
    """WC_Tax::get_rate_code(): country, state, name and priority, e.g. "TR-KDV %20-1"."""
    parts = (rate["country"], rate["state"], rate["name"] or "TAX", str(rate["priority"] or 1))
    return "-".join(part for part in parts if part).upper()


def _set_taxes(item: dict[str, Any], rates: list[dict[str, Any]], per_line: bool) -> dict[int, Decimal]:
    """An item's taxes as WooCommerce's calculate_taxes() sets them: each rate's tax on the unrounded amount,
    kept to six decimals; the item's tax rounded to the cent unless the store rounds at subtotal. Returns
    what the item adds to the order's taxes, by rate id."""
    totals = _taxed(Decimal(item["total"]), rates)
    subtotals = _taxed(Decimal(item["subtotal"]), rates) if "subtotal" in item else {}
    item["taxes"] = [
        {"id": rate_id, "total": str(tax), "subtotal": str(subtotals.get(rate_id, ""))}
        for rate_id, tax in totals.items()
    ]
    item["total_tax"] = str(sum((_round(tax, per_line) for tax in totals.values()), Decimal(0)))
    if "subtotal" in item:
        item["subtotal_tax"] = str(sum((_round(tax, per_line) for tax in subtotals.values()), Decimal(0)))
    return {rate_id: _round(tax, per_line) for rate_id, tax in totals.items()}


def _taxed(amount: Decimal, rates: list[dict[str, Any]]) -> dict[int, Decimal]:
    return {
        rate["id"]: (amount * Decimal(rate["rate"]) / 100).quantize(TAX_PRECISION, rounding=ROUND_HALF_UP)
        for rate in rates
    }


def _add(into: dict[int, Decimal], taxes: dict[int, Decimal]) -> None:
    for rate_id, tax in taxes.items():
        into[rate_id] = into.get(rate_id, Decimal(0)) + tax


def _cent(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _round(value: Decimal, per_line: bool) -> Decimal:
    """To the cent per line (wc_round_tax_total, round_item_subtotal), or not when rounding at subtotal."""
    return _cent(value) if per_line else value


def _amount(value: Any, name: str) -> str:
    """An amount as the client sent it (WooCommerce keeps line totals unrounded), if it is one."""
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise Refused("rest_invalid_param", f"Invalid parameter(s): {name}") from None
    if not amount.is_finite():
        raise Refused("rest_invalid_param", f"Invalid parameter(s): {name}")
    return str(amount)


def _quantity(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Refused("order_item_product_invalid_quantity", "Quantity must be positive")
    return value


def _with_quantity(line: dict[str, Any], quantity: int) -> dict[str, Any]:
    """A copy of the line for `quantity` units, its gross amount repriced from its unit price."""
    gross = Decimal(str(line["lineUnitPrice"])) * quantity
    return {**line, "quantity": quantity, "lineGrossAmount": money(gross)}


def _public(package: dict[str, Any]) -> dict[str, Any]:
    return {**package, "lines": [dict(line) for line in package["lines"]]}


def shop_public(order: dict[str, Any]) -> dict[str, Any]:
    """The order as WooCommerce's REST API answers it: amounts to the store's two decimals (it keeps them
    unrounded), a line item's price per unit, nothing of the sandbox's own."""
    public = {
        key: _decimals(value) if key in ORDER_AMOUNTS else value
        for key, value in order.items()
        if not key.startswith("_") and key != "notes"
    }
    for kind in (*ITEM_KINDS, "tax_lines"):
        public[kind] = [_item_public(item) for item in order.get(kind, [])]
    return public


def _item_public(item: dict[str, Any]) -> dict[str, Any]:
    public = {key: _decimals(value) if key in ITEM_AMOUNTS else value for key, value in item.items()}
    if "quantity" in item:
        public["price"] = float(Decimal(item["total"]) / item["quantity"])
    return public


def _decimals(value: str) -> str:
    return str(_cent(Decimal(value)))
