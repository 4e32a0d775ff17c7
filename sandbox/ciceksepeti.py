"""Çiçeksepeti's order API in the sandbox, under /ciceksepeti, in the shapes and rules of the research notes
(marketplace-apis-next.md §4, marketplace-apis.md §2.3): the `x-api-key` header and a User-Agent starting
with the seller id; GetOrders with one row per order item, a window of at most 14 days, 0-based pages of at
most 100, inactive (cancelled) items only when asked for; its rate limits (one request per 5 seconds per
seller, an identical GetOrders body once a minute) answered with 429; readyforcargo (ÇS cargo, 1 → 11) and
the supplier's status update (own cargo, 1 → 2 → 5 → 7), each refusing the other path's orders in
Çiçeksepeti's words. There is no cancel call: `cancel` is the panel's (or the customer's).

Times are kept as Çiçeksepeti writes them (dd/MM/yyyy and HH:mm, Turkish time), beside the moment itself,
which the window compares. Where the notes are silent (the error bodies, the 429, the supplier update's
answer) the sandbox's choice is named where it is made. The rate limits run on `clock`, which a test sets to
the same stepped clock the connector's pacer runs on.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox import generator

if TYPE_CHECKING:
    from sandbox.state import World

PREFIX = "/ciceksepeti"
API = PREFIX  # the sandbox's base URL stands for https://apis.ciceksepeti.com/api/v1
TURKEY = timezone(timedelta(hours=3))
MAX_WINDOW = timedelta(days=14)
MAX_PAGE_SIZE = 100
STATUS_NAMES = {
    1: "Yeni",
    2: "Hazırlanıyor",
    3: "Arabaya Verildi",
    5: "Kargoya Verildi",
    7: "Teslim Edildi",
    11: "Kargoya Verilecek",
    18: "Firmaya İade",
}
CARGO_BUSINESS = {
    1: "MNG Kargo",
    2: "Yurtiçi Kargo",
    25: "Sürat Kargo",
    43: "Aras Kargo",
    44: "PTT Kargo",
    45: "UPS Kargo",
    46: "Horoz Lojistik",
    55: "Ceva Lojistik",
    59: "Sendeo",
    116: "kargomSENDE",
    117: "Kolay Gelsin",
    118: "Arvato",
}
WRONG_PATH = "This branch's integration type is not supported this method"
CS_CARRIER = "Aras Kargo"  # [sandbox] the carrier Çiçeksepeti's contract uses here
CENT = Decimal("0.01")
CARD_MESSAGES = ("İyi ki doğdun!", "Geçmiş olsun, çabuk iyileş.", "Seni seviyorum.", "")


def _money(value: Decimal) -> float:
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def written(moment: datetime) -> tuple[str, str]:
    local = moment.astimezone(TURKEY)
    return local.strftime("%d/%m/%Y"), local.strftime("%H:%M")


@dataclass
class CiceksepetiMarket:
    """Çiçeksepeti's side of the world: the seller's key and order items. It has its own lock; nothing
    holds it while taking another."""

    seller_id: str = "50123"
    api_key: str = "cs-sandbox-key"
    seed: int = 16
    # The shipping path of new orders: 1 Çiçeksepeti's contracted cargo, 2 the seller's own.
    cargo_model: int = 2
    # Seconds between two requests of a seller, and before an identical GetOrders body is taken again.
    interval: float = 5.0
    identical: float = 60.0
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic

    COUNTERS = ("_order_ids", "_item_ids")

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.rng = random.Random(self.seed)
        self._order_ids = itertools.count(310_000_001)
        self._item_ids = itertools.count(520_000_001)
        self.last_request: dict[str, float] = {}
        self.bodies: dict[str, float] = {}

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            counters = {}
            for name in self.COUNTERS:
                counters[name] = next(getattr(self, name))
                setattr(self, name, itertools.count(counters[name]))
            return {"rows": list(self.rows.values()), "counters": counters}

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.rows = {row["orderItemId"]: row for row in state.get("rows", [])}
            for name, value in state.get("counters", {}).items():
                if name in self.COUNTERS:
                    setattr(self, name, itertools.count(value))

    # -- orders ------------------------------------------------------------------------------------

    def create_order(self, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new order, one row per item: `spec` may fix lines ([{barcode, quantity, discount}], the
        discount per line in lira), cargoModelType, cardMessage and status (an orderItemStatusId). The
        demo's orders (no spec) go either way, most on Çiçeksepeti's cargo. Returns {"orderId", "rows"}."""
        spec = spec or {}
        with self.lock:
            model = int(
                spec.get("cargoModelType") or (self.cargo_model if spec else self.rng.choice((1, 1, 2)))
            )
            person = generator.customer(self.rng)
            buyer = generator.customer(self.rng)
            catalogue = {product.barcode: product for product in generator.CATALOGUE}
            if "lines" in spec:
                chosen = [
                    (
                        catalogue[line["barcode"]],
                        int(line.get("quantity", 1)),
                        Decimal(str(line.get("discount", 0))),
                    )
                    for line in spec["lines"]
                ]
            else:
                chosen = [(product, quantity, Decimal(0)) for product, quantity in generator.lines(self.rng)]
            order_id = next(self._order_ids)
            now = datetime.now(UTC)
            date, clock = written(now)
            address = person["address"]
            assert isinstance(address, dict)
            message = spec.get("cardMessage", self.rng.choice(CARD_MESSAGES))
            status = int(spec.get("status", 1))
            rows = []
            for product, quantity, discount in chosen:
                total = product.price * quantity
                row: dict[str, Any] = {
                    "orderId": order_id,
                    "orderItemId": next(self._item_ids),
                    "orderCreateDate": date,
                    "orderCreateTime": clock,
                    "orderModifyDate": date,
                    "orderModifyTime": clock,
                    "code": product.stock_code,
                    "barcode": product.barcode,
                    "productCode": f"CS-{product.barcode[-6:]}",
                    "productId": int(product.barcode[-6:]),
                    "name": product.name,
                    "quantity": quantity,
                    "quantityUnit": "adet",
                    "itemPrice": _money(product.price),
                    "totalPrice": _money(total),
                    "discount": _money(discount),
                    "invoicePrice": _money(total - discount),
                    "tax": product.vat_rate,
                    "cargoPrice": 0.0,
                    "orderItemStatusId": status,
                    "orderProductStatus": STATUS_NAMES.get(status, str(status)),
                    "isOrderStatusActive": True,
                    "cargoCompany": None,
                    "cargoNumber": None,
                    "shipmentTrackingUrl": None,
                    "partialNumber": None,
                    "cargoModelType": model,
                    "receiverName": f"{person['firstName']} {person['lastName']}",
                    "receiverPhone": address["phone"],
                    "receiverAddress": str(address["address1"]).removeprefix(f"{address['neighborhood']} "),
                    "receiverRegion": address["neighborhood"],
                    "receiverDistrict": address["district"],
                    "receiverCity": address["city"],
                    "senderName": f"{buyer['firstName']} {buyer['lastName']}",
                    "senderCity": buyer["address"]["city"],  # type: ignore[index]
                    "invoiceEmail": f"musteri{order_id}@cicekmail.example",
                    "cardMessage": message,
                    "orderItemStatusHistoryList": [{"statusId": status, "date": f"{date} {clock}"}],
                    "_modified": now.timestamp(),
                }
                self.rows[row["orderItemId"]] = row
                rows.append(row)
            return {"orderId": order_id, "rows": [public(row) for row in rows]}

    def rows_of(self, order_id: int | str) -> list[dict[str, Any]]:
        with self.lock:
            return [row for row in self.rows.values() if str(row["orderId"]) == str(order_id)]

    def _touch(self, row: dict[str, Any], status: int | None = None) -> None:
        now = datetime.now(UTC)
        stamp = max(now.timestamp(), row["_modified"] + 0.001)
        row["_modified"] = stamp
        row["orderModifyDate"], row["orderModifyTime"] = written(datetime.fromtimestamp(stamp, UTC))
        if status is not None:
            row["orderItemStatusId"] = status
            row["orderProductStatus"] = STATUS_NAMES.get(status, str(status))
            row["orderItemStatusHistoryList"].append(
                {"statusId": status, "date": f"{row['orderModifyDate']} {row['orderModifyTime']}"}
            )

    def set_status(self, order_id: int | str, status: int, **fields: Any) -> None:
        """Çiçeksepeti (or its carrier) moves every active item of the order on."""
        with self.lock:
            for row in self.rows_of(order_id):
                if row["isOrderStatusActive"]:
                    row.update(fields)
                    self._touch(row, status)

    def ship(
        self, order_id: int | str, carrier: str = CS_CARRIER, code: str | None = None, link: str | None = ""
    ) -> None:
        """The carrier has the parcel: status 5, its tracking number and link ("" makes one, None none)."""
        number = code or str(self.rng.randint(10**11, 10**12 - 1))
        url = f"https://kargotakip.cicek.example/{number}" if link == "" else link
        self.set_status(order_id, 5, cargoCompany=carrier, cargoNumber=number, shipmentTrackingUrl=url)

    def cancel(self, order_id: int | str, item_ids: list[int] | None = None) -> None:
        """Cancelled in the panel (or by the customer), the whole order or the items named: they turn
        inactive."""
        with self.lock:
            for row in self.rows_of(order_id):
                if item_ids is None or row["orderItemId"] in item_ids:
                    row["isOrderStatusActive"] = False
                    self._touch(row)

    def advance(self) -> None:
        """One step of the demo's life: Çiçeksepeti's carrier takes the parcels it has labels for and
        delivers them, now and then a new order is cancelled in the panel."""
        with self.lock:
            now = datetime.now(UTC).timestamp()
            for order_id in sorted({row["orderId"] for row in self.rows.values()}):
                rows = self.rows_of(order_id)
                first = rows[0]
                age = now - first["_modified"]
                roll = self.rng.random()
                status = first["orderItemStatusId"]
                if not first["isOrderStatusActive"]:
                    continue
                if status == 1 and age > 60 and roll < 0.002:
                    self.cancel(order_id)
                elif status == 11 and age > 4 and roll < 0.4:
                    self.ship(order_id)
                elif status == 5 and first["cargoModelType"] == 1 and age > 4 and roll < 0.4:
                    self.set_status(order_id, 7)

    # -- the API -----------------------------------------------------------------------------------

    def limited(self, key: str, body: str | None) -> str | None:
        """Çiçeksepeti's rate limits for a request of the seller: why it is refused, or None (and then it
        counts). [sandbox] one bucket per seller and kind of call (orders, cargo)."""
        with self.lock:
            now = self.clock()
            last = self.last_request.get(key)
            if last is not None and now - last < self.interval:
                return f"Aynı servise {self.interval:g} saniyede bir istek atılabilir"
            if body is not None:
                sent = self.bodies.get(body)
                if sent is not None and now - sent < self.identical:
                    return "Aynı parametrelerle dakikada bir istek atılabilir"
                self.bodies = {text: at for text, at in self.bodies.items() if now - at < self.identical}
                self.bodies[body] = now
            self.last_request[key] = now
            return None

    def listing(self, body: dict[str, Any]) -> dict[str, Any] | str:
        """GetOrders: its answer, or Çiçeksepeti's words for a refusal."""
        page, size = body.get("page", 0), body.get("pageSize", MAX_PAGE_SIZE)
        if not isinstance(page, int) or isinstance(page, bool) or page < 0:
            return "page 0 veya daha büyük olmalı"
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_PAGE_SIZE:
            return f"pageSize 1 ile {MAX_PAGE_SIZE} arasında olmalı"
        order_no, item_no = body.get("orderNo"), body.get("orderItemNo")
        start = end = None
        if order_no is None and item_no is None:
            try:
                start = datetime.strptime(str(body["startDate"]), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=TURKEY)
                end = datetime.strptime(str(body["endDate"]), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=TURKEY)
            except (KeyError, ValueError):
                return "startDate ve endDate yyyy-MM-ddTHH:mm:ss biçiminde verilmeli"
            if end < start:
                return "endDate startDate'ten önce olamaz"
            if end - start > MAX_WINDOW:
                return "Tarih aralığı en fazla 14 gün olabilir"
        active = body.get("isOrderStatusActive", True)
        status = body.get("statusId")
        with self.lock:
            matching = sorted(
                (
                    row
                    for row in self.rows.values()
                    if row["isOrderStatusActive"] is (active is not False)
                    and (
                        start is None
                        or end is None
                        or start.timestamp() <= row["_modified"] <= end.timestamp()
                    )
                    and (order_no is None or str(row["orderId"]) == str(order_no))
                    and (item_no is None or str(row["orderItemId"]) == str(item_no))
                    and (status is None or row["orderItemStatusId"] == status)
                ),
                key=lambda row: (row["_modified"], row["orderItemId"]),
            )
            content = matching[page * size : (page + 1) * size]
            return {
                "orderListCount": len(matching),
                "pageCount": -(-len(matching) // size),
                "supplierOrderListWithBranch": [public(row) for row in content],
            }

    def ready_for_cargo(self, body: Any) -> dict[str, Any] | str:
        """readyforcargowithcsintegration: items of the ÇS-cargo path, new (1), to 11 with a label number."""
        groups = body.get("orderItemsGroup") if isinstance(body, dict) else None
        if not isinstance(groups, list) or not groups:
            return "orderItemsGroup boş olamaz"
        with self.lock:
            wanted = []
            for group in groups:
                ids = group.get("orderItemIds") if isinstance(group, dict) else None
                if not isinstance(ids, list) or not ids:
                    return "orderItemIds boş olamaz"
                wanted.append(ids)
            found = {}
            for ids in wanted:
                for item in ids:
                    row = self.rows.get(item) if isinstance(item, int) else None
                    if row is None or not row["isOrderStatusActive"]:
                        return f"Sipariş kalemi bulunamadı: {item}"
                    if row["cargoModelType"] != 1:
                        return WRONG_PATH
                    if row["orderItemStatusId"] != 1:
                        return f"Sipariş kalemi {item} Yeni durumunda değil"
                    found[item] = row
            answer = []
            for ids in wanted:
                items = []
                for item in ids:
                    row = found[item]
                    row["partialNumber"] = row["partialNumber"] or str(self.rng.randint(10**11, 10**12 - 1))
                    row["cargoCompany"] = CS_CARRIER
                    self._touch(row, 11)
                    items.append(
                        {
                            "orderItemId": item,
                            "partialNumber": row["partialNumber"],
                            "cargoCompany": CS_CARRIER,
                        }
                    )
                answer.append({"orderItems": items})
            return {"statusUpdateResponse": answer}

    def supplier_update(self, body: Any) -> dict[str, Any] | str:
        """statusupdatewithsupplierintegration: items of the own-cargo path, 1 → 2 → 5 (11 with Yurtiçi)
        → 7; 5 and 11 with the carrier's cargoBusinessId and the shipment number."""
        items = body.get("orderItems") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items or not all(isinstance(item, dict) for item in items):
            return "orderItems boş olamaz"
        steps = {1: {2}, 2: {5, 11}, 5: {7}, 11: {7}}
        with self.lock:
            changes = []
            for item in items:
                row = self.rows.get(item.get("orderItemId"))
                if row is None or not row["isOrderStatusActive"]:
                    return f"Sipariş kalemi bulunamadı: {item.get('orderItemId')}"
                if row["cargoModelType"] != 2:
                    return WRONG_PATH
                target = item.get("orderItemStatusId")
                if target not in steps.get(row["orderItemStatusId"], set()):
                    return f"Sipariş kalemi {row['orderItemStatusId']} durumundan {target} durumuna geçemez"
                fields: dict[str, Any] = {}
                if target in (5, 11):
                    business = item.get("cargoBusinessId")
                    number = item.get("shipmentNumber")
                    if business not in CARGO_BUSINESS:
                        return f"Geçersiz cargoBusinessId: {business}"
                    if (target == 11) != (business == 2):
                        return "Yurtiçi Kargo için 11, diğer kargolar için 5 gönderilmeli"
                    if not isinstance(number, str) or not number.strip():
                        return "shipmentNumber boş olamaz"
                    fields = {
                        "cargoCompany": CARGO_BUSINESS[business],
                        "cargoNumber": number,
                        "shipmentTrackingUrl": item.get("shipmentTrackingUrl"),
                    }
                changes.append((row, target, fields))
            for row, target, fields in changes:
                row.update(fields)
                self._touch(row, target)
            # [sandbox] the answer's shape is not in the notes.
            return {
                "orderItems": [
                    {"orderItemId": row["orderItemId"], "isSuccess": True} for row, _, _ in changes
                ]
            }


def public(row: dict[str, Any]) -> dict[str, Any]:
    """The row as Çiçeksepeti answers it: nothing of the sandbox's own."""
    shown = {key: value for key, value in row.items() if not key.startswith("_")}
    shown["orderItemStatusHistoryList"] = [dict(step) for step in row["orderItemStatusHistoryList"]]
    return shown


def register(app: Flask, world: World) -> None:
    """Çiçeksepeti's routes on the sandbox app; the fault knobs reach them through the app's own hooks
    (every path under PREFIX)."""
    market = world.ciceksepeti

    def refused(message: str, status: int = 400) -> Response:
        """[sandbox] the error body: {"Message": …}, as a 3P client reads Çiçeksepeti's."""
        response = jsonify({"Message": message})
        response.status_code = status
        return response

    def denied() -> Response | None:
        if request.headers.get("x-api-key") != market.api_key:
            return refused("API key geçersiz", 401)
        agent = request.headers.get("User-Agent", "")
        if agent != market.seller_id and not agent.startswith(f"{market.seller_id}-"):
            # [sandbox] the notes require the header, not what a wrong one answers.
            return refused("User-Agent '<SellerId>-<EntegratörAdı>' olmalı", 400)
        return None

    def body() -> Any:
        return request.get_json(silent=True)

    def limited(kind: str, text: str | None = None) -> Response | None:
        why = market.limited(f"{market.api_key} {kind}", text)
        return refused(why, 429) if why else None

    @app.post(f"{API}/Order/GetOrders")
    def ciceksepeti_orders() -> ResponseReturnValue:
        """The seller's order items, a row each, in a window of at most 14 days."""
        if (answer := denied()) is not None:
            return answer
        asked = body()
        if not isinstance(asked, dict):
            return refused("İstek gövdesi okunamadı")
        if (answer := limited("orders", json.dumps(asked, sort_keys=True))) is not None:
            return answer
        found = market.listing(asked)
        return refused(found) if isinstance(found, str) else jsonify(found)

    @app.put(f"{API}/Order/readyforcargowithcsintegration")
    def ciceksepeti_ready_for_cargo() -> ResponseReturnValue:
        """ÇS cargo: the items' label is made (1 → 11)."""
        if (answer := denied()) is not None:
            return answer
        if (answer := limited("cargo")) is not None:
            return answer
        done = market.ready_for_cargo(body())
        return refused(done) if isinstance(done, str) else jsonify(done)

    @app.put(f"{API}/Order/statusupdatewithsupplierintegration")
    def ciceksepeti_supplier_update() -> ResponseReturnValue:
        """Own cargo: the seller moves the items on."""
        if (answer := denied()) is not None:
            return answer
        if (answer := limited("cargo")) is not None:
            return answer
        done = market.supplier_update(body())
        return refused(done) if isinstance(done, str) else jsonify(done)
