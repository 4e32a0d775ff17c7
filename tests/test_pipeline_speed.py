"""What the pipeline's cheaper paths must keep: an action's claim and the order's lease (taken, waited for,
given back with the outcome), and a pull that goes on from its cursor yet still reads a late write."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from extensions import db
from models import ActionState, Integration, Order, OrderAction
from models.base import utcnow
from sync import actions, pull
from tests.pipeline import cycle
from tests.sandbox_server import Sandbox


def transfer_of(integration: Integration) -> OrderAction:
    """Pull, and the transfer it queued (not run yet)."""
    (transfer,) = [
        action for action in pull.sync_integration(integration.id).actions if action.kind == "transfer"
    ]
    return transfer


def test_an_action_on_a_busy_order_waits_without_counting_an_attempt(
    hub: Integration, sandbox: Sandbox
) -> None:
    sandbox.order()
    transfer = transfer_of(hub)
    order_id = transfer.order_id
    held = utcnow() + timedelta(seconds=30)
    db.session.get_one(Order, order_id).lease_until = held  # another action talks about the order
    db.session.commit()
    outcome = actions.run(transfer.id)
    db.session.expire_all()
    assert not outcome.ran and outcome.retry_at is not None and outcome.integration_id == hub.id
    row = db.session.get_one(OrderAction, transfer.id)
    assert row.state == ActionState.PENDING and row.attempts == 0
    assert db.session.get_one(Order, order_id).lease_until == held  # only its holder gives it back
    assert sandbox.shop_orders() == []


def test_the_lease_is_given_back_with_the_outcome(hub: Integration, sandbox: Sandbox) -> None:
    sandbox.order()
    transfer = transfer_of(hub)
    outcome = actions.run(transfer.id)
    db.session.expire_all()
    assert outcome.ran and outcome.integration_id == hub.id
    assert db.session.get_one(OrderAction, transfer.id).state == ActionState.DONE
    assert db.session.get_one(Order, transfer.order_id).lease_until is None
    assert len(sandbox.shop_orders()) == 1
    assert actions.run(transfer.id).ran is False  # a second delivery finds nothing to claim


def test_a_failed_attempt_gives_the_lease_back_too(hub: Integration, sandbox: Sandbox) -> None:
    sandbox.order()
    transfer = transfer_of(hub)
    sandbox.world.faults.update({"error_rate": 1.0})
    outcome = actions.run(transfer.id)
    db.session.expire_all()
    assert outcome.ran and outcome.retry_at is not None
    row = db.session.get_one(OrderAction, transfer.id)
    assert row.state == ActionState.PENDING and row.attempts == 1
    assert db.session.get_one(Order, transfer.order_id).lease_until is None


@pytest.mark.parametrize(("every", "read_at_once"), [(60, False), (0, True)])
def test_a_pull_goes_on_from_its_cursor_and_reads_the_overlap_once_in_a_while(
    app: Flask, hub: Integration, sandbox: Sandbox, every: int, read_at_once: bool
) -> None:
    app.config["PULL_OVERLAP_EVERY"] = every
    sandbox.order()
    cycle(hub)
    late = sandbox.order()
    with sandbox.world.lock:
        late["lastModifiedDate"] -= 60_000  # modified a minute before it showed up: behind the cursor
    cycle(hub)
    in_hub = db.session.scalar(sa.select(Order).where(Order.package_id == str(late["shipmentPackageId"])))
    assert (in_hub is not None) is read_at_once
    # A pull once PULL_OVERLAP_EVERY has passed reads the overlap again, and with it the late package.
    hub.pull_overlap_read_at = utcnow() - timedelta(seconds=every or 1)
    db.session.commit()
    cycle(hub)
    assert db.session.scalar(sa.select(Order).where(Order.package_id == str(late["shipmentPackageId"])))


def test_a_pull_that_fails_before_a_page_leaves_the_overlap_to_the_next(
    hub: Integration, sandbox: Sandbox
) -> None:
    sandbox.order()
    sandbox.world.faults.update({"error_rate": 1})  # every listing answer a 5xx, retries too
    cycle(hub)
    db.session.expire_all()
    assert hub.last_pull_error is not None and hub.pull_overlap_read_at is None
    sandbox.world.faults.update({"error_rate": 0})
    hub.next_pull_at = utcnow()
    db.session.commit()
    cycle(hub)
    db.session.expire_all()
    assert hub.last_pull_error is None and hub.pull_overlap_read_at is not None
