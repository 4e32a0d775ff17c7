"""The job wrapper: every job is its own unit of work, even in the in-process worker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from rq import Queue

from extensions import db
from jobs import PIPELINE, job, redis_connection
from jobs.tasks import queue_tick, tick
from models import Account, Integration
from models.base import utcnow
from tests.conftest import make_account, make_integration, running_app


@job
def _broken_job(email: str) -> None:
    db.session.add(Account(email=email, password_hash="x", language="en"))
    db.session.flush()  # a duplicate email: the flush fails, the session needs a rollback


@job
def _count_accounts() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Account)) or 0


def test_a_failed_job_leaves_a_clean_session_for_the_next(app: Flask) -> None:
    account = make_account()
    with pytest.raises(sa.exc.IntegrityError):
        _broken_job(account.email)
    assert _count_accounts() == 1


@pytest.fixture
def with_redis(redis_url: str) -> Iterator[Flask]:
    with running_app(REDIS_URL=redis_url, TICK_SECONDS=5) as app:
        yield app


def test_a_sync_cycle_due_within_half_a_tick_starts_now(with_redis: Flask) -> None:
    """Pulls every 10 s are 10 s apart give or take half a tick: one due 2 s after a tick of 5 s starts
    then, not at the tick after (7 s late); one due later waits for its tick."""
    account = make_account()
    now = utcnow()
    due = {
        "now": make_integration(account, name="due now", next_pull_at=now - timedelta(seconds=1)),
        "soon": make_integration(account, name="due soon", next_pull_at=now + timedelta(seconds=2)),
        "later": make_integration(account, name="due later", next_pull_at=now + timedelta(seconds=4)),
    }
    db.session.commit()
    ids = {name: integration.id for name, integration in due.items()}
    redis_connection().flushdb()
    tick()  # a job: its own session
    pipeline = Queue(PIPELINE, connection=redis_connection())
    assert sorted(pipeline.job_ids) == sorted([f"sync-{ids['now']}", f"sync-{ids['soon']}"])
    later = db.session.get_one(Integration, ids["later"]).next_pull_at
    assert later is not None and later < now + timedelta(seconds=5)  # not claimed


def test_a_tick_taken_off_the_queue_by_a_worker_killed_then_is_queued_again(with_redis: Flask) -> None:
    """A worker killed after popping the tick and before starting it leaves the tick marked queued in no
    queue: the cron queues it again rather than waiting on it for ever."""
    redis_connection().flushdb()
    queue_tick()
    pipeline = Queue(PIPELINE, connection=redis_connection())
    assert pipeline.job_ids == ["tick"]
    redis_connection().lrem(pipeline.key, 0, "tick")  # what the killed worker's pop left
    queue_tick()
    assert pipeline.job_ids == ["tick"]
    queue_tick()  # waiting in the queue: not queued twice
    assert pipeline.job_ids == ["tick"]
