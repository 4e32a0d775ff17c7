"""Trendyol's seller API: order packages in, Picking / Invoiced / tracking numbers out.

Written to the current field names (shipmentPackageId, lineId, stockCode, packageTotalPrice, …) with a
fallback to the names Trendyol used before 2025-12-08. Every call carries the mandatory
`User-Agent: "{sellerId} - {integrator}"`; without it Trendyol answers 403.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from connectors.base import (
    Address,
    Line,
    MarketplaceOrder,
    PackagePage,
    Permanent,
    Shipment,
)
from connectors.http import request
from sync.statuses import CanonicalStatus as S

INTEGRATOR = "OrderHub"
ISTANBUL_OFFSET = timedelta(hours=3)
MAX_PAGE_SIZE = 200

# Trendyol's package statuses in the hub's words. UnPacked / Repack (a split in progress) and the
# legacy Verified keep the package where it was rather than cancel anything.
STATUSES: Mapping[str, S] = {
    "Awaiting": S.AWAITING,
    "Created": S.CREATED,
    "Picking": S.PICKING,
    "Invoiced": S.INVOICED,
    "Shipped": S.SHIPPED,
    "AtCollectionPoint": S.AT_COLLECTION_POINT,
    "Delivered": S.DELIVERED,
    "UnDelivered": S.UNDELIVERED,
    "Cancelled": S.CANCELLED,
    "UnSupplied": S.UNSUPPLIED,
    "Returned": S.RETURNED,
    "UnPacked": S.PICKING,
    "Repack": S.PICKING,
    "Verified": S.CREATED,
}
# What the hub sets through the API. Invoiced is the seller's too, but needs the real invoice number,
# which the hub does not have.
SETTABLE = {S.PICKING: "Picking"}

# Carriers named by the first three digits of cargoTrackingNumber.
CARRIER_PREFIXES = {
    "733": "Trendyol Express",
    "725": "Yurtiçi Kargo",
    "726": "Aras Kargo",
    "727": "Sürat Kargo",
    "728": "MNG Kargo",
    "729": "UPS Kargo",
    "732": "Alternatif Teslimat",
    "734": "PTT Kargo",
    "884": "Horoz Lojistik",
    "984": "Horoz Lojistik",
}


class UnreadablePackage(ValueError):
    """A package whose fields the hub cannot make sense of; the reason says which."""


class TrendyolConnector:
    kind = "trendyol"

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        *,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.seller_id = credentials["seller_id"]
        self.base = f"{base_url.rstrip('/')}/order/sellers/{self.seller_id}"
        self.client = httpx.Client(
            auth=(credentials["api_key"], credentials["api_secret"]),
            headers={"User-Agent": f"{self.seller_id} - {INTEGRATOR}", "storeFrontCode": "TR"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    def list_packages(
        self, start: datetime, end: datetime, page: int, size: int = MAX_PAGE_SIZE
    ) -> PackagePage:
        params = {
            "startDate": _ms(start),
            "endDate": _ms(end),
            "page": page,
            "size": min(size, MAX_PAGE_SIZE),
            "orderByField": "PackageLastModifiedDate",
            "orderByDirection": "DESC",
        }
        payload = request(self.client, "GET", f"{self.base}/orders", params=params).json()
        orders, unreadable = [], []
        for raw in payload.get("content") or []:
            try:
                orders.append(parse_package(raw))
            except UnreadablePackage as error:
                package_id = raw.get("shipmentPackageId", raw.get("id")) if isinstance(raw, dict) else None
                unreadable.append((str(package_id or "?"), str(error), raw if isinstance(raw, dict) else {}))
        return PackagePage(
            orders=tuple(orders),
            unreadable=tuple(unreadable),
            page=int(payload.get("page", page)),
            total_pages=int(payload.get("totalPages", 1)),
        )

    def get_package(self, package_id: str) -> MarketplaceOrder | None:
        """One package as the marketplace holds it now."""
        # Without dates Trendyol searches the last week only: ask for the two weeks it allows.
        now = datetime.now(UTC)
        params = {
            "shipmentPackageIds": package_id,
            "startDate": _ms(now - timedelta(days=14)),
            "endDate": _ms(now),
            "page": 0,
            "size": 1,
        }
        payload = request(self.client, "GET", f"{self.base}/orders", params=params).json()
        content = payload.get("content") or []
        return parse_package(content[0]) if content else None

    def approve(self, package_id: str, lines: Sequence[tuple[str, int]]) -> None:
        self.push_status(package_id, lines, S.PICKING)

    def push_status(self, package_id: str, lines: Sequence[tuple[str, int]], status: S) -> None:
        if status in (S.CANCELLED, S.UNSUPPLIED):
            # The seller cancels by declaring the lines unsupplied (reason 500: out of stock).
            cancel = {"lines": [{"lineId": int(i), "quantity": q} for i, q in lines], "reasonId": 500}
            url = f"{self.base}/shipment-packages/{package_id}/items/unsupplied"
            request(self.client, "PUT", url, json=cancel)
            return
        if status not in SETTABLE:
            # Invoiced is the seller's too, but needs the real invoice number.
            raise Permanent(f"The hub cannot set {status.value} on Trendyol, only Picking.")
        body: dict[str, Any] = {
            "lines": [{"lineId": int(line_id), "quantity": quantity} for line_id, quantity in lines],
            "params": {},
            "status": SETTABLE[status],
        }
        request(self.client, "PUT", f"{self.base}/shipment-packages/{package_id}", json=body)

    def push_tracking(self, package_id: str, tracking_number: str) -> None:
        """Only for carriers on the seller's own contract; Trendyol's carriers set their own numbers."""
        request(
            self.client,
            "PUT",
            f"{self.base}/shipment-packages/{package_id}/update-tracking-number",
            json={"trackingNumber": tracking_number},
        )


def parse_package(raw: Mapping[str, Any]) -> MarketplaceOrder:
    """One package as the hub sees it; raises UnreadablePackage naming the field that is wrong."""
    if not isinstance(raw, Mapping):
        raise UnreadablePackage("the package is not a JSON object")
    native = _text(raw, "status") or _text(raw, "shipmentPackageStatus")
    if native not in STATUSES:
        raise UnreadablePackage(f"unknown package status {native!r}")
    lines = raw.get("lines")
    if not isinstance(lines, list) or not lines:
        raise UnreadablePackage("the package has no lines")
    tracking = _text(raw, "cargoTrackingNumber")
    return MarketplaceOrder(
        package_id=_required(raw, "shipmentPackageId", "id"),
        order_number=_required(raw, "orderNumber"),
        status=STATUSES[native],
        native_status=native,
        # Trendyol gives orderDate as Istanbul wall-clock time in epoch form (GMT+3); the rest is GMT.
        ordered_at=_time(raw, "orderDate") - ISTANBUL_OFFSET,
        modified_at=_time(raw, "lastModifiedDate")
        if raw.get("lastModifiedDate")
        else _time(raw, "orderDate") - ISTANBUL_OFFSET,
        customer_name=" ".join(
            filter(None, (_text(raw, "customerFirstName"), _text(raw, "customerLastName")))
        ),
        customer_email=_text(raw, "customerEmail"),
        currency=_text(raw, "currencyCode") or "TRY",
        total=_money(raw, "packageTotalPrice", "totalPrice"),
        shipping_address=_address(raw.get("shipmentAddress")),
        billing_address=_address(raw.get("invoiceAddress") or raw.get("shipmentAddress")),
        lines=tuple(_line(line) for line in lines),
        shipment=Shipment(
            carrier=_text(raw, "cargoProviderName") or CARRIER_PREFIXES.get(tracking[:3], ""),
            tracking_number=tracking,
            shipment_barcode=_text(raw, "cargoSenderNumber"),
            package_number=_text(raw, "shipmentPackageId", "id"),
            tracking_link=_text(raw, "cargoTrackingLink"),
        ),
        raw=dict(raw),
        origin_package_ids=tuple(str(value) for value in raw.get("originPackageIds") or ()),
    )


def _line(raw: Any) -> Line:
    if not isinstance(raw, Mapping):
        raise UnreadablePackage("a line is not a JSON object")
    quantity = raw.get("quantity")
    if not isinstance(quantity, int) or quantity < 1:
        raise UnreadablePackage(
            f"line {raw.get('lineId', raw.get('id'))}: quantity {quantity!r} is not a count"
        )
    return Line(
        line_id=_required(raw, "lineId", "id"),
        barcode=_text(raw, "barcode"),
        stock_code=_text(raw, "stockCode", "merchantSku"),
        name=_text(raw, "productName"),
        quantity=quantity,
        unit_price=_money(raw, "lineUnitPrice", "price"),
        vat_rate=_money(raw, "vatRate", "vatBaseAmount"),
    )


def _address(raw: Any) -> Address:
    if not isinstance(raw, Mapping):
        raise UnreadablePackage("the package has no shipment address")
    return Address(
        first_name=_text(raw, "firstName"),
        last_name=_text(raw, "lastName"),
        address1=_text(raw, "address1") or _text(raw, "fullAddress"),
        city=_text(raw, "city"),
        district=_text(raw, "district"),
        postcode=_text(raw, "postalCode"),
        country=_text(raw, "countryCode") or "TR",
        phone=_text(raw, "phone"),
        company=_text(raw, "company"),
    )


def _text(raw: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = raw.get(name)
        if value is not None and value != "":
            return str(value).strip()
    return ""


def _required(raw: Mapping[str, Any], *names: str) -> str:
    value = _text(raw, *names)
    if not value:
        raise UnreadablePackage(f"{names[0]} is missing")
    return value


def _money(raw: Mapping[str, Any], *names: str) -> Decimal:
    value = next((raw[name] for name in names if raw.get(name) is not None), None)
    if value is None:
        raise UnreadablePackage(f"{names[0]} is missing")
    try:
        # Through str: a JSON float such as 25.99 must not become 25.989999….
        return Decimal(str(value))
    except InvalidOperation:
        raise UnreadablePackage(f"{names[0]} {value!r} is not an amount") from None


def _time(raw: Mapping[str, Any], name: str) -> datetime:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnreadablePackage(f"{name} {value!r} is not a time in epoch milliseconds")
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise UnreadablePackage(f"{name} {value!r} is out of range") from None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
