"""WooCommerce REST API v3: shop orders created by SKU, found again by the hub's reference in meta_data.

Every shop order carries the hub's reference in its meta_data, so a retry after a lost answer finds the
order the first attempt created (`find_order`) instead of creating a second. WooCommerce has no tracking
field: the code and the link go into the order's meta_data (`hub_tracking_number`, `hub_tracking_url`,
`hub_carrier`) and into a note the customer sees. Tracking numbers the seller enters through the Shipment
Tracking extension (`_wc_shipment_tracking_items`) are read back for the reverse flow.

Totals: the shop order must come to what the customer paid on the marketplace, to the cent. WooCommerce
calculates an order's taxes and total itself when it is created (and when its items change): from the
store's tax settings and rates, ignoring any tax or total a client sends, with line totals always before
tax. So the connector reads the store's rates (GET /taxes, kept a while: `RATES`) and sends each line
before tax at the marketplace's VAT rate, to six decimals (WooCommerce keeps line totals unrounded), with
the tax class whose rate for the customer's country is that VAT rate (none matching: no class is sent and
the product's own applies); the shipping line likewise, at the rate the hub chose for it. In a store with
those rates the total comes back right, or a cent off where WooCommerce rounds each line's tax. Whatever
still differs (a cent, a store with taxes off, other rates, another shipping tax class) goes on the order
as one fee line without tax (`settle_total`), added or changed in place, never a second, so the order's
total is the marketplace's. The hub's `hub_vat_rate` meta stays on the lines for the seller; nothing
depends on it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from itertools import islice
from typing import Any, TypeVar

import httpx

from connectors.base import (
    Address,
    ConnectorError,
    InvalidAnswer,
    ShippingCharge,
    ShopLine,
    ShopOrder,
    ShopOrderPlan,
    WebhookNotice,
    WebhookRefused,
)
from connectors.http import Guard, Outbound, json_body

log = logging.getLogger(__name__)

T = TypeVar("T")
REFERENCE_KEY = "hub_reference"
TRACKING_KEYS = ("hub_tracking_number", "hub_tracking_url", "hub_carrier")
PER_PAGE = 100
MAX_PAGES = 10_000
# Amounts before tax go out to six decimals: WooCommerce keeps them so and taxes them unrounded.
NET = Decimal("0.000001")
# The one fee line that brings the shop order's total to the marketplace's; known by its meta key.
CORRECTION_KEY = "hub_total_correction"
CORRECTION_NAME = "Pazaryeri tutar farkı"
# The store's tax rates, by store: (when read, the rates). Read at most once per RATES_FOR seconds per
# process, since a connector is built per action and a transfer would otherwise pay a second WordPress
# request for them; a store's new rates show within that time, and the correction fee keeps every total
# exact meanwhile. At most RATES_PAGES pages (a store with postcode tables of thousands of rates has the
# rest taxed by its products' classes).
RATES: dict[str, tuple[float, list[dict[str, Any]]]] = {}
RATES_FOR = 600.0
RATES_PAGES = 10
# The webhooks the hub registers: an order created (by the seller, say) or changed in the shop.
TOPICS = ("order.created", "order.updated")
# What WooCommerce sends a delivery URL when a webhook is created or activated: no topic, no signature.
PING = re.compile(rb"webhook_id=[0-9]{1,20}")
# A tax rate bound to any of these applies to part of a country only.
LOCAL_KEYS = ("state", "postcode", "city", "postcodes", "cities")


class WooCommerceConnector:
    kind = "woocommerce"

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        guard: Guard,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = f"{base_url.rstrip('/')}/wp-json/wc/v3"
        self.http = Outbound(
            guard,
            platform="WooCommerce",
            auth=(credentials["consumer_key"], credentials["consumer_secret"]),
            headers={"User-Agent": "OrderHub"},
            transport=transport,
        )
        # The store as the rates' cache knows it: its address and whose keys (a digest, not the key).
        key = hashlib.sha256(credentials["consumer_key"].encode()).hexdigest()[:16]
        self.store = f"{self.base} {key}"

    def close(self) -> None:
        self.http.close()

    def _json(self, method: str, path: str, shape: type[T], **kwargs: Any) -> T:
        return json_body(self.http.request(method, f"{self.base}{path}", **kwargs), shape, "WooCommerce")

    def find_order(self, reference: str, since: datetime | None = None) -> ShopOrder | None:
        """The shop order carrying the reference. `search` first (only an exact meta match counts); many
        stores' search does not look into custom meta, so then the orders created since `since` are read,
        oldest first, and matched one by one: a create that went out just after `since` is on the first
        page, however many orders the shop took or changed since."""
        found = self._json("GET", "/orders", list, params={"search": reference, "per_page": PER_PAGE})
        for raw in _objects(found):
            if _meta(raw).get(REFERENCE_KEY) == reference:
                return parse_order(raw)
        if since is None:
            return None
        for raw in self._pages({"after": _gmt(since), "orderby": "date"}):
            if _meta(raw).get(REFERENCE_KEY) == reference:
                return parse_order(raw)
        return None

    def create_order(self, plan: ShopOrderPlan) -> ShopOrder:
        """Create the order, then bring its total to the marketplace's (`settle_total`, from the create's
        answer). Only the create is this call's to fail: the hub reads a refused create as "nothing was
        made", which must not be said of an order that exists. So a correction that fails is left to be
        asked for again: the order comes back with the total the shop calculated, and the hub, seeing it
        differ from `plan.total`, calls `settle_total`."""
        classes = self._tax_classes(plan.shipping.country)
        body = {
            "status": plan.status,
            # Paid on the marketplace; `set_paid` would run WooCommerce's payment_complete(), which overrides
            # the mapped status with its own.
            "set_paid": False,
            "currency": plan.currency,
            "payment_method": plan.marketplace,
            "payment_method_title": plan.marketplace.title(),
            "billing": {**_address(plan.billing), "email": plan.customer_email},
            "shipping": _address(plan.shipping),
            "line_items": [_line_item(line, classes) for line in plan.lines],
            "shipping_lines": [_shipping_line(plan.shipping_charge)],
            "meta_data": [
                {"key": REFERENCE_KEY, "value": plan.reference},
                {"key": "hub_marketplace", "value": plan.marketplace},
                {"key": "hub_marketplace_order_number", "value": plan.order_number},
                {"key": "hub_shipment_package_id", "value": plan.package_id},
            ],
        }
        raw = self._json("POST", "/orders", dict, json=body)
        created = parse_order(raw)
        try:
            return parse_order(self._settle(created.shop_id, raw, plan.total))
        except ConnectorError as error:
            log.warning("WooCommerce order %s: total not corrected yet: %s", created.shop_id, error)
            return created

    def settle_total(self, shop_id: str, total: Decimal) -> ShopOrder:
        """Bring the shop order's total to `total` (the marketplace's, VAT included) with its one correction
        fee line: added, or changed in place, and only if the total differs. Idempotent: asked again, after a
        lost answer or on an order found by reference, it reads the order and does only what is left."""
        return parse_order(self._settle(shop_id, self._json("GET", f"/orders/{shop_id}", dict), total))

    def _settle(self, shop_id: str, raw: Mapping[str, Any], total: Decimal) -> Mapping[str, Any]:
        shop_total = parse_order(raw).total
        if shop_total is None:
            raise InvalidAnswer("WooCommerce's order has no total")
        if shop_total == total:
            return raw
        fees = _objects(raw.get("fee_lines") or [])
        fee = next((fee for fee in fees if _meta(fee).get(CORRECTION_KEY)), None)
        amount = total - shop_total + (_decimal(fee.get("total"), "fee total") if fee else 0)
        line: dict[str, Any] = {"name": CORRECTION_NAME, "total": str(amount), "tax_status": "none"}
        if fee:
            line["id"] = fee["id"]
        else:
            line["meta_data"] = [{"key": CORRECTION_KEY, "value": "1"}]
        return self._json("PUT", f"/orders/{shop_id}", dict, json={"fee_lines": [line]})

    def _tax_classes(self, country: str) -> dict[Decimal, str]:
        """The store's tax class for each rate it charges in `country` ("" is the standard class in an
        order, as WooCommerce wants it), from its rates as this process last read them (`RATES`). Rates
        that cannot be read leave every line to its product's class: the correction still settles the
        total, and the order is not held up for a list that only spares a fee line."""
        now = time.monotonic()
        read = RATES.get(self.store)
        if read is None or now - read[0] > RATES_FOR:
            try:
                rates = list(islice(self._collection("/taxes", {}), RATES_PAGES * PER_PAGE))
            except ConnectorError as error:
                log.warning("WooCommerce store %s: tax rates not read: %s", self.base, error)
                rates = []
            read = RATES[self.store] = (now, rates)
        return tax_classes(read[1], country)

    def get_order(self, shop_id: str) -> ShopOrder:
        return parse_order(self._json("GET", f"/orders/{shop_id}", dict))

    def set_status(self, shop_id: str, status: str) -> ShopOrder:
        return parse_order(self._json("PUT", f"/orders/{shop_id}", dict, json={"status": status}))

    def set_tracking(self, shop_id: str, carrier: str, code: str, link: str) -> ShopOrder:
        """Write the code into meta_data and tell the customer in a note; each step only if not done yet,
        so a retry after a half-done attempt finishes the job without repeating it."""
        raw = self._json("GET", f"/orders/{shop_id}", dict)
        wanted = dict(zip(TRACKING_KEYS, (code, link, carrier), strict=True))
        meta = _meta(raw)
        if any(meta.get(key) != value for key, value in wanted.items()):
            body = {"meta_data": [{"key": key, "value": value} for key, value in wanted.items()]}
            raw = self._json("PUT", f"/orders/{shop_id}", dict, json=body)
        note = " ".join(filter(None, (f"Kargo: {carrier}." if carrier else "", f"Takip no: {code}", link)))
        self.add_note(shop_id, note, customer_note=True)
        return parse_order(raw)

    def add_note(self, shop_id: str, note: str, customer_note: bool = False) -> None:
        """Add a note, unless the order carries the same one already (a retry after a lost answer)."""
        notes = self._json("GET", f"/orders/{shop_id}/notes", list)
        if any(existing.get("note") == note for existing in _objects(notes)):
            return
        self.http.request(
            "POST", f"{self.base}/orders/{shop_id}/notes", json={"note": note, "customer_note": customer_note}
        )

    def changed_since(self, since: datetime) -> Sequence[ShopOrder]:
        orders = self._pages({"modified_after": _gmt(since), "orderby": "modified"})
        return [parse_order(raw) for raw in orders if _meta(raw).get(REFERENCE_KEY)]

    def statuses(self) -> dict[str, str]:
        """The store's order statuses with their names, custom ones (added by a plugin) too: WooCommerce
        lists them, with their order counts, in its orders totals report."""
        found = self._json("GET", "/reports/orders/totals", list)
        names = {}
        for entry in _objects(found):
            slug, name = entry.get("slug"), entry.get("name")
            if isinstance(slug, str) and slug and len(slug) <= 32 and isinstance(name, str):
                names[slug] = name.strip()[:100] or slug
        return names

    def subscribe(self, callback_url: str, secret: str) -> str:
        """The store's webhooks for orders created and updated, delivered to `callback_url` and signed with
        `secret`: a missing one is created, one already there is given the secret again and activated
        (WooCommerce disables a webhook after repeated failed deliveries)."""
        existing = {
            str(hook.get("topic")): hook
            for hook in self._collection("/webhooks", {})
            if hook.get("delivery_url") == callback_url
        }
        for topic in TOPICS:
            hook = existing.get(topic)
            body = {"status": "active", "secret": secret}
            if hook is None:
                body.update(name=f"OrderHub {topic}", topic=topic, delivery_url=callback_url)
                self._json("POST", "/webhooks", dict, json=body)
            elif isinstance(hook.get("id"), int) and not isinstance(hook.get("id"), bool):
                self._json("PUT", f"/webhooks/{hook['id']}", dict, json=body)
            else:
                raise InvalidAnswer("WooCommerce's webhook list has a webhook without an id")
        return f"WooCommerce webhooks for {' and '.join(TOPICS)}"

    def _pages(self, window: dict[str, str]) -> Iterator[dict[str, Any]]:
        """The orders in a date window, oldest first, a page at a time as they are read."""
        return self._collection("/orders", {**window, "dates_are_gmt": "true", "order": "asc"})

    def _collection(self, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        """Every item of a collection, a page at a time as they are read."""
        page = 1
        while True:
            response = self.http.request(
                "GET", f"{self.base}{path}", params={**params, "per_page": PER_PAGE, "page": page}
            )
            yield from _objects(json_body(response, list, "WooCommerce"))
            if page >= _total_pages(response):
                return
            page += 1


def read_webhook(headers: Mapping[str, str], body: bytes, secret: str, path: str = "") -> WebhookNotice:
    """A WooCommerce webhook delivery: `X-WC-Webhook-Signature`, base64(HMAC-SHA256(raw body, secret)),
    checked before anything is read. The ping WooCommerce sends when a webhook is created carries no
    signature and names nothing: it is taken, and nothing is done with it. The key is the body's digest:
    WooCommerce sends the whole order with its modification time, so the same change sent twice is one."""
    named = {name.lower(): value for name, value in headers.items()}
    topic = named.get("x-wc-webhook-topic", "")
    if not topic and PING.fullmatch(body.strip()):
        return WebhookNotice(hashlib.sha256(body).hexdigest(), "ping", "")
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    if not secret or not hmac.compare_digest(expected, named.get("x-wc-webhook-signature", "").encode()):
        raise WebhookRefused("the X-WC-Webhook-Signature is missing or wrong")
    key = hashlib.sha256(body).hexdigest()
    if not topic.startswith("order."):
        return WebhookNotice(key, topic[:100], "")
    try:
        raw = json.loads(body)
    except ValueError:
        raise WebhookRefused("the body is not JSON") from None
    order_id = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(order_id, bool) or not isinstance(order_id, int):
        return WebhookNotice(key, topic[:100], "")
    return WebhookNotice(key, topic[:100], str(order_id))


def _gmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def tax_classes(rates: Sequence[Mapping[str, Any]], country: str) -> dict[Decimal, str]:
    """Which class charges which rate in `country`, from GET /taxes. A class with one rate there, for the
    whole country (or every country) and not compound, charges that rate; a class with more, or bound to a
    state, postcode or city, is left out, since what it charges depends on more than the country. Where two
    classes charge the same, the standard class is taken, else the first listed."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for rate in rates:
        if rate.get("country") in (country, ""):
            found.setdefault(str(rate.get("class") or "standard"), []).append(rate)
    classes: dict[Decimal, str] = {}
    for tax_class in sorted(found, key=lambda name: name != "standard"):
        rate, *more = found[tax_class]
        if more or rate.get("compound") or any(rate.get(key) for key in LOCAL_KEYS):
            continue
        try:
            percent = Decimal(str(rate.get("rate")))
        except InvalidOperation:
            continue
        classes.setdefault(percent, "" if tax_class == "standard" else tax_class)
    return classes


def _net(gross: Decimal, vat_rate: Decimal) -> str:
    """A VAT-inclusive amount before tax, to six decimals."""
    return str((gross / (1 + vat_rate / 100)).quantize(NET, rounding=ROUND_HALF_UP))


def _line_item(line: ShopLine, classes: Mapping[Decimal, str]) -> dict[str, Any]:
    """WooCommerce line totals are before tax: the marketplace's VAT-inclusive amount, split at its rate,
    taxed by the store at the class that charges that rate (the product's own class if none does)."""
    net = _net(line.total, line.vat_rate)
    item: dict[str, Any] = {
        "sku": line.sku,
        "name": line.name,
        "quantity": line.quantity,
        "subtotal": net,
        "total": net,
        "meta_data": [{"key": "hub_vat_rate", "value": str(line.vat_rate)}],
    }
    if line.vat_rate in classes:
        item["tax_class"] = classes[line.vat_rate]
    return item


def _shipping_line(charge: ShippingCharge) -> dict[str, Any]:
    """The shipping fee before tax at the rate the hub chose; the store taxes it at its shipping tax class
    (WooCommerce has no tax class per shipping line, and its taxes are read-only)."""
    return {
        "method_id": "flat_rate",
        "method_title": charge.title,
        "total": _net(charge.net + charge.tax, charge.vat_rate),
        "meta_data": [{"key": "hub_vat_rate", "value": str(charge.vat_rate)}],
    }


def parse_order(raw: Mapping[str, Any]) -> ShopOrder:
    if not isinstance(raw, Mapping) or isinstance(raw.get("id"), bool) or not isinstance(raw.get("id"), int):
        # An order's id is a number, and goes into the paths of later calls as it is.
        raise InvalidAnswer("WooCommerce answered with something that is not an order")
    meta = _meta(raw)
    seller_tracking = _shipment_tracking(meta.get("_wc_shipment_tracking_items"))
    try:
        modified = _modified(raw.get("date_modified_gmt"))
    except ValueError:
        raise InvalidAnswer("WooCommerce's date_modified_gmt is not a date") from None
    return ShopOrder(
        shop_id=str(raw["id"]),
        status=str(raw.get("status", "")),
        reference=str(meta.get(REFERENCE_KEY, "")),
        modified_at=modified,
        tracking_number=seller_tracking[0] or str(meta.get("hub_tracking_number", "")),
        tracking_link=seller_tracking[1] or str(meta.get("hub_tracking_url", "")),
        carrier=seller_tracking[2] or str(meta.get("hub_carrier", "")),
        total=_total(raw.get("total")),
    )


def _total(value: Any) -> Decimal | None:
    """The order's total, if it reads as one: an order with an odd total is still an order to follow
    (the shop poll reads many), and a transfer then checks nothing it cannot read."""
    try:
        return None if value is None else _decimal(value, "total")
    except InvalidAnswer:
        return None


def _decimal(value: Any, name: str) -> Decimal:
    """An amount of WooCommerce's answer (a decimal string), or InvalidAnswer."""
    try:
        amount = Decimal(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise InvalidAnswer(f"WooCommerce's {name} is not an amount")
    return amount


def _modified(value: Any) -> datetime | None:
    if not value:
        return None
    if not isinstance(value, str):
        raise ValueError(value)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _objects(items: list[Any]) -> Iterator[dict[str, Any]]:
    return (item for item in items if isinstance(item, dict))


def _total_pages(response: httpx.Response) -> int:
    value = response.headers.get("X-WP-TotalPages", "1").strip()
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_PAGES:
        raise InvalidAnswer("WooCommerce's X-WP-TotalPages is not a page count")
    return int(value)


def _meta(raw: Mapping[str, Any]) -> dict[str, Any]:
    entries = raw.get("meta_data") or []
    return {str(entry.get("key")): entry.get("value") for entry in entries if isinstance(entry, dict)}


def _shipment_tracking(items: Any) -> tuple[str, str, str]:
    """The newest item of the Shipment Tracking extension, if the seller uses it."""
    if isinstance(items, list) and items and isinstance(items[-1], dict):
        item = items[-1]
        number = str(item.get("tracking_number") or "")
        link = str(item.get("custom_tracking_link") or "").replace("%1$s", number)
        carrier = str(item.get("tracking_provider") or item.get("custom_tracking_provider") or "")
        return number, link, carrier
    return "", "", ""


def _address(address: Address) -> dict[str, str]:
    return {
        "first_name": address.first_name,
        "last_name": address.last_name,
        "company": address.company,
        "address_1": address.address1,
        "city": address.city,
        "state": address.district,
        "postcode": address.postcode,
        "country": address.country,
        "phone": address.phone,
    }
