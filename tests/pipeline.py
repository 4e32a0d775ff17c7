"""Running the pipeline in the test process, step by step: a sync cycle, then every action it queued."""

from __future__ import annotations

import socket
from typing import Any

import sqlalchemy as sa

from extensions import db
from models import ActionState, Integration, Order, OrderAction
from models.base import utcnow
from sync import actions, pull


def drain(limit: int = 200) -> int:
    """Run pending actions (and the ones they queue) until none is left; returns how many ran. The
    test's clock jumps ahead for them: an action waiting out a backoff is due at once."""
    ran = 0
    for _ in range(limit):
        pending = db.session.scalars(
            sa.select(OrderAction.id).where(OrderAction.state == ActionState.PENDING).order_by(OrderAction.id)
        ).all()
        if not pending:
            return ran
        due_now()
        for action_id in pending:
            actions.run(action_id)
            ran += 1
    raise AssertionError("actions kept coming")


def english(summary: str, params: dict[str, Any] | None) -> str:
    """A history line in English, its wording filled with its values (sync/wording.py)."""
    return summary % params if params else summary


def due_now() -> None:
    """Time passes, as far as the outbox knows: every pending action waiting for its time is due now
    (an action never runs before its `next_attempt_at`)."""
    db.session.execute(
        sa.update(OrderAction)
        .where(OrderAction.state == ActionState.PENDING, OrderAction.next_attempt_at > utcnow())
        .values(next_attempt_at=utcnow())
    )
    db.session.commit()


def cycle(integration: Integration) -> pull.SyncOutcome:
    """One sync cycle of the integration, then everything it set off."""
    outcome = pull.sync_integration(integration.id)
    drain()
    db.session.expire_all()
    return outcome


def order_for(package: dict[str, object]) -> Order:
    order = db.session.scalar(sa.select(Order).where(Order.package_id == str(package["shipmentPackageId"])))
    assert order is not None, f"package {package['shipmentPackageId']} is not in the hub"
    return order


def configure(integration: Integration, **values: Any) -> None:
    """Set General settings directly, as a saved page would."""
    for name, value in values.items():
        setattr(integration.settings, name, value)
    db.session.commit()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
