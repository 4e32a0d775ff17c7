"""The jobs: the scheduler's tick, one integration's sync cycle, one outbox action. Thin: `sync/` decides."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError
from rq.job import Job, JobStatus

from extensions import db
from jobs import ACTIONS, HOOKS, PIPELINE, job, queue, redis_connection
from models import Integration, IntegrationSettings, Notification, OrderAction
from models.base import utcnow
from sync import actions, backfill, notifications, pull, reconsider, webhooks
from sync.guards import changed

log = logging.getLogger(__name__)
# The longest a webhook run waits for a busy integration before it looks again (seconds).
BUSY_WAIT_MAX = 30.0
# A job in a queue will run; a scheduled one whose time has passed waits for a scheduler that may be
# gone (its worker was killed and holds the lock until it expires), so it is queued again.
WAITING = (JobStatus.QUEUED,)


@job
def tick() -> None:
    """Every few seconds (flask cron): start the integrations' sync cycles that are due, sweep the outbox.

    A cycle due within half a tick starts now rather than at the next tick: an integration pulled every
    10 s is pulled every 10 s give or take half a tick, not every 10 s plus up to a tick. (Not scheduled for
    its moment: that would hang every pull on RQ's scheduler, which a Redis restart can leave stopped.)"""
    now = utcnow()
    horizon = now + timedelta(seconds=current_app.config["TICK_SECONDS"] / 2)
    due = db.session.scalars(
        sa.select(Integration.id)
        .join(IntegrationSettings)
        .where(
            Integration.active.is_(True),
            sa.or_(Integration.next_pull_at.is_(None), Integration.next_pull_at <= horizon),
            # Something to do: orders to retrieve, or the shop's changes to pass back.
            sa.or_(
                IntegrationSettings.retrieve_orders.is_(True),
                sa.and_(
                    Integration.own_shipping_agreement.is_(True),
                    sa.or_(
                        IntegrationSettings.reverse_flow.is_(True),
                        IntegrationSettings.update_feedback.is_(True),
                    ),
                ),
            ),
        )
        .order_by(Integration.next_pull_at.nullsfirst())
        .limit(current_app.config["TICK_BATCH"])
    ).all()
    for integration_id in due:
        # Claim the slot, so a second scheduler's tick does not start the same cycle again.
        claimed = changed(
            sa.update(Integration)
            .where(
                Integration.id == integration_id,
                sa.or_(Integration.next_pull_at.is_(None), Integration.next_pull_at <= horizon),
            )
            .values(next_pull_at=now + timedelta(seconds=current_app.config["PULL_LEASE_SECONDS"]))
        )
        db.session.commit()
        if not claimed:
            continue
        try:
            _enqueue(PIPELINE, f"sync-{integration_id}", sync_integration, integration_id)
        except RedisError as error:  # the claim runs out after PULL_LEASE_SECONDS: tried again then
            log.warning("could not queue the sync of integration %s: %s", integration_id, error)
    dispatch(actions.stale_and_due(now))
    for backfill_id in backfill.stale(now):
        start_backfill(backfill_id)
    for integration_id in webhooks.stale(now):
        if hand_out_webhooks(integration_id):
            webhooks.handed_out(integration_id, now)
    webhooks.forget_handled(now)
    mails = [notification.id for notification in notifications.gather(now)]
    post(mails + [id_ for id_ in notifications.stale_and_due(now) if id_ not in mails])


@job
def sync_integration(integration_id: int) -> dict[str, object]:
    """One integration's cycle: pull the marketplace, read the shop's changes, dispatch what follows."""
    outcome = pull.sync_integration(integration_id, dispatch)
    dispatch(outcome.actions)
    if outcome.ran:
        webhooks.renew(integration_id)
    result = outcome.result
    return {
        "ran": outcome.ran,
        "new": result.new,
        "updated": result.updated,
        "errors": result.errors,
        "shop_changes": outcome.shop_changes,
        "error": outcome.error,
    }


@job
def run_action(action_id: int) -> bool:
    """One outbox action, then, for up to ACTION_BATCH_SECONDS, its integration's next ones waiting their
    turn (its follow-ups among them), in the same job and slot of the integration's fair share: a job
    per action cost RQ's bookkeeping, a hand-out and a look at the waiting rows each time. Whatever waits
    after that is handed out, behind the jobs other sellers queued meanwhile."""
    deadline = time.monotonic() + current_app.config["ACTION_BATCH_SECONDS"]
    outcome = actions.run(action_id)
    ran, integration_id = outcome.ran, outcome.integration_id
    while True:
        if outcome.retry_at is not None:
            _enqueue_at(outcome.retry_at, f"action-{outcome.action_id}", run_action, outcome.action_id)
        following = None
        if integration_id is not None and time.monotonic() < deadline:
            following = actions.run_next(integration_id)
        if following is None:
            break
        outcome = following
    if integration_id is not None:
        dispatch(actions.waiting(integration_id, utcnow()))
    return ran


@job
def handle_webhooks(integration_id: int, busy: int = 0) -> bool:
    """The integration's waiting webhook deliveries; it comes back when one waits for its retry, and
    while a sync cycle or an import holds the integration, a little later each time it still does."""
    handled = webhooks.handle(integration_id, dispatch)
    if handled.again is None:
        return True
    args: tuple[int, ...]
    if handled.busy:
        wait = min(current_app.config["WEBHOOK_BUSY_SECONDS"] * 2**busy, BUSY_WAIT_MAX)
        again, args = utcnow() + timedelta(seconds=wait), (integration_id, busy + 1)
    elif handled.again <= utcnow():  # more than one run's time waiting: the rest behind the others' jobs
        hand_out_webhooks(integration_id)
        return False
    else:
        again, args = handled.again, (integration_id,)
    _enqueue_at(again, f"hooks-{integration_id}", handle_webhooks, *args, queue_name=HOOKS)
    return False


def hand_out_webhooks(integration_id: int) -> bool:
    """Queue the handling of an integration's deliveries, once (one still waiting is enough); False if
    Redis is away, and the sweeper hands them out later."""
    try:
        _enqueue(HOOKS, f"hooks-{integration_id}", handle_webhooks, integration_id)
    except RedisError as error:
        log.warning(
            "could not queue the webhooks of integration %s, the sweeper will: %s", integration_id, error
        )
        return False
    return True


@job
def reconsider_tracking_codes(integration_id: int) -> int:
    """Shipment Tracking Code changed: the open orders in the shop get the code it now names."""
    return reconsider.tracking_codes(integration_id, dispatch)


def settings_changed(integration_id: int, names: set[str]) -> None:
    """After a save of General settings: what bears on orders already in the shop is looked at again,
    by a worker; with Redis away, here and now (it writes outbox rows only, which the sweeper hands out)."""
    if "tracking_code_source" not in names:
        return
    try:
        _enqueue(PIPELINE, f"reconsider-{integration_id}", reconsider_tracking_codes, integration_id)
    except RedisError as error:
        log.warning(
            "could not queue the tracking codes of integration %s, done in place: %s", integration_id, error
        )
        reconsider.tracking_codes(integration_id)


@job
def send_notification(notification_id: int) -> bool:
    """One notification mail; if the SMTP server did not take it, it comes back after a backoff."""
    retry_at = notifications.send(notification_id)
    if retry_at is not None:
        _enqueue_at(
            retry_at,
            f"mail-{notification_id}",
            send_notification,
            notification_id,
            timeout=current_app.config["MAIL_JOB_TIMEOUT"],
        )
    return retry_at is None


@job
def run_backfill(backfill_id: int) -> bool:
    """Import orders from a date range, one budget at a time; it comes back behind the work queued
    meanwhile, a little later while a sync cycle holds the integration, later after a platform failure."""
    again = backfill.run(backfill_id, dispatch)
    if again is None:
        return True
    _enqueue_at(
        utcnow() + timedelta(seconds=again),
        f"backfill-{backfill_id}",
        run_backfill,
        backfill_id,
        queue_name=PIPELINE,
        timeout=current_app.config["BACKFILL_JOB_TIMEOUT"],
    )
    return False


def start_backfill(backfill_id: int) -> None:
    try:
        _enqueue(
            PIPELINE,
            f"backfill-{backfill_id}",
            run_backfill,
            backfill_id,
            timeout=current_app.config["BACKFILL_JOB_TIMEOUT"],
        )
    except RedisError as error:  # the sweeper queues it once Redis is back
        log.warning("could not queue import %s: %s", backfill_id, error)


def queue_tick() -> None:
    """Queue the tick under one job id: while a tick waits (behind a long sync), the next is not queued
    behind it. Raises RedisError."""
    _enqueue(PIPELINE, "tick", tick)


def sync_now(integration_id: int) -> None:
    """Sync now: the integration's cycle, queued at once (once: a cycle already waiting is enough)."""
    _enqueue(PIPELINE, f"sync-{integration_id}", sync_integration, integration_id)


@dataclass(frozen=True)
class JobState:
    status: str  # queued, started, finished, failed, … (RQ's), or "" when there is no such job
    result: object = None
    ended_at: datetime | None = None


def job_state(job_id: str) -> JobState:
    found = Job.fetch_many([job_id], connection=redis_connection())[0]
    if found is None:
        return JobState("")
    status = found.get_status(refresh=False)
    result = found.return_value() if status == JobStatus.FINISHED else None
    ended = found.ended_at.replace(tzinfo=UTC) if found.ended_at else None
    return JobState(str(status.value if status else ""), result, ended)


def post(notification_ids: list[int]) -> None:
    """Hand the mails to RQ; if Redis is away, the sweeper hands them out later."""
    _hand_out(
        Notification, "mail", send_notification, notification_ids, current_app.config["MAIL_JOB_TIMEOUT"]
    )


def dispatch(rows: Iterable[OrderAction]) -> None:
    """After commit: hand the outbox rows to RQ, each integration's within its fair share of the workers
    (the rest go when its running ones end). If Redis is away, the sweeper hands them out later."""
    share = actions.fair_share(rows, utcnow())
    _hand_out(OrderAction, "action", run_action, [row.id for row in share])


def _hand_out(
    model: type[OrderAction] | type[Notification],
    prefix: str,
    function: Callable[[int], object],
    ids: list[int],
    timeout: int | None = None,
) -> None:
    """Queue one job per row under a fixed id (`<prefix>-<id>`), then note on the rows that they were
    handed out; if Redis is away nothing is noted, and the sweeper hands them out later."""
    if not ids:
        return
    try:
        for row_id in ids:
            _enqueue(ACTIONS, f"{prefix}-{row_id}", function, row_id, timeout=timeout)
    except RedisError as error:
        log.warning("could not queue %d %s job(s), the sweeper will: %s", len(ids), prefix, error)
        return
    db.session.execute(sa.update(model).where(model.id.in_(ids)).values(enqueued_at=utcnow()))
    db.session.commit()


def _enqueue(
    queue_name: str, job_id: str, function: Callable[..., object], *args: object, timeout: int | None = None
) -> None:
    """Queue a job under a fixed id, unless that job is already waiting in a queue.

    A sweeper that hands out an action twice therefore queues it once; a job whose worker died (status
    "started" for good) is queued again, and so is one still marked queued that is in no queue: a worker
    killed between taking it off the queue and starting it leaves it so, and the cron would otherwise
    never queue the tick again (every pull and sweep stopped: the bad-day run's stall). A second run of a
    job is harmless: it claims its row first.
    """
    connection = redis_connection()
    existing = Job.fetch_many([job_id], connection=connection)[0]
    waiting = existing is not None and existing.get_status(refresh=False) in WAITING
    if waiting and queue(queue_name).get_job_position(job_id) is not None:
        return
    queue(queue_name).enqueue(
        function, *args, job_id=job_id, result_ttl=current_app.config["JOB_RESULT_TTL"], job_timeout=timeout
    )


def _enqueue_at(
    moment: datetime,
    job_id: str,
    function: Callable[..., object],
    *args: object,
    queue_name: str = ACTIONS,
    timeout: int | None = None,
) -> None:
    """Schedule a job, never before `moment`: RQ's scheduler keeps whole seconds (it would hand out a job
    due at 12:00:00.4 at 12:00:00), so the moment is rounded up."""
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    try:
        queue(queue_name).enqueue_at(
            moment,
            function,
            *args,
            job_id=job_id,
            result_ttl=current_app.config["JOB_RESULT_TTL"],
            job_timeout=timeout,
        )
    except RedisError as error:
        log.warning("could not schedule %s, the sweeper will: %s", job_id, error)


@job
def send_account_mail(account_id: int, kind: str, attempt: int = 1) -> bool:
    """An account mail (address confirmation, password reset); if the SMTP server did not take it, it
    comes back after a backoff, up to ACCOUNT_MAIL_ATTEMPTS tries."""
    retry_at = notifications.send_account_mail(account_id, kind, attempt)
    if retry_at is not None:
        _enqueue_at(
            retry_at,
            f"account-mail-{kind}-{account_id}",
            send_account_mail,
            account_id,
            kind,
            attempt + 1,
            timeout=current_app.config["MAIL_JOB_TIMEOUT"],
        )
    return retry_at is None


def post_account_mail(account_id: int, kind: str) -> None:
    """Queue an account mail, once (the same mail still waiting is enough); raises RedisError."""
    _enqueue(
        ACTIONS,
        f"account-mail-{kind}-{account_id}",
        send_account_mail,
        account_id,
        str(kind),
        timeout=current_app.config["MAIL_JOB_TIMEOUT"],
    )
