"""What an integration is doing: its pulls and errors on the Integration List, Sync now, and imports of
past orders (Import orders from a date range), each followed live on the page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError
from wtforms import DateField
from wtforms.validators import DataRequired

from blueprints.auth.forms import EmptyForm
from blueprints.integrations import bp
from blueprints.integrations.routes import _account, _get_integration
from extensions import db, hx
from jobs.tasks import JobState, job_state, start_backfill, sync_now
from models import Backfill, BackfillState, Integration, Order, TransferState


@dataclass(frozen=True)
class Activity:
    """One integration's line on the Integration List beyond its settings."""

    orders_today: int
    errors_open: int
    sync: JobState

    @property
    def syncing(self) -> bool:
        return self.sync.status in ("queued", "started", "scheduled", "deferred")


def activities(integrations: Sequence[Integration]) -> dict[int, Activity]:
    """Orders today and orders in error per integration (two grouped queries), and each one's sync job."""
    if not integrations:
        return {}
    ids = [integration.id for integration in integrations]
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    midnight = datetime.combine(datetime.now(zone).date(), datetime.min.time(), zone)
    today: dict[int, int] = {
        integration_id: count
        for integration_id, count in db.session.execute(
            sa.select(Order.integration_id, sa.func.count())
            .where(
                Order.account_id == _account().id, Order.integration_id.in_(ids), Order.ordered_at >= midnight
            )
            .group_by(Order.integration_id)
        )
    }
    errors: dict[int, int] = {
        integration_id: count
        for integration_id, count in db.session.execute(
            sa.select(Order.integration_id, sa.func.count())
            .where(
                Order.account_id == _account().id,
                Order.integration_id.in_(ids),
                Order.transfer_state == TransferState.ERROR,
            )
            .group_by(Order.integration_id)
        )
    }
    return {
        integration_id: Activity(
            today.get(integration_id, 0), errors.get(integration_id, 0), _sync_state(integration_id)
        )
        for integration_id in ids
    }


def _sync_state(integration_id: int) -> JobState:
    try:
        return job_state(f"sync-{integration_id}")
    except RedisError:
        return JobState("")


def row(integration: Integration) -> str:
    return render_template(
        "integrations/_row.html",
        integration=integration,
        activity=activities([integration])[integration.id],
        button_form=EmptyForm(),
    )


@bp.post("/<id:integration_id>/sync")
def sync(integration_id: int) -> ResponseReturnValue:
    """Sync now: pull the marketplace and read the shop at once, whatever the interval says."""
    integration = _get_integration(integration_id)
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("integrations.list_integrations"))
    try:
        sync_now(integration.id)
    except RedisError:
        flash(_("The job queue cannot be reached; try again in a moment."), "error")
    if hx():
        return row(integration)
    return redirect(url_for("integrations.list_integrations"))


@bp.get("/<id:integration_id>/row")
def sync_progress(integration_id: int) -> ResponseReturnValue:
    """The integration's row again: the page polls it while a sync runs."""
    return row(_get_integration(integration_id))


# -- Import orders from a date range ------------------------------------------------------------------


class BackfillForm(FlaskForm):
    start = DateField(_l("From"), validators=[DataRequired()])
    end = DateField(_l("To"), validators=[DataRequired()])

    def bounds(self, max_days: int, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
        """The range as UTC moments, or None with the reason on the field."""
        assert self.start.data is not None and self.end.data is not None
        today = datetime.now(zone).date()
        start, end = self.start.data, self.end.data
        if end < start:
            self.end.errors = [_("The end date is before the start date.")]
            return None
        if end > today:
            self.end.errors = [_("The end date is in the future.")]
            return None
        if start < today - timedelta(days=max_days):
            self.start.errors = [
                _(
                    "The marketplace keeps orders for %(days)d days: start on %(date)s or later.",
                    days=max_days,
                    date=(today - timedelta(days=max_days)).isoformat(),
                )
            ]
            return None
        begin = datetime.combine(start, datetime.min.time(), zone)
        finish = min(datetime.combine(end + timedelta(days=1), datetime.min.time(), zone), datetime.now(zone))
        return begin, finish


@bp.route("/<id:integration_id>/import", methods=["GET", "POST"])
def backfill(integration_id: int) -> ResponseReturnValue:
    """Import orders from a date range, and the imports that ran before."""
    integration = _get_integration(integration_id)
    form = BackfillForm()
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    status = 200
    if request.method == "POST":
        bounds = (
            form.bounds(current_app.config["BACKFILL_MAX_DAYS"], zone) if form.validate_on_submit() else None
        )
        if bounds is not None:
            run = _new_backfill(integration, *bounds)
            if run is not None:
                start_backfill(run.id)
                return redirect(url_for("integrations.backfill", integration_id=integration.id))
            form.start.errors = [_("An import of this integration is already waiting or running.")]
        status = 422
    elif not form.start.data:
        today = datetime.now(zone).date()
        form.start.data, form.end.data = today - timedelta(days=7), today
    runs = db.session.scalars(
        sa.select(Backfill)
        .where(Backfill.integration_id == integration.id)
        .order_by(Backfill.id.desc())
        .limit(10)
    ).all()
    return render_template(
        "integrations/backfill.html",
        integration=integration,
        form=form,
        runs=runs,
        max_days=current_app.config["BACKFILL_MAX_DAYS"],
    ), status


def _new_backfill(integration: Integration, start: datetime, end: datetime) -> Backfill | None:
    """A new import, unless one of the integration waits or runs (two at once would read the same
    packages twice as long: the database's unique index settles a race of two requests)."""
    run = Backfill(account_id=integration.account_id, integration_id=integration.id, start=start, end=end)
    db.session.add(run)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return run


@bp.get("/<id:integration_id>/import/<id:backfill_id>")
def backfill_progress(integration_id: int, backfill_id: int) -> ResponseReturnValue:
    """One import's progress bar: polled while it runs, final with its summary."""
    integration = _get_integration(integration_id)
    run = db.session.scalar(
        sa.select(Backfill).where(Backfill.id == backfill_id, Backfill.integration_id == integration.id)
    )
    if run is None:
        return "", 404
    return render_template("integrations/_backfill.html", integration=integration, run=run)


BACKFILL_STATES = {
    BackfillState.QUEUED: _l("Queued"),
    BackfillState.RUNNING: _l("Running"),
    BackfillState.DONE: _l("Done"),
    BackfillState.FAILED: _l("Failed"),
}


@bp.app_context_processor
def backfill_words() -> dict[str, object]:
    return {"backfill_states": BACKFILL_STATES}
