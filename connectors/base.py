"""The two small interfaces every connector implements, the normalised order they speak, and their errors.

Connectors translate one platform's API into these shapes and nothing more: no database, no settings, no
retries beyond what one HTTP call needs. Rate limits surface as `RateLimited` with the platform's
retry-after; the queue does the waiting.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sync.statuses import CanonicalStatus


class ConnectorError(Exception):
    """A remote call failed; `retryable` says whether trying again later can help.

    The message is short and safe to show a seller (the platform, the status, the platform's error code);
    `category` groups it (blocked, auth, refused, unavailable, rate_limited, invalid_answer).
    """

    retryable = False
    default_category = "refused"

    def __init__(
        self, message: str, *, status: int | None = None, code: str = "", category: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.category = category or self.default_category


class Retryable(ConnectorError):
    """Timeouts, connection errors, 5xx: try again with backoff."""

    retryable = True
    default_category = "unavailable"


class RateLimited(Retryable):
    """429: try again after `retry_after` seconds."""

    default_category = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, status: int | None = 429, code: str = "") -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class InvalidAnswer(Retryable):
    """The platform answered, but not in a shape the hub can read (not JSON, the wrong type, too large)."""

    default_category = "invalid_answer"


@contextmanager
def created_already(platform: str) -> Iterator[None]:
    """The calls a create makes after the platform took the order (reading it back, setting its status):
    their errors must not read as the create refused (a 4xx there would tell the pipeline nothing was
    made, and its next try would create the order again). They come out without a status: the next try
    looks the order up first."""
    try:
        yield
    except ConnectorError as error:
        if error.status is None:
            raise
        raise InvalidAnswer(f"{platform} took the order, then: {error}", code=error.code) from error


class Permanent(ConnectorError):
    """The platform refused the request as it is (4xx other than 429): retrying the same thing cannot help."""


class Blocked(Permanent):
    """The hub does not call this address (private, not https, not the platform's host, unreadable)."""

    default_category = "blocked"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Address:
    first_name: str
    last_name: str
    address1: str
    city: str
    district: str = ""
    postcode: str = ""
    country: str = "TR"
    phone: str = ""
    company: str = ""


@dataclass(frozen=True)
class Line:
    line_id: str
    barcode: str
    stock_code: str
    name: str
    quantity: int
    unit_price: Decimal
    vat_rate: Decimal


@dataclass(frozen=True)
class Shipment:
    carrier: str = ""
    tracking_number: str = ""
    shipment_barcode: str = ""
    package_number: str = ""
    tracking_link: str = ""


@dataclass(frozen=True)
class MarketplaceOrder:
    """One marketplace package, normalised; `raw` keeps the payload exactly as it came."""

    package_id: str
    order_number: str
    status: CanonicalStatus
    native_status: str
    ordered_at: datetime
    modified_at: datetime
    customer_name: str
    customer_email: str
    currency: str
    total: Decimal
    shipping_address: Address
    billing_address: Address
    lines: tuple[Line, ...]
    shipment: Shipment
    raw: dict[str, Any] = field(compare=False, repr=False)
    origin_package_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PackagePage:
    orders: tuple[MarketplaceOrder, ...]
    # Packages on the page that could not be read: (package id or "?", reason, raw payload).
    unreadable: tuple[tuple[str, str, dict[str, Any]], ...]
    page: int
    total_pages: int


@dataclass(frozen=True)
class ShopOrder:
    """The shop's side of an order, as far as the hub follows it."""

    shop_id: str
    status: str
    reference: str
    modified_at: datetime | None
    tracking_number: str = ""
    tracking_link: str = ""
    carrier: str = ""
    # What the customer pays in the shop, as the shop calculated it (None where a shop does not say).
    total: Decimal | None = None


@dataclass(frozen=True)
class ShopLine:
    sku: str
    name: str
    quantity: int
    total: Decimal  # what the customer paid for the line, VAT included
    vat_rate: Decimal


@dataclass(frozen=True)
class ShippingCharge:
    """The shipping line: the fee split into net and tax at the VAT rate the integration chose."""

    title: str
    net: Decimal
    tax: Decimal
    vat_rate: Decimal


@dataclass(frozen=True)
class ShopOrderPlan:
    """What the hub decided the shop order should be."""

    reference: str
    status: str
    marketplace: str
    order_number: str
    package_id: str
    currency: str
    customer_email: str
    billing: Address
    shipping: Address
    lines: tuple[ShopLine, ...]
    shipping_charge: ShippingCharge
    # What the customer paid on the marketplace, VAT included: the lines plus the shipping charge. The
    # shop order must come to exactly this.
    total: Decimal


class WebhookRefused(ValueError):
    """A webhook whose proof (signature, password, API key) is missing or wrong: nothing of it is kept."""


@dataclass(frozen=True)
class WebhookNotice:
    """What a verified webhook says: its key (a delivery sent again, or the same change sent twice, has
    the same one), its topic, and the order to read again from the platform (the shop's order id, or
    the marketplace's package id); "" for a delivery that names none the hub follows (a ping, a topic
    the hub does not follow). The payload is a hint: the hub reads the order as the platform holds it
    now, so a late or reordered delivery cannot move anything back."""

    key: str
    topic: str
    subject: str


# A marketplace whose webhook names an order only by one of its lines or its parcels (Hepsiburada) says so
# in the notice's subject, "line:<line id>" or "parcel:<package number>": the hub finds the package it holds.
LINE_SUBJECT = "line:"
PARCEL_SUBJECT = "parcel:"


class MarketplaceConnector(Protocol):
    def close(self) -> None: ...

    def check(self) -> None:
        """The cheapest call that proves the address and the keys (Test connection); raises the
        connector's error for what is wrong."""
        ...

    def list_packages(self, start: datetime, end: datetime, page: int, size: int) -> PackagePage:
        """One page of packages modified in [start, end], oldest first."""
        ...

    def get_package(self, package_id: str) -> MarketplaceOrder | None:
        """One package as the marketplace holds it now."""
        ...

    def packages_of(self, order_number: str) -> Sequence[MarketplaceOrder]:
        """The marketplace order's recent packages: one split by a cancellation goes on in another."""
        ...

    def approve(self, package_id: str, lines: Sequence[tuple[str, int]]) -> None:
        """Tell the marketplace the seller has taken the package (Trendyol: Picking)."""
        ...

    def push_status(self, package_id: str, lines: Sequence[tuple[str, int]], status: CanonicalStatus) -> None:
        """Move the package on; raises Permanent for a status the marketplace sets only itself."""
        ...

    def push_tracking(self, package_id: str, tracking_number: str, carrier: str) -> None:
        """The tracking code of a parcel the seller ships with a carrier of their own contract, with that
        carrier as the seller named it; raises Permanent for a carrier the marketplace has no code for."""
        ...

    def subscribe(self, callback_url: str, secret: str) -> str:
        """Point the marketplace's order webhook at `callback_url`, proven with `secret`; asking again is
        harmless. Returns what is registered, in a short sentence. Raises Permanent where the marketplace
        has no webhook the hub can register through its API."""
        ...


class ShopConnector(Protocol):
    def close(self) -> None: ...

    def find_order(self, reference: str, since: datetime | None = None) -> ShopOrder | None:
        """The shop order carrying the hub's reference, if one was created already (since `since`: the
        first create that may have reached the shop, less a margin for the shop's clock)."""
        ...

    def create_order(self, plan: ShopOrderPlan) -> ShopOrder:
        """Create the order; its total is the marketplace's where the shop allows it at once."""
        ...

    def settle_total(self, shop_id: str, total: Decimal) -> ShopOrder:
        """Bring the shop order's total to `total` (the shop calculates its own from its tax settings),
        if it differs; asked again, it does only what is left."""
        ...

    def get_order(self, shop_id: str) -> ShopOrder: ...

    def set_status(self, shop_id: str, status: str) -> ShopOrder: ...

    def set_tracking(self, shop_id: str, carrier: str, code: str, link: str) -> ShopOrder: ...

    def add_note(self, shop_id: str, note: str) -> None: ...

    def changed_since(self, since: datetime) -> Sequence[ShopOrder]:
        """Orders modified after `since` that carry a hub reference."""
        ...

    def statuses(self) -> Mapping[str, str]:
        """The order statuses the shop offers, its custom ones too: status (as `ShopOrder.status` and
        `set_status` have it) → the name the seller sees in the shop. Empty where the shop's API has no
        such list; the kind's own set then stands."""
        ...

    def subscribe(self, callback_url: str, secret: str) -> str:
        """Point the shop's order webhooks at `callback_url`, signed with `secret` where the shop takes
        one (Shopify signs with the app's own secret): what is missing is created, what is there is kept,
        so asking again is harmless. Returns what is registered, in a short sentence for the seller.
        Raises Permanent where the shop sends no webhooks."""
        ...
