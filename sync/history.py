"""Writing the order's history and its outbox: the two things every step of the pipeline leaves behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from extensions import db
from models import ActionState, Order, OrderAction, OrderEvent
from sync import changefeed
from sync.guards import changed
from sync.rules import Action, Decision, Plan
from sync.wording import N_

OPEN = (ActionState.PENDING, ActionState.RUNNING)
INSERT_EVENT = sa.insert(cast(sa.Table, OrderEvent.__table__))
# Hands committed outbox rows to the workers (jobs.tasks.dispatch); long runs call it batch by batch.
Dispatch = Callable[[list[OrderAction]], None]
# Decisions that run inline (sync/stock.py), reading products line by line, rather than as outbox rows.
STOCK_MOVES = frozenset({Action.DECREASE_STOCK, Action.RESTORE_STOCK})


def record(
    order: Order,
    kind: str,
    summary: str,
    params: dict[str, Any] | None = None,
    *,
    rule: str | None = None,
    payload: Any = None,
) -> None:
    """A line of the order's history: `summary` an English wording marked with N_, `params` its values
    (see sync/wording.py).

    A line of an order already written goes at once, as a Core INSERT in the current transaction (and
    savepoint): the history is append-only and nothing reads it back before the commit, and an ORM object
    per line cost the unit of work more than the statement (a fifth of a transfer's commit, by py-spy).
    A line of an order new in this transaction goes with the order, through the ORM."""
    values = {"kind": kind, "summary": summary, "params": params or {}, "rule": rule, "payload": payload}
    if order.id is None:
        db.session.add(OrderEvent(order=order, **values))
        return
    db.session.execute(INSERT_EVENT, {"order_id": order.id, **values})
    changefeed.touch(order.account_id, order.id)  # the live pages redraw the order


def open_actions(order: Order, kinds: frozenset[Action] | set[Action]) -> list[OrderAction]:
    if order.id is None:
        return []
    return list(
        db.session.scalars(
            sa.select(OrderAction).where(
                OrderAction.order_id == order.id,
                OrderAction.kind.in_([kind.value for kind in kinds]),
                OrderAction.state.in_(OPEN),
            )
        )
    )


def enqueue(order: Order, plan: Plan, known: list[OrderAction] | None = None) -> list[OrderAction]:
    """Write the plan's remote actions as outbox rows (one open row per kind and order is enough: an
    action reads the order as it is when it runs) and retire what the plan supersedes.

    `known`: the order's open actions, when the caller has them at hand (the ingest reads a whole page's
    at once); the rows written here join it. Otherwise they are read.
    """
    from sync.stock import give_back, take

    if not (plan.decisions or plan.supersede or plan.note):
        return []  # a plan that asks for nothing needs no look at the order's open actions
    current = known if known is not None else open_actions(order, set(Action))
    for action in current:
        if action.kind in plan.supersede and action.state == ActionState.PENDING and _supersede(action):
            record(order, "decided", N_("%(action)s dropped"), {"action": action.kind}, rule="priority")
    if plan.note:
        record(order, **_noted(plan))
    created = []
    for decision in plan.decisions:
        if decision.action is Action.DECREASE_STOCK:
            take(order, rule=decision.rule)
            continue
        if decision.action is Action.RESTORE_STOCK:
            give_back(order, rule=decision.rule)
            continue
        if any(action.kind == decision.action and action.state in OPEN for action in current):
            continue
        action = OrderAction(order=order, integration_id=order.integration_id, **_outbox(decision))
        db.session.add(action)
        current.append(action)
        created.append(action)
        record(order, **_queued(decision))
    return created


def planned(plan: Plan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What `enqueue` writes for an order with no open action yet, as column values: its history lines
    and its outbox rows, in `enqueue`'s order. For the ingest's bulk path (sync/ingest.py), which writes
    first-seen orders without ORM objects; a plan that moves stock goes through `enqueue`."""
    if any(decision.action in STOCK_MOVES for decision in plan.decisions):
        raise ValueError("a plan that moves stock is enqueued, not planned")
    events = [_noted(plan)] if plan.note else []
    actions: dict[Action, dict[str, Any]] = {}
    for decision in plan.decisions:
        if decision.action not in actions:  # one open row per kind, as `enqueue` keeps it
            actions[decision.action] = _outbox(decision)
            events.append(_queued(decision))
    return events, list(actions.values())


# The history lines and outbox rows of a plan: one wording for `enqueue` and `planned`.


def _noted(plan: Plan) -> dict[str, Any]:
    return {"kind": "decided", "summary": plan.note, "params": {}, "rule": "priority"}


def _queued(decision: Decision) -> dict[str, Any]:
    return {
        "kind": "decided",
        "summary": N_("%(action)s queued"),
        "params": {"action": decision.action.value},
        "rule": decision.rule,
    }


def _outbox(decision: Decision) -> dict[str, Any]:
    return {"kind": decision.action.value, "rule": decision.rule, "state": ActionState.PENDING}


def _supersede(action: OrderAction) -> bool:
    """Retire a pending action, unless a worker claimed it meanwhile (the caller may hold a copy read a
    while ago): guarded like a claim, so a running action is never overwritten."""
    if action.id is None:  # written in this very transaction: nobody else can have it
        action.state = ActionState.SUPERSEDED
        return True
    if not changed(
        sa.update(OrderAction)
        .where(OrderAction.id == action.id, OrderAction.state == ActionState.PENDING)
        .values(state=ActionState.SUPERSEDED)
    ):
        return False
    set_committed_value(action, "state", ActionState.SUPERSEDED)
    return True
