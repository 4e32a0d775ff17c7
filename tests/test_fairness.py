"""One tenant cannot stall the others: budgeted pulls and imports that resume, one import at a time,
and each integration's fair share of the workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry

from extensions import db
from jobs import ACTIONS, PIPELINE, redis_connection
from jobs.tasks import dispatch, run_action
from models import (
    Account,
    ActionState,
    Backfill,
    BackfillState,
    Integration,
    Order,
    OrderAction,
    TransferState,
)
from models.base import utcnow
from sandbox.state import World
from sync import actions, backfill, pull
from tests.conftest import (
    Client,
    join_sandbox,
    make_account,
    make_action,
    make_import,
    make_integration,
    make_order,
)
from tests.pipeline import cycle, drain
from tests.sandbox_server import Sandbox, serve_sandbox


def spread(sandbox: Sandbox, count: int) -> list[dict[str, object]]:
    """Packages modified a second apart, the newest a minute ago."""
    packages = [sandbox.order() for _ in range(count)]
    newest = int(utcnow().timestamp() * 1000) - 60_000
    for index, package in enumerate(packages):
        package["lastModifiedDate"] = newest - (count - index) * 1000
    return packages


def orders() -> int:
    return db.session.scalar(sa.select(sa.func.count(Order.id))) or 0


def test_a_cycle_stops_at_its_page_budget_and_the_next_goes_on(
    app: Flask, hub: Integration, sandbox: Sandbox
) -> None:
    app.config.update(PULL_PAGE_SIZE=2, SYNC_PAGE_BUDGET=2)
    packages = spread(sandbox, 7)
    first = pull.sync_integration(hub.id)
    db.session.expire_all()
    # Two pages, the oldest first; the second starts at the newest of the first (read again, no news).
    assert first.more and orders() == 3
    assert hub.pull_resume_from is not None and hub.next_pull_at is not None
    assert hub.next_pull_at <= utcnow()  # due again at once, behind whoever waits already
    assert hub.pull_cursor is None  # the cursor moves only once everything was read

    cycles, outcome = 1, first
    while outcome.more:
        resumed_from = hub.pull_resume_from
        outcome = pull.sync_integration(hub.id)
        db.session.expire_all()
        cycles += 1
        assert hub.pull_resume_from is None or hub.pull_resume_from > resumed_from  # always onwards
        assert cycles < 10
    assert orders() == 7 and hub.pull_resume_from is None and hub.pull_cursor is not None
    newest = datetime.fromtimestamp(max(int(str(p["lastModifiedDate"])) for p in packages) / 1000, UTC)
    assert hub.pull_cursor >= newest - timedelta(milliseconds=1)


def test_a_package_changed_while_the_pull_pages_skips_no_other(
    app: Flask, hub: Integration, sandbox: Sandbox
) -> None:
    """The first package is modified after the first page was read: it leaves the window, and by page
    numbers the package that moved up into its place would never be read."""
    app.config.update(PULL_PAGE_SIZE=2)
    packages = spread(sandbox, 6)
    original = sandbox.world.listing
    calls = 0

    def first_changes_meanwhile(*args: Any, **kwargs: Any) -> dict[str, Any]:
        nonlocal calls
        answer = original(*args, **kwargs)
        calls += 1
        if calls == 1:
            packages[0]["lastModifiedDate"] = int(utcnow().timestamp() * 1000) + 60_000
        return answer

    sandbox.world.listing = first_changes_meanwhile  # type: ignore[method-assign]
    pull.sync_integration(hub.id)
    db.session.expire_all()
    assert orders() == 6


def test_packages_of_one_millisecond_beyond_the_budget_are_read_in_one_go(
    app: Flask, hub: Integration, sandbox: Sandbox
) -> None:
    """Resuming from a moment the run has not moved past would read the same pages forever."""
    app.config.update(PULL_PAGE_SIZE=2, SYNC_PAGE_BUDGET=1)
    packages = [sandbox.order() for _ in range(7)]
    for package in packages:
        package["lastModifiedDate"] = packages[0]["lastModifiedDate"]
    pull.sync_integration(hub.id)  # the first page moves past the start: the budget counts
    db.session.expire_all()
    assert orders() == 2
    second = pull.sync_integration(hub.id)
    db.session.expire_all()
    assert orders() == 7 and not second.more


def test_a_failed_page_keeps_the_pages_before_it(app: Flask, hub: Integration, sandbox: Sandbox) -> None:
    app.config.update(PULL_PAGE_SIZE=2, PULL_PAGE_BACKOFF_BASE=0.01, PULL_PAGE_BACKOFF_MAX=0.02)
    for _ in range(5):
        sandbox.order()
    calls, attempts = 0, app.config["PULL_PAGE_ATTEMPTS"]
    original = sandbox.world.listing

    def second_page_fails(*args: Any, **kwargs: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if 2 <= calls <= 1 + attempts:  # the second page, every time it is tried within the cycle
            raise RuntimeError("the platform fell over")  # the sandbox answers 500
        return original(*args, **kwargs)

    sandbox.world.listing = second_page_fails  # type: ignore[method-assign]
    outcome = pull.sync_integration(hub.id)
    db.session.expire_all()
    assert outcome.error and orders() == 2 and hub.pull_failures == 1
    assert hub.last_pull_error_category == "unavailable"
    resume = hub.pull_resume_from
    assert resume is not None

    hub.next_pull_at = None
    db.session.commit()
    pull.sync_integration(hub.id)
    db.session.expire_all()
    assert orders() == 5 and hub.pull_resume_from is None and hub.pull_failures == 0


def test_an_import_runs_a_budget_at_a_time_and_resumes(
    app: Flask, hub: Integration, sandbox: Sandbox
) -> None:
    app.config.update(PULL_PAGE_SIZE=2, SYNC_PAGE_BUDGET=1)
    spread(sandbox, 5)
    run = make_import(hub)
    rounds = 0
    while backfill.run(run.id, lambda actions: None) == 0:  # out of budget: queued again at once
        rounds += 1
        db.session.expire_all()
        assert run.state == BackfillState.RUNNING and 0 < run.progress < 100
        assert hub.pull_lease_until is None  # syncs may run between two rounds
        assert rounds < 10
    db.session.expire_all()
    assert rounds >= 2 and run.state == BackfillState.DONE and run.new == 5 and orders() == 5


def test_an_import_waits_out_a_platform_failure_and_keeps_its_place(
    app: Flask, hub: Integration, sandbox: Sandbox
) -> None:
    app.config.update(PULL_PAGE_SIZE=2, SYNC_PAGE_BUDGET=1)
    spread(sandbox, 5)
    run = make_import(hub)
    assert backfill.run(run.id, lambda actions: None) == 0
    db.session.expire_all()
    place = run.resume_from
    sandbox.world.faults.update({"error_rate": 1})
    assert backfill.run(run.id, lambda actions: None) == backfill.FAILURE_WAIT
    db.session.expire_all()
    assert run.state == BackfillState.RUNNING and run.resume_from == place and "503" in (run.error or "")
    sandbox.world.faults.update({"error_rate": 0})
    while backfill.run(run.id, lambda actions: None) == 0:
        pass
    db.session.expire_all()
    assert run.state == BackfillState.DONE and run.new == 5 and run.error is None


def test_one_import_at_a_time_per_integration(seller: Client, hub: Integration) -> None:
    today = datetime.now(UTC).date()
    data = {"start": str(today - timedelta(days=80)), "end": str(today)}
    responses = [seller.post(f"/integrations/{hub.id}/import", data=data) for _ in range(20)]
    assert [response.status_code for response in responses].count(302) == 1
    assert "already waiting or running" in responses[-1].get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Backfill.id))) == 1
    # The database holds the line too, whatever a view forgets.
    db.session.add(Backfill(account_id=hub.account_id, integration_id=hub.id, start=utcnow(), end=utcnow()))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()
    db.session.execute(sa.update(Backfill).values(state=BackfillState.DONE))
    db.session.commit()
    assert seller.post(f"/integrations/{hub.id}/import", data=data).status_code == 302


@pytest.fixture
def redis_app(app: Flask, redis_url: str) -> Flask:
    Redis.from_url(redis_url).flushdb()
    app.config["REDIS_URL"] = redis_url
    app.extensions.pop("hub_redis", None)
    return app


def test_each_integration_gets_its_share_of_the_workers(redis_app: Flask, sandbox: Sandbox) -> None:
    """A seller with a long backlog holds ACTIONS_IN_FLIGHT workers; another seller's action is handed
    out at once, not behind the backlog, and the backlog drains as its actions end."""
    busy = join_sandbox(make_account("big@example.com"), sandbox)
    for _ in range(6):
        sandbox.order()
    backlog = pull.sync_integration(busy.id).actions
    assert len(backlog) == 6
    dispatch(backlog)
    actions_queue = Queue(ACTIONS, connection=redis_connection())
    assert len(actions_queue.job_ids) == redis_app.config["ACTIONS_IN_FLIGHT"] == 2

    with serve_sandbox(World()) as other:
        small = join_sandbox(make_account("small@example.com"), other)
        other.order()
        dispatch(pull.sync_integration(small.id).actions)
        small_jobs = [job for job in actions_queue.job_ids if _integration_of(job) == small.id]
        assert actions_queue.job_ids.index(small_jobs[0]) == 2  # third in line, not seventh
        SimpleWorker([actions_queue], connection=redis_connection()).work(burst=True)
        assert len(other.shop_orders()) == 1
    db.session.expire_all()
    assert drain() == 0  # nothing was left behind for the test to run by hand
    transferred = db.session.scalars(sa.select(Order.transfer_state)).all()
    assert transferred == [TransferState.TRANSFERRED] * 7
    states = db.session.scalars(sa.select(OrderAction.state).where(OrderAction.kind == "transfer")).all()
    assert set(states) == {ActionState.DONE}


def test_a_job_goes_on_with_its_integration_s_waiting_actions_while_its_time_lasts(
    redis_app: Flask, sandbox: Sandbox
) -> None:
    """One job runs the action it was given, then the integration's actions that wait their turn, in the
    same slot of its share, until ACTION_BATCH_SECONDS are up; what is left is handed out as jobs."""
    hub = join_sandbox(make_account("big@example.com"), sandbox)
    for _ in range(5):
        sandbox.order()
    first, *waiting = sorted(row.id for row in pull.sync_integration(hub.id).actions)
    actions_queue = Queue(ACTIONS, connection=redis_connection())

    redis_app.config["ACTION_BATCH_SECONDS"] = 0  # no time for a second one
    assert run_action(first) is True
    assert len(sandbox.shop_orders()) == 1
    handed_out = [_action_of(job_id) for job_id in actions_queue.job_ids]
    assert handed_out == waiting[:2]  # the next in line, within the share

    redis_app.config["ACTION_BATCH_SECONDS"] = 3600
    assert run_action(waiting[0]) is True
    # The two that waited their turn went with it, in the same job; the one handed out has its own job.
    assert len(sandbox.shop_orders()) == 4
    assert run_action(waiting[1]) is True
    assert len(sandbox.shop_orders()) == 5
    db.session.expire_all()
    assert set(db.session.scalars(sa.select(OrderAction.state))) == {ActionState.DONE}
    assert run_action(waiting[1]) is False  # a second delivery of its job finds nothing to do


def test_a_job_handed_out_early_comes_back_when_its_action_is_due(redis_app: Flask, sandbox: Sandbox) -> None:
    """RQ's scheduler keeps whole seconds: a retry due at 12:00:30.4 was handed out at 12:00:30. The
    action runs nothing before its time, and its job is scheduled again, rounded up to the second."""
    hub = join_sandbox(make_account("early@example.com"), sandbox)
    sandbox.order()
    (transfer_id,) = [row.id for row in pull.sync_integration(hub.id).actions]
    due = utcnow().replace(microsecond=400_000) + timedelta(seconds=30)
    db.session.execute(sa.update(OrderAction).values(next_attempt_at=due))
    db.session.commit()
    assert run_action(transfer_id) is False
    assert sandbox.shop_orders() == []
    scheduled = ScheduledJobRegistry(ACTIONS, connection=redis_connection())
    assert scheduled.get_scheduled_time(f"action-{transfer_id}") == due.replace(microsecond=0) + timedelta(
        seconds=1
    )


def test_a_new_tracking_code_source_is_looked_at_by_a_worker(
    redis_app: Flask, seller: Client, account: Account, sandbox: Sandbox
) -> None:
    """Saved on the General page, Shipment Tracking Code sends a worker over the orders in the shop (the
    request only queues it); the orders get the code the setting now names."""
    hub = join_sandbox(account, sandbox)
    package = sandbox.order()
    cycle(hub)
    response = seller.post(
        f"/integrations/{hub.id}/general/tracking_code",
        data={"tracking_code_source": "package_number"},
        htmx=True,
    )
    assert response.status_code == 200
    pipeline = Queue(PIPELINE, connection=redis_connection())
    assert pipeline.job_ids == [f"reconsider-{hub.id}"]
    assert drain() == 0  # nothing was decided in the request
    actions_queue = Queue(ACTIONS, connection=redis_connection())
    SimpleWorker([pipeline, actions_queue], connection=redis_connection()).work(burst=True)
    shop_order = sandbox.shop_order_for(package["shipmentPackageId"])
    assert shop_order is not None
    meta = {item["key"]: item["value"] for item in shop_order["meta_data"]}
    assert meta["hub_tracking_number"] == str(package["shipmentPackageId"])


def _action_of(job_id: str) -> int:
    return int(job_id.removeprefix("action-"))


def _integration_of(job_id: str) -> int:
    action = db.session.get_one(OrderAction, _action_of(job_id))
    return action.integration_id


def test_the_sweeper_hands_out_every_seller_s_share(app: Flask, hub: Integration) -> None:
    """One seller's thousand due actions do not fill the sweep and leave another's unswept."""
    app.config.update(OUTBOX_SWEEP_BATCH=3)
    for number in range(1, 7):
        make_action(make_order(hub, number), state=ActionState.PENDING)
    other = make_integration(make_account("other@example.com"), name="Other")
    theirs = make_action(make_order(other, 99), state=ActionState.PENDING)
    due = actions.stale_and_due(utcnow() + timedelta(seconds=1))
    assert theirs.id in {row.id for row in due}
    assert sum(1 for row in due if row.integration_id == hub.id) == app.config["ACTIONS_IN_FLIGHT"]


def test_one_action_of_an_order_at_a_time(app: Flask, hub: Integration) -> None:
    """An order's approval and transfer, decided together, go one after the other: two at once would
    race for the order, and the one that lost would wait out a retry (seconds, for a webhook's order)."""
    order, other = make_order(hub, 1), make_order(hub, 2)
    first, second = (
        make_action(order, state=ActionState.PENDING),
        make_action(order, state=ActionState.PENDING),
    )
    third = make_action(other, state=ActionState.PENDING)
    now = utcnow()
    assert [row.id for row in actions.fair_share([first, second, third], now)] == [first.id, third.id]
    first.enqueued_at = now
    db.session.commit()
    assert actions.fair_share([second], now) == []  # the first is handed out: the second waits its turn
    first.state = ActionState.DONE
    db.session.commit()
    assert [row.id for row in actions.fair_share([second], now)] == [second.id]


def test_a_whole_order_cancellation_waits_while_the_pull_catches_up(
    hub: Integration, sandbox: Sandbox
) -> None:
    """The package that carries some of the lines on may be on a page the pull has not read yet."""
    package = sandbox.order()
    cycle(hub)
    sandbox.set_status(package["shipmentPackageId"], "Cancelled")
    pull.sync_integration(hub.id)
    cancel = db.session.scalars(sa.select(OrderAction).where(OrderAction.kind == "shop_cancel")).one()
    hub.pull_resume_from = utcnow()  # a budgeted pull still on its way
    db.session.commit()
    actions.run(cancel.id)
    db.session.expire_all()
    assert cancel.state == ActionState.PENDING and cancel.attempts == 0
    assert sandbox.shop_order_for(package["shipmentPackageId"])["status"] != "cancelled"  # type: ignore[index]
    hub.pull_resume_from = None
    cancel.next_attempt_at = utcnow()
    db.session.commit()
    actions.run(cancel.id)
    db.session.expire_all()
    assert cancel.state == ActionState.DONE
    assert sandbox.shop_order_for(package["shipmentPackageId"])["status"] == "cancelled"  # type: ignore[index]


def test_a_marketplace_that_takes_a_request_every_few_seconds_gets_one_call_at_a_time(
    app: Flask, hub: Integration
) -> None:
    """Çiçeksepeti takes one request per 5 s per seller: two approvals at once would only take each
    other's turns. One of them goes; the shop's transfers go on beside it."""
    hub.marketplace_kind = "ciceksepeti"
    orders = [make_order(hub, number) for number in range(1, 5)]
    approvals = [make_action(order, kind="approve", state=ActionState.PENDING) for order in orders[:2]]
    transfers = [make_action(order, kind="transfer", state=ActionState.PENDING) for order in orders[2:]]
    now = utcnow()
    chosen = actions.fair_share([*approvals, *transfers], now)
    assert [row.id for row in chosen] == [approvals[0].id, transfers[0].id]
    approvals[0].enqueued_at = now
    db.session.commit()
    assert [row.id for row in actions.fair_share([approvals[1], transfers[1]], now)] == [transfers[1].id]
