"""N11 joined to the shop: the pipeline and the General settings over HTTP against the sandbox's N11,
as for Trendyol, and the settings N11's API cannot carry out shown and kept off."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from connectors.registry import Side
from extensions import db
from models import Account, Integration, Order, TransferState
from sync.actions import ACCEPT_THEN_CANCEL
from tests.conftest import Client, make_integration
from tests.pipeline import configure, cycle
from tests.sandbox_server import Sandbox
from tests.test_integrations import NEW

SHIRT = "8680001000011"  # TS-BEYAZ-M, 149.90, VAT 10
MUG = "8680001000059"  # KUPA-SERAMIK, 89.99, VAT 20


@pytest.fixture
def hub(account: Account, sandbox: Sandbox) -> Integration:
    """An N11 integration joined to the sandbox's N11 and shop, with an own shipping agreement."""
    integration = make_integration(
        account,
        name="N11 → Woo",
        marketplace_kind="n11",
        marketplace_base_url=sandbox.n11_url,
        shop_base_url=sandbox.shop_url,
    )
    integration.set_credentials(
        Side.MARKETPLACE, {"app_key": "n11-sandbox-key", "app_secret": "n11-sandbox-secret"}
    )
    integration.set_credentials(Side.SHOP, {"consumer_key": "ck_sandbox", "consumer_secret": "cs_sandbox"})
    db.session.commit()
    return integration


def new_order(sandbox: Sandbox, **spec: Any) -> dict[str, Any]:
    return sandbox.world.n11.create_package({"lines": [{"barcode": SHIRT, "quantity": 2}], **spec})


def order_for(package: dict[str, Any]) -> Order:
    order = db.session.scalar(sa.select(Order).where(Order.package_id == str(package["id"])))
    assert order is not None, f"N11 package {package['id']} is not in the hub"
    return order


def shop_order(sandbox: Sandbox) -> dict[str, Any]:
    (only,) = sandbox.shop_orders()
    return only


def test_an_n11_order_reaches_the_shop_at_n11_s_total(hub: Integration, sandbox: Sandbox) -> None:
    package = new_order(sandbox)
    cycle(hub)
    order = order_for(package)
    assert order.transfer_state == TransferState.TRANSFERRED
    assert shop_order(sandbox)["line_items"][0]["sku"] == "TS-BEYAZ-M"
    assert shop_order(sandbox)["total"] == f"{order.total:.2f}"
    cycle(hub)  # a pull again changes nothing
    assert len(sandbox.shop_orders()) == 1


@pytest.mark.parametrize(("on", "expected"), [(True, "Picking"), (False, "Created")])
def test_addition_approval_feedback_accepts_on_n11(
    hub: Integration, sandbox: Sandbox, on: bool, expected: str
) -> None:
    configure(hub, approval_feedback=on)
    package = new_order(sandbox)
    cycle(hub)
    assert sandbox.world.n11.packages[package["id"]]["shipmentPackageStatus"] == expected


@pytest.mark.parametrize(("on", "expected"), [(True, "completed"), (False, "processing")])
def test_status_change_transfer_follows_n11(
    hub: Integration, sandbox: Sandbox, on: bool, expected: str
) -> None:
    configure(hub, status_change_transfer=on)
    package = new_order(sandbox)
    cycle(hub)
    sandbox.world.n11.set_status(sandbox.world.n11.packages[package["id"]], "Shipped")
    cycle(hub)
    assert shop_order(sandbox)["status"] == expected


@pytest.mark.parametrize(("on", "expected"), [(True, "cancelled"), (False, "processing")])
def test_cancellation_transfer_follows_n11(
    hub: Integration, sandbox: Sandbox, on: bool, expected: str
) -> None:
    configure(hub, cancellation_transfer=on)
    package = new_order(sandbox)
    cycle(hub)
    sandbox.world.n11.set_status(sandbox.world.n11.packages[package["id"]], "Cancelled")
    cycle(hub)
    assert shop_order(sandbox)["status"] == expected


def test_a_shop_cancellation_reaches_n11_once_the_package_is_accepted(
    hub: Integration, sandbox: Sandbox
) -> None:
    configure(hub, reverse_flow=True, approval_feedback=True)
    package = new_order(sandbox)
    cycle(hub)  # accepted on N11: Picking
    cycle(hub)  # which N11 reports
    with sandbox.world.lock:
        sandbox.world.update_shop_order(shop_order(sandbox), {"status": "cancelled"})
    cycle(hub)
    assert sandbox.world.n11.packages[package["id"]]["shipmentPackageStatus"] == "Cancelled"
    assert order_for(package).review_reason is None


def test_a_shop_cancellation_of_a_package_n11_has_not_accepted_says_what_to_do(
    hub: Integration, sandbox: Sandbox
) -> None:
    """N11 takes a seller's cancellation only in Picking: the hub sends none it would refuse."""
    configure(hub, reverse_flow=True, approval_feedback=False)
    package = new_order(sandbox)
    cycle(hub)
    with sandbox.world.lock:
        sandbox.world.update_shop_order(shop_order(sandbox), {"status": "cancelled"})
    cycle(hub)
    assert sandbox.world.n11.packages[package["id"]]["shipmentPackageStatus"] == "Created"
    order = order_for(package)
    assert order.review_reason == ACCEPT_THEN_CANCEL and order.transfer_state == TransferState.TRANSFERRED


def test_update_feedback_is_not_available_on_n11(hub: Integration, seller: Client) -> None:
    """N11 takes an own carrier's tracking number only through SOAP: the General page says so, refuses
    to switch it on, and the pipeline keeps it off even if it was stored on."""
    page = seller.get(f"/integrations/{hub.id}/general").get_data(as_text=True)
    assert "Not available on N11:" in page
    response = seller.post(
        f"/integrations/{hub.id}/general/feedback",
        data={"approval_feedback": "y", "update_feedback": "y"},
        htmx=True,
    )
    assert "Not available on N11:" in response.get_data(as_text=True)
    db.session.refresh(hub.settings)
    assert hub.settings.update_feedback is False
    hub.settings.update_feedback = True  # stored on before N11 said it cannot
    db.session.commit()
    assert hub.settings.to_domain().update_feedback is False


def mug_cancelled(hub: Integration, sandbox: Sandbox) -> tuple[dict[str, Any], dict[str, Any]]:
    """An accepted order of two shirts and a mug, read; then the seller cancels the mug on N11 (the rest
    goes on in a new package), and the hub reads that too. The package and the mug's line."""
    package = sandbox.world.n11.create_package(
        {"lines": [{"barcode": SHIRT, "quantity": 2}, {"barcode": MUG, "quantity": 1}], "status": "Picking"}
    )
    cycle(hub)
    mug = next(line for line in package["lines"] if line["barcode"] == MUG)
    sandbox.world.n11.cancel([{"orderLineId": mug["orderLineId"], "quantity": 1, "cancelReasonId": 61}])
    cycle(hub)
    return package, mug


def test_a_part_cancellation_on_n11_keeps_one_shop_order(hub: Integration, sandbox: Sandbox) -> None:
    """N11 moves what is left to a new package id without naming the old one: the hub links them by
    their lines, keeps one shop order and notes only what was cancelled."""
    configure(hub, cancellation_transfer=True)
    package, mug = mug_cancelled(hub, sandbox)
    (only,) = sandbox.shop_orders()
    assert only["status"] == "processing"
    assert [note["note"] for note in only["notes"]] == [
        f"Pazaryerinde iptal edilen satırlar: {mug['productName']} ({mug['stockCode']}) × 1"
    ]
    successor = db.session.scalar(
        sa.select(Order).where(Order.integration_id == hub.id, Order.package_id != str(package["id"]))
    )
    assert successor is not None and successor.reference == order_for(package).reference
    assert [(line.stock_code, line.quantity, line.cancelled) for line in successor.lines] == [
        ("TS-BEYAZ-M", 2, False)
    ]


def test_a_seller_adds_an_n11_integration_with_n11_s_keys(seller: Client, account: Account) -> None:
    form = seller.get("/integrations/new").get_data(as_text=True)
    assert '<option value="n11">N11</option>' in form and "App key" not in form  # Trendyol's keys first
    form = seller.get("/integrations/new?marketplace_kind=n11&name=N11+store").get_data(as_text=True)
    assert "App key" in form and "Seller ID" not in form and 'value="N11 store"' in form
    response = seller.post(
        "/integrations/new",
        data={
            # The Trendyol integration's form with N11's marketplace side instead.
            **{name: value for name, value in NEW.items() if not name.startswith("marketplace_")},
            "name": "N11 store",
            "marketplace_kind": "n11",
            "marketplace_base_url": "https://api.n11.com",
            "marketplace_app_key": "n11-key",
            "marketplace_app_secret": "n11-secret",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    integration = db.session.scalar(sa.select(Integration).where(Integration.marketplace_kind == "n11"))
    assert integration is not None
    assert integration.credentials(Side.MARKETPLACE) == {"app_key": "n11-key", "app_secret": "n11-secret"}
    assert "n11-secret" not in seller.get(f"/integrations/{integration.id}/edit").get_data(as_text=True)


def test_the_rest_of_an_order_never_in_the_shop_waits_for_its_transfer(
    hub: Integration, sandbox: Sandbox
) -> None:
    """Automatic transfer off: the old package ends, cancelled first; the new one, which N11 lists at the
    same moment, is the order now and waits to be transferred (it is not taken for cancelled)."""
    configure(hub, auto_transfer=False)
    package, _ = mug_cancelled(hub, sandbox)
    successor = db.session.scalar(
        sa.select(Order).where(Order.integration_id == hub.id, Order.package_id != str(package["id"]))
    )
    assert successor is not None and successor.transfer_state == TransferState.WAITING
    assert order_for(package).transfer_state == TransferState.CANCELLED
    assert sandbox.shop_orders() == []


def test_identity_and_tax_numbers_are_masked_in_the_history(hub: Integration, sandbox: Sandbox) -> None:
    package = new_order(sandbox)
    with sandbox.world.n11.lock:
        package["billingAddress"]["tcId"] = package["shippingAddress"]["tcId"] = "12345678901"
        package["taxId"] = "9876543210"
    cycle(hub)
    order = order_for(package)
    payloads = [event.payload for event in db.session.scalars(order.events.select()) if event.payload]
    shown = str(payloads)
    assert "12345678901" not in shown and "9876543210" not in shown and "•••••••••01" in shown
