"""N11's REST order API in the sandbox, under /n11, in the shapes and rules of the research notes
(marketplace-apis-next.md §2, marketplace-apis.md §2.2): the appKey/appSecret headers (wrong: 403 text/plain
"Authentication failed"), the listing with its parameters and Spring page, the 15-day window cut without a
word, at most 100 a page, one status a request; Picking by the update call with a result per line; a
seller's cancellation (splitPackageByQuantity) only in Picking. Control endpoints under /_control/n11.

Times are kept as N11 writes them, Istanbul wall-clock time in epoch ms (GMT+3), so the window's parameters
and lastModifiedDate compare directly. Where the notes are silent (N11's words for a refusal, the shape of a
split's answer, which end of a long window N11 keeps) the sandbox's choice is named where it is made.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox import generator

if TYPE_CHECKING:
    from sandbox.state import World

PREFIX = "/n11"
REST = f"{PREFIX}/rest"
ISTANBUL_MS = 3 * 3600 * 1000
DAY_MS = 24 * 3600 * 1000
WINDOW_MS = 15 * DAY_MS
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20  # [sandbox] N11's default is not in the notes
STATUSES = ("Created", "Picking", "Shipped", "Delivered", "Cancelled", "Unpacked", "UnSupplied")
CLOSED = ("Cancelled", "Canceled", "Unpacked", "UnSupplied")
SENDERS = ("SELLER", "N11", "ALL")
CANCEL_REASONS = (61, 62, 63, 64, 65)
# N11's contracted carriers, by shipmentCompanyId [sandbox: the ids are the sandbox's own].
CARRIERS = ((1, "Yurtiçi Kargo"), (2, "Aras Kargo"), (3, "MNG Kargo"), (4, "PTT Kargo"), (5, "Sürat Kargo"))
CARGO_FIELDS = ("cargoTrackingNumber", "cargoSenderNumber", "cargoTrackingLink", "cargoProviderName")
CENT = Decimal("0.01")


def n11_now() -> int:
    """Now, as N11 writes a time: Istanbul wall clock in epoch ms."""
    return int(time.time() * 1000) + ISTANBUL_MS


def _money(value: Decimal) -> float:
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


@dataclass
class N11Market:
    """N11's side of the world: the seller's keys and packages (kept by a key of the sandbox's own, since a
    'Konuma Özel Teslimat' package has no id). It has its own lock; nothing holds it while taking another."""

    app_key: str = "n11-sandbox-key"
    app_secret: str = "n11-sandbox-secret"
    seed: int = 11
    packages: dict[int, dict[str, Any]] = field(default_factory=dict)

    COUNTERS = ("_package_ids", "_line_ids", "_order_numbers", "_keys_without_id")

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.rng = random.Random(self.seed)
        self._package_ids = itertools.count(7_300_000_001)
        self._line_ids = itertools.count(426_000_001)
        self._order_numbers = itertools.count(2_611_000_000_001)  # 13 digits, as N11's grow to
        self._keys_without_id = itertools.count(-1, -1)

    # -- kept across restarts, with the rest of the world ------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            counters = {}
            for name in self.COUNTERS:
                counters[name] = next(getattr(self, name))
                step = -1 if name == "_keys_without_id" else 1
                setattr(self, name, itertools.count(counters[name], step))  # the peeked one stays next
            return {"packages": list(self.packages.values()), "counters": counters}

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.packages = {package["_key"]: package for package in state["packages"]}
            for name, value in state["counters"].items():
                if name in self.COUNTERS:
                    setattr(self, name, itertools.count(value, -1 if name == "_keys_without_id" else 1))

    # -- packages ----------------------------------------------------------------------------------

    def create_package(self, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new package: `spec` may fix lines ([{barcode, quantity, sellerDiscount, mallDiscount}], the
        discounts per line in lira), status, fullName, sender ("SELLER" or "N11": from n11depom) and
        noId (a 'Konuma Özel Teslimat' package, which N11 lists with id null)."""
        spec = spec or {}
        with self.lock:
            person = generator.customer(self.rng)
            full_name = str(spec.get("fullName") or f"{person['firstName']} {person['lastName']}")
            catalogue = {product.barcode: product for product in generator.CATALOGUE}
            if "lines" in spec:
                chosen = [
                    (
                        catalogue[line["barcode"]],
                        int(line.get("quantity", 1)),
                        Decimal(str(line.get("sellerDiscount", 0))),
                        Decimal(str(line.get("mallDiscount", 0))),
                    )
                    for line in spec["lines"]
                ]
            else:
                chosen = [(p, q, Decimal(0), Decimal(0)) for p, q in generator.lines(self.rng)]
            status = str(spec.get("status", "Created"))
            sender = str(spec.get("sender", "SELLER"))
            key = next(self._keys_without_id) if spec.get("noId") else next(self._package_ids)
            stamp = n11_now()
            company_id, carrier = self.rng.choice(CARRIERS)
            address = _address(person, full_name)
            package: dict[str, Any] = {
                "_key": key,
                "id": None if spec.get("noId") else key,
                "orderNumber": str(next(self._order_numbers)),
                "shipmentPackageStatus": status,
                "lastModifiedDate": stamp,
                "agreedDeliveryDate": stamp + 3 * DAY_MS,
                "packageHistories": [{"createdDate": stamp, "status": status}],
                "cargoTrackingNumber": None,
                "cargoSenderNumber": None,
                "cargoTrackingLink": None,
                "shipmentCompanyId": company_id,
                "cargoProviderName": carrier,
                "shipmentMethod": 1,
                "micro": False,
                "billingAddress": dict(address),
                "shippingAddress": dict(address),
                "customerEmail": f"musteri{abs(key)}@n11mail.example",
                "customerfullName": full_name,
                "taxId": None,
                "taxOffice": None,
                "lines": [
                    self._line(product, quantity, discount, mall, status, sender)
                    for product, quantity, discount, mall in chosen
                ],
            }
            _total(package)
            if status in ("Picking", "Shipped", "Delivered"):
                package["cargoTrackingNumber"] = self._campaign_code()
            self.packages[key] = package
            return package

    def _line(
        self,
        product: generator.Product,
        quantity: int,
        discount: Decimal,
        mall: Decimal,
        status: str,
        sender: str,
    ) -> dict[str, Any]:
        return {
            "orderLineId": next(self._line_ids),
            "productId": int(product.barcode[-7:]),
            "productName": product.name,
            "stockCode": product.stock_code,
            "barcode": product.barcode,
            "quantity": quantity,
            "price": _money(product.price),
            # [sandbox] both the seller's discount on the line, in lira; mallDiscount is N11's own.
            "sellerDiscount": _money(discount),
            "totalSellerDiscountPrice": _money(discount),
            "mallDiscount": _money(mall),
            "sellerInvoiceAmount": _money(product.price * quantity - discount),
            "vatRate": product.vat_rate,
            "commissionRate": 12.0,
            "orderItemLineItemStatusName": status,
            "sender": sender,
        }

    def _campaign_code(self) -> str:
        return str(self.rng.randint(10**8, 10**9 - 1))

    def advance(self) -> None:
        """One step of the demo's life: accepted packages ship and arrive (the carrier's scans), a few new
        ones are cancelled; a new package waits for the seller to accept it, as on N11."""
        with self.lock:
            now = n11_now()
            for package in list(self.packages.values()):
                status = package["shipmentPackageStatus"]
                age = (now - package["lastModifiedDate"]) / 1000
                roll = self.rng.random()
                if status == "Created" and age > 60 and roll < 0.002:  # now and then a customer cancels
                    self.set_status(package, "Cancelled")
                elif status == "Picking" and age > 4 and roll < 0.4:
                    self.set_status(package, "Shipped")
                elif status == "Shipped" and age > 4 and roll < 0.4:
                    self.set_status(package, "Delivered")

    def by_id(self, package_id: int) -> dict[str, Any] | None:
        package = self.packages.get(package_id)
        return package if package is not None and package["id"] is not None else None

    def set_status(self, package: dict[str, Any], status: str) -> None:
        """N11 moves the package (and its lines); the campaign code comes with Picking, the carrier's
        tracking number (cargoSenderNumber) and link when the carrier scans the parcel (Shipped)."""
        with self.lock:
            stamp = max(n11_now(), package["lastModifiedDate"] + 1)
            package["shipmentPackageStatus"] = status
            package["packageHistories"].append({"createdDate": stamp, "status": status})
            package["lastModifiedDate"] = stamp
            for line in package["lines"]:
                line["orderItemLineItemStatusName"] = status
            if status in ("Picking", "Shipped") and not package["cargoTrackingNumber"]:
                package["cargoTrackingNumber"] = self._campaign_code()
            if status == "Shipped" and not package["cargoSenderNumber"]:
                number = str(self.rng.randint(10**11, 10**12 - 1))
                package["cargoSenderNumber"] = number
                package["cargoTrackingLink"] = f"https://kargo.n11.example/takip/{number}"

    def listing(self, args: dict[str, Any]) -> dict[str, Any]:
        """GET shipmentPackages, its parameters checked already: a Spring page."""
        with self.lock:
            by_change = args["orderByField"]
            when = (
                (lambda p: p["lastModifiedDate"])
                if by_change
                else (lambda p: p["packageHistories"][0]["createdDate"])
            )
            matching = sorted(
                (
                    package
                    for package in self.packages.values()
                    if args["start"] <= when(package) <= args["end"]
                    and (not args["ids"] or package["id"] in args["ids"])
                    and (not args["status"] or package["shipmentPackageStatus"].lower() == args["status"])
                    and (not args["orderNumber"] or package["orderNumber"] == args["orderNumber"])
                    and (args["sender"] == "ALL" or _sender(package) == args["sender"])
                ),
                key=lambda package: (when(package), package["_key"]),
                reverse=args["descending"],
            )
            page, size = args["page"], args["size"]
            content = matching[page * size : (page + 1) * size]
            if page > 0 and args["duplicate"]:
                # A page that shifted while the client paged: the tail of the page before, again.
                content = matching[max(0, page * size - 3) : page * size] + content
            pages = max(1, -(-len(matching) // size))
            return {
                "content": [public(package) for package in content],
                "totalElements": len(matching),
                "totalPages": pages,
                "size": size,
                "number": page,
                "numberOfElements": len(content),
                "first": page == 0,
                "last": page >= pages - 1,
                "empty": not content,
            }

    def accept(self, lines: list[Any]) -> list[dict[str, Any]]:
        """The update call to Picking: a result per line, SUCCESS or FAIL with N11's words ([sandbox]
        wording); a package moves to Picking when all its lines have."""
        with self.lock:
            results, touched = [], {}
            for entry in lines:
                line_id = entry.get("lineId") if isinstance(entry, dict) else None
                found = self._holding(line_id) if isinstance(line_id, int) else None
                if found is None:
                    results.append(
                        {"lineId": line_id, "status": "FAIL", "reasons": "Sipariş kalemi bulunamadı"}
                    )
                    continue
                package, line = found
                if line["orderItemLineItemStatusName"] != "Created":
                    reason = f"Sipariş kalemi {line['orderItemLineItemStatusName']} durumunda, onaylanamaz"
                    results.append({"lineId": line_id, "status": "FAIL", "reasons": reason})
                    continue
                line["orderItemLineItemStatusName"] = "Picking"
                touched[package["_key"]] = package
                results.append({"lineId": line_id, "status": "SUCCESS", "reasons": None})
            for package in touched.values():
                if all(line["orderItemLineItemStatusName"] == "Picking" for line in package["lines"]):
                    self.set_status(package, "Picking")
                else:
                    package["lastModifiedDate"] = max(n11_now(), package["lastModifiedDate"] + 1)
            return results

    def _holding(self, line_id: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The live package holding the line, and the line."""
        for package in self.packages.values():
            if package["shipmentPackageStatus"] in CLOSED:
                continue
            for line in package["lines"]:
                if line["orderLineId"] == line_id:
                    return package, line
        return None

    def cancel(self, items: Any) -> dict[str, Any]:
        """splitPackageByQuantity's cancelled items: the cancelled units stay on the old package, now
        Cancelled; the rest move to a new package id, Picking, under the same orderLineIds ([sandbox]: as
        on Trendyol; N11's notes say only that the old package is cancelled and new ids appear, with no
        link to the old). Raises Refusal, changing nothing, for what N11 turns down."""
        with self.lock:
            if not isinstance(items, list) or not items or not all(isinstance(item, dict) for item in items):
                raise Refusal("cancelledItems boş olamaz")
            package, quantities = None, {}
            for item in items:
                line_id, quantity, reason = (
                    item.get("orderLineId"),
                    item.get("quantity"),
                    item.get("cancelReasonId"),
                )
                found = self._holding(line_id) if isinstance(line_id, int) else None
                if found is None:
                    raise Refusal(f"Sipariş kalemi bulunamadı: {line_id}")
                if package is not None and found[0] is not package:
                    raise Refusal("İptal edilen kalemler aynı pakette olmalı")
                package, line = found
                if reason not in CANCEL_REASONS:
                    raise Refusal(f"Geçersiz iptal nedeni: {reason}")
                if (
                    not isinstance(quantity, int)
                    or isinstance(quantity, bool)
                    or not 1 <= quantity <= line["quantity"]
                ):
                    raise Refusal(f"Kalem {line_id} için miktar 1 ile {line['quantity']} arasında olmalı")
                if line_id in quantities:
                    raise Refusal(f"Kalem {line_id} birden fazla kez verilmiş")
                quantities[line_id] = quantity
            assert package is not None
            if package["shipmentPackageStatus"] != "Picking":
                # N11's rule: a seller cancels only an accepted package; a new one is rejected in the panel.
                raise Refusal(
                    f"Paket {package['shipmentPackageStatus']} durumunda, yalnız Picking iptal edilebilir"
                )
            keep, gone = [], []
            for line in package["lines"]:
                cancelled = quantities.get(line["orderLineId"], 0)
                if cancelled < line["quantity"]:
                    keep.append(_part(line, line["quantity"] - cancelled))
                if cancelled:
                    gone.append(_part(line, cancelled))
            moved = []
            if keep:
                successor = {
                    **package,
                    "_key": (new_id := next(self._package_ids)),
                    "id": new_id,
                    "lines": keep,
                    "packageHistories": [dict(step) for step in package["packageHistories"]],
                    "billingAddress": dict(package["billingAddress"]),
                    "shippingAddress": dict(package["shippingAddress"]),
                    "lastModifiedDate": max(n11_now(), package["lastModifiedDate"] + 1),
                    # A parcel of its own: its own campaign code for the label.
                    "cargoTrackingNumber": self._campaign_code(),
                }
                _total(successor)
                self.packages[new_id] = successor
                moved = [
                    {
                        "orderNumber": successor["orderNumber"],
                        "packageId": str(new_id),
                        "orderLineId": line["orderLineId"],
                        "stockCode": line["stockCode"],
                        "quantity": line["quantity"],
                    }
                    for line in keep
                ]
            package["lines"] = gone
            _total(package)
            self.set_status(package, "Cancelled")
            # [sandbox] the answer's shape, from one 3P client: what went on in which new package.
            return {"code": 200, "message": "İşlem başarılı", "splitPackageOrderItems": moved}


class Refusal(Exception):
    """What N11 turns down with a 400; its message."""


def public(package: dict[str, Any]) -> dict[str, Any]:
    """The package as N11 answers it: nothing of the sandbox's own."""
    shown = {key: value for key, value in package.items() if not key.startswith("_")}
    shown["lines"] = [dict(line) for line in package["lines"]]
    return shown


def _address(person: dict[str, Any], full_name: str) -> dict[str, Any]:
    """N11's address: one fullName, the neighbourhood (mahalle) in a field of its own."""
    source = person["address"]
    street = str(source["address1"]).removeprefix(f"{source['neighborhood']} ")
    return {
        "fullName": full_name,
        "gsm": source["phone"],
        "tcId": "11111111111",
        "city": source["city"],
        "district": source["district"],
        "neighborhood": source["neighborhood"],
        "postalCode": source["postalCode"],
        "address": street,
    }


def _total(package: dict[str, Any]) -> None:
    """[sandbox] totalAmount as what the customer paid (after the seller's and N11's discounts),
    totalDiscountAmount as both discounts: the notes do not say which discounts either counts."""
    discounts = sum(
        (
            Decimal(str(line["totalSellerDiscountPrice"])) + Decimal(str(line["mallDiscount"]))
            for line in package["lines"]
        ),
        Decimal(0),
    )
    gross = sum((Decimal(str(line["price"])) * line["quantity"] for line in package["lines"]), Decimal(0))
    package["totalAmount"] = _money(gross - discounts)
    package["totalDiscountAmount"] = _money(discounts)


def _part(line: dict[str, Any], quantity: int) -> dict[str, Any]:
    """A copy of the line for `quantity` of its units, its discounts shared out by units."""
    share = Decimal(quantity) / line["quantity"]
    discount = (Decimal(str(line["totalSellerDiscountPrice"])) * share).quantize(CENT, rounding=ROUND_HALF_UP)
    mall = (Decimal(str(line["mallDiscount"])) * share).quantize(CENT, rounding=ROUND_HALF_UP)
    return {
        **line,
        "quantity": quantity,
        "sellerDiscount": _money(discount),
        "totalSellerDiscountPrice": _money(discount),
        "mallDiscount": _money(mall),
        "sellerInvoiceAmount": _money(Decimal(str(line["price"])) * quantity - discount),
    }


def _sender(package: dict[str, Any]) -> str:
    return str(package["lines"][0]["sender"]) if package["lines"] else "SELLER"


def register(app: Flask, world: World) -> None:
    """N11's routes and its control endpoints on the sandbox app; the fault knobs reach them through the
    app's own hooks (every path under PREFIX)."""
    market = world.n11

    def authenticated() -> bool:
        headers = request.headers  # case-insensitive, as HTTP header names are
        return headers.get("appKey") == market.app_key and headers.get("appSecret") == market.app_secret

    def refused(message: str, status: int = 400) -> Response:
        """[sandbox] N11's 4xx JSON for a /rest refusal: its shape is not in the notes."""
        response = jsonify({"message": message})
        response.status_code = status
        return response

    @app.get(f"{REST}/delivery/v1/shipmentPackages")
    def n11_packages() -> ResponseReturnValue:
        """The seller's packages in a window of at most 15 days, a Spring page at a time."""
        if not authenticated():
            return auth_failed()
        args = request.args
        try:
            end = int(args["endDate"]) if "endDate" in args else None
            start = int(args["startDate"]) if "startDate" in args else None
            page = int(args.get("page", 0))
            size = int(args.get("size", DEFAULT_PAGE_SIZE))
            ids = {int(value) for value in args.get("packageIds", "").split(",") if value.strip()}
        except ValueError:
            return refused("startDate, endDate, page, size and packageIds are numbers")
        if not 1 <= size <= MAX_PAGE_SIZE or page < 0:
            return refused(f"size must be between 1 and {MAX_PAGE_SIZE}, page from 0")
        status = args.get("status", "").strip().lower()
        if "," in status or (status and status not in {name.lower() for name in (*STATUSES, "Canceled")}):
            return refused("status takes one package status")
        sender = args.get("sender", "SELLER").strip().upper()
        if sender not in SENDERS:
            return refused("sender is SELLER, N11 or ALL")
        # Without dates, the last 15 days; one date alone, 15 days from or up to it. A longer window is cut
        # without a word, as N11 does ([sandbox]: keeping its start).
        if end is None:
            end = start + WINDOW_MS if start is not None else n11_now()
        if start is None:
            start = end - WINDOW_MS
        end = min(end, start + WINDOW_MS)
        return jsonify(
            market.listing(
                {
                    "start": start,
                    "end": end,
                    "page": page,
                    "size": size,
                    "ids": ids,
                    "status": status,
                    "orderNumber": args.get("orderNumber", "").strip(),
                    "sender": sender,
                    "orderByField": args.get("orderByField", "").strip().lower() == "true",
                    "descending": args.get("orderByDirection", "DESC").strip().upper() != "ASC",
                    "duplicate": world.rng.random() < world.faults.duplicate_rate,
                }
            )
        )

    @app.put(f"{REST}/order/v1/update")
    def n11_update() -> ResponseReturnValue:
        """Picking for the lines named: 200 with a result per line, even for a line N11 refuses."""
        if not authenticated():
            return auth_failed()
        body = request.get_json(silent=True) or {}
        if body.get("status") != "Picking":
            return refused("Yalnız Picking statüsü güncellenebilir")
        lines = body.get("lines")
        if not isinstance(lines, list) or not lines:
            return refused("lines boş olamaz")
        return jsonify({"content": market.accept(lines)})

    @app.post(f"{REST}/delivery/v1/splitPackageByQuantity")
    def n11_split() -> ResponseReturnValue:
        """A seller's cancellation of some units, only in Picking."""
        if not authenticated():
            return auth_failed()
        body = request.get_json(silent=True) or {}
        try:
            return jsonify(market.cancel(body.get("cancelledItems")))
        except Refusal as refusal:
            return refused(str(refusal))

    # -- control -----------------------------------------------------------------------------------

    @app.post("/_control/n11/packages")
    def n11_control_create() -> ResponseReturnValue:
        """Create packages: {"lines": [{barcode, quantity, sellerDiscount, mallDiscount}], "status",
        "fullName", "sender", "noId"}, `count` times."""
        count = request.args.get("count", 1, type=int)
        spec = request.get_json(silent=True) or {}
        return jsonify([public(market.create_package(spec)) for _ in range(count)]), 201

    @app.post("/_control/n11/packages/<int:package_id>/status")
    def n11_control_status(package_id: int) -> ResponseReturnValue:
        """Move a package as N11 or the carrier would: {"status", and any of the cargo fields}."""
        body = request.get_json(silent=True) or {}
        with market.lock:
            package = market.by_id(package_id)
            if package is None:
                return refused("package not found", 404)
            if body.get("status") not in STATUSES:
                return refused(f"status is one of {', '.join(STATUSES)}")
            for name in CARGO_FIELDS:
                if name in body:
                    package[name] = body[name]
            market.set_status(package, body["status"])
            return jsonify(public(package))

    @app.get("/_control/n11/state")
    def n11_control_state() -> ResponseReturnValue:
        with market.lock:
            return jsonify({"packages": [public(package) for package in market.packages.values()]})


def auth_failed() -> Response:
    """What /rest answers a wrong key or secret: 403, text/plain."""
    return Response("Authentication failed", status=403, mimetype="text/plain")
