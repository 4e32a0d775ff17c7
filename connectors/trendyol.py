"""Trendyol's seller API: order packages in, Picking / Invoiced / tracking numbers out.

Written to the current field names (shipmentPackageId, lineId, stockCode, packageTotalPrice, …) with a
fallback to the names Trendyol used before 2025-12-08. Every call carries the mandatory
`User-Agent: "{sellerId} - {integrator}"`; without it Trendyol answers 403.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from connectors.base import (
    Address,
    InvalidAnswer,
    Line,
    MarketplaceOrder,
    PackagePage,
    Permanent,
    Shipment,
    WebhookNotice,
    WebhookRefused,
)
from connectors.carriers import by_name
from connectors.http import Guard, Outbound, json_body
from connectors.payload import UnreadablePackage, amount, no_nul, page_count, shown
from sync.statuses import CANCELLATIONS
from sync.statuses import CanonicalStatus as S

INTEGRATOR = "OrderHub"
ISTANBUL_OFFSET = timedelta(hours=3)
MAX_PAGE_SIZE = 200
# What a package's fields may hold, as the hub stores them: ids, codes and links at most this long,
# amounts below a billion (the column holds 12 digits), a quantity a seller could really ship.
ID_LENGTH = 64
CODE_LENGTH = 120
LINK_LENGTH = 500
MAX_AMOUNT = Decimal(10) ** 9
MAX_VAT_RATE = Decimal(100)
MAX_QUANTITY = 100_000
CENT = Decimal("0.01")
# How far ahead of the hub's clock a platform's clock may run before its times are taken as wrong.
CLOCK_SKEW = timedelta(hours=1)

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


# Trendyol's code (providerCode) of each Turkish carrier, by the start of the carrier's name as a seller or
# a shop writes it, case and "Marketplace" aside (developers.trendyol.com, "Trendyol Shipment Providers
# List"). Ceva Tedarik before Ceva: the first match counts.
PROVIDER_CODES = {
    "trendyol express": "TEXMP",
    "yurtiçi": "YKMP",
    "aras": "ARASMP",
    "sürat": "SURATMP",
    "ptt": "PTTMP",
    "horoz": "HOROZMP",
    "dhl": "DHLECOMMP",
    "ceva tedarik": "CEVATEDARIK",
    "ceva": "CEVAMP",
    "kolay gelsin": "SENDEOMP",
    "sendeo": "SENDEOMP",
}


def provider_code(carrier: str) -> str | None:
    """Trendyol's providerCode for a carrier named by the seller (or a code given as it is)."""
    if carrier.strip().upper() in PROVIDER_CODES.values():
        return carrier.strip().upper()
    return by_name(PROVIDER_CODES, carrier.strip())


class TrendyolConnector:
    kind = "trendyol"

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        guard: Guard,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.seller_id = credentials["seller_id"]
        if not self.seller_id.isascii() or not self.seller_id.isdigit():
            raise Permanent("the Trendyol seller ID must be a number", category="auth")
        self.base = f"{base_url.rstrip('/')}/order/sellers/{self.seller_id}"
        self.webhooks = f"{base_url.rstrip('/')}/webhook/sellers/{self.seller_id}/webhooks"
        self.http = Outbound(
            guard,
            platform="Trendyol",
            auth=(credentials["api_key"], credentials["api_secret"]),
            headers={"User-Agent": f"{self.seller_id} - {INTEGRATOR}", "storeFrontCode": "TR"},
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def list_packages(
        self, start: datetime, end: datetime, page: int, size: int = MAX_PAGE_SIZE
    ) -> PackagePage:
        params = {
            "startDate": _ms(start),
            "endDate": _ms(end),
            "page": page,
            "size": min(size, MAX_PAGE_SIZE),
            "orderByField": "PackageLastModifiedDate",
            # Oldest first: what a run has read is then everything up to a point it can go on from.
            "orderByDirection": "ASC",
        }
        payload = json_body(self.http.request("GET", f"{self.base}/orders", params=params), dict, "Trendyol")
        content = payload.get("content")
        if content is None:
            content = []
        if not isinstance(content, list):
            raise InvalidAnswer("Trendyol's order list has no list of packages (content)")
        orders, unreadable = [], []
        for raw in content:
            try:
                orders.append(parse_package(raw))
            except UnreadablePackage as error:
                # Filed under its id if it has one; ingest's broken() judges whether it can be one.
                package_id = raw.get("shipmentPackageId", raw.get("id")) if isinstance(raw, dict) else None
                filed_as = str(package_id).strip() if isinstance(package_id, str | int) else "?"
                unreadable.append((filed_as, str(error), raw if isinstance(raw, dict) else {}))
        return PackagePage(
            orders=tuple(orders),
            unreadable=tuple(unreadable),
            page=page,
            total_pages=page_count(payload.get("totalPages", 1), "Trendyol's totalPages"),
        )

    def check(self) -> None:
        """One request: the latest hour's packages, one of them."""
        now = datetime.now(UTC)
        self.list_packages(now - timedelta(hours=1), now, 0, 1)

    def get_package(self, package_id: str) -> MarketplaceOrder | None:
        """One package as the marketplace holds it now."""
        found = self._recent({"shipmentPackageIds": package_id, "size": 1}, f"package {package_id}")
        return found[0] if found else None

    def packages_of(self, order_number: str) -> list[MarketplaceOrder]:
        """The packages of a marketplace order changed in the last two weeks: after a cancellation of
        some lines, the one the rest went on in among them."""
        params = {"orderNumber": order_number, "size": MAX_PAGE_SIZE}
        return self._recent(params, f"order {order_number}")

    def _recent(self, params: dict[str, Any], what: str) -> list[MarketplaceOrder]:
        """The packages matching `params` changed in the last two weeks (without dates Trendyol searches
        the last week only: ask for the two weeks it allows), on one page."""
        now = datetime.now(UTC)
        window = {
            "startDate": _ms(now - timedelta(days=14)),
            "endDate": _ms(now),
            "page": 0,
            # As the pull reads: by the package's last change, so an order placed long ago still shows.
            "orderByField": "PackageLastModifiedDate",
        }
        response = self.http.request("GET", f"{self.base}/orders", params={**window, **params})
        content = json_body(response, dict, "Trendyol").get("content") or []
        if not isinstance(content, list):
            raise InvalidAnswer("Trendyol's order list has no list of packages (content)")
        try:
            return [parse_package(raw) for raw in content]
        except UnreadablePackage as error:
            raise InvalidAnswer(f"Trendyol's copy of {what} cannot be read: {error}") from None

    def subscribe(self, callback_url: str, secret: str) -> str:
        """Trendyol's order webhook at `callback_url`, for every status, sent with `secret` as its API key
        (`x-api-key`): created if the seller has none there, else brought up to date and activated (Trendyol
        sets a webhook PASSIVE after 13 failed deliveries)."""
        body = {
            "url": callback_url,
            "authenticationType": "API_KEY",
            "apiKey": secret,
            "subscribedStatuses": list(WEBHOOK_STATUSES),
        }
        existing = json_body(self.http.request("GET", self.webhooks), list, "Trendyol")
        mine = next(
            (hook for hook in existing if isinstance(hook, dict) and hook.get("url") == callback_url), None
        )
        if mine is None:
            created = json_body(self.http.request("POST", self.webhooks, json=body), dict, "Trendyol")
            return f"Trendyol webhook {_hook_id(created)} for every order status"
        hook_id = _hook_id(mine)
        self.http.request("PUT", f"{self.webhooks}/{hook_id}", json=body)
        if mine.get("status") != "ACTIVE":
            self.http.request("PUT", f"{self.webhooks}/{hook_id}/activate")
        return f"Trendyol webhook {hook_id} for every order status"

    def approve(self, package_id: str, lines: Sequence[tuple[str, int]]) -> None:
        self.push_status(package_id, lines, S.PICKING)

    def push_status(self, package_id: str, lines: Sequence[tuple[str, int]], status: S) -> None:
        if status in (S.CANCELLED, S.UNSUPPLIED):
            # The seller cancels by declaring the lines unsupplied (reason 500: out of stock).
            cancel = {"lines": [{"lineId": int(i), "quantity": q} for i, q in lines], "reasonId": 500}
            url = f"{self.base}/shipment-packages/{package_id}/items/unsupplied"
            self.http.request("PUT", url, json=cancel)
            return
        if status not in SETTABLE:
            # Invoiced is the seller's too, but needs the real invoice number.
            raise Permanent(f"The hub cannot set {status.value} on Trendyol, only Picking.")
        body: dict[str, Any] = {
            "lines": [{"lineId": int(line_id), "quantity": quantity} for line_id, quantity in lines],
            "params": {},
            "status": SETTABLE[status],
        }
        self.http.request("PUT", f"{self.base}/shipment-packages/{package_id}", json=body)

    def push_tracking(self, package_id: str, tracking_number: str, carrier: str) -> None:
        """Only for carriers on the seller's own contract; Trendyol's carriers set their own numbers.
        Trendyol's current endpoint (`update-tracking-number` is deprecated): the carrier's number as
        `cargoSenderNumber`, which the package then shows under that name, and the carrier's code. The
        package must be accepted (Picking) first; Trendyol refuses a package that is delivered or back."""
        code = provider_code(carrier)
        if code is None:
            raise Permanent(
                f"Trendyol has no carrier code for {carrier or 'an unnamed carrier'!r}: name the carrier "
                f"in the shop as Trendyol lists it ({', '.join(sorted(set(PROVIDER_CODES.values())))})",
                code="unknown_carrier",
            )
        self.http.request(
            "PUT",
            f"{self.base}/shipment-packages/{package_id}/tracking-details",
            json={"cargoSenderNumber": tracking_number, "providerCode": code},
        )


# Every status a package can be in, named as Trendyol's webhook API names them: the webhook hears each
# (Trendyol's docs say an empty list means all of them; named, it does not rest on that reading).
WEBHOOK_STATUSES = (
    "CREATED",
    "PICKING",
    "INVOICED",
    "SHIPPED",
    "CANCELLED",
    "DELIVERED",
    "UNDELIVERED",
    "RETURNED",
    "UNSUPPLIED",
    "AWAITING",
    "UNPACKED",
    "AT_COLLECTION_POINT",
    "VERIFIED",
)


def _hook_id(hook: Mapping[str, Any]) -> str:
    hook_id = hook.get("id")
    if not isinstance(hook_id, str) or not hook_id or not hook_id.replace("-", "").isalnum():
        raise InvalidAnswer("Trendyol's webhook has no id")
    return hook_id


def read_webhook(headers: Mapping[str, str], body: bytes, secret: str, path: str = "") -> WebhookNotice:
    """A delivery of Trendyol's order webhook: its API key (`x-api-key`, the secret the hub registered)
    checked first, then the package it names. Trendyol sends the whole package each time its status
    moves; the key is the package, its status and its last change, so the same change sent again is one."""
    given = next((value for name, value in headers.items() if name.lower() == "x-api-key"), "")
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        raise WebhookRefused("the x-api-key is missing or wrong")
    try:
        raw = json.loads(body)
    except ValueError:
        raise WebhookRefused("the body is not JSON") from None
    if not isinstance(raw, dict):
        raise WebhookRefused("the body is not a package")
    package_id = raw.get("shipmentPackageId", raw.get("id"))
    if isinstance(package_id, bool) or not isinstance(package_id, int | str) or not str(package_id).isdigit():
        return WebhookNotice(hashlib.sha256(body).hexdigest(), "", "")
    status = str(raw.get("shipmentPackageStatus") or raw.get("status") or "")[:40]
    key = f"{package_id}:{status}:{raw.get('lastModifiedDate', '')}"
    if len(key) > 128:
        key = hashlib.sha256(key.encode()).hexdigest()
    return WebhookNotice(key, status, str(package_id))


def parse_package(raw: Mapping[str, Any]) -> MarketplaceOrder:
    """One package as the hub sees it; raises UnreadablePackage naming the field that is wrong."""
    if not isinstance(raw, Mapping):
        raise UnreadablePackage("the package is not a JSON object")
    no_nul(raw, "package")
    native = _text(raw, "status") or _text(raw, "shipmentPackageStatus")
    if native not in STATUSES:
        raise UnreadablePackage(f"unknown package status {shown(native)}")
    lines = raw.get("lines")
    # A cancelled package may list none: which lines it keeps after a part cancellation is not
    # documented, and the hub derives it from the package the rest went on in.
    if not isinstance(lines, list) or (not lines and STATUSES[native] not in CANCELLATIONS):
        raise UnreadablePackage("the package has no lines")
    tracking = _text(raw, "cargoTrackingNumber", limit=CODE_LENGTH)
    modified = _time(raw, "lastModifiedDate") if raw.get("lastModifiedDate") else None
    if modified is not None and modified > datetime.now(UTC) + CLOCK_SKEW:
        # Taken as it is, it would carry the pull's cursor into the future and every pull would read nothing.
        raise UnreadablePackage("lastModifiedDate is in the future")
    billing, shipping = addresses(raw)
    return MarketplaceOrder(
        package_id=_required(raw, "shipmentPackageId", "id", limit=ID_LENGTH),
        order_number=_required(raw, "orderNumber", limit=ID_LENGTH),
        status=STATUSES[native],
        native_status=native,
        # Trendyol gives orderDate as Istanbul wall-clock time in epoch form (GMT+3); the rest is GMT.
        ordered_at=_time(raw, "orderDate") - ISTANBUL_OFFSET,
        modified_at=modified or _time(raw, "orderDate") - ISTANBUL_OFFSET,
        customer_name=" ".join(
            filter(None, (_text(raw, "customerFirstName"), _text(raw, "customerLastName")))
        ),
        customer_email=_text(raw, "customerEmail"),
        currency=_currency(raw),
        total=_money(raw, "packageTotalPrice", "totalPrice"),
        billing_address=billing,
        shipping_address=shipping,
        lines=tuple(_line(line) for line in lines),
        shipment=Shipment(
            carrier=_text(raw, "cargoProviderName")[:CODE_LENGTH] or CARRIER_PREFIXES.get(tracking[:3], ""),
            tracking_number=tracking,
            shipment_barcode=_text(raw, "cargoSenderNumber", limit=CODE_LENGTH),
            package_number=_text(raw, "shipmentPackageId", "id"),
            # A link the panel cannot hold is no link: the tracking number still finds the parcel.
            tracking_link=link if len(link := _text(raw, "cargoTrackingLink")) <= LINK_LENGTH else "",
        ),
        raw=dict(raw),
        origin_package_ids=tuple(str(value) for value in raw.get("originPackageIds") or ()),
    )


def _line(raw: Any) -> Line:
    if not isinstance(raw, Mapping):
        raise UnreadablePackage("a line is not a JSON object")
    quantity = raw.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise UnreadablePackage(
            f"line {shown(raw.get('lineId', raw.get('id')))}: quantity {shown(quantity)} is not a count"
        )
    return Line(
        line_id=_required(raw, "lineId", "id", limit=ID_LENGTH),
        barcode=_text(raw, "barcode", limit=ID_LENGTH),
        stock_code=_text(raw, "stockCode", "merchantSku", limit=CODE_LENGTH),
        name=_text(raw, "productName"),
        quantity=quantity,
        unit_price=_money(raw, "lineUnitPrice", "price"),
        vat_rate=_money(raw, "vatRate", "vatBaseAmount", ceiling=MAX_VAT_RATE),
    )


def addresses(raw: Mapping[str, Any]) -> tuple[Address, Address]:
    """A package's billing and shipping address; for a stored package, without reading all of it again
    (it was read whole when it came in)."""
    shipping = raw.get("shipmentAddress")
    return _address(raw.get("invoiceAddress") or shipping), _address(shipping)


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


def _text(raw: Mapping[str, Any], *names: str, limit: int | None = None) -> str:
    """The first of the fields that is set, as text; longer than `limit` it cannot be the value meant."""
    for name in names:
        value = raw.get(name)
        if value is not None and value != "":
            if isinstance(value, dict | list):
                raise UnreadablePackage(f"{name} is not a single value")
            text = str(value).strip()
            if limit is not None and len(text) > limit:
                raise UnreadablePackage(f"{name} is longer than {limit} characters")
            return text
    return ""


def _required(raw: Mapping[str, Any], *names: str, limit: int | None = None) -> str:
    value = _text(raw, *names, limit=limit)
    if not value:
        raise UnreadablePackage(f"{names[0]} is missing")
    return value


def _money(raw: Mapping[str, Any], *names: str, ceiling: Decimal = MAX_AMOUNT) -> Decimal:
    """An amount as the platform wrote it: finite, not negative, below `ceiling`, in cents."""
    value = next((raw[name] for name in names if raw.get(name) is not None), None)
    return amount(value, names[0], ceiling)


def _currency(raw: Mapping[str, Any]) -> str:
    currency = _text(raw, "currencyCode") or "TRY"
    if not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
        raise UnreadablePackage("currencyCode is not a currency code")
    return currency.upper()


def _time(raw: Mapping[str, Any], name: str) -> datetime:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnreadablePackage(f"{name} {shown(value)} is not a time in epoch milliseconds")
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise UnreadablePackage(f"{name} {shown(value)} is out of range") from None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
