"""Import orders from a date range: the marketplace read window by window, ingested like a pull.

The run holds the integration's pull lease (renewed page by page), so it never ingests the same packages
as a sync cycle at the same moment; the cycles wait and resume when it ends. Each run reads one budget's
worth of pages (SYNC_PAGE_BUDGET, SYNC_TIME_BUDGET) and is queued again behind other work; progress and
the point to go on from are kept on the `backfills` row after every page, so a lost run resumes too.
One import per integration waits or runs at a time (a unique index says so).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from connectors.base import ConnectorError, PackagePage, RateLimited, Retryable
from connectors.factory import marketplace_for
from extensions import db
from models import Backfill, BackfillState, Integration
from models.base import utcnow
from sync.guards import INTERNAL_ERROR, NOT_CONTAINED, changed
from sync.history import Dispatch
from sync.ingest import ingest
from sync.pull import Budget, newest, read

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The import no longer holds the integration: it stops rather than ingest beside a sync cycle."""


# When to run an import again: while a sync cycle holds the integration; after a platform failure that
# did not say when (a 429 does), in seconds.
BUSY_WAIT = 2.0
FAILURE_WAIT = 30.0


def run(backfill_id: int, dispatch: Dispatch) -> float | None:
    """Run a queued import for one budget's worth of pages; None when it has ended (done or failed),
    else the seconds after which it should run again: 0 when its budget ran out (it goes behind the
    others: one seller's 90-day import does not hold a worker for an hour), a little while the
    integration is busy syncing, longer after the platform failed (the import goes on from where it was).
    """
    backfill = db.session.get(Backfill, backfill_id)
    if backfill is None or backfill.state not in (BackfillState.QUEUED, BackfillState.RUNNING):
        return None
    lease = timedelta(seconds=current_app.config["PULL_LEASE_SECONDS"])
    held = _hold(backfill.integration_id, lease, None)
    db.session.commit()
    if held is None:
        return BUSY_WAIT
    backfill.state = BackfillState.RUNNING
    db.session.commit()
    integration = db.session.get_one(Integration, backfill.integration_id)
    settings = integration.settings.to_domain()
    start = backfill.resume_from or backfill.start
    span = (backfill.end - backfill.start).total_seconds() or 1.0

    def keep(listing: PackagePage) -> None:
        nonlocal held
        result = ingest(integration, settings, listing.orders, listing.unreadable, announce=False)
        backfill.new += result.new
        backfill.updated += result.updated
        backfill.errors += result.errors
        backfill.resume_from = newest(listing, backfill.resume_from)
        if backfill.resume_from is not None:
            done = (backfill.resume_from - backfill.start).total_seconds() / span
            backfill.progress = max(backfill.progress, min(int(100 * done), 99))
        held = _hold(integration.id, lease, held)
        if held is None:
            raise LeaseLost(
                "stopped: a page took longer than the integration's sync lease "
                "(PULL_LEASE_SECONDS), and a sync cycle may have started meanwhile"
            )
        db.session.commit()
        dispatch(result.actions)

    again: float | None = None
    try:
        with marketplace_for(integration) as marketplace:
            if read(marketplace, start, backfill.end, Budget.from_config(), keep):
                backfill.state, backfill.progress, backfill.error = BackfillState.DONE, 100, None
            else:
                backfill.resume_from = backfill.resume_from or start
                again = 0.0
    except Retryable as error:  # the platform is down or busy: the import waits, and keeps its place
        db.session.rollback()
        backfill.error = str(error)
        again = error.retry_after if isinstance(error, RateLimited) else FAILURE_WAIT
    except NOT_CONTAINED:
        # The job's time limit or the database: not the import's fault. The job fails; the sweeper
        # queues the import again, and it goes on from its last page.
        db.session.rollback()
        again = FAILURE_WAIT
        raise
    except Exception as error:
        db.session.rollback()
        if isinstance(error, ConnectorError | LeaseLost):
            backfill.error = str(error)
        else:  # its text may hold SQL or a payload: the log has it
            log.exception("import %s of integration %s failed", backfill_id, integration.id)
            backfill.error = INTERNAL_ERROR
        backfill.state = BackfillState.FAILED
    finally:
        if again is None:
            backfill.finished_at = utcnow()
        # Hand the integration back to its sync cycles, and let the next one run now.
        db.session.execute(
            sa.update(Integration)
            .where(Integration.id == integration.id, Integration.pull_lease_until == held)
            .values(pull_lease_until=None)
        )
        db.session.execute(
            sa.update(Integration).where(Integration.id == integration.id).values(next_pull_at=utcnow())
        )
        db.session.commit()
    return again


def _hold(integration_id: int, lease: timedelta, held: datetime | None) -> datetime | None:
    """Take the integration's pull lease, or renew the one this run holds; None if a sync cycle has it."""
    now = utcnow()
    free = sa.or_(Integration.pull_lease_until.is_(None), Integration.pull_lease_until < now)
    if held is not None:
        free = sa.or_(free, Integration.pull_lease_until == held)
    until = now + lease
    taken = changed(
        sa.update(Integration).where(Integration.id == integration_id, free).values(pull_lease_until=until)
    )
    return until if taken else None


def stale(now: datetime) -> list[int]:
    """The sweeper: imports that wait with nothing running them (Redis was down, their worker died)."""
    requeue = now - timedelta(seconds=current_app.config["OUTBOX_REQUEUE_SECONDS"])
    return list(
        db.session.scalars(
            sa.select(Backfill.id)
            .join(Integration, Integration.id == Backfill.integration_id)
            .where(
                Backfill.state.in_([BackfillState.QUEUED, BackfillState.RUNNING]),
                Backfill.created_at < requeue,
                sa.or_(Integration.pull_lease_until.is_(None), Integration.pull_lease_until < now),
            )
        )
    )
