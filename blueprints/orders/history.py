"""An order's history as a seller reads it: a timeline of the steps it went through, and each history
line in the page's language.

A history line is stored as an English wording with its parameters (sync/wording.py). Shown here, the
wording is translated, and so are the parameters that name something the panel has words for: a status
of the marketplace or of the shop, an action, an error's cause, a reason the hub gives. What the hub
sent and got back (the requests, a platform's own error text) stays as it was, behind "Technical
details".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from blueprints.errors import ERROR_CATEGORIES
from models import Integration, Order, OrderEvent
from sync.actions import IN_THE_SHOP
from sync.statuses import CANCELLATIONS, RANK, CanonicalStatus

# Parameters that stay as the platform wrote them: the technical details show them.
TECHNICAL = ("native", "reason")


@dataclass(frozen=True)
class Step:
    """A step of the order's way: reached or not, when, and what it came with."""

    name: str
    reached: bool
    at: datetime | None = None
    detail: str = ""
    ended: bool = False  # the way stopped here (cancelled, returned)


@dataclass(frozen=True)
class Line:
    """A history line, in the page's language, with what stays technical."""

    event: OrderEvent
    text: str
    technical: str = ""


def lines(
    events: Sequence[OrderEvent], integration: Integration, action_labels: dict[str, str]
) -> list[Line]:
    translate = _translator(integration, action_labels)
    return [_line(event, translate) for event in events]


def _line(event: OrderEvent, translate: Callable[[str, Any], Any]) -> Line:
    if event.kind == "request":  # the calls made and their answers: for the technical details
        return Line(event, _("The hub called the platform"), event.summary)
    params = event.params or {}
    if not params:
        # A wording without values, or a line written before wordings were kept (then shown as written).
        return Line(event, _(event.summary))
    shown = {name: translate(name, value) for name, value in params.items()}
    technical = "; ".join(str(params[name]) for name in TECHNICAL if params.get(name))
    return Line(event, _(event.summary, **shown), technical)


def _translator(integration: Integration, action_labels: dict[str, str]) -> Callable[[str, Any], Any]:
    def translate(name: str, value: Any) -> Any:
        if value is None:
            return "–"
        if name in ("status", "to_status"):
            status = _canonical(value)
            return status.label if status is not None else value
        if name in ("shop_status", "shop_from", "shop_to"):
            return integration.shop_status_name(str(value))
        if name == "action":
            return action_labels.get(str(value), value)
        if name == "category":
            return ERROR_CATEGORIES.get(str(value), value)
        if name == "why":
            return _(str(value))  # a reason of the hub's own, marked for the translations
        return value

    return translate


def _canonical(value: Any) -> CanonicalStatus | None:
    """A canonical status kept in a line's params; None for anything else."""
    try:
        return CanonicalStatus(value)
    except ValueError:
        return None


STEPS: tuple[tuple[CanonicalStatus | None, LazyString], ...] = (
    (CanonicalStatus.CREATED, _l("Ordered")),
    (None, _l("In the shop")),
    (CanonicalStatus.PICKING, _l("Approved")),
    (CanonicalStatus.SHIPPED, _l("Shipped")),
    (CanonicalStatus.DELIVERED, _l("Delivered")),
)


# Where an order's way stops short of, or goes back from, Delivered: shown as a last step of its own.
ENDINGS = CANCELLATIONS | {CanonicalStatus.UNDELIVERED, CanonicalStatus.RETURNED}


def timeline(order: Order, events: Sequence[OrderEvent]) -> list[Step]:
    """Ordered → In the shop → Approved → Shipped (with its tracking code) → Delivered: which steps the
    order reached and when (the first history line that showed it there). A cancellation ends the way
    after the steps it reached before (by its history); an undelivered or returned parcel ends it after
    Shipped or Delivered."""
    status = order.canonical_status
    rank = RANK[status] if status is not None else -1
    reached_at = _first_seen(events)
    steps = []
    for step_status, name in STEPS:
        if step_status is None:
            at = next((event.created_at for event in events if event.summary in IN_THE_SHOP), None)
            detail = f"#{order.shop_id}" if order.shop_id else ""
            steps.append(Step(str(name), order.transferred, at, detail))
            continue
        if step_status is CanonicalStatus.CREATED:
            reached, at = status is not None, order.ordered_at
        else:
            # A cancelled order's rank says nothing of the way before: its history does.
            reached = step_status in reached_at if status in CANCELLATIONS else rank >= RANK[step_status]
            at = reached_at.get(step_status)
        detail = ""
        if step_status is CanonicalStatus.SHIPPED and reached and order.tracking_number:
            detail = " ".join(part for part in (order.carrier, order.tracking_number) if part)
        steps.append(Step(str(name), reached, at, detail))
    if status in ENDINGS:
        steps = [step for step in steps if step.reached]
        steps.append(Step(status.label, True, reached_at.get(status), ended=True))
    return steps


def _first_seen(events: Sequence[OrderEvent]) -> dict[CanonicalStatus, datetime]:
    """When each status was first reached, from the lines of the packages received (which name the
    canonical status they came with): a status counts as reached at the first line at or past it."""
    seen: dict[CanonicalStatus, datetime] = {}
    for event in events:
        status = _canonical((event.params or {}).get("status")) if event.kind == "received" else None
        if status is None:
            continue
        for step in CanonicalStatus:
            if step not in seen and _passes(status, step):
                seen[step] = event.created_at
    return seen


def _passes(status: CanonicalStatus, step: CanonicalStatus) -> bool:
    if step in ENDINGS:
        return status is step
    return status not in CANCELLATIONS and RANK[status] >= RANK[step]
