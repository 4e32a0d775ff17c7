"""Import orders from a date range: the marketplace read window by window, ingested like a pull.

The run holds the integration's pull lease (renewed page by page), so it never ingests the same packages
as a sync cycle at the same moment; the cycles wait and resume when it ends. Progress is kept on the
`backfills` row after every page, for the panel's progress bar.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from connectors.base import ConnectorError
from connectors.factory import marketplace_for
from extensions import db
from models import Backfill, BackfillState, Integration, OrderAction
from models.base import utcnow
from sync.guards import changed
from sync.ingest import ingest
from sync.pull import windows

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The import no longer holds the integration: it stops rather than ingest beside a sync cycle."""


def run(backfill_id: int, dispatch: Callable[[list[OrderAction]], None]) -> bool:
    """Run a queued import; False when the integration is busy syncing (the job tries again shortly)."""
    backfill = db.session.get(Backfill, backfill_id)
    if backfill is None or backfill.state not in (BackfillState.QUEUED, BackfillState.RUNNING):
        return True
    lease = timedelta(seconds=current_app.config["PULL_LEASE_SECONDS"])
    held = _hold(backfill.integration_id, lease, None)
    db.session.commit()
    if held is None:
        return False
    if backfill.state == BackfillState.RUNNING:  # its worker died: start over, and count again
        backfill.new = backfill.updated = backfill.errors = backfill.progress = 0
    backfill.state = BackfillState.RUNNING
    db.session.commit()
    integration = db.session.get_one(Integration, backfill.integration_id)
    settings = integration.settings.to_domain()
    cuts = windows(backfill.start, backfill.end)
    size = current_app.config["PULL_PAGE_SIZE"]
    try:
        with marketplace_for(integration) as marketplace:
            for index, (start, end) in enumerate(cuts):
                page = 0
                while True:
                    listing = marketplace.list_packages(start, end, page, size)
                    result = ingest(integration, settings, listing.orders, listing.unreadable, announce=False)
                    page += 1
                    backfill.new += result.new
                    backfill.updated += result.updated
                    backfill.errors += result.errors
                    done = index + min(page / max(listing.total_pages, 1), 1)
                    backfill.progress = min(int(100 * done / max(len(cuts), 1)), 99)
                    held = _hold(integration.id, lease, held)
                    if held is None:
                        raise LeaseLost(
                            "stopped: a page took longer than the integration's sync lease "
                            "(PULL_LEASE_SECONDS), and a sync cycle may have started meanwhile"
                        )
                    db.session.commit()
                    dispatch(result.actions)
                    if page >= listing.total_pages:
                        break
        backfill.state, backfill.progress = BackfillState.DONE, 100
    except Exception as error:
        db.session.rollback()
        if not isinstance(error, ConnectorError):
            log.exception("import %s of integration %s failed", backfill_id, integration.id)
        backfill.state, backfill.error = BackfillState.FAILED, str(error)[:2000] or type(error).__name__
    finally:
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
    return True


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
