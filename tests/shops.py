"""Each shop the sandbox plays, behind one small face, so a test of a General setting runs on every shop
alike: join an integration's shop side to it, read the order the hub made there, act in it as the seller
does in the shop's own panel."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import httpx

from connectors import ideasoft
from connectors.carriers import by_name
from connectors.http import Guard
from connectors.registry import SHOPS, Side
from connectors.tsoft import TRACKING_NOTE
from extensions import db
from models import Integration, Order
from models.base import utcnow
from models.crypto import encrypt_json
from sandbox.shopify import fulfilment_status, order_total
from sandbox.ticimax import STATUSES as TICIMAX_STATUSES
from sandbox.tsoft import CARGO_COMPANIES
from sync.statuses import CanonicalStatus
from tests.sandbox_server import Sandbox

WOO_KEYS = {"consumer_key": "ck_sandbox", "consumer_secret": "cs_sandbox"}


@dataclass(frozen=True)
class ShopView:
    """What the shop holds of an order, in the hub's terms."""

    shop_id: str  # as the hub keeps it (`Order.shop_id`)
    status: str  # the shop's status, as the hub names it (`ShopOrder.status`)
    total: Decimal
    tracking: str | None  # the tracking code the hub gave the shop, if any
    link: str  # the tracking link it gave ("" for none)
    shipping_net: Decimal | None  # the shipping charge before tax (None: the shop keeps it with tax only)


class Shop(Protocol):
    @property
    def kind(self) -> str: ...

    # A status the seller can give an order in the shop that no marketplace status becomes (None: the
    # shop has none: Shopify's orders are unfulfilled, fulfilled or cancelled).
    @property
    def hold(self) -> str | None: ...

    def join(self, integration: Integration, sandbox: Sandbox) -> None:
        """Point the integration's shop side at this shop of the sandbox."""
        ...

    def view(self, sandbox: Sandbox, order: Order) -> ShopView | None: ...

    def count(self, sandbox: Sandbox) -> int:
        """How many orders the shop has."""
        ...

    def set_status(self, sandbox: Sandbox, order: Order, status: str) -> None:
        """The seller gives the order a status in the shop."""
        ...

    def enter_tracking(self, sandbox: Sandbox, order: Order, carrier: str, code: str) -> None:
        """The seller enters the tracking code of a parcel sent with their own carrier."""
        ...


def status_for(shop: Shop, status: CanonicalStatus) -> str:
    """The shop status a canonical status becomes by default."""
    return SHOPS[shop.kind].default_status_map[status]


def _join(integration: Integration, kind: str, url: str, keys: dict[str, str]) -> None:
    integration.shop_kind = kind
    integration.shop_base_url = url
    integration.set_credentials(Side.SHOP, keys)
    db.session.commit()


@dataclass(frozen=True)
class WooCommerce:
    kind: str = "woocommerce"
    hold: str | None = "on-hold"

    def join(self, integration: Integration, sandbox: Sandbox) -> None:
        _join(integration, self.kind, sandbox.shop_url, WOO_KEYS)

    def _order(self, sandbox: Sandbox, order: Order) -> dict[str, Any] | None:
        return sandbox.shop_order_for(order.package_id)

    def view(self, sandbox: Sandbox, order: Order) -> ShopView | None:
        found = self._order(sandbox, order)
        if found is None:
            return None
        meta = {entry["key"]: entry["value"] for entry in found["meta_data"]}
        shipping = sum((Decimal(line["total"]) for line in found["shipping_lines"]), Decimal(0))
        return ShopView(
            shop_id=str(found["id"]),
            status=found["status"],
            total=Decimal(found["total"]),
            tracking=meta.get("hub_tracking_number"),
            link=meta.get("hub_tracking_url") or "",
            shipping_net=shipping.quantize(Decimal("0.01")),
        )

    def count(self, sandbox: Sandbox) -> int:
        return len(sandbox.shop_orders())

    def set_status(self, sandbox: Sandbox, order: Order, status: str) -> None:
        with sandbox.world.lock:
            sandbox.world.update_shop_order(self._order(sandbox, order) or {}, {"status": status})

    def enter_tracking(self, sandbox: Sandbox, order: Order, carrier: str, code: str) -> None:
        items = [{"tracking_provider": carrier, "tracking_number": code, "custom_tracking_link": ""}]
        with sandbox.world.lock:
            sandbox.world.update_shop_order(
                self._order(sandbox, order) or {},
                {"meta_data": [{"key": "_wc_shipment_tracking_items", "value": items}]},
            )


@dataclass(frozen=True)
class Shopify:
    kind: str = "shopify"
    hold: str | None = None

    def join(self, integration: Integration, sandbox: Sandbox) -> None:
        shop = sandbox.world.shopify
        keys = {"shopify_client_id": shop.client_id, "shopify_client_secret": shop.client_secret}
        _join(integration, self.kind, sandbox.shopify_url, keys)

    def _order(self, sandbox: Sandbox, order: Order) -> dict[str, Any] | None:
        return sandbox.world.shopify.order_for_reference(order.reference)

    def view(self, sandbox: Sandbox, order: Order) -> ShopView | None:
        found = self._order(sandbox, order)
        if found is None:
            return None
        tracking = [info for made in found["fulfillments"] for info in made.get("trackingInfo") or []]
        status = "cancelled" if found["cancelledAt"] else fulfilment_status(found).lower()
        shipping = sum(
            (
                Decimal(line["price"]) - sum((Decimal(tax["amount"]) for tax in line["taxLines"]), Decimal(0))
                for line in found["shippingLines"]
            ),
            Decimal(0),
        )
        return ShopView(
            shop_id=str(found["id"]),
            status=status,
            total=order_total(found),
            tracking=tracking[-1]["number"] if tracking else None,
            link=(tracking[-1].get("url") or "") if tracking else "",
            shipping_net=shipping,
        )

    def count(self, sandbox: Sandbox) -> int:
        return len(sandbox.world.shopify.orders)

    def set_status(self, sandbox: Sandbox, order: Order, status: str) -> None:
        found = self._order(sandbox, order) or {}
        shop = sandbox.world.shopify
        if status == "fulfilled":
            shop.fulfil(found["id"])
        elif status == "cancelled":
            shop.cancel(found["id"])
        else:
            raise AssertionError(f"a seller cannot make a Shopify order {status}")

    def enter_tracking(self, sandbox: Sandbox, order: Order, carrier: str, code: str) -> None:
        found = self._order(sandbox, order) or {}
        sandbox.world.shopify.fulfil(found["id"], tracking_number=code, company=carrier)


@dataclass(frozen=True)
class Tsoft:
    kind: str = "tsoft"
    hold: str | None = "1001"  # the sandbox store's own status, Hediye Paketi Hazırlanıyor

    def join(self, integration: Integration, sandbox: Sandbox) -> None:
        store = sandbox.world.tsoft
        keys = {"tsoft_user": store.user, "tsoft_password": store.password}
        _join(integration, self.kind, sandbox.tsoft_url, keys)

    def _order(self, sandbox: Sandbox, order: Order) -> dict[str, Any] | None:
        return sandbox.world.tsoft.order_for_reference(order.reference)

    def view(self, sandbox: Sandbox, order: Order) -> ShopView | None:
        found = self._order(sandbox, order)
        if found is None:
            return None
        # A code without a carrier is in the order's note (connectors/tsoft.py).
        noted = [
            note["Note"].split(TRACKING_NOTE)[1].strip()
            for note in found["_notes"]
            if TRACKING_NOTE in note["Note"]
        ]
        return ShopView(
            shop_id=found["OrderCode"],
            status=found["OrderStatusId"],
            total=Decimal(found["OrderTotalPrice"]),
            tracking=found["CargoTrackingCode"] or (noted[-1] if noted else None),
            link="",  # T-Soft makes the link itself
            shipping_net=None,
        )

    def count(self, sandbox: Sandbox) -> int:
        return len(sandbox.world.tsoft.orders)

    def set_status(self, sandbox: Sandbox, order: Order, status: str) -> None:
        sandbox.world.tsoft.set_status((self._order(sandbox, order) or {})["OrderCode"], status)

    def enter_tracking(self, sandbox: Sandbox, order: Order, carrier: str, code: str) -> None:
        cargo = next(
            company["CargoCode"] for company in CARGO_COMPANIES if company["CargoCompanyName"] == carrier
        )
        sandbox.world.tsoft.ship((self._order(sandbox, order) or {})["OrderCode"], cargo, code)


@dataclass(frozen=True)
class Ideasoft:
    kind: str = "ideasoft"
    hold: str | None = "personal_status_1"  # one of the seller's own statuses

    def join(self, integration: Integration, sandbox: Sandbox) -> None:
        """The seller enters the app's keys and connects the store on IdeaSoft's consent page; the tokens
        are kept as the panel's return from that page keeps them (blueprints/integrations/oauth.py)."""
        store = sandbox.world.ideasoft
        back = "http://hub.test/integrations/oauth/callback"
        consent = ideasoft.authorize_url(sandbox.ideasoft_url, store.client_id, back, "state-1")
        answer = httpx.get(consent, follow_redirects=False)
        code = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))["code"]
        guard = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), timeout=5)
        tokens = ideasoft.exchange_code(
            guard, sandbox.ideasoft_url, store.client_id, store.client_secret, code, back
        )
        integration.shop_tokens_encrypted = encrypt_json(ideasoft.credentials_of(tokens))
        integration.shop_connected_at = utcnow()
        keys = {"ideasoft_client_id": store.client_id, "ideasoft_client_secret": store.client_secret}
        _join(integration, self.kind, sandbox.ideasoft_url, keys)

    def _order(self, sandbox: Sandbox, order: Order) -> dict[str, Any] | None:
        return sandbox.world.ideasoft.order_for_reference(order.reference)

    def view(self, sandbox: Sandbox, order: Order) -> ShopView | None:
        found = self._order(sandbox, order)
        if found is None:
            return None
        return ShopView(
            shop_id=str(found["id"]),
            status=found["status"],
            total=Decimal(found["finalAmount"]),
            tracking=found["shippingTrackingCode"] or None,
            link="",  # IdeaSoft makes the link itself
            shipping_net=None,  # kept with VAT only
        )

    def count(self, sandbox: Sandbox) -> int:
        return len(sandbox.world.ideasoft.orders)

    def set_status(self, sandbox: Sandbox, order: Order, status: str) -> None:
        sandbox.world.ideasoft.set_status((self._order(sandbox, order) or {})["id"], status)

    def enter_tracking(self, sandbox: Sandbox, order: Order, carrier: str, code: str) -> None:
        provider, _ = by_name(ideasoft.PROVIDERS, carrier) or ("", "")
        sandbox.world.ideasoft.ship((self._order(sandbox, order) or {})["id"], provider, code)


@dataclass(frozen=True)
class Ticimax:
    kind: str = "ticimax"
    hold: str | None = "TedarikEdiliyor"  # sourcing: a status no marketplace status becomes

    def join(self, integration: Integration, sandbox: Sandbox) -> None:
        _join(integration, self.kind, sandbox.ticimax_url, {"ticimax_ws_code": sandbox.world.ticimax.ws_code})

    def _order(self, sandbox: Sandbox, order: Order) -> dict[str, Any] | None:
        return sandbox.world.ticimax.order_for_reference(order.reference)

    def view(self, sandbox: Sandbox, order: Order) -> ShopView | None:
        found = self._order(sandbox, order)
        if found is None:
            return None
        return ShopView(
            shop_id=str(found["ID"]),
            status=TICIMAX_STATUSES[found["Durum"]][0],  # the enum name, as the hub has it
            total=Decimal(found["SiparisToplamTutari"]),
            tracking=found["KargoTakipNo"] or None,
            link=found["KargoTakipLink"],
            shipping_net=None,  # kept with VAT only
        )

    def count(self, sandbox: Sandbox) -> int:
        return len(sandbox.world.ticimax.orders)

    def set_status(self, sandbox: Sandbox, order: Order, status: str) -> None:
        sandbox.world.ticimax.set_status((self._order(sandbox, order) or {})["ID"], status)

    def enter_tracking(self, sandbox: Sandbox, order: Order, carrier: str, code: str) -> None:
        sandbox.world.ticimax.save_tracking((self._order(sandbox, order) or {})["ID"], carrier, code, "")


WOOCOMMERCE, SHOPIFY, TSOFT, IDEASOFT = WooCommerce(), Shopify(), Tsoft(), Ideasoft()
TICIMAX = Ticimax()
SHOP_FACES: tuple[Shop, ...] = (WOOCOMMERCE, SHOPIFY, TSOFT, IDEASOFT, TICIMAX)
