"""Marketplace totals in a WooCommerce store that calculates its own taxes, over HTTP against the sandbox.

The shop order must come to what the customer paid on the marketplace, to the cent, in every store: taxes
on with the marketplace's rates, rounding at subtotal, taxes off, a rate missing; and show the VAT in its
tax lines where the store's rates allow it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from connectors.base import ShippingCharge, ShopLine, ShopOrderPlan
from connectors.woocommerce import CORRECTION_NAME, tax_classes
from sandbox.state import World, shop_public
from tests.sandbox_server import Sandbox, serve_sandbox
from tests.test_connectors import plan, woo

CENT = Decimal("0.01")
Lines = list[tuple[str, int, str, int]]  # (SKU, quantity, line total with VAT, VAT rate)

# What customers paid on the marketplace: lines and a shipping fee, both VAT included.
ORDERS: dict[str, tuple[Lines, str, int]] = {
    "one line at 10 %, shipping at the product's VAT": ([("TS-BEYAZ-M", 1, "149.90", 10)], "34.99", 10),
    "lines at 20, 10 and 1 %, free shipping": (
        [("KUPA-SERAMIK", 2, "179.98", 20), ("TS-SIYAH-L", 1, "149.90", 10), ("LOKUM-500", 3, "657.00", 1)],
        "0.00",
        20,
    ),
    "three at 20 %, shipping at 20 %": ([("KITAP-AYRAC", 3, "149.70", 20)], "34.99", 20),
    "3 × 33.33 at 20 %, which rounds badly per line": ([("KUPA-SERAMIK", 3, "99.99", 20)], "34.99", 20),
}
# The store's tax settings (POST /_control/taxes); the sandbox's own are a Turkish store's: KDV 20 % at the
# standard class, 10 % "reduced-rate", 1 % "kdv-1", 0 % "zero-rate", each line's tax rounded.
WITHOUT_ONE_PERCENT = [
    {"country": "TR", "rate": "20", "name": "KDV %20", "class": "standard"},
    {"country": "TR", "rate": "10", "name": "KDV %10", "class": "reduced-rate"},
]
STORES: dict[str, dict[str, Any]] = {
    "taxes at the marketplace's rates": {},
    "rounding at subtotal": {"round_at_subtotal": True},
    "taxes off": {"enabled": False},
    "no rate for 1 %": {"rates": WITHOUT_ONE_PERCENT},
}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with serve_sandbox(World()) as sandbox:
        yield sandbox


def marketplace_order(reference: str, lines: Lines, fee: str, fee_vat: int) -> ShopOrderPlan:
    """The hub's plan for a marketplace order; the shipping fee split as the hub splits it."""
    gross, rate = Decimal(fee), Decimal(fee_vat)
    net = (gross / (1 + rate / 100)).quantize(CENT, rounding=ROUND_HALF_UP)
    return replace(
        plan(reference),
        lines=tuple(
            ShopLine(sku, sku, count, Decimal(total), Decimal(vat)) for sku, count, total, vat in lines
        ),
        shipping_charge=ShippingCharge("Trendyol Kargo", net, gross - net, rate),
        total=sum((Decimal(total) for _, _, total, _ in lines), gross),
    )


def set_taxes(sandbox: Sandbox, settings: dict[str, Any]) -> None:
    httpx.post(f"{sandbox.url}/_control/taxes", json=settings).raise_for_status()


def shop_order(sandbox: Sandbox, shop_id: str) -> dict[str, Any]:
    """The order as WooCommerce answers it."""
    return shop_public(sandbox.world.shop_orders[int(shop_id)])


def vat_by_rate(lines: Lines) -> dict[float, Decimal]:
    """The VAT the marketplace's lines hold, by rate."""
    vat: dict[float, Decimal] = {}
    for _, _, total, rate in lines:
        gross = Decimal(total)
        vat[float(rate)] = vat.get(float(rate), Decimal(0)) + gross - gross / (1 + Decimal(rate) / 100)
    return vat


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("case", ORDERS)
def test_the_shop_order_comes_to_the_marketplaces_total(sandbox: Sandbox, store: str, case: str) -> None:
    set_taxes(sandbox, STORES[store])
    lines, fee, fee_vat = ORDERS[case]
    wanted = marketplace_order("hub-5-1", lines, fee, fee_vat)
    made = woo(sandbox).create_order(wanted)
    order = shop_order(sandbox, made.shop_id)
    assert made.total == wanted.total and Decimal(order["total"]) == wanted.total
    fees = order["fee_lines"]
    assert len(fees) <= 1 and all(
        (fee["name"], fee["tax_status"], fee["total_tax"]) == (CORRECTION_NAME, "none", "0.00")
        for fee in fees
    )
    shown = {line["rate_percent"]: Decimal(line["tax_total"]) for line in order["tax_lines"]}
    if store == "taxes off":
        assert shown == {} and order["total_tax"] == "0.00"
        return
    for rate, vat in vat_by_rate(lines).items():
        if store == "no rate for 1 %" and rate == 1:
            assert rate not in shown  # the store charges nothing there: the fee holds that VAT
        else:  # the store's tax at the marketplace's rate: its VAT, up to a cent a line rounded
            assert abs(shown[rate] - vat) <= CENT * len(lines), (rate, shown, vat)


def test_the_shipping_tax_shows_where_the_store_taxes_shipping_at_the_same_rate(sandbox: Sandbox) -> None:
    """Shipping "inherits" the items' class in the store (the first of its list an item has, so the
    highest here), as the hub's default takes the highest VAT of the order's lines."""
    wanted = marketplace_order("hub-5-2", [("TS-BEYAZ-M", 1, "149.90", 10)], "34.99", 10)
    made = woo(sandbox).create_order(wanted)
    order = shop_order(sandbox, made.shop_id)
    ((line),) = order["tax_lines"]
    assert (line["label"], line["rate_percent"], line["shipping_tax_total"]) == ("KDV %10", 10.0, "3.18")
    assert (order["shipping_total"], order["shipping_tax"]) == ("31.81", "3.18")
    assert order["fee_lines"] == [] and order["total"] == "184.89"


def test_a_correction_asked_for_again_adds_no_second_fee(sandbox: Sandbox) -> None:
    """The create's correction is lost (every PUT answered 429): the order is there with the store's own
    total, and the correction asked for again puts on one fee line; asked again, nothing more. When the
    store totals the order anew, the same fee line is changed in place."""
    wanted = marketplace_order("hub-5-3", [("KUPA-SERAMIK", 3, "99.99", 20)], "34.99", 20)
    connector = woo(sandbox)
    sandbox.world.faults.update({"rate_limit_rate": 1, "rate_limit_method": "PUT"})
    made = connector.create_order(wanted)
    assert made.total == Decimal("134.99") and shop_order(sandbox, made.shop_id)["fee_lines"] == []
    sandbox.world.faults.update({"rate_limit_rate": 0})

    found = connector.find_order("hub-5-3")
    assert found is not None and found.total != wanted.total  # what the hub sees after a lost answer
    assert connector.settle_total(found.shop_id, wanted.total).total == wanted.total
    asked = len(sandbox.world.requests)
    assert connector.settle_total(found.shop_id, wanted.total).total == wanted.total
    assert [method for method, _, _ in sandbox.world.requests[asked:]] == ["GET"]  # read, nothing to do
    (fee,) = shop_order(sandbox, made.shop_id)["fee_lines"]
    assert fee["total"] == "-0.01"  # 83.33 + 16.67 a line, rounded, where the marketplace had 99.99

    set_taxes(sandbox, {"round_at_subtotal": True})
    sandbox.world.update_shop_order(
        sandbox.world.shop_orders[int(made.shop_id)], {"billing": {"city": "Ankara"}}
    )
    assert shop_order(sandbox, made.shop_id)["total"] == "134.97"  # totalled anew: 134.98, and the fee
    assert connector.settle_total(made.shop_id, wanted.total).total == wanted.total
    (changed,) = shop_order(sandbox, made.shop_id)["fee_lines"]
    assert (changed["id"], changed["total"]) == (fee["id"], "0.00")


def test_each_vat_rate_goes_to_the_class_that_charges_it_in_the_country() -> None:
    """Read from GET /taxes: a class charging one rate for the whole country (or every country) is taken;
    one whose rate depends on the state or stacks rates is not; the standard class is "" in an order."""
    rates = [
        {"id": 1, "country": "TR", "rate": "20.0000", "class": "standard"},
        {"id": 2, "country": "", "rate": "10.0000", "class": "reduced-rate"},
        {"id": 3, "country": "TR", "state": "34", "rate": "1.0000", "class": "kdv-1"},
        {"id": 4, "country": "TR", "rate": "8.0000", "class": "stacked"},
        {"id": 5, "country": "TR", "rate": "2.0000", "class": "stacked", "priority": 2},
        {"id": 6, "country": "DE", "rate": "19.0000", "class": "standard"},
        {"id": 7, "country": "TR", "rate": "20.0000", "class": "also-twenty"},
        {"id": 8, "country": "TR", "rate": "0.0000", "class": "zero-rate"},
    ]
    assert tax_classes(rates, "TR") == {
        Decimal(20): "",
        Decimal(10): "reduced-rate",
        Decimal(0): "zero-rate",
    }
