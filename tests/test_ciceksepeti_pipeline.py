"""Çiçeksepeti joined to the shop: the pipeline over HTTP against the sandbox's Çiçeksepeti, its two shipping
paths, its missing cancel API as the seller reads it, and its keys on the integration form. The General
settings on and off are in test_every_marketplace.py (the Ciceksepeti face, tests/markets.py)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from connectors.registry import MARKETPLACES, Side
from extensions import db
from models import Account, ActionState, Integration, OrderAction, TransferState
from tests.conftest import Client
from tests.markets import CICEKSEPETI, TSHIRT, order_of
from tests.pipeline import configure, cycle
from tests.sandbox_server import Sandbox
from tests.test_integrations import NEW

MUG = "8680001000059"  # KUPA-SERAMIK, 89.99, VAT 20


@pytest.fixture
def hub(account: Account, sandbox: Sandbox) -> Integration:
    """A Çiçeksepeti integration joined to the sandbox's Çiçeksepeti and shop, own shipping agreement."""
    return CICEKSEPETI.join(account, sandbox)


def new_order(sandbox: Sandbox, **spec: Any) -> str:
    created = sandbox.world.ciceksepeti.create_order({"lines": [{"barcode": TSHIRT, "quantity": 2}], **spec})
    return str(created["orderId"])


def shop_order(sandbox: Sandbox) -> dict[str, Any]:
    (only,) = sandbox.shop_orders()
    return only


def test_an_order_reaches_the_shop_at_ciceksepeti_s_total_with_its_card(
    hub: Integration, sandbox: Sandbox
) -> None:
    """The card message has no way into a shop order yet (the hub carries no marketplace note): it is kept
    with the order's payload, which the order page shows."""
    package_id = new_order(sandbox, cardMessage="Nice yıllara!")
    cycle(hub)
    order = order_of(package_id)
    assert order.transfer_state == TransferState.TRANSFERRED and order.order_number == package_id
    assert shop_order(sandbox)["line_items"][0]["sku"] == "TS-BEYAZ-M"
    assert shop_order(sandbox)["total"] == f"{order.total:.2f}" == "299.80"
    assert [row["cardMessage"] for row in order.raw["rows"]] == ["Nice yıllara!"]
    cycle(hub)  # a pull again changes nothing
    assert len(sandbox.shop_orders()) == 1


def test_on_ciceksepeti_s_cargo_the_approval_makes_the_label_and_its_tracking_comes_back(
    hub: Integration, sandbox: Sandbox
) -> None:
    configure(hub, approval_feedback=True)
    package_id = new_order(sandbox, cargoModelType=1)
    cycle(hub)
    market = sandbox.world.ciceksepeti
    (row,) = market.rows_of(package_id)
    assert row["orderItemStatusId"] == 11 and row["partialNumber"]
    market.ship(package_id)
    cycle(hub)
    assert shop_order(sandbox)["status"] == "completed"
    assert order_of(package_id).tracking_number == row["cargoNumber"]


def test_a_shop_cancellation_tells_the_seller_to_cancel_in_ciceksepeti_s_panel(
    hub: Integration, sandbox: Sandbox
) -> None:
    """Çiçeksepeti has no cancel API: the cancellation from the shop fails by name, the order's history
    says where to cancel, and nothing is sent to Çiçeksepeti."""
    configure(hub, reverse_flow=True)
    package_id = new_order(sandbox)
    cycle(hub)
    with sandbox.world.lock:
        sandbox.world.update_shop_order(shop_order(sandbox), {"status": "cancelled"})
    sent = [path for method, path, _ in sandbox.world.requests if method == "PUT"]
    cycle(hub)
    assert [path for method, path, _ in sandbox.world.requests if method == "PUT"] == sent
    (row,) = sandbox.world.ciceksepeti.rows_of(package_id)
    assert row["isOrderStatusActive"] is True and row["orderItemStatusId"] == 1
    order = order_of(package_id)
    failed = db.session.scalars(
        sa.select(OrderAction).where(
            OrderAction.order_id == order.id, OrderAction.state == ActionState.FAILED
        )
    ).all()
    assert [action.last_error for action in failed] == [
        "Çiçeksepeti has no cancel API: cancel the order in the Çiçeksepeti seller panel (a new or preparing "
        "order only; once it is to be shipped or shipped it can no longer be cancelled)."
    ]
    reasons = [
        event.params.get("reason") for event in db.session.scalars(order.events.select()) if event.params
    ]
    assert any("no cancel API" in str(reason) for reason in reasons)


def test_an_item_cancelled_on_ciceksepeti_is_noted_on_the_one_shop_order(
    hub: Integration, sandbox: Sandbox
) -> None:
    market = sandbox.world.ciceksepeti
    created = market.create_order({"lines": [{"barcode": TSHIRT, "quantity": 2}, {"barcode": MUG}]})
    package_id, mug = str(created["orderId"]), created["rows"][1]
    cycle(hub)
    market.cancel(package_id, [mug["orderItemId"]])
    cycle(hub)
    (only,) = sandbox.shop_orders()
    assert only["status"] == "processing"
    assert [note["note"] for note in only["notes"]] == [
        f"Pazaryerinde iptal edilen satırlar: {mug['name']} ({mug['code']}) × 1"
    ]
    line = next(line for line in order_of(package_id).lines if line.line_id == str(mug["orderItemId"]))
    assert line.cancelled


def test_a_seller_adds_a_ciceksepeti_integration_with_its_keys(seller: Client, account: Account) -> None:
    assert MARKETPLACES["ciceksepeti"].min_pull_interval == 60
    form = seller.get("/integrations/new?marketplace_kind=ciceksepeti&name=Cicek").get_data(as_text=True)
    assert "Seller ID" in form and "API key" in form
    response = seller.post(
        "/integrations/new",
        data={
            **{name: value for name, value in NEW.items() if not name.startswith("marketplace_")},
            "name": "Çiçek store",
            "marketplace_kind": "ciceksepeti",
            "marketplace_base_url": "https://apis.ciceksepeti.com/api/v1",
            "marketplace_ciceksepeti_seller_id": "50123",
            "marketplace_ciceksepeti_api_key": "cs-key",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    integration = db.session.scalar(
        sa.select(Integration).where(Integration.marketplace_kind == "ciceksepeti")
    )
    assert integration is not None
    assert integration.credentials(Side.MARKETPLACE) == {
        "ciceksepeti_seller_id": "50123",
        "ciceksepeti_api_key": "cs-key",
    }


def test_the_general_page_says_a_cancellation_is_not_passed_on(
    seller: Client, account: Account, sandbox: Sandbox
) -> None:
    integration = CICEKSEPETI.join(account, sandbox)
    page = seller.get(f"/integrations/{integration.id}/general").get_data(as_text=True)
    assert "On Çiçeksepeti: there is no API to cancel an order" in page
