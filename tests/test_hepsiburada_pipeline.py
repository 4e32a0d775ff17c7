"""Hepsiburada joined to the shop: what differs from the package marketplaces, over HTTP against the
sandbox's Hepsiburada. An order is one hub package whose lines are packed, cancelled and shipped in place;
the General settings on and off are in test_every_marketplace.py."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from connectors.registry import Side
from extensions import db
from models import Account, Integration, Order, Product, TransferState
from sync.actions import SHIPPED_THEN_CANCELLED
from tests.conftest import Client
from tests.markets import HEPSIBURADA, OIL, TSHIRT, order_of
from tests.pipeline import configure, cycle, english
from tests.sandbox_server import Sandbox
from tests.test_integrations import NEW

MUG = "8680001000059"  # KUPA-SERAMIK


@pytest.fixture
def hub(account: Account, sandbox: Sandbox) -> Integration:
    return HEPSIBURADA.join(account, sandbox)


def hb_order(sandbox: Sandbox, *lines: tuple[str, int]) -> dict[str, Any]:
    return sandbox.world.hepsiburada.create_order(
        {
            "lines": [
                {"barcode": barcode, "quantity": quantity} for barcode, quantity in lines or [(TSHIRT, 1)]
            ]
        }
    )


def line_of(order: dict[str, Any], barcode: str) -> dict[str, Any]:
    return next(line for line in order["items"] if line["productBarcode"] == barcode)


def shop_order(sandbox: Sandbox) -> dict[str, Any]:
    (only,) = sandbox.shop_orders()
    return only


def products(account: Account) -> tuple[Product, Product]:
    tshirt = Product(account_id=account.id, barcode=TSHIRT, stock_code="TS-BEYAZ-M", name="Tişört", stock=10)
    oil = Product(account_id=account.id, barcode=OIL, stock_code="ZEYTINYAGI-1L", name="Zeytinyağı", stock=5)
    db.session.add_all([tshirt, oil])
    db.session.commit()
    return tshirt, oil


def test_approval_packs_the_open_lines_into_one_package(hub: Integration, sandbox: Sandbox) -> None:
    configure(hub, approval_feedback=True)
    order = hb_order(sandbox, (TSHIRT, 2), (OIL, 1))
    cycle(hub)
    cycle(hub)
    numbers = {line["packageNumber"] for line in order["items"]}
    assert len(numbers) == 1 and "" not in numbers
    hub_order = order_of(order["orderNumber"])
    assert hub_order.package_number == numbers.pop()
    assert hub_order.canonical_status is not None and hub_order.canonical_status.value == "Picking"
    assert shop_order(sandbox)["total"] == f"{hub_order.total:.2f}"


def test_a_line_cancelled_on_hepsiburada_is_noted_and_its_stock_comes_back(
    hub: Integration, sandbox: Sandbox, account: Account
) -> None:
    """Hepsiburada cancels a line in the order itself (no new package): one shop order, a note naming the
    line, its units back in stock, the rest going on."""
    configure(hub, decrease_stock=True, cancellation_transfer=True)
    tshirt, oil = products(account)
    order = hb_order(sandbox, (TSHIRT, 2), (OIL, 1))
    cycle(hub)
    db.session.refresh(oil)
    assert oil.stock == 4
    sandbox.world.hepsiburada.cancel_lines(order["orderNumber"], [line_of(order, OIL)["id"]])
    cycle(hub)
    only = shop_order(sandbox)
    assert only["status"] == "processing"
    assert [note["note"] for note in only["notes"]] == [
        f"Pazaryerinde iptal edilen satırlar: {line_of(order, OIL)['name']} (ZEYTINYAGI-1L) × 1"
    ]
    db.session.refresh(tshirt)
    db.session.refresh(oil)
    assert (tshirt.stock, oil.stock) == (8, 5)
    hub_order = order_of(order["orderNumber"])
    assert [(line.stock_code, line.quantity, line.cancelled) for line in hub_order.lines] == [
        ("TS-BEYAZ-M", 2, False),
        ("ZEYTINYAGI-1L", 1, True),
    ]
    assert hub_order.transfer_state == TransferState.TRANSFERRED
    hub.pull_cursor = None  # read again: nothing twice
    db.session.commit()
    cycle(hub)
    assert len(shop_order(sandbox)["notes"]) == 1
    db.session.refresh(oil)
    assert oil.stock == 5


def test_an_order_first_seen_with_a_cancelled_line_goes_to_the_shop_without_it(
    hub: Integration, sandbox: Sandbox
) -> None:
    order = hb_order(sandbox, (TSHIRT, 1), (OIL, 1))
    sandbox.world.hepsiburada.cancel_lines(order["orderNumber"], [line_of(order, OIL)["id"]])
    cycle(hub)
    assert [item["sku"] for item in shop_order(sandbox)["line_items"]] == ["TS-BEYAZ-M"]
    assert shop_order(sandbox)["total"] == f"{order_of(order['orderNumber']).total:.2f}"


def test_every_line_cancelled_cancels_the_shop_order(hub: Integration, sandbox: Sandbox) -> None:
    configure(hub, cancellation_transfer=True)
    order = hb_order(sandbox, (TSHIRT, 1), (OIL, 1))
    cycle(hub)
    sandbox.world.hepsiburada.cancel_lines(order["orderNumber"], [line["id"] for line in order["items"]])
    cycle(hub)
    assert shop_order(sandbox)["status"] == "cancelled"


@pytest.mark.parametrize("packed", [False, True])
def test_a_shop_cancellation_cancels_the_lines_on_hepsiburada(
    hub: Integration, sandbox: Sandbox, packed: bool
) -> None:
    """Open lines by cancelbymerchant; packed ones by the package's split, before the carrier has it."""
    configure(hub, reverse_flow=True, approval_feedback=packed)
    order = hb_order(sandbox, (TSHIRT, 1), (OIL, 1))
    cycle(hub)
    cycle(hub)
    with sandbox.world.lock:
        sandbox.world.update_shop_order(shop_order(sandbox), {"status": "cancelled"})
    cycle(hub)
    assert {line["status"] for line in order["items"]} == {"Cancelled"}
    paths = [path for _, path, _ in sandbox.world.requests if path.startswith("/hepsiburada/")]
    assert any(path.endswith("/split") for path in paths) is packed
    assert any(path.endswith("/cancelbymerchant") for path in paths) is not packed
    cycle(hub)  # Hepsiburada reports the cancellation the hub sent: nothing goes back to the shop
    assert shop_order(sandbox)["status"] == "cancelled" and shop_order(sandbox)["notes"] == []


def test_a_shop_cancellation_after_the_carrier_has_it_is_not_sent(hub: Integration, sandbox: Sandbox) -> None:
    configure(hub, reverse_flow=True)
    order = hb_order(sandbox)
    cycle(hub)
    HEPSIBURADA.ship(sandbox, order["orderNumber"])
    cycle(hub)
    with sandbox.world.lock:
        sandbox.world.update_shop_order(shop_order(sandbox), {"status": "cancelled"})
    before = len(sandbox.world.requests)
    cycle(hub)
    assert not [
        r for r in sandbox.world.requests[before:] if r[0] == "POST" and r[1].startswith("/hepsiburada/")
    ]
    assert order_of(order["orderNumber"]).review_reason == SHIPPED_THEN_CANCELLED


def test_update_feedback_puts_the_package_in_transit_with_the_seller_s_code(
    hub: Integration, sandbox: Sandbox
) -> None:
    configure(hub, approval_feedback=True, update_feedback=True)
    order = hb_order(sandbox)
    cycle(hub)
    cycle(hub)
    items = [{"tracking_provider": "Sürat Kargo", "tracking_number": "SELLER123", "custom_tracking_link": ""}]
    with sandbox.world.lock:
        sandbox.world.update_shop_order(
            shop_order(sandbox), {"meta_data": [{"key": "_wc_shipment_tracking_items", "value": items}]}
        )
    cycle(hub)
    (package,) = sandbox.world.hepsiburada.packages.values()
    assert (package["status"], package["trackingInfoCode"]) == ("InTransit", "SELLER123")
    cycle(hub)  # HB reports it in transit: the shop already is the one that said so
    hub_order = order_of(order["orderNumber"])
    assert hub_order.canonical_status is not None and hub_order.canonical_status.value == "Shipped"


def test_identity_and_tax_numbers_are_masked_in_the_history(hub: Integration, sandbox: Sandbox) -> None:
    order = sandbox.world.hepsiburada.create_order({"corporate": True})
    cycle(hub)
    events = db.session.scalars(order_of(order["orderNumber"]).events.select())
    shown = str([event.payload for event in events if event.payload])
    assert "11111111111" not in shown and "1234567890" not in shown and "•••••••••11" in shown


def test_a_seller_adds_a_hepsiburada_integration(seller: Client, sandbox: Sandbox) -> None:
    form = seller.get("/integrations/new?marketplace_kind=hepsiburada").get_data(as_text=True)
    assert "Merchant ID" in form and "Servis Anahtarı" in form and "App key" not in form
    market = sandbox.world.hepsiburada
    data = {
        **{name: value for name, value in NEW.items() if not name.startswith("marketplace_")},
        "name": "HB store",
        "marketplace_kind": "hepsiburada",
        "marketplace_base_url": sandbox.hepsiburada_url,
        "marketplace_merchant_id": market.merchant_id,
        "marketplace_service_key": market.service_key,
        "shop_base_url": sandbox.shop_url,
        "shop_consumer_key": "ck_sandbox",
        "shop_consumer_secret": "cs_sandbox",
    }
    hb_order(sandbox)
    tried = seller.post("/integrations/connection", data=data, htmx=True).get_data(as_text=True)
    assert tried.count("Connected:") == 2
    # One request, inside the web request: not the pull's six lists and every order.
    assert len([r for r in sandbox.world.requests if r[1].startswith("/hepsiburada/")]) == 1
    wrong = seller.post(
        "/integrations/connection", data={**data, "marketplace_merchant_id": "not-a-guid"}, htmx=True
    ).get_data(as_text=True)
    assert "Enter the Merchant ID as Hepsiburada shows it" in wrong
    response = seller.post("/integrations/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    integration = db.session.scalar(
        sa.select(Integration).where(Integration.marketplace_kind == "hepsiburada")
    )
    assert integration is not None
    assert integration.credentials(Side.MARKETPLACE) == {
        "merchant_id": market.merchant_id,
        "service_key": market.service_key,
    }


def test_the_history_says_what_hepsiburada_cancelled(hub: Integration, sandbox: Sandbox) -> None:
    configure(hub, cancellation_transfer=True)
    order = hb_order(sandbox, (TSHIRT, 1), (OIL, 1))
    cycle(hub)
    sandbox.world.hepsiburada.cancel_lines(order["orderNumber"], [line_of(order, OIL)["id"]])
    cycle(hub)
    hub_order = db.session.scalar(sa.select(Order).where(Order.package_id == order["orderNumber"]))
    assert hub_order is not None
    lines = [english(event.summary, event.params) for event in db.session.scalars(hub_order.events.select())]
    assert any("note on the shop order: Pazaryerinde iptal edilen satırlar" in line for line in lines)
    assert "cancelled on the marketplace: Soğuk Sıkım Zeytinyağı 1 L × 1" in lines


def test_a_second_cancellation_is_noted_for_what_it_cut_only(hub: Integration, sandbox: Sandbox) -> None:
    configure(hub, cancellation_transfer=True)
    order = hb_order(sandbox, (TSHIRT, 1), (OIL, 1), (MUG, 1))
    cycle(hub)
    for barcode in (OIL, MUG):
        sandbox.world.hepsiburada.cancel_lines(order["orderNumber"], [line_of(order, barcode)["id"]])
        cycle(hub)
    notes = [note["note"] for note in shop_order(sandbox)["notes"]]
    assert len(notes) == 2 and "ZEYTINYAGI-1L" in notes[0]
    assert "KUPA-SERAMIK" in notes[1] and "ZEYTINYAGI-1L" not in notes[1]
