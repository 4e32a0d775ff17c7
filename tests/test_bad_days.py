"""Big sellers and bad days: a page goes in at once and what was read is kept; a failed page is tried
again within the cycle and a cycle goes on from the last page read; the job's time limit and a lost
database are never taken for one package's fault."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from rq.timeouts import JobTimeoutException
from werkzeug.wrappers import Request, Response

from connectors.trendyol import parse_package
from extensions import db
from models import ActionState, Integration, Order, OrderAction, OrderEvent, OrderLine, TransferState
from models.base import utcnow
from sync import actions, pull
from sync.history import enqueue
from sync.ingest import NOT_STORED, has_successor, ingest
from sync.rules import TO_MARKETPLACE, Action, Plan
from tests.conftest import Client, make_action, make_order
from tests.fake_platform import FakePlatform, serve_fake
from tests.pipeline import english
from tests.sandbox_server import Sandbox
from tests.test_fairness import orders, spread


@contextmanager
def flaky(sandbox: Sandbox, fails: set[int]) -> Iterator[FakePlatform]:
    """The sandbox's marketplace behind a door that answers 503 to the listing requests numbered in
    `fails` (1 for the first), and passes everything else on."""
    listings = 0

    def answer(request: Request) -> Response:
        nonlocal listings
        if request.path.endswith("/orders"):
            listings += 1
            if listings in fails:
                return Response('{"message": "busy"}', status=503, mimetype="application/json")
        upstream = httpx.get(f"{sandbox.url}{request.full_path}", headers=dict(request.headers))
        return Response(upstream.content, status=upstream.status_code, mimetype="application/json")

    with serve_fake(answer) as door:
        yield door


@pytest.fixture
def quick_retries(app: Flask) -> None:
    app.config.update(PULL_PAGE_SIZE=2, PULL_PAGE_BACKOFF_BASE=0.01, PULL_PAGE_BACKOFF_MAX=0.02)


def through(hub: Integration, door: FakePlatform) -> None:
    hub.marketplace_base_url = f"{door.url}/trendyol/integration"
    db.session.commit()


@pytest.mark.usefixtures("quick_retries")
def test_a_failed_page_is_tried_again_within_the_cycle(hub: Integration, sandbox: Sandbox) -> None:
    spread(sandbox, 5)
    with flaky(sandbox, fails={2}) as door:
        through(hub, door)
        outcome = pull.sync_integration(hub.id)
    db.session.expire_all()
    assert outcome.error is None and not outcome.more
    assert orders() == 5 and hub.pull_failures == 0 and hub.pull_cursor is not None
    listings = [path for path in door.requests if "/orders?" in path]
    assert len(listings) == 5  # four pages (each from the newest read so far) and the failed one's retry


@pytest.mark.usefixtures("quick_retries")
def test_a_cycle_keeps_what_it_read_and_the_next_goes_on_from_there(
    hub: Integration, sandbox: Sandbox, seller: Client
) -> None:
    packages = spread(sandbox, 5)
    with flaky(sandbox, fails={2, 3, 4}) as door:  # the second page fails every attempt
        through(hub, door)
        failed = pull.sync_integration(hub.id)
        db.session.expire_all()
        assert failed.error and "503" in failed.error
        # The first page is in and its place is kept; the failure counts as one (the cycle read something).
        assert orders() == 2 and hub.pull_resume_from is not None and hub.pull_failures == 1
        assert hub.pull_cursor is None
        resumed_from = hub.pull_resume_from
        assert "Catching up: orders read up to" in seller.get("/integrations").get_data(as_text=True)

        hub.next_pull_at = None
        db.session.commit()
        second = pull.sync_integration(hub.id)
    db.session.expire_all()
    assert second.error is None and orders() == 5 and hub.pull_failures == 0
    assert "Catching up" not in seller.get("/integrations").get_data(as_text=True)
    first_listing_again = next(path for path in door.requests[4:] if "/orders?" in path)
    assert f"startDate={int(resumed_from.timestamp() * 1000)}" in first_listing_again
    stored = db.session.scalars(sa.select(Order.package_id)).all()
    assert sorted(stored) == sorted(str(p["shipmentPackageId"]) for p in packages)  # each once


def test_a_page_goes_in_with_a_few_statements_whatever_its_size(
    app: Flask, hub: Integration, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page is read in three queries and written at once: the reads do not grow with the number of
    packages (a dozen statements per package before), nor on PostgreSQL the writes (ids drawn at once,
    then a COPY per table; SQLite writes a row at a time, in process)."""
    settings = hub.settings.to_domain()
    seen: list[str] = []
    # The bulk path's COPYs go to psycopg past SQLAlchemy's events: counted where they leave.
    copy = psycopg.Cursor.copy

    def counted(cursor: psycopg.Cursor[Any], statement: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(statement)
        return copy(cursor, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", counted)

    def statements_for(count: int) -> tuple[int, int]:
        page = [parse_package(sandbox.order()) for _ in range(count)]
        db.session.expire_all()
        hub.settings  # noqa: B018 - loaded before, as a pull has it
        seen.clear()
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        sa.event.listen(db.engine, "before_cursor_execute", listener)
        try:
            result = ingest(hub, settings, page)
            db.session.commit()
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", listener)
        assert result.new == count and not result.errors
        writes = sum(statement.startswith(("INSERT", "COPY")) for statement in seen)
        return len(seen) - writes, writes

    (reads_small, inserts_small), (reads_large, inserts_large) = statements_for(2), statements_for(40)
    assert reads_large == reads_small <= 8, (reads_small, reads_large)
    if db.engine.dialect.name == "postgresql":
        assert inserts_large == inserts_small <= 6, (inserts_small, inserts_large)
        assert any(statement.startswith("COPY orders") for statement in seen)
    assert (db.session.scalar(sa.select(sa.func.count(OrderLine.id))) or 0) >= 42
    transfers = db.session.scalar(
        sa.select(sa.func.count()).select_from(OrderAction).where(OrderAction.state == ActionState.PENDING)
    )
    assert transfers == 42  # the decision table ran for every order: one transfer each


def test_a_package_the_database_refuses_goes_to_the_error_queue_and_the_page_goes_in(
    hub: Integration, sandbox: Sandbox
) -> None:
    settings = hub.settings.to_domain()
    good = [parse_package(sandbox.order()) for _ in range(3)]
    refused = parse_package(sandbox.order())
    # A line without a quantity (NOT NULL): what a bug between the parser and the database looks like.
    bad = replace(refused, lines=(replace(refused.lines[0], quantity=None),))  # type: ignore[arg-type]
    result = ingest(hub, settings, [*good[:2], bad, good[2]])
    db.session.commit()
    assert result.new == 3 and result.errors == 1
    states = dict(db.session.execute(sa.select(Order.package_id, Order.transfer_state)).tuples().all())
    assert [states[p.package_id] for p in good] == [TransferState.WAITING] * 3
    assert states[bad.package_id] == TransferState.ERROR
    reason = db.session.scalar(sa.select(Order.error_reason).where(Order.package_id == bad.package_id))
    assert reason == NOT_STORED


class _Expiring(list[OrderLine]):
    """Lines that raise what the job's time limit (or a lost database) raises when the ingest reads them."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def __iter__(self) -> Iterator[OrderLine]:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        JobTimeoutException("Task exceeded maximum timeout value (600 seconds)"),
        sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly")),
    ],
    ids=["job time limit", "database gone"],
)
def test_the_time_limit_and_a_lost_database_are_not_one_packages_fault(
    hub: Integration, sandbox: Sandbox, error: Exception
) -> None:
    settings = hub.settings.to_domain()
    first = parse_package(sandbox.order())
    cut_off = replace(parse_package(sandbox.order()), lines=_Expiring(error))  # type: ignore[arg-type]
    with pytest.raises(type(error)):
        ingest(hub, settings, [first, cut_off])
    db.session.rollback()
    # Not filed as a broken package (the seller would see "could not be stored"), and nothing half done.
    assert orders() == 0
    assert db.session.scalar(sa.select(sa.func.count(OrderEvent.id))) == 0


def test_a_pull_hands_each_pages_actions_to_the_workers_as_it_goes(
    app: Flask, hub: Integration, sandbox: Sandbox
) -> None:
    app.config.update(PULL_PAGE_SIZE=2)
    spread(sandbox, 5)
    handed: list[list[int]] = []
    outcome = pull.sync_integration(hub.id, lambda rows: handed.append([row.id for row in rows]))
    assert outcome.actions == [] and outcome.result.actions == []  # nothing kept from page to page
    # Each page after the first starts at the newest package read so far: read again, no news.
    assert [len(ids) for ids in handed] == [2, 1, 1, 1]
    assert len({id_ for ids in handed for id_ in ids}) == 5


def test_a_retry_waiting_for_its_time_is_handed_out_once(app: Flask, hub: Integration) -> None:
    """A retry goes to RQ's scheduler for its time; the sweeper hands it out again only if it is still
    pending OUTBOX_REQUEUE_SECONDS after that time (its job was lost), not as soon as it is due."""
    requeue = timedelta(seconds=app.config["OUTBOX_REQUEUE_SECONDS"])
    handed = utcnow()
    due = handed + 10 * requeue  # a long backoff
    action = make_action(make_order(hub), state=ActionState.PENDING, next_attempt_at=due, enqueued_at=handed)
    assert action not in actions.stale_and_due(due)  # due: RQ's scheduler queues it now
    assert action not in actions.stale_and_due(due + requeue / 2)
    assert action in actions.stale_and_due(due + requeue * 2)  # lost after all: handed out again


def test_an_order_new_on_the_page_has_no_successor(hub: Integration) -> None:
    """Asked before the page is written (the same package twice on a page, cancelled the second time),
    an order without an id is no origin: not every live order without an origin."""
    make_order(hub)  # a live order of its own, no origin
    assert has_successor(Order(integration_id=hub.id, account_id=hub.account_id)) is False


def test_a_superseded_action_a_worker_claimed_meanwhile_is_left_running(hub: Integration) -> None:
    """The ingest holds the page's open actions from its start; a worker may claim one before the page
    decides to drop it: the running action is never overwritten, and the history does not say dropped."""
    order = make_order(hub)
    pushed = make_action(order, kind=Action.MARKETPLACE_STATUS, state=ActionState.PENDING)
    waiting = make_action(order, kind=Action.MARKETPLACE_TRACKING, state=ActionState.PENDING)
    known = [pushed, waiting]
    db.session.execute(  # a worker's claim, on the database, behind the session's back
        sa.text("UPDATE order_actions SET state = 'running' WHERE id = :id"), {"id": pushed.id}
    )
    enqueue(order, Plan((), supersede=TO_MARKETPLACE), known)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get_one(OrderAction, pushed.id).state == ActionState.RUNNING
    assert db.session.get_one(OrderAction, waiting.id).state == ActionState.SUPERSEDED
    dropped = db.session.scalars(sa.select(OrderEvent).where(OrderEvent.order_id == order.id)).all()
    assert [english(event.summary, event.params) for event in dropped] == ["marketplace_tracking dropped"]
