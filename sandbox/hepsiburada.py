"""Hepsiburada's order API (OMS, oms-external) in the sandbox, under /hepsiburada, in the shapes and rules of
HB's OpenAPI (HB-OAS, see specs/hepsiburada.openapi.yml) and the research notes (marketplace-apis-next.md
§1, marketplace-apis.md §2.1): Basic auth merchantId:serviceKey (wrong: 401), a User-Agent on every call
(none: 400), offset and limit on every list (none: 400; over HB's cap: 400), begindate/enddate as
`yyyy-MM-dd HH:mm` Istanbul wall clock, a window longer than 24 hours cut to its first 24 without a word;
packing open lines into a package, a seller's cancellation of an open line, the split of a package not yet
in transit with cancelled items, the own carrier's intransit call (dates at most 7 days old), and HB's
contracted carrier's tracking appearing on a package as it moves on. 429s with HB's X-RateLimit-* headers
through a knob (`rate_limited`). Control endpoints under /_control/hepsiburada.

Times are kept as epoch seconds and written as HB's answers write them in the sandbox: ISO-8601 Istanbul wall
clock without an offset. Where HB-OAS is silent (a line's status names, a refusal's words, the answer to an
unknown order) the sandbox's choice is named [sandbox] where it is made.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
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
    from sandbox.webhooks import WebhookSender

PREFIX = "/hepsiburada"
MID = "/merchantid/<merchant_id>"
ISTANBUL = timedelta(hours=3)
DAY = 24 * 3600.0
# [UNSURE] HB-OAS limits begindate/enddate "to about a day" per the notes; the sandbox's reading: a longer
# window is cut to its first 24 hours without an error, as N11 cuts its 15 days.
WINDOW = DAY
PARAM_FORMAT = "%Y-%m-%d %H:%M"
# The caps HB-OAS names per list: open lines 100, packages 10, the status lists 50.
CAPS = {"open": 100, "cancelled": 50, "packages": 10, "shipped": 50, "delivered": 50, "undelivered": 50}
# [sandbox] a line's status names: HB-OAS names Open only ("Paketlenecek"); the others are the sandbox's.
OPEN, PACKED, CANCELLED = "Open", "Packaged", "Cancelled"
# Package statuses: InTransit, Delivered, Undelivered, Unpacked are HB's (notes §1.3); Packaged is [UNSURE].
PACKAGE_STATUSES = (PACKED, "InTransit", "Delivered", "Undelivered", "Unpacked")
MOVED = ("InTransit", "Delivered", "Undelivered")
# reasonId of a seller's cancellation: 83 "ürün tedarik edilemedi" (notes §1.3); [sandbox] a few others.
CANCEL_REASONS = (81, 82, 83, 84, 85)
CARRIERS = (
    ("Yurtiçi Kargo", "https://selfservis.yurticikargo.com/reports/SSWDocumentDetail.aspx?DocId={code}"),
    ("Aras Kargo", "https://kargotakip.araskargo.com.tr/mainpage.aspx?code={code}"),
    ("HepsiJET", "https://www.hepsijet.com/gonderi-takibi/{code}"),
)
ADDRESS_DEMAND = "Order has an ongoing change address demand"
CENT = Decimal("0.01")


def hb_time(moment: float) -> str:
    """A moment as the sandbox's HB writes it: Istanbul wall clock, ISO-8601, no offset."""
    wall = datetime.fromtimestamp(moment, UTC) + ISTANBUL
    return wall.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def parse_param(text: str) -> float:
    """begindate/enddate (`yyyy-MM-dd HH:mm`, Istanbul wall clock) as epoch seconds; ValueError if not."""
    wall = datetime.strptime(text, PARAM_FORMAT).replace(tzinfo=UTC)
    return (wall - ISTANBUL).timestamp()


def _money(value: Decimal) -> dict[str, Any]:
    return {"amount": float(value.quantize(CENT, rounding=ROUND_HALF_UP)), "currency": "TRY"}


class Refusal(Exception):
    """What HB turns down with a 400 (or `status`); its message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class HepsiburadaMarket:
    """Hepsiburada's side of the world: the merchant's credentials, orders (with their lines), packages and
    the log of cancelled lines. It has its own lock; nothing holds it while taking another."""

    merchant_id: str = "6d2a7b6e-4b52-4d0f-9a4c-1f0e9e3c2b11"
    service_key: str = "Hb5aNdb0xK3y"  # 12 characters, as HB's "Servis Anahtarı"
    seed: int = 23
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    packages: dict[str, dict[str, Any]] = field(default_factory=dict)
    cancellations: list[dict[str, Any]] = field(default_factory=list)
    # Knobs: the next `rate_limited` calls answer 429 with X-RateLimit-Reset `reset_after`; orders whose
    # number is in `address_demands` refuse packing with HB's "ongoing change address demand".
    rate_limited: int = 0
    reset_after: int = 30
    address_demands: set[str] = field(default_factory=set)
    # The webhooks a seller's ticket set up: {"url", "username", "password"} (HB's support does it by
    # hand; here `/_control/hepsiburada/webhook`). HB calls paths of its own under the url (notes §1.5);
    # what the merchant does through the API is not sent back.
    hook: dict[str, str] | None = None
    webhooks: WebhookSender | None = None  # the world's sender

    COUNTERS = ("_order_numbers", "_package_numbers", "_barcodes")

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.rng = random.Random(self.seed)
        self._order_numbers = itertools.count(4_276_000_001)
        self._package_numbers = itertools.count(5_000_031_001)
        self._barcodes = itertools.count(6_233_100_000_001)

    # -- kept across restarts, with the rest of the world ------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            counters = {}
            for name in self.COUNTERS:
                counters[name] = next(getattr(self, name))
                setattr(self, name, itertools.count(counters[name]))  # the peeked one stays next
            return {
                "orders": list(self.orders.values()),
                "packages": list(self.packages.values()),
                "cancellations": list(self.cancellations),
                "counters": counters,
                "hook": self.hook,
            }

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.orders = {order["orderNumber"]: order for order in state.get("orders", [])}
            self.packages = {package["packageNumber"]: package for package in state.get("packages", [])}
            self.cancellations = list(state.get("cancellations", []))
            self.hook = state.get("hook")
            for name, value in state.get("counters", {}).items():
                if name in self.COUNTERS:
                    setattr(self, name, itertools.count(value))

    # -- webhooks ----------------------------------------------------------------------------------

    def _notify(self, method: str, path: str, body: dict[str, Any]) -> None:
        """One of HB's webhook calls, with the ticket's Basic auth, if a ticket set them up."""
        if self.hook is None or self.webhooks is None:
            return
        credentials = f"{self.hook['username']}:{self.hook['password']}".encode()
        headers = {
            "Authorization": "Basic " + base64.b64encode(credentials).decode(),
            "Content-Type": "application/json",
        }
        url = f"{self.hook['url'].rstrip('/')}/{path}"
        self.webhooks.post(url, json.dumps(body).encode(), headers, ("Authorization",), method)

    def _notify_package(self, package: dict[str, Any], event: str) -> None:
        """HB packed the lines (no event), or its carrier moved the parcel (intransit, deliver,
        undeliver). [UNSURE] The bodies are not in HB-OAS: the package, its tracking and its lines."""
        body = {
            **self.tracking(package),
            "items": [
                {"lineItemId": line["id"], "orderNumber": order["orderNumber"], "quantity": line["quantity"]}
                for order, line in self.package_lines(package)
            ],
        }
        if event:
            self._notify("PUT", f"packages/{package['packageNumber']}/{event}", body)
        else:
            self._notify("POST", "packages", body)

    # -- orders ------------------------------------------------------------------------------------

    def _guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def create_order(self, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new paid order: `spec` may fix lines ([{barcode, quantity, merchantDiscount, hbDiscount}], the
        discounts per line in lira), status ("Open", "Packaged", "InTransit", "Delivered": the lines packed
        into one package moved so far), name, and corporate (a tax number on the invoice)."""
        spec = spec or {}
        with self.lock:
            person = generator.customer(self.rng)
            name = str(spec.get("name") or f"{person['firstName']} {person['lastName']}")
            catalogue = {product.barcode: product for product in generator.CATALOGUE}
            if "lines" in spec:
                chosen = [
                    (
                        catalogue[line["barcode"]],
                        int(line.get("quantity", 1)),
                        Decimal(str(line.get("merchantDiscount", 0))),
                        Decimal(str(line.get("hbDiscount", 0))),
                    )
                    for line in spec["lines"]
                ]
            else:
                chosen = [(p, q, Decimal(0), Decimal(0)) for p, q in generator.lines(self.rng)]
            now = time.time()
            number = str(next(self._order_numbers))
            order_id = self._guid()
            address = _address(person, name)
            invoice = {
                "address": dict(address),
                "taxNumber": "1234567890" if spec.get("corporate") else None,
                "taxOffice": "Kadıköy" if spec.get("corporate") else None,
                "turkishIdentityNumber": "11111111111",
            }
            order: dict[str, Any] = {
                "orderId": order_id,
                "orderNumber": number,
                "orderDate": hb_time(now),
                "createdDate": hb_time(now),
                "paymentStatus": "Paid",
                "customer": {"customerId": self._guid(), "name": name},
                "deliveryAddress": address,
                "invoice": invoice,
                "orderNote": {"value": "", "tags": []},
                "items": [],
                "_added": now,
            }
            carrier = self.rng.choice(CARRIERS)[0]
            for product, quantity, discount, hb_discount in chosen:
                gross = product.price * quantity
                order["items"].append(
                    {
                        "id": self._guid(),
                        "orderId": order_id,
                        "orderNumber": number,
                        "orderDate": order["orderDate"],
                        "dueDate": hb_time(now + 2 * DAY),
                        "lastStatusUpdateDate": hb_time(now),
                        "status": OPEN,
                        "sku": f"HBV{product.barcode[-8:]}",
                        "merchantSKU": product.stock_code,
                        "productBarcode": product.barcode,
                        "name": product.name,
                        "quantity": quantity,
                        "unitPrice": _money(product.price),
                        "totalPrice": _money(gross),
                        "merchantDiscount": {
                            "unitPrice": _money(discount / quantity),
                            "totalPrice": _money(discount),
                        },
                        "hbDiscount": {
                            "unitPrice": _money(hb_discount / quantity),
                            "totalPrice": _money(hb_discount),
                        },
                        "vatRate": product.vat_rate,
                        "vat": float(
                            (
                                (gross - discount - hb_discount) * product.vat_rate / (100 + product.vat_rate)
                            ).quantize(CENT, rounding=ROUND_HALF_UP)
                        ),
                        "merchantId": self.merchant_id,
                        "customerName": name,
                        "shippingAddress": dict(address),
                        "invoice": {**invoice, "address": dict(address)},
                        "cargoCompany": carrier,
                        "packageNumber": "",
                        "barcode": "",
                        "canCreatePackage": True,
                        "isCancellable": True,
                        "_changed": now,
                    }
                )
            self.orders[number] = order
            self._notify("POST", "orders", {"items": [public_line(line) for line in order["items"]]})
            status = str(spec.get("status", OPEN))
            if status != OPEN:
                lines = [(line["id"], line["quantity"]) for line in order["items"]]
                package = self.pack(number, lines, notify=True)
                if status in MOVED:
                    self.set_package_status(package["packageNumber"], "InTransit")
                if status in ("Delivered", "Undelivered"):
                    self.set_package_status(package["packageNumber"], status)
            return order

    def _line(self, line_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        for order in self.orders.values():
            for line in order["items"]:
                if line["id"] == line_id:
                    return order, line
        return None

    def _touch(self, line: dict[str, Any], status: str, now: float) -> None:
        """[UNSURE] HB moves a packed line's status with its package and stamps lastStatusUpdateDate:
        the connector's modified_at relies on it, so the sandbox does it."""
        line["status"] = status
        line["_changed"] = max(now, line["_changed"] + 0.001)
        line["lastStatusUpdateDate"] = hb_time(line["_changed"])
        line["isCancellable"] = status == OPEN

    def pack(
        self,
        order_number: str | None,
        requests: list[tuple[str, int]],
        *,
        notify: bool = False,
        **details: Any,
    ) -> dict[str, Any]:
        """POST /packages: open lines into one new package, each whole ([sandbox]: HB may split a line
        packed in part; the sandbox refuses it). Raises Refusal, changing nothing. `notify`: HB packed
        them on its own (not the merchant through the API), and sends its webhook."""
        with self.lock:
            if not requests:
                raise Refusal("lineItemRequests boş olamaz")
            found = []
            for line_id, quantity in requests:
                held = self._line(line_id)
                if held is None:
                    raise Refusal(f"Kalem bulunamadı: {line_id}", 404)
                order, line = held
                if order["orderNumber"] in self.address_demands:
                    raise Refusal(ADDRESS_DEMAND)
                if line["status"] != OPEN:
                    raise Refusal(f"Kalem {line_id} {line['status']} durumunda, paketlenemez")
                if quantity != line["quantity"]:
                    raise Refusal(f"Kalem {line_id} için miktar {line['quantity']} olmalı")
                found.append((order, line))
            if len({id(line) for _, line in found}) != len(found):
                raise Refusal("Bir kalem birden fazla kez verilmiş")
            now = time.time()
            number = str(next(self._package_numbers))
            carrier = found[0][1]["cargoCompany"]
            package = {
                "id": self._guid(),
                "packageNumber": number,
                "barcode": str(next(self._barcodes)),
                "status": PACKED,
                "cargoCompany": carrier,
                "deci": float(details.get("deci") or 1),
                "parcelQuantity": int(details.get("parcelQuantity") or 1),
                "trackingInfoCode": "",
                "trackingInfoUrl": "",
                "estimatedArrivalDate": hb_time(now + 3 * DAY),
                "lines": [line["id"] for _, line in found],
                "_packed": now,
                "_moved": None,
            }
            for _, line in found:
                line["packageNumber"], line["barcode"] = number, package["barcode"]
                self._touch(line, PACKED, now)
            self.packages[number] = package
            if notify:
                self._notify_package(package, "")
            return package

    def package_lines(self, package: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [held for line_id in package["lines"] if (held := self._line(line_id)) is not None]

    def set_package_status(
        self, package_number: str, status: str, *, notify: bool = True, **tracking: str
    ) -> dict[str, Any]:
        """The package moves as HB's contracted carrier (or HB) moves it: the carrier's tracking code and
        link come with InTransit, unless given. HB's webhook says so, unless the merchant moved it through
        the API (`notify` False)."""
        with self.lock:
            package = self.packages[package_number]
            now = time.time()
            package["status"] = status
            package["_moved"] = now
            if status == "InTransit" and not package["trackingInfoCode"]:
                code = str(self.rng.randint(10**11, 10**12 - 1))
                template = dict(CARRIERS).get(package["cargoCompany"], CARRIERS[0][1])
                package["trackingInfoCode"] = tracking.get("trackingInfoCode") or code
                package["trackingInfoUrl"] = tracking.get("trackingInfoUrl") or template.format(
                    code=package["trackingInfoCode"]
                )
            for name in ("trackingInfoCode", "trackingInfoUrl", "cargoCompany"):
                if tracking.get(name):
                    package[name] = tracking[name]
            for _, line in self.package_lines(package):
                if line["status"] != CANCELLED:
                    self._touch(line, status, now)
            event = {"InTransit": "intransit", "Delivered": "deliver", "Undelivered": "undeliver"}.get(status)
            if notify and event:
                self._notify_package(package, event)
            return package

    def cancel_lines(
        self, order_number: str, line_ids: list[str], by: str = "Customer", reason: int = 83
    ) -> None:
        """Lines cancelled whole (by the customer, HB or the merchant): out of their package, which is
        deleted (Unpacked) once nothing is left in it."""
        with self.lock:
            order = self.orders[order_number]
            now = time.time()
            for line in order["items"]:
                if line["id"] not in line_ids or line["status"] == CANCELLED:
                    continue
                package = self.packages.get(line["packageNumber"])
                if package is not None:
                    package["lines"].remove(line["id"])
                    if not package["lines"]:
                        package["status"], package["_moved"] = "Unpacked", now
                line["packageNumber"] = line["barcode"] = ""
                self._touch(line, CANCELLED, now)
                self.cancellations.append(
                    {
                        "cancelDate": hb_time(line["_changed"]),
                        "cancelReasonCode": str(reason),
                        "cancelledBy": by,
                        "lineItemId": line["id"],
                        "merchantId": self.merchant_id,
                        "merchantSku": line["merchantSKU"],
                        "orderNumber": order_number,
                        "quantity": line["quantity"],
                        "sku": line["sku"],
                        "_at": line["_changed"],
                    }
                )
                if by != "Merchant":  # the merchant's own cancellation came through the API
                    self._notify(
                        "PUT",
                        f"lineitems/{line['id']}/cancel",
                        {
                            "cancelDate": hb_time(line["_changed"]),
                            "merchantId": self.merchant_id,
                            "id": line["id"],
                            "quantity": line["quantity"],
                            "cancelledBy": by,
                            "cancelReasonCode": str(reason),
                            "isUnpackedLine": package is None,
                        },
                    )

    def cancel_by_merchant(self, line_id: str, reason: Any) -> None:
        """A seller's cancellation: an open (not yet packed) line only, as HB-OAS says."""
        with self.lock:
            held = self._line(line_id)
            if held is None:
                raise Refusal(f"Kalem bulunamadı: {line_id}", 404)
            order, line = held
            if not isinstance(reason, int) or isinstance(reason, bool) or reason not in CANCEL_REASONS:
                raise Refusal(f"Geçersiz iptal nedeni: {reason}")
            if line["status"] != OPEN:
                raise Refusal(
                    f"Kalem {line['status']} durumunda: yalnız paketlenmemiş kalem iptal edilebilir"
                )
            self.cancel_lines(order["orderNumber"], [line_id], by="Merchant", reason=reason)

    def split(self, package_number: str, body: dict[str, Any]) -> None:
        """The split: the package is deleted (Unpacked), the cancelled items are cancelled and the others
        packed again as `packageDetails` says. Every line of the package must be named once ([sandbox]),
        and only a package not yet handed to the carrier splits."""
        with self.lock:
            package = self.packages.get(package_number)
            if package is None or package["status"] == "Unpacked":
                raise Refusal("Paket bulunamadı", 404)
            if package["status"] != PACKED:
                raise Refusal(f"Paket {package['status']} durumunda, bölünemez")
            cancelled, kept = body.get("cancelledItems") or [], []
            for detail in body.get("packageDetails") or []:
                lines = detail.get("lines") if isinstance(detail, dict) else None
                if not isinstance(lines, list) or not lines:
                    raise Refusal("packageDetails içindeki her paket en az bir kalem içermeli")
                kept.append([(entry.get("orderLineId"), entry.get("quantity")) for entry in lines])
            named = [(item.get("orderLineId"), item.get("quantity")) for item in cancelled]
            if not named:
                raise Refusal("cancelledItems boş olamaz")
            held = {line["id"]: line for _, line in self.package_lines(package)}
            every = [line_id for line_id, _ in named] + [line_id for group in kept for line_id, _ in group]
            if sorted(every, key=str) != sorted(held, key=str):
                raise Refusal("Paketteki her kalem bir kez verilmeli (cancelledItems ya da packageDetails)")
            for line_id, quantity in named + [pair for group in kept for pair in group]:
                if quantity != held[line_id]["quantity"]:
                    raise Refusal(f"Kalem {line_id} için miktar {held[line_id]['quantity']} olmalı")
            for item in cancelled:
                if item.get("cancelReasonId") not in CANCEL_REASONS:
                    raise Refusal(f"Geçersiz iptal nedeni: {item.get('cancelReasonId')}")
            now = time.time()
            package["status"], package["_moved"], package["lines"] = "Unpacked", now, []
            for line in held.values():
                line["packageNumber"] = line["barcode"] = ""
                line["status"] = OPEN  # for a moment: repacked or cancelled below
            order_number = next(iter(held.values()))["orderNumber"]
            self.cancel_lines(order_number, [str(line_id) for line_id, _ in named], by="Merchant")
            for group in kept:
                self.pack(
                    None, [(str(line_id), quantity) for line_id, quantity in group], deci=package["deci"]
                )

    def in_transit(self, package_number: str, body: dict[str, Any]) -> None:
        """The own carrier's parcel handed over: tracking number required, dates at most 7 days old."""
        with self.lock:
            package = self.packages.get(package_number)
            if package is None or package["status"] == "Unpacked":
                raise Refusal("Paket bulunamadı", 404)
            if package["status"] != PACKED:
                raise Refusal(f"Paket {package['status']} durumunda, kargoya verilemez")
            number = body.get("trackingNumber")
            if not isinstance(number, str) or not number.strip():
                raise Refusal("trackingNumber zorunludur")
            try:
                shipped = parse_param(str(body.get("shippedDate")))
            except ValueError:
                raise Refusal("shippedDate yyyy-MM-dd HH:mm biçiminde olmalı") from None
            now = time.time()
            if not now - 7 * DAY <= shipped <= now + 120:
                raise Refusal("shippedDate 7 günden eski ya da ileri bir tarih olamaz")
            self.set_package_status(
                package_number,
                "InTransit",
                notify=False,
                trackingInfoCode=number.strip(),
                trackingInfoUrl=str(body.get("trackingUrl") or ""),
            )

    def advance(self) -> None:
        """One step of the demo's life: packed parcels go in transit with HB's carrier's tracking, then are
        delivered. A new order waits for the seller to pack it."""
        with self.lock:
            now = time.time()
            for package in list(self.packages.values()):
                since = now - (package["_moved"] or package["_packed"])
                if since <= 4 or self.rng.random() >= 0.4:
                    continue
                if package["status"] == PACKED:
                    self.set_package_status(package["packageNumber"], "InTransit")
                elif package["status"] == "InTransit":
                    self.set_package_status(package["packageNumber"], "Delivered")

    # -- the lists -----------------------------------------------------------------------------------

    def open_lines(self, begin: float, end: float) -> list[dict[str, Any]]:
        return sorted(
            (
                public_line(line)
                for order in self.orders.values()
                for line in order["items"]
                if line["status"] == OPEN and begin <= order["_added"] < end
            ),
            key=lambda line: line["orderDate"],
        )

    def raw_package(self, package: dict[str, Any]) -> dict[str, Any]:
        """A package as GET /packages lists it (ExternalRawPackageRepresentation)."""
        lines = self.package_lines(package)
        order = lines[0][0] if lines else {}
        address, invoice = order.get("deliveryAddress", {}), order.get("invoice", {})
        total = sum((Decimal(str(line["totalPrice"]["amount"])) for _, line in lines), Decimal(0))
        return {
            "id": package["id"],
            "packageNumber": package["packageNumber"],
            "barcode": package["barcode"],
            "status": package["status"],
            "cargoCompany": package["cargoCompany"],
            "orderDate": order.get("orderDate"),
            "dueDate": lines[0][1]["dueDate"] if lines else None,
            "customerId": order.get("customer", {}).get("customerId"),
            "customerName": order.get("customer", {}).get("name"),
            "recipientName": address.get("name"),
            "email": address.get("email"),
            "phoneNumber": address.get("phoneNumber"),
            "shippingAddressDetail": address.get("address"),
            "shippingCity": address.get("city"),
            "shippingTown": address.get("town"),
            "shippingDistrict": address.get("district"),
            "shippingCountryCode": "TR",
            "identityNo": invoice.get("turkishIdentityNumber"),
            "taxNumber": invoice.get("taxNumber"),
            "taxOffice": invoice.get("taxOffice"),
            "totalPrice": _money(total),
            "isCargoChangable": False,
            "items": [
                {
                    "lineItemId": line["id"],
                    "orderNumber": line["orderNumber"],
                    "hbSku": line["sku"],
                    "merchantSku": line["merchantSKU"],
                    "productBarcode": line["productBarcode"],
                    "productName": line["name"],
                    "quantity": line["quantity"],
                    "price": line["unitPrice"],
                    "totalPrice": line["totalPrice"],
                    "vatRate": line["vatRate"],
                }
                for _, line in lines
            ],
        }

    def ready_packages(self, begin: float, end: float) -> list[dict[str, Any]]:
        chosen = [p for p in self.packages.values() if p["status"] == PACKED and begin <= p["_packed"] < end]
        return [self.raw_package(package) for package in sorted(chosen, key=lambda p: p["_packed"])]

    def moved_packages(self, status: str, begin: float, end: float) -> list[dict[str, Any]]:
        """The shipped, delivered and undelivered lists (PascalCase, as HB-OAS writes them)."""
        date = {"InTransit": "ShippedDate", "Delivered": "DeliveredDate", "Undelivered": "UndeliveredDate"}
        chosen = [
            package
            for package in self.packages.values()
            if package["status"] == status
            and package["_moved"] is not None
            and begin <= package["_moved"] < end
        ]
        answers = []
        for package in sorted(chosen, key=lambda p: p["_moved"]):
            numbers = sorted({line["orderNumber"] for _, line in self.package_lines(package)})
            entry = {
                "Id": package["id"],
                "MerchantId": self.merchant_id,
                "PackageNumber": package["packageNumber"],
                "Barcode": package["barcode"],
                "OrderNumber": numbers[0] if numbers else "",
                "OrderNumbers": numbers,
                date[status]: hb_time(package["_moved"]),
            }
            if status == "Undelivered":
                entry["UndeliveredReason"] = "Alıcı adreste bulunamadı"
            if status == "InTransit":
                entry["Deci"] = package["deci"]
            answers.append(entry)
        return answers

    def cancelled_lines(self, begin: float, end: float) -> list[dict[str, Any]]:
        return [
            {key: value for key, value in entry.items() if not key.startswith("_")}
            for entry in sorted(self.cancellations, key=lambda entry: entry["_at"])
            if begin <= entry["_at"] < end
        ]

    def tracking(self, package: dict[str, Any]) -> dict[str, Any]:
        """GET .../packagenumber/{no} (ExternalTrackingInfoRepresentation): one object, as HB-OAS says."""
        return {
            "packageNumber": package["packageNumber"],
            "barcode": package["barcode"],
            "status": package["status"],
            "cargoCompany": package["cargoCompany"],
            "deci": package["deci"],
            "trackingInfoCode": package["trackingInfoCode"],
            "trackingInfoUrl": package["trackingInfoUrl"],
            "estimatedArrivalDate": package["estimatedArrivalDate"],
        }


def public_line(line: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in line.items() if not key.startswith("_")}


def public(order: dict[str, Any]) -> dict[str, Any]:
    """The order as GET .../ordernumber/{no} answers it (OrderRepresentation), with every line, cancelled
    ones too ([UNSURE]: HB-OAS calls items "the order's lines" without saying which)."""
    shown = {key: value for key, value in order.items() if not key.startswith("_")}
    shown["items"] = [public_line(line) for line in order["items"]]
    return shown


def _address(person: dict[str, Any], name: str) -> dict[str, Any]:
    """HB's AddressRepresentation: `district` is the neighbourhood (mahalle/semt), `town` the ilçe."""
    source = person["address"]
    return {
        "addressId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{name}{source['address1']}")),
        "name": name,
        "address": str(source["address1"]).removeprefix(f"{source['neighborhood']} "),
        "district": source["neighborhood"],
        "town": source["district"],
        "city": source["city"],
        "postalCode": source["postalCode"],
        "countryCode": "TR",
        "phoneNumber": source["phone"],
        "alternatePhoneNumber": "",
        "email": f"musteri{source['phone'][-6:]}@hbmail.example",
        "directions": "",
    }


def register(app: Flask, world: World) -> None:
    """Hepsiburada's routes and its control endpoints on the sandbox app; the app's fault knobs reach them
    through its own hooks (every path under PREFIX), HB's 429 through the market's `rate_limited`."""
    market = world.hepsiburada

    def refused(message: str, status: int = 400) -> Response:
        """HB-OAS types every 4xx as a JSON string; [sandbox] the words."""
        response = jsonify(message)
        response.status_code = status
        return response

    @app.before_request
    def hepsiburada_gate() -> ResponseReturnValue | None:
        """Every OMS call: HB's own 429, the mandatory User-Agent, Basic auth for the merchant in the path."""
        if not request.path.startswith(f"{PREFIX}/"):
            return None
        with market.lock:
            if market.rate_limited > 0:
                market.rate_limited -= 1
                response = refused("Too Many Requests", 429)
                response.headers.update(
                    {
                        "X-RateLimit-Limit": "1000",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(market.reset_after),
                    }
                )
                return response
        if not request.headers.get("User-Agent", "").strip():
            return refused("User-Agent header is required")
        auth = request.authorization
        merchant = (request.view_args or {}).get("merchant_id")
        if (
            auth is None
            or auth.type != "basic"
            or (auth.username, auth.password) != (market.merchant_id, market.service_key)
            or merchant != market.merchant_id
        ):
            return refused("Unauthorized", 401)
        return None

    def window(name: str) -> tuple[float, float, int, int]:
        """offset/limit (both mandatory, limit 1 to the list's cap) and the begindate/enddate window, cut to
        24 hours; HB-OAS spells the packages list's offset `Offset`, taken either way."""
        args = {key.lower(): value for key, value in request.args.items()}
        if "offset" not in args or "limit" not in args:
            raise Refusal("offset ve limit zorunludur")
        try:
            offset, limit = int(args["offset"]), int(args["limit"])
        except ValueError:
            raise Refusal("offset ve limit sayı olmalı") from None
        if offset < 0 or not 1 <= limit <= CAPS[name]:
            raise Refusal(f"limit 1 ile {CAPS[name]} arasında olmalı")
        try:
            begin = parse_param(args["begindate"]) if "begindate" in args else None
            end = parse_param(args["enddate"]) if "enddate" in args else None
        except ValueError:
            raise Refusal("begindate ve enddate yyyy-MM-dd HH:mm biçiminde olmalı") from None
        if "timespan" in args and begin is None:
            begin = time.time() - float(args["timespan"]) * 3600
        if begin is None and end is None:
            return 0.0, time.time() + 60, offset, limit  # [sandbox] no window: everything
        if begin is None:
            assert end is not None
            begin = end - WINDOW
        return begin, min(end if end is not None else begin + WINDOW, begin + WINDOW), offset, limit

    def paged(items: list[dict[str, Any]], offset: int, limit: int) -> dict[str, Any]:
        return {
            "items": items[offset : offset + limit],
            "offset": offset,
            "limit": limit,
            "pageCount": max(1, -(-len(items) // limit)),
            "totalCount": len(items),
        }

    def listing(name: str, read: Any) -> ResponseReturnValue:
        try:
            begin, end, offset, limit = window(name)
        except Refusal as refusal:
            return refused(str(refusal))
        with market.lock:
            return jsonify(paged(read(begin, end), offset, limit))

    @app.get(f"{PREFIX}/orders{MID}")
    def hb_open_lines(merchant_id: str) -> ResponseReturnValue:
        """Paid lines not yet packed, by when they were added."""
        return listing("open", market.open_lines)

    @app.get(f"{PREFIX}/orders{MID}/cancelled")
    def hb_cancelled(merchant_id: str) -> ResponseReturnValue:
        return listing("cancelled", market.cancelled_lines)

    @app.get(f"{PREFIX}/packages{MID}/shipped")
    def hb_shipped(merchant_id: str) -> ResponseReturnValue:
        return listing("shipped", lambda b, e: market.moved_packages("InTransit", b, e))

    @app.get(f"{PREFIX}/packages{MID}/delivered")
    def hb_delivered(merchant_id: str) -> ResponseReturnValue:
        return listing("delivered", lambda b, e: market.moved_packages("Delivered", b, e))

    @app.get(f"{PREFIX}/packages{MID}/undelivered")
    def hb_undelivered(merchant_id: str) -> ResponseReturnValue:
        return listing("undelivered", lambda b, e: market.moved_packages("Undelivered", b, e))

    @app.get(f"{PREFIX}/orders{MID}/ordernumber/<order_number>")
    def hb_order(merchant_id: str, order_number: str) -> ResponseReturnValue:
        with market.lock:
            order = market.orders.get(order_number)
            if order is None:
                return refused("Sipariş bulunamadı", 404)  # [sandbox] HB-OAS names no answer for it
            return jsonify(public(order))

    @app.route(f"{PREFIX}/packages{MID}", methods=["GET", "POST"])
    def hb_packages(merchant_id: str) -> ResponseReturnValue:
        if request.method == "GET":
            try:
                begin, end, offset, limit = window("packages")
            except Refusal as refusal:
                return refused(str(refusal))
            with market.lock:  # a bare array: HB-OAS gives this list no paging envelope
                return jsonify(market.ready_packages(begin, end)[offset : offset + limit])
        sent = request.get_json(silent=True)
        body: dict[str, Any] = sent if isinstance(sent, dict) else {}
        requests = body.get("lineItemRequests")
        if not isinstance(requests, list) or not all(isinstance(entry, dict) for entry in requests):
            return refused("lineItemRequests zorunludur")
        try:
            package = market.pack(
                None,
                [(str(entry.get("id")), entry.get("quantity")) for entry in requests],
                deci=body.get("deci"),
                parcelQuantity=body.get("parcelQuantity"),
            )
        except Refusal as refusal:
            return refused(str(refusal), refusal.status)
        return jsonify({"packageNumber": package["packageNumber"], "barcode": package["barcode"]}), 201

    @app.get(f"{PREFIX}/packages{MID}/packagenumber/<package_number>")
    def hb_tracking(merchant_id: str, package_number: str) -> ResponseReturnValue:
        with market.lock:
            package = market.packages.get(package_number)
            if package is None:
                return refused("Paket bulunamadı", 400)
            return jsonify(market.tracking(package))

    def action(run: Any) -> ResponseReturnValue:
        try:
            run()
        except Refusal as refusal:
            return refused(str(refusal), refusal.status)
        return jsonify("OK")

    @app.post(f"{PREFIX}/packages{MID}/packagenumber/<package_number>/split")
    def hb_split(merchant_id: str, package_number: str) -> ResponseReturnValue:
        body = request.get_json(silent=True)
        return action(lambda: market.split(package_number, body if isinstance(body, dict) else {}))

    @app.post(f"{PREFIX}/packages{MID}/packagenumber/<package_number>/intransit")
    def hb_in_transit(merchant_id: str, package_number: str) -> ResponseReturnValue:
        body = request.get_json(silent=True)
        return action(lambda: market.in_transit(package_number, body if isinstance(body, dict) else {}))

    @app.post(f"{PREFIX}/lineitems{MID}/id/<line_id>/cancelbymerchant")
    def hb_cancel_line(merchant_id: str, line_id: str) -> ResponseReturnValue:
        body = request.get_json(silent=True)
        reason = body.get("reasonId") if isinstance(body, dict) else None
        return action(lambda: market.cancel_by_merchant(line_id, reason))

    # -- control -----------------------------------------------------------------------------------

    @app.post("/_control/hepsiburada/orders")
    def hb_control_create() -> ResponseReturnValue:
        """Create orders: {"lines": [{barcode, quantity, merchantDiscount, hbDiscount}], "status", "name",
        "corporate"}, `count` times."""
        count = request.args.get("count", 1, type=int)
        spec = request.get_json(silent=True) or {}
        return jsonify([public(market.create_order(spec)) for _ in range(count)]), 201

    @app.post("/_control/hepsiburada/orders/<order_number>/cancel")
    def hb_control_cancel(order_number: str) -> ResponseReturnValue:
        """A customer's (or HB's) cancellation: {"lineIds": [...], "by": "Customer"}."""
        body = request.get_json(silent=True) or {}
        with market.lock:
            if order_number not in market.orders:
                return refused("order not found", 404)
            market.cancel_lines(
                order_number, [str(i) for i in body.get("lineIds", [])], str(body.get("by", "Customer"))
            )
            return jsonify(public(market.orders[order_number]))

    @app.post("/_control/hepsiburada/packages/<package_number>/status")
    def hb_control_status(package_number: str) -> ResponseReturnValue:
        """Move a package as HB's carrier would: {"status", "trackingInfoCode", "trackingInfoUrl"}."""
        body = request.get_json(silent=True) or {}
        with market.lock:
            if package_number not in market.packages:
                return refused("package not found", 404)
            if body.get("status") not in PACKAGE_STATUSES:
                return refused(f"status is one of {', '.join(PACKAGE_STATUSES)}")
            moved = market.set_package_status(
                package_number,
                body["status"],
                trackingInfoCode=str(body.get("trackingInfoCode") or ""),
                trackingInfoUrl=str(body.get("trackingInfoUrl") or ""),
            )
            return jsonify(market.tracking(moved))

    @app.post("/_control/hepsiburada/webhook")
    def hb_control_webhook() -> ResponseReturnValue:
        """What HB's support does with a seller's ticket: {"url", "username", "password"} (empty: none)."""
        body = request.get_json(silent=True) or {}
        with market.lock:
            wanted = {name: str(body.get(name) or "") for name in ("url", "username", "password")}
            market.hook = wanted if wanted["url"] else None
            return jsonify(market.hook or {})

    @app.get("/_control/hepsiburada/state")
    def hb_control_state() -> ResponseReturnValue:
        with market.lock:
            return jsonify(
                {
                    "orders": [public(order) for order in market.orders.values()],
                    "packages": [market.tracking(package) for package in market.packages.values()],
                }
            )
