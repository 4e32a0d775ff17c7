"""WooCommerce REST API v3: shop orders created by SKU, found again by the hub's reference in meta_data.

Every shop order carries the hub's reference in its meta_data, so a retry after a lost answer finds the
order the first attempt created (`find_order`) instead of creating a second. WooCommerce has no tracking
field: the code and the link go into the order's meta_data (`hub_tracking_number`, `hub_tracking_url`,
`hub_carrier`) and into a note the customer sees. Tracking numbers the seller enters through the Shipment
Tracking extension (`_wc_shipment_tracking_items`) are read back for the reverse flow.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

import httpx

from connectors.base import Address, InvalidAnswer, ShopLine, ShopOrder, ShopOrderPlan
from connectors.http import Guard, Outbound, json_body

T = TypeVar("T")
REFERENCE_KEY = "hub_reference"
TRACKING_KEYS = ("hub_tracking_number", "hub_tracking_url", "hub_carrier")
PER_PAGE = 100
MAX_PAGES = 10_000


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
        charge = plan.shipping_charge
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
            "line_items": [_line_item(line) for line in plan.lines],
            "shipping_lines": [
                {
                    "method_id": "flat_rate",
                    "method_title": charge.title,
                    "total": str(charge.net),
                    "total_tax": str(charge.tax),
                    "meta_data": [
                        {"key": "hub_vat_rate", "value": str(charge.vat_rate)},
                        {"key": "hub_vat_amount", "value": str(charge.tax)},
                    ],
                }
            ],
            "meta_data": [
                {"key": REFERENCE_KEY, "value": plan.reference},
                {"key": "hub_marketplace", "value": plan.marketplace},
                {"key": "hub_marketplace_order_number", "value": plan.order_number},
                {"key": "hub_shipment_package_id", "value": plan.package_id},
            ],
        }
        return parse_order(self._json("POST", "/orders", dict, json=body))

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

    def _pages(self, window: dict[str, str]) -> Iterator[dict[str, Any]]:
        """The orders in a date window, oldest first, a page at a time as they are read."""
        page = 1
        while True:
            params = {**window, "dates_are_gmt": "true", "per_page": PER_PAGE, "page": page, "order": "asc"}
            response = self.http.request("GET", f"{self.base}/orders", params=params)
            yield from _objects(json_body(response, list, "WooCommerce"))
            if page >= _total_pages(response):
                return
            page += 1


def _gmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _line_item(line: ShopLine) -> dict[str, Any]:
    """WooCommerce line totals are before tax: the marketplace's VAT-inclusive amount, split."""
    net = (line.total / (1 + line.vat_rate / 100)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {
        "sku": line.sku,
        "name": line.name,
        "quantity": line.quantity,
        "subtotal": str(net),
        "total": str(net),
        "meta_data": [
            {"key": "hub_vat_rate", "value": str(line.vat_rate)},
            {"key": "hub_vat_amount", "value": str(line.total - net)},
        ],
    }


def parse_order(raw: Mapping[str, Any]) -> ShopOrder:
    if not isinstance(raw, Mapping) or "id" not in raw:
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
    )


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
