"""Pazarama joined to the shop: the pipeline over HTTP against the sandbox's Pazarama, and what only
Pazarama has: a listing by order date with no "changed since", so a later step of an older order must still
reach the hub; items accepted, shipped with the seller's carrier and cancelled one by one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from connectors import pazarama
from connectors.registry import Side
from extensions import db
from models import Account, Integration, Order, TransferState
from models.base import utcnow
from sync.statuses import CanonicalStatus
from tests.conftest import make_integration
from tests.pipeline import configure, cycle
from tests.sandbox_server import Sandbox
from tests.shops import WOOCOMMERCE

SHIRT = "8680001000011"  # TS-BEYAZ-M, 149.90, VAT 10


@pytest.fixture(autouse=True)
def fresh_tokens() -> Iterator[None]:
    pazarama.forget_tokens()  # a new sandbox, maybe at an address an earlier test's had
    yield
    pazarama.forget_tokens()


@pytest.fixture
def hub(account: Account, sandbox: Sandbox) -> Integration:
    """A Pazarama integration joined to the sandbox's Pazarama and shop, with an own shipping agreement."""
    integration = make_integration(
        account,
        name="Pazarama → Woo",
        marketplace_kind="pazarama",
        marketplace_base_url=sandbox.pazarama_url,
        shop_base_url=sandbox.shop_url,
    )
    market = sandbox.world.pazarama
    keys = {"pazarama_client_id": market.client_id, "pazarama_client_secret": market.client_secret}
    integration.set_credentials(Side.MARKETPLACE, keys)
    integration.set_credentials(Side.SHOP, {"consumer_key": "ck_sandbox", "consumer_secret": "cs_sandbox"})
    db.session.commit()
    return integration


def new_order(sandbox: Sandbox, **spec: Any) -> dict[str, Any]:
    return sandbox.world.pazarama.create_order({"lines": [{"barcode": SHIRT, "quantity": 2}], **spec})


def order_for(raw: dict[str, Any]) -> Order:
    order = db.session.scalar(sa.select(Order).where(Order.package_id == str(raw["orderNumber"])))
    assert order is not None, f"Pazarama order {raw['orderNumber']} is not in the hub"
    return order


def statuses(sandbox: Sandbox, raw: dict[str, Any]) -> list[int]:
    return [item["orderItemStatus"] for item in sandbox.world.pazarama.orders[raw["orderNumber"]]["items"]]


def shop_order(sandbox: Sandbox) -> dict[str, Any]:
    (only,) = sandbox.shop_orders()
    return only


def a_minute_later(integration: Integration) -> None:
    """Time passes for the pull: its last reading of the overlap (here, two weeks back) is a minute old,
    so the next one reads it again (PULL_OVERLAP_EVERY)."""
    integration.pull_overlap_read_at = utcnow() - timedelta(minutes=1, seconds=1)
    db.session.commit()


def test_a_pazarama_order_reaches_the_shop_at_pazarama_s_total(hub: Integration, sandbox: Sandbox) -> None:
    raw = new_order(sandbox)
    cycle(hub)
    order = order_for(raw)
    assert order.transfer_state == TransferState.TRANSFERRED
    assert shop_order(sandbox)["line_items"][0]["sku"] == "TS-BEYAZ-M"
    # 2 × 149.90, under the free shipping line: Pazarama's shipping fee on top.
    assert shop_order(sandbox)["total"] == f"{order.total:.2f}" == "334.79"
    cycle(hub)  # a pull again changes nothing
    assert len(sandbox.shop_orders()) == 1


def test_a_status_change_of_an_order_placed_days_ago_reaches_the_hub(
    hub: Integration, sandbox: Sandbox
) -> None:
    """Pazarama lists by order date and has no "changed since": the pull reads the last two weeks again
    (the kind's pull_overlap), so an order placed five days ago that ships today is seen shipping."""
    configure(hub, status_change_transfer=True)
    raw = new_order(sandbox, daysAgo=5, status=12)
    cycle(hub)
    assert order_for(raw).canonical_status is CanonicalStatus.PICKING
    hub.pull_cursor = utcnow()  # the pull has read everything up to now; only the overlap goes back
    db.session.commit()
    sandbox.world.pazarama.set_status(sandbox.world.pazarama.orders[raw["orderNumber"]], 5)
    cycle(hub)  # a pull from the cursor reads today's orders only
    assert order_for(raw).canonical_status is CanonicalStatus.PICKING
    a_minute_later(hub)
    cycle(hub)  # this one reads the two weeks again
    order = order_for(raw)
    assert order.canonical_status is CanonicalStatus.SHIPPED
    assert (
        order.tracking_number
        == sandbox.world.pazarama.orders[raw["orderNumber"]]["items"][0]["cargo"]["trackingNumber"]
    )
    assert shop_order(sandbox)["status"] == "completed"


@pytest.mark.parametrize(("on", "expected"), [(True, [12]), (False, [3])])
def test_addition_approval_feedback_accepts_the_items(
    hub: Integration, sandbox: Sandbox, on: bool, expected: list[int]
) -> None:
    configure(hub, approval_feedback=on)
    raw = new_order(sandbox)
    cycle(hub)
    assert statuses(sandbox, raw) == expected


def test_the_seller_s_tracking_code_ships_the_items_with_their_carrier(
    hub: Integration, sandbox: Sandbox
) -> None:
    configure(hub, update_feedback=True, approval_feedback=True)
    raw = new_order(sandbox)
    cycle(hub)
    WOOCOMMERCE.enter_tracking(sandbox, order_for(raw), "Aras Kargo", "ARAS777")
    cycle(hub)
    assert statuses(sandbox, raw) == [5]
    (item,) = sandbox.world.pazarama.orders[raw["orderNumber"]]["items"]
    assert (item["cargo"]["companyName"], item["cargo"]["trackingNumber"], item["deliveryType"]) == (
        "Aras Kargo",
        "ARAS777",
        1,
    )
    cycle(hub)  # Pazarama reports it shipped: nothing goes back again
    assert len(sandbox.world.pazarama.pushed) == 2  # 12, then 5


def test_a_shop_cancellation_is_tedarik_edilemedi_on_pazarama(hub: Integration, sandbox: Sandbox) -> None:
    configure(hub, reverse_flow=True, approval_feedback=True)
    raw = new_order(sandbox)
    cycle(hub)  # accepted on Pazarama: 12
    cycle(hub)  # which Pazarama reports
    with sandbox.world.lock:
        sandbox.world.update_shop_order(shop_order(sandbox), {"status": "cancelled"})
    cycle(hub)
    assert statuses(sandbox, raw) == [13]
    cycle(hub)  # which Pazarama reports
    order = order_for(raw)
    assert order.canonical_status is CanonicalStatus.UNSUPPLIED and order.review_reason is None
