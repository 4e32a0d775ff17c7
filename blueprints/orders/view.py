"""What the order detail page shows beyond the columns: addresses from the payload, totals with VAT."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from connectors.base import Address, ConnectorError
from connectors.registry import ConnectorKind
from models import Order

CENT = Decimal("0.01")


@dataclass(frozen=True)
class OrderView:
    billing: Address | None
    shipping: Address | None
    goods: Decimal  # the live lines, VAT included
    vat: Decimal  # the VAT in them
    shipping_fee: Decimal  # what the customer paid beyond the goods, VAT included

    @classmethod
    def of(cls, order: Order, marketplace: ConnectorKind) -> OrderView:
        billing = shipping = None
        if order.status is not None:  # an unreadable package has no addresses to show
            with contextlib.suppress(ConnectorError, KeyError, TypeError, ValueError):
                billing, shipping = marketplace.reader().addresses(order.raw)
        lines = [line for line in order.lines if not line.cancelled]
        goods = sum((line.total for line in lines), Decimal(0))
        vat = sum(
            (line.total * line.vat_rate / (100 + line.vat_rate) for line in lines),
            Decimal(0),
        ).quantize(CENT, rounding=ROUND_HALF_UP)
        return cls(billing, shipping, goods, vat, max(order.total - goods, Decimal(0)))
