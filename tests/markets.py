"""Each marketplace the sandbox plays, behind one small face, so a test of a General setting runs on every
marketplace alike: join an integration to it, make an order, move it on as the marketplace would, read
what the hub told it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from connectors import ciceksepeti
from connectors.carriers import tracking_page
from connectors.registry import MARKETPLACES, Side
from extensions import db
from models import Account, Integration, Order
from sync.settings import TrackingCodeSource
from tests.conftest import make_integration
from tests.sandbox_server import Sandbox

TSHIRT = "8680001000011"  # TS-BEYAZ-M, 149.90, VAT 10
OIL = "8680001000097"  # ZEYTINYAGI-1L, 389.00, VAT 1
SHOP_KEYS = {"consumer_key": "ck_sandbox", "consumer_secret": "cs_sandbox"}


class Market(Protocol):
    @property
    def kind(self) -> str: ...

    # The marketplace's name for a new order's status, and for it once the hub approved it (None: the
    # marketplace has no approval step).
    @property
    def created(self) -> str: ...

    @property
    def accepted(self) -> str | None: ...

    def seller_code(self, sandbox: Sandbox, package_id: str) -> str | None:
        """The seller's own tracking code as the marketplace holds it (Update Feedback), if any."""
        ...

    def join(self, account: Account, sandbox: Sandbox) -> Integration:
        """An integration of this marketplace joined to the sandbox's shop, with an own shipping agreement."""
        ...

    def new_order(self, sandbox: Sandbox, lines: list[tuple[str, int]] | None = None) -> str:
        """A new order (a T-shirt by default); its package id in the hub."""
        ...

    def ship(self, sandbox: Sandbox, package_id: str) -> None:
        """The carrier has the parcel: shipped, with the marketplace's tracking code and link."""
        ...

    def ship_without_link(self, sandbox: Sandbox, package_id: str, carrier: str, code: str) -> None:
        """Shipped with `carrier` and `code`, and no link from the marketplace."""
        ...

    def cancel(self, sandbox: Sandbox, package_id: str) -> None:
        """The customer (or the marketplace) cancels the whole order."""
        ...

    def status(self, sandbox: Sandbox, package_id: str) -> str:
        """The order's status as the marketplace shows it."""
        ...

    def code(self, sandbox: Sandbox, package_id: str, source: TrackingCodeSource) -> str | None:
        """What the marketplace holds for the tracking code source (the shop gets exactly this; None: the
        marketplace has no such code, and the shop gets none)."""
        ...

    def link(self, sandbox: Sandbox, package_id: str) -> str:
        """The marketplace's tracking link."""
        ...


def order_of(package_id: str) -> Order:
    order = db.session.scalar(sa.select(Order).where(Order.package_id == package_id))
    assert order is not None, f"package {package_id} is not in the hub"
    return order


def _joined(account: Account, sandbox: Sandbox, kind: str, url: str, keys: dict[str, str]) -> Integration:
    integration = make_integration(
        account,
        name=f"{MARKETPLACES[kind].label} → Woo",
        marketplace_kind=kind,
        marketplace_base_url=url,
        shop_base_url=sandbox.shop_url,
    )
    integration.set_credentials(Side.MARKETPLACE, keys)
    integration.set_credentials(Side.SHOP, SHOP_KEYS)
    db.session.commit()
    return integration


@dataclass(frozen=True)
class Trendyol:
    kind: str = "trendyol"
    created: str = "Created"
    accepted: str | None = "Picking"

    def seller_code(self, sandbox: Sandbox, package_id: str) -> str | None:
        return sandbox.package(package_id).get("cargoSenderNumber")

    def join(self, account: Account, sandbox: Sandbox) -> Integration:
        keys = {"seller_id": "100200", "api_key": "sandbox-key", "api_secret": "sandbox-secret"}
        return _joined(account, sandbox, self.kind, sandbox.marketplace_url, keys)

    def new_order(self, sandbox: Sandbox, lines: list[tuple[str, int]] | None = None) -> str:
        spec = [{"barcode": barcode, "quantity": quantity} for barcode, quantity in lines or [(TSHIRT, 1)]]
        return str(sandbox.order(lines=spec)["shipmentPackageId"])

    def ship(self, sandbox: Sandbox, package_id: str) -> None:
        sandbox.set_status(package_id, "Shipped")

    def ship_without_link(self, sandbox: Sandbox, package_id: str, carrier: str, code: str) -> None:
        package = sandbox.package(package_id)
        with sandbox.world.lock:
            package.update(cargoTrackingNumber=code, cargoProviderName=f"{carrier} Marketplace")
            sandbox.world.set_status(package, "Shipped")
            package["cargoTrackingLink"] = None

    def cancel(self, sandbox: Sandbox, package_id: str) -> None:
        sandbox.set_status(package_id, "Cancelled")

    def status(self, sandbox: Sandbox, package_id: str) -> str:
        return str(sandbox.package(package_id)["status"])

    def code(self, sandbox: Sandbox, package_id: str, source: TrackingCodeSource) -> str:
        field = {
            TrackingCodeSource.TRACKING_NUMBER: "cargoTrackingNumber",
            TrackingCodeSource.SHIPMENT_BARCODE: "cargoSenderNumber",
            TrackingCodeSource.PACKAGE_NUMBER: "shipmentPackageId",
        }[source]
        return str(sandbox.package(package_id)[field])

    def link(self, sandbox: Sandbox, package_id: str) -> str:
        return str(sandbox.package(package_id)["cargoTrackingLink"])


@dataclass(frozen=True)
class N11:
    kind: str = "n11"
    created: str = "Created"
    accepted: str | None = "Picking"

    def seller_code(self, sandbox: Sandbox, package_id: str) -> str | None:
        return None  # N11 takes no own carrier's code through its REST API (Update Feedback unavailable)

    def join(self, account: Account, sandbox: Sandbox) -> Integration:
        keys = {"app_key": "n11-sandbox-key", "app_secret": "n11-sandbox-secret"}
        return _joined(account, sandbox, self.kind, sandbox.n11_url, keys)

    def new_order(self, sandbox: Sandbox, lines: list[tuple[str, int]] | None = None) -> str:
        spec = [{"barcode": barcode, "quantity": quantity} for barcode, quantity in lines or [(TSHIRT, 1)]]
        return str(sandbox.world.n11.create_package({"lines": spec})["id"])

    def _package(self, sandbox: Sandbox, package_id: str) -> dict[str, Any]:
        return sandbox.world.n11.packages[int(package_id)]

    def ship(self, sandbox: Sandbox, package_id: str) -> None:
        sandbox.world.n11.set_status(self._package(sandbox, package_id), "Shipped")

    def ship_without_link(self, sandbox: Sandbox, package_id: str, carrier: str, code: str) -> None:
        package = self._package(sandbox, package_id)
        with sandbox.world.n11.lock:
            package.update(cargoSenderNumber=code, cargoProviderName=carrier)
            sandbox.world.n11.set_status(package, "Shipped")
            package["cargoTrackingLink"] = None

    def cancel(self, sandbox: Sandbox, package_id: str) -> None:
        sandbox.world.n11.set_status(self._package(sandbox, package_id), "Cancelled")

    def status(self, sandbox: Sandbox, package_id: str) -> str:
        return str(self._package(sandbox, package_id)["shipmentPackageStatus"])

    def code(self, sandbox: Sandbox, package_id: str, source: TrackingCodeSource) -> str:
        package = self._package(sandbox, package_id)
        # N11's carrier tracking number is cargoSenderNumber; its campaign code (cargoTrackingNumber) is
        # what the hub calls the shipment barcode (connectors/n11.py).
        field = {
            TrackingCodeSource.TRACKING_NUMBER: "cargoSenderNumber",
            TrackingCodeSource.SHIPMENT_BARCODE: "cargoTrackingNumber",
            TrackingCodeSource.PACKAGE_NUMBER: "id",
        }[source]
        return str(package[field])

    def link(self, sandbox: Sandbox, package_id: str) -> str:
        return str(self._package(sandbox, package_id)["cargoTrackingLink"])


@dataclass(frozen=True)
class Hepsiburada:
    """An order is the hub's package (its order number); its lines go into HB packages as they are packed."""

    kind: str = "hepsiburada"
    created: str = "Open"
    accepted: str | None = "Packaged"

    def join(self, account: Account, sandbox: Sandbox) -> Integration:
        market = sandbox.world.hepsiburada
        keys = {"merchant_id": market.merchant_id, "service_key": market.service_key}
        return _joined(account, sandbox, self.kind, sandbox.hepsiburada_url, keys)

    def new_order(self, sandbox: Sandbox, lines: list[tuple[str, int]] | None = None) -> str:
        spec = [{"barcode": barcode, "quantity": quantity} for barcode, quantity in lines or [(TSHIRT, 1)]]
        return str(sandbox.world.hepsiburada.create_order({"lines": spec})["orderNumber"])

    def _package(self, sandbox: Sandbox, package_id: str) -> dict[str, Any]:
        """The order's HB package; lines still open are packed first, as HB does on its own after a while."""
        market = sandbox.world.hepsiburada
        with market.lock:
            items = market.orders[package_id]["items"]
            number = next((line["packageNumber"] for line in items if line["packageNumber"]), None)
            if number is None:
                lines = [(line["id"], line["quantity"]) for line in items]
                number = market.pack(package_id, lines, notify=True)["packageNumber"]
            return market.packages[number]

    def ship(self, sandbox: Sandbox, package_id: str) -> None:
        sandbox.world.hepsiburada.set_package_status(
            self._package(sandbox, package_id)["packageNumber"], "InTransit"
        )

    def ship_without_link(self, sandbox: Sandbox, package_id: str, carrier: str, code: str) -> None:
        market = sandbox.world.hepsiburada
        with market.lock:
            package = self._package(sandbox, package_id)
            market.set_package_status(
                package["packageNumber"], "InTransit", trackingInfoCode=code, cargoCompany=carrier
            )
            package["trackingInfoUrl"] = ""

    def cancel(self, sandbox: Sandbox, package_id: str) -> None:
        market = sandbox.world.hepsiburada
        market.cancel_lines(package_id, [line["id"] for line in market.orders[package_id]["items"]])

    def status(self, sandbox: Sandbox, package_id: str) -> str:
        """The order's lines' status, as HB shows it (all lines move together in these tests)."""
        (status,) = {line["status"] for line in sandbox.world.hepsiburada.orders[package_id]["items"]}
        return str(status)

    def code(self, sandbox: Sandbox, package_id: str, source: TrackingCodeSource) -> str:
        field = {
            TrackingCodeSource.TRACKING_NUMBER: "trackingInfoCode",
            TrackingCodeSource.SHIPMENT_BARCODE: "barcode",
            TrackingCodeSource.PACKAGE_NUMBER: "packageNumber",
        }[source]
        return str(self._package(sandbox, package_id)[field])

    def link(self, sandbox: Sandbox, package_id: str) -> str:
        return str(self._package(sandbox, package_id)["trackingInfoUrl"])

    def seller_code(self, sandbox: Sandbox, package_id: str) -> str | None:
        package = self._package(sandbox, package_id)
        return str(package["trackingInfoCode"]) if package["status"] == "InTransit" else None


# Amazon lists a change only two minutes after it: the tests' Amazon writes its times three minutes back,
# so what it does is listed at once while the connector keeps to Amazon's rule.
AMAZON_STAMPED_BEHIND = 180.0


@dataclass(frozen=True)
class Amazon:
    """An order is the hub's package; the seller ships it (a shipment confirmation, here or in Seller
    Central) with a carrier and tracking number, and Amazon gives no link nor barcode of its own."""

    kind: str = "amazon"
    created: str = "UNSHIPPED"
    accepted: str | None = None  # Amazon has no approval step

    def join(self, account: Account, sandbox: Sandbox) -> Integration:
        market = sandbox.world.amazon
        market.stamped_behind = AMAZON_STAMPED_BEHIND
        # A usage plan of a request a second: a 429 (the bad day's) asks for a second's wait, not three
        # minutes (test_amazon.py reads the default plan's).
        market.rates = dict.fromkeys(market.rates, "1")
        keys = {
            "refresh_token": market.refresh_token,
            "client_id": market.client_id,
            "client_secret": market.client_secret,
            "merchant_token": market.seller_id,
        }
        return _joined(account, sandbox, self.kind, sandbox.amazon_url, keys)

    def new_order(self, sandbox: Sandbox, lines: list[tuple[str, int]] | None = None) -> str:
        items = [{"barcode": barcode, "quantity": quantity} for barcode, quantity in lines or [(TSHIRT, 1)]]
        return str(sandbox.world.amazon.create_order({"items": items})["orderId"])

    def _order(self, sandbox: Sandbox, package_id: str) -> dict[str, Any]:
        return sandbox.world.amazon.orders[package_id]

    def _confirm(self, sandbox: Sandbox, package_id: str, carrier: str, code: str) -> None:
        """The seller confirms the shipment in Seller Central: every unit, one parcel."""
        order = self._order(sandbox, package_id)
        items = [
            {"orderItemId": item["orderItemId"], "quantity": item["fulfillment"]["quantityUnfulfilled"]}
            for item in order["orderItems"]
        ]
        detail = {
            "packageReferenceId": str(len(order["packages"]) + 1),  # a positive number, per order
            "carrierCode": "Other",
            "carrierName": carrier,
            "shippingMethod": "Standard",
            "trackingNumber": code,
            "shipDate": order["lastUpdatedTime"],
            "orderItems": items,
        }
        sandbox.world.amazon.confirm(package_id, {"marketplaceId": "A33AVAJ2PDY3EV", "packageDetail": detail})

    def ship(self, sandbox: Sandbox, package_id: str) -> None:
        self._confirm(sandbox, package_id, "Yurtiçi Kargo", f"YK{package_id[-7:]}")

    def ship_without_link(self, sandbox: Sandbox, package_id: str, carrier: str, code: str) -> None:
        self._confirm(sandbox, package_id, carrier, code)

    def cancel(self, sandbox: Sandbox, package_id: str) -> None:
        sandbox.world.amazon.cancel(package_id)

    def status(self, sandbox: Sandbox, package_id: str) -> str:
        return str(self._order(sandbox, package_id)["fulfillment"]["fulfillmentStatus"])

    def code(self, sandbox: Sandbox, package_id: str, source: TrackingCodeSource) -> str | None:
        parcels = self._order(sandbox, package_id)["packages"]
        field = {
            TrackingCodeSource.TRACKING_NUMBER: "trackingNumber",
            TrackingCodeSource.SHIPMENT_BARCODE: None,  # Amazon has none
            TrackingCodeSource.PACKAGE_NUMBER: "packageReferenceId",
        }[source]
        return str(parcels[-1][field]) if field else None

    def link(self, sandbox: Sandbox, package_id: str) -> str:
        """Amazon gives no tracking link: a forced one is the carrier's page."""
        parcel = self._order(sandbox, package_id)["packages"][-1]
        template = tracking_page(parcel["carrier"])
        assert template is not None
        return template.format(code=parcel["trackingNumber"])

    def seller_code(self, sandbox: Sandbox, package_id: str) -> str | None:
        parcels = self._order(sandbox, package_id)["packages"]
        return str(parcels[-1]["trackingNumber"]) if parcels else None


class SteppedClock(ciceksepeti.Clock):
    """Time for Çiçeksepeti's pace in the tests: the monotonic clock, moved on by each sleep instead of
    waiting in it. The connector's pacer and the sandbox's rate limits share one, so the limits hold."""

    def __init__(self) -> None:
        self.ahead = 0.0
        self.lock = threading.Lock()

    def now(self) -> float:
        with self.lock:
            return time.monotonic() + self.ahead

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.ahead += max(seconds, 0.0)


def stepped(sandbox: Sandbox) -> SteppedClock:
    """One stepped clock for the process's Çiçeksepeti pacer and the sandbox's Çiçeksepeti."""
    clock = SteppedClock()
    ciceksepeti.PACER.use(clock)
    sandbox.world.ciceksepeti.clock = clock.now
    return clock


@dataclass(frozen=True)
class Ciceksepeti:
    """An order is the hub's package; its items are rows of their own at Çiçeksepeti, moving together
    here. The seller ships with their own carrier (cargoModelType 2): preparing is the accepted status."""

    kind: str = "ciceksepeti"
    created: str = "1"
    accepted: str | None = "2"

    def join(self, account: Account, sandbox: Sandbox) -> Integration:
        stepped(sandbox)
        market = sandbox.world.ciceksepeti
        keys = {"ciceksepeti_seller_id": market.seller_id, "ciceksepeti_api_key": market.api_key}
        return _joined(account, sandbox, self.kind, sandbox.ciceksepeti_url, keys)

    def new_order(self, sandbox: Sandbox, lines: list[tuple[str, int]] | None = None) -> str:
        spec = [{"barcode": barcode, "quantity": quantity} for barcode, quantity in lines or [(TSHIRT, 1)]]
        return str(sandbox.world.ciceksepeti.create_order({"lines": spec})["orderId"])

    def _row(self, sandbox: Sandbox, package_id: str) -> dict[str, Any]:
        return sandbox.world.ciceksepeti.rows_of(package_id)[0]

    def ship(self, sandbox: Sandbox, package_id: str) -> None:
        sandbox.world.ciceksepeti.ship(package_id)

    def ship_without_link(self, sandbox: Sandbox, package_id: str, carrier: str, code: str) -> None:
        sandbox.world.ciceksepeti.ship(package_id, carrier, code, link=None)

    def cancel(self, sandbox: Sandbox, package_id: str) -> None:
        sandbox.world.ciceksepeti.cancel(package_id)

    def status(self, sandbox: Sandbox, package_id: str) -> str:
        return str(self._row(sandbox, package_id)["orderItemStatusId"])

    def code(self, sandbox: Sandbox, package_id: str, source: TrackingCodeSource) -> str | None:
        row = self._row(sandbox, package_id)
        if source is TrackingCodeSource.PACKAGE_NUMBER:
            return str(row["orderId"])
        # The own-cargo path has no label number (partialNumber): the shop gets none for it.
        value = row["cargoNumber" if source is TrackingCodeSource.TRACKING_NUMBER else "partialNumber"]
        return str(value) if value else None

    def link(self, sandbox: Sandbox, package_id: str) -> str:
        return str(self._row(sandbox, package_id)["shipmentTrackingUrl"])

    def seller_code(self, sandbox: Sandbox, package_id: str) -> str | None:
        row = self._row(sandbox, package_id)
        return str(row["cargoNumber"]) if row["orderItemStatusId"] in (5, 11) else None


@dataclass(frozen=True)
class Pazarama:
    """An order is the hub's package (its orderNumber); Pazarama keeps a status per item, all alike here."""

    kind: str = "pazarama"
    created: str = "3"  # Alındı
    accepted: str | None = "12"  # Hazırlanıyor

    def join(self, account: Account, sandbox: Sandbox) -> Integration:
        market = sandbox.world.pazarama
        keys = {"pazarama_client_id": market.client_id, "pazarama_client_secret": market.client_secret}
        return _joined(account, sandbox, self.kind, sandbox.pazarama_url, keys)

    def new_order(self, sandbox: Sandbox, lines: list[tuple[str, int]] | None = None) -> str:
        spec = [{"barcode": barcode, "quantity": quantity} for barcode, quantity in lines or [(TSHIRT, 1)]]
        return str(sandbox.world.pazarama.create_order({"lines": spec})["orderNumber"])

    def _order(self, sandbox: Sandbox, package_id: str) -> dict[str, Any]:
        return sandbox.world.pazarama.orders[int(package_id)]

    def _item(self, sandbox: Sandbox, package_id: str) -> dict[str, Any]:
        item: dict[str, Any] = self._order(sandbox, package_id)["items"][0]
        return item

    def ship(self, sandbox: Sandbox, package_id: str) -> None:
        sandbox.world.pazarama.set_status(self._order(sandbox, package_id), 5)

    def ship_without_link(self, sandbox: Sandbox, package_id: str, carrier: str, code: str) -> None:
        order = self._order(sandbox, package_id)
        market = sandbox.world.pazarama
        market.set_status(order, 5, companyName=carrier, trackingNumber=code, trackingUrl=None)

    def cancel(self, sandbox: Sandbox, package_id: str) -> None:
        sandbox.world.pazarama.set_status(self._order(sandbox, package_id), 6)

    def status(self, sandbox: Sandbox, package_id: str) -> str:
        return str(self._item(sandbox, package_id)["orderItemStatus"])

    def code(self, sandbox: Sandbox, package_id: str, source: TrackingCodeSource) -> str:
        item = self._item(sandbox, package_id)
        # The carrier's number is the item's cargo.trackingNumber; shipmentCode is what the hub calls the
        # shipment barcode (connectors/pazarama.py); the package number is the orderNumber.
        return {
            TrackingCodeSource.TRACKING_NUMBER: str(item["cargo"]["trackingNumber"]),
            TrackingCodeSource.SHIPMENT_BARCODE: str(item["shipmentCode"]),
            TrackingCodeSource.PACKAGE_NUMBER: package_id,
        }[source]

    def link(self, sandbox: Sandbox, package_id: str) -> str:
        return str(self._item(sandbox, package_id)["cargo"]["trackingUrl"])

    def seller_code(self, sandbox: Sandbox, package_id: str) -> str | None:
        """The code of a parcel the seller shipped with a carrier of their own (deliveryType 1)."""
        item = self._item(sandbox, package_id)
        return str(item["cargo"]["trackingNumber"]) if item["deliveryType"] == 1 else None


TRENDYOL, HEPSIBURADA, N11_, AMAZON, CICEKSEPETI = Trendyol(), Hepsiburada(), N11(), Amazon(), Ciceksepeti()
PAZARAMA = Pazarama()
MARKETS: tuple[Market, ...] = (TRENDYOL, HEPSIBURADA, N11_, AMAZON, CICEKSEPETI, PAZARAMA)
