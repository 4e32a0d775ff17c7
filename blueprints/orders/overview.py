"""Orders > Overview, the page a seller lands on: orders per hour and per day by marketplace, how the
transfers to the shop go and how long they take, errors over time, what waits to be shipped, and each
integration's state. Live like the Orders page: a quiet poll costs Redis one read and no query.

Each figure comes from one grouped query over the account's integrations (the two charts of orders share
theirs), on an index
(`ix_orders_integration_ordered`, the actions' (integration, state) index); the counts per UTC hour go
into the panel's time zone's hours and days afterwards.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, render_template
from flask.typing import ResponseReturnValue
from flask_babel import format_date, format_datetime
from flask_babel import gettext as _
from flask_login import current_user

from blueprints.orders import bp
from blueprints.orders.routes import SELF_CHECKED, _feed, _poll_start, _version, account_integrations
from extensions import db
from models import ActionState, Order, OrderAction, TransferState
from models.base import utcnow
from sync.rules import Action
from sync.statuses import CanonicalStatus

SELF_CHECKED.add("orders.overview_live")
HOURS, DAYS = 24, 14
# Statuses of an order the seller still has to ship.
TO_SHIP = (CanonicalStatus.CREATED, CanonicalStatus.PICKING, CanonicalStatus.INVOICED)
# How many recent transfers the time-to-shop figures read at most.
TIMED = 5000


@dataclass
class Chart:
    """One chart's data as Chart.js reads it (static/overview.js draws it)."""

    kind: str
    labels: list[str]
    series: dict[str, list[float]]

    def config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "labels": self.labels,
            "datasets": [{"label": name, "data": values} for name, values in self.series.items()],
        }


@bp.get("/overview")
def overview() -> ResponseReturnValue:
    return render_template("orders/overview.html", **_context())


@bp.get("/overview/live")
def overview_live() -> ResponseReturnValue:
    """The page's poll: 204 while the account's orders are unchanged, else the figures again."""
    if (answer := _poll_start()) is not None:
        return answer
    if _feed() is None:
        return "", 204
    return render_template("orders/_overview.html", **_context())


def _context() -> dict[str, object]:
    from blueprints.integrations.activity import activities  # that blueprint imports this one's

    version = _version(current_user.id)  # before the reads: a change after it shows on the next poll
    integrations = account_integrations()
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    now = utcnow()
    ids = [integration.id for integration in integrations]
    kinds = {integration.id: integration.marketplace.label for integration in integrations}
    placed = _orders_by_hour(ids, _buckets(now, zone, hours=False)[0])  # the days' span holds the hours'
    return {
        "version": version,
        "integrations": integrations,
        "activities": activities(integrations),
        "per_hour": _orders_per(placed, kinds, now, zone, hours=True),
        "per_day": _orders_per(placed, kinds, now, zone, hours=False),
        "errors": _errors_per_day(ids, now, zone),
        "transfers": _transfers(ids, now),
        "to_ship": _to_ship(ids),
        "poll_seconds": current_app.config["ORDERS_POLL_SECONDS"],
    }


def _buckets(now: datetime, zone: ZoneInfo, *, hours: bool) -> list[datetime]:
    """The starts of the last 24 hours or 14 days in the panel's time zone, oldest first."""
    top = _bucket_of(now, zone, hours=hours)
    step, count = (timedelta(hours=1), HOURS) if hours else (timedelta(days=1), DAYS)
    return [top - step * n for n in range(count - 1, -1, -1)]


def _bucket_of(moment: datetime, zone: ZoneInfo, *, hours: bool) -> datetime:
    local = moment.astimezone(zone)
    if hours:
        return local.replace(minute=0, second=0, microsecond=0)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _label(start: datetime, *, hours: bool) -> str:
    return str(format_datetime(start, "HH:mm") if hours else format_date(start, "d MMM"))


def _hour(column: sa.orm.InstrumentedAttribute[datetime | None]) -> sa.ColumnElement[int]:
    """The UTC hour a moment falls in, as hours since 1970: what the figures group by in the database,
    whatever the zone (they go into the zone's hours and days afterwards, in `_spread`)."""
    if db.engine.dialect.name == "postgresql":
        return sa.cast(sa.func.floor(sa.extract("epoch", column) / 3600), sa.Integer)
    return sa.cast(sa.cast(sa.func.strftime("%s", column), sa.Integer) / 3600, sa.Integer)


def _spread(
    rows: Iterable[sa.Row[tuple[Any, int, int]]], starts: list[datetime], zone: ZoneInfo, *, hours: bool
) -> dict[Any, list[float]]:
    """(key, UTC hour, count) rows into one list of counts per key, along `starts`."""
    index = {start: position for position, start in enumerate(starts)}
    spread: dict[Any, list[float]] = {}
    for key, hour, count in rows:
        moment = datetime.fromtimestamp(int(hour) * 3600, UTC)
        position = index.get(_bucket_of(moment, zone, hours=hours))
        if position is not None:
            spread.setdefault(key, [0.0] * len(starts))[position] += count
    return spread


def _orders_by_hour(ids: list[int], since: datetime) -> list[sa.Row[tuple[int, int, int]]]:
    """Orders placed since `since`, counted per integration and UTC hour: one grouped query for both
    charts of orders."""
    if not ids:
        return []
    hour = _hour(Order.ordered_at)
    return list(
        db.session.execute(
            sa.select(Order.integration_id, hour, sa.func.count())
            .where(Order.integration_id.in_(ids), Order.ordered_at >= since)
            .group_by(Order.integration_id, hour)
        )
    )


def _orders_per(
    placed: list[sa.Row[tuple[int, int, int]]],
    kinds: dict[int, str],
    now: datetime,
    zone: ZoneInfo,
    *,
    hours: bool,
) -> Chart:
    """Orders placed per hour (24 h) or per day (14 days), one series per marketplace."""
    starts = _buckets(now, zone, hours=hours)
    series: dict[str, list[float]] = {label: [0.0] * len(starts) for label in dict.fromkeys(kinds.values())}
    for integration_id, counts in _spread(placed, starts, zone, hours=hours).items():
        label = kinds[integration_id]
        series[label] = [a + b for a, b in zip(series[label], counts, strict=True)]
    return Chart("bar", [_label(start, hours=hours) for start in starts], series)


def _errors_per_day(ids: list[int], now: datetime, zone: ZoneInfo) -> Chart:
    """Actions that gave up, per day (each one put an order in the error queue)."""
    starts = _buckets(now, zone, hours=False)
    counts = [0.0] * len(starts)
    if ids:
        hour = _hour(OrderAction.finished_at)
        rows = db.session.execute(
            sa.select(sa.literal(0), hour, sa.func.count())
            .where(
                OrderAction.integration_id.in_(ids),
                OrderAction.state == ActionState.FAILED,
                OrderAction.finished_at >= starts[0],
            )
            .group_by(hour)
        )
        counts = _spread(rows, starts, zone, hours=False).get(0, counts)
    return Chart("line", [_label(start, hours=False) for start in starts], {_("Errors"): counts})


@dataclass
class Transfers:
    done: int
    failed: int
    median_seconds: float | None
    p95_seconds: float | None

    @property
    def success(self) -> float | None:
        tried = self.done + self.failed
        return 100 * self.done / tried if tried else None


def _transfers(ids: list[int], now: datetime) -> Transfers:
    """Transfers to the shop in the last 24 hours: how many went through, how many gave up, and the
    time from an order's arrival in the hub to its order in the shop."""
    since = now - timedelta(hours=HOURS)
    if not ids:
        return Transfers(0, 0, None, None)
    finished = (
        sa.select(OrderAction.state, OrderAction.finished_at, Order.created_at)
        .join(Order, Order.id == OrderAction.order_id)
        .where(
            OrderAction.integration_id.in_(ids),
            OrderAction.kind == Action.TRANSFER.value,
            OrderAction.state.in_([ActionState.DONE, ActionState.FAILED]),
            OrderAction.finished_at >= since,
        )
        .order_by(OrderAction.id.desc())
        .limit(TIMED)
    )
    done, failed, waits = 0, 0, []
    for state, finished_at, arrived in db.session.execute(finished):
        if state == ActionState.FAILED:
            failed += 1
            continue
        done += 1
        waits.append(max((finished_at - arrived).total_seconds(), 0.0))
    if not waits:
        return Transfers(done, failed, None, None)
    p95 = statistics.quantiles(waits, n=20)[-1] if len(waits) > 1 else waits[0]
    return Transfers(done, failed, statistics.median(waits), p95)


def _to_ship(ids: list[int]) -> dict[int, int]:
    """Orders on the marketplace that still wait to be shipped, per integration."""
    if not ids:
        return {}
    return dict(
        db.session.execute(  # type: ignore[arg-type]
            sa.select(Order.integration_id, sa.func.count())
            .where(
                Order.integration_id.in_(ids),
                Order.status.in_([status.value for status in TO_SHIP]),
                Order.transfer_state != TransferState.IGNORED,
            )
            .group_by(Order.integration_id)
        ).all()
    )
