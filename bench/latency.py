"""Latency of one order through the hub, with webhooks and with polling only: from a marketplace order's
creation to the shop order existing, and back, from a tracking code the seller enters in the shop to the
marketplace holding it; p50, p95 and max.

    .venv/bin/python -m bench.latency                            # 300 orders at 5/s; webhooks, then polling
    .venv/bin/python -m bench.latency --mode webhooks --orders 40 --reverse 5
    .venv/bin/python -m bench.latency --mode polling --pull-interval 10   # the demo's interval

The stack of the end-to-end tests (tests/stack.py) on PostgreSQL (database `orderhub_bench_latency` on the
BENCH_DATABASE_URL server), a fresh one per mode: the sandbox over HTTP with no latency, a Redis of its
own, N `flask worker` processes and one `flask cron`; one Trendyol → WooCommerce integration with approval
feedback and update feedback on (the hub approves each new order on Trendyol, alongside its transfer, and
passes a tracking code entered in the shop back to Trendyol; with `--reverse 0` both stay off, the
defaults, and only the forward flow is timed: the approvals' share of the workers then shows).
`--mode webhooks` also starts the web process (`flask run`) and registers the integration's webhooks on
both platforms, so that pulls only reconcile (every WEBHOOK_PULL_INTERVAL seconds at the least);
`--mode polling` registers none and sets the integration's pull interval to `--pull-interval` (default
60 s, a new integration's).

The hub runs with its own defaults, as in production (`timings={}`; tests/stack.py's QUICK, whose short
leases and backoffs are for the fault tests and whose one-second tick would flatter polling, is not used):
a tick every TICK_SECONDS (5), a worker that runs its jobs in its own process (WORKER_FORK off), Trendyol's
floor of 10 s between pulls. Once the workers are up and the pulls are in their rhythm (polling: the first
pull on the seller's interval has run; webhooks: the first pull after the registration, so the next is
WEBHOOK_PULL_INTERVAL away), orders are placed one at a time at a steady `--rate` (so the figures are
latency, not a queue draining), and `--reverse` of them, spread evenly over the run, get a tracking code
in the shop once the hub is done with them: Trendyol has them at Picking (the hub's approval), the hub
knows it and has no action of the order waiting or running, so each trip is timed from a quiet order.
With polling, each
code then waits a random while within one pull interval, so that it falls anywhere between two pulls,
as a seller's do, rather than just after the pull that brought the approval.

Both directions are timed with the sandbox's own stamps, to the millisecond, on this machine's clock:
the package's creation to the shop order's creation (`_created_ms`); the shop order's modification by the
tracking code to the moment Trendyol stored it (the package's lastModifiedDate, read as soon as a poll of
the sandbox's state every 10 ms sees the code). The run waits for every placed order in the shop and every
tracking code on Trendyol, then checks that the shop holds exactly the placed orders, each once; an order
that never arrives fails the run with the stack's summary. Printed per mode: the hub's settings of the
run, count, p50, p95 and max for both directions (seconds), the forward time split at the moment the hub
stored the order (marketplace → hub, hub → shop); where the hub's actions spent their time, per kind
(until a worker claimed them: in the outbox, in RQ's queue; running), the slowest order's actions, and
what the workers were doing from the first order on (sampled); the load average at the end.

Target with webhooks: marketplace → shop p95 under 2 s on a 2-core machine. With polling, expect p50
about half the pull interval plus the tick, plus the transfer, and p95 near the whole interval plus a
tick: a due pull starts at the next tick, and as the next pull is due an interval after this one started,
a moment after its tick, pulls come every interval plus one tick in practice (the run prints how far apart
they started). The reverse flow the same, as the shop's changes are read by the same sync cycle, after the
marketplace's. With polling each pull brings a burst (rate × interval orders), so hub → shop is a queue
draining too. A polling run shorter than one pull interval (orders / rate) samples only part of it, and
its figures are not that.
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from redis import Redis
from rq import Worker

from bench.common import database_url, load, progress_output
from config import Config
from extensions import db
from models import ActionState, Integration, Order, OrderAction
from models.base import utcnow
from tests.stack import Stack, StackFailure, running_stack

# The hub's settings the processes run with: none changed, its defaults as in production.
TIMINGS: dict[str, str] = {}
# The hub's settings that make the figures, shown with them.
SHOWN = (
    "TICK_SECONDS",
    "WEBHOOK_PULL_INTERVAL",
    "MARKETPLACE_PULL_FLOORS",
    "ACTIONS_IN_FLIGHT",
    "ACTION_BATCH_SECONDS",
    "WORKER_FORK",
)
# How often the bench looks at the sandbox's state (seconds): the reverse flow's end is seen this late at
# most (its figure is the sandbox's stamp, not the moment seen).
POLL = 0.01
# After the last order is placed, how long the rest may take (seconds), beyond the pulls and ticks it
# may have to wait for.
PATIENCE = 120.0
CARRIER = "Sürat Kargo"
# How often the bench looks at what the workers are doing (seconds).
SAMPLE = 0.25
# How often the bench asks the hub's database whether it is done with an order it waits on (seconds).
HUB_POLL = 0.2


@dataclass
class Reverse:
    """One order's trip back: its tracking code entered in the shop once the hub is done with the order,
    `delay` seconds later, then seen on Trendyol."""

    package_id: str
    code: str
    delay: float
    due: float | None = None  # when the code is entered (monotonic)
    looked: float = 0.0  # when the bench last asked the hub's database
    entered_ms: int | None = None  # the shop order's modification by the code
    stored_ms: int | None = None  # Trendyol's stamp of the code
    seen_ms: int | None = None  # when the bench saw it there

    def advance(self, stack: Stack) -> None:
        sandbox = stack.sandbox
        package = sandbox.package(self.package_id)
        if self.due is None:
            # The hub's approval (it may come before the transfer), the order in the shop, and the hub
            # done with both: a code entered while the hub still passes the approval's status on to the
            # shop is a change on both sides at once, which the priority setting settles (marketplace
            # first: the shop's is dropped), not a trip to time.
            now = time.monotonic()
            if package["status"] != "Picking" or now - self.looked < HUB_POLL:
                return
            self.looked = now
            if sandbox.shop_order_for(self.package_id) is not None and _hub_done(self.package_id):
                self.due = now + self.delay
        elif self.entered_ms is None:
            if time.monotonic() < self.due:
                return
            items = [{"tracking_provider": CARRIER, "tracking_number": self.code, "custom_tracking_link": ""}]
            with sandbox.world.lock:
                order = sandbox.shop_order_for(self.package_id)
                assert order is not None
                meta = {"meta_data": [{"key": "_wc_shipment_tracking_items", "value": items}]}
                sandbox.world.update_shop_order(order, meta)
                self.entered_ms = int(order["_modified_ms"])
        elif self.stored_ms is None and package.get("cargoSenderNumber") == self.code:
            with sandbox.world.lock:  # the code and its stamp are written together, under the lock
                self.stored_ms = int(package["lastModifiedDate"])
            self.seen_ms = int(time.time() * 1000)

    @property
    def done(self) -> bool:
        return self.stored_ms is not None


def _hub_done(package_id: str) -> bool:
    """Whether the hub holds the package at Picking, with no action of its order waiting or running."""
    try:
        order = db.session.execute(
            sa.select(Order.id, Order.marketplace_status).where(Order.package_id == package_id)
        ).first()
        if order is None or order.marketplace_status != "Picking":
            return False
        busy = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OrderAction)
            .where(
                OrderAction.order_id == order.id,
                OrderAction.state.in_([ActionState.PENDING, ActionState.RUNNING]),
            )
        )
        return not busy
    finally:
        db.session.rollback()


@dataclass
class Figures:
    forward: list[float]  # seconds, marketplace → shop, one per placed order
    to_hub: list[float]  # of which marketplace → the hub's order row
    hub_to_shop: list[float]  # and the hub's order row → shop
    backward: list[float]  # seconds, shop → marketplace, one per reverse order
    seen_late: list[float]  # how much later than its stamp the bench saw each code (poll resolution)
    outbox: list[str]  # where the hub's actions spent their time, and the slowest order's, as lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=("webhooks", "polling", "both"), default="both")
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--rate", type=float, default=5.0, help="orders placed per second")
    parser.add_argument("--reverse", type=int, default=30, help="orders that also get a tracking code")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--pull-interval", type=int, default=60, help="the seller's pull interval in seconds (polling)"
    )
    arguments = parser.parse_args()
    if arguments.orders < 1 or arguments.rate <= 0 or not 0 <= arguments.reverse <= arguments.orders:
        parser.error("--orders at least 1, --rate above 0, --reverse between 0 and --orders")
    progress_output()
    url = database_url("orderhub_bench_latency")
    modes = ("webhooks", "polling") if arguments.mode == "both" else (arguments.mode,)
    for mode in modes:
        run(
            url,
            mode,
            orders=arguments.orders,
            rate=arguments.rate,
            reverse=arguments.reverse,
            workers=arguments.workers,
            pull_interval=arguments.pull_interval,
        )


def run(
    url: str, mode: str, *, orders: int, rate: float, reverse: int, workers: int, pull_interval: int
) -> None:
    """One mode on a fresh stack; prints what it measured."""
    webhooks = mode == "webhooks"
    shown = " ".join(f"{name}={TIMINGS.get(name, getattr(Config, name))}" for name in SHOWN)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_stack(
            Path(tmp),
            workers=workers,
            database=url,
            timings=dict(TIMINGS),
            webhooks=webhooks,
            # The reverse flow: the hub approves each order on Trendyol (a tracking code is taken from
            # Picking on) and passes the shop's tracking codes back. Off with --reverse 0: the defaults.
            update_feedback=bool(reverse),
            approval_feedback=bool(reverse),
        ) as stack,
    ):
        stack.wait_ready()
        every = _in_rhythm(stack, webhooks, pull_interval)
        seller = "1 (the stack's)" if webhooks else str(pull_interval)
        print(
            f"# {mode}: {orders:,} orders at {rate:g}/s, {reverse} with a tracking code back (approval and "
            f"update feedback {'on' if reverse else 'off'}); {workers} worker(s); pull_interval={seller}, "
            f"a pull every {every:.0f} s; {shown}"
        )
        if not webhooks and orders / rate < every:
            print(f"  (the orders span {orders / rate:.0f} s, less than one pull interval: a partial sample)")
        # Polling: each code is entered at a random moment within a pull interval after the hub is done
        # with its order (that is right after a pull), as a seller's come at any time; the order may wait
        # a pull to reach the shop, the code up to two more. Webhooks: at once, and a pull at most.
        spread = 0.0 if webhooks else every
        tick = int(TIMINGS.get("TICK_SECONDS", Config.TICK_SECONDS))
        patience = (1 if webhooks else 3) * every + 2 * tick + PATIENCE
        figures = _measure(stack, orders, rate, reverse, spread, patience)
        machine = load()
    print(_line("marketplace → shop", figures.forward))
    print(_line("  of which → hub", figures.to_hub))
    print(_line("  of which hub → shop", figures.hub_to_shop))
    if reverse:
        print(_line("shop → marketplace", figures.backward))
        late = sorted(figures.seen_late)
        print(
            f"  (reverse: the sandbox's stamps, to the ms; a {POLL * 1000:.0f} ms poll saw each code "
            f"{_percentile(late, 0.5) * 1000:.0f} ms after its stamp at the median, "
            f"{late[-1] * 1000:.0f} ms at most)"
        )
    print("  the hub's actions, p50/p95 in seconds:")
    for line in figures.outbox:
        print(line)
    print(f"  {machine} at the end\n")


def _in_rhythm(stack: Stack, webhooks: bool, pull_interval: int) -> float:
    """Set the pulls to what the mode measures, start one now and wait until it has run and set the next
    by the new rhythm; returns the time it left to the next pull (seconds): the pull interval of the run.

    A pull under way as the rhythm changes (the first ran as the webhooks were being registered) may still
    set its next by the old, or put it WEBHOOK_PULL_INTERVAL away before the bench saw it run: so the
    bench asks for a pull now (as the seller's "sync now" does) until one has run after it asked."""
    integration = db.session.get_one(Integration, stack.integration_id)
    if webhooks:
        if integration.shop_webhooks_at is None or integration.marketplace_webhooks_at is None:
            raise StackFailure(f"the webhooks are not registered on both sides\n{stack.summary()}")
        expected = int(TIMINGS.get("WEBHOOK_PULL_INTERVAL", Config.WEBHOOK_PULL_INTERVAL))
        what = "a pull after the webhooks' registration"
    else:
        integration.pull_interval = expected = pull_interval
        what = f"a pull on the seller's interval ({pull_interval} s)"
    since = utcnow()
    integration.next_pull_at = None
    db.session.commit()
    tick = int(TIMINGS.get("TICK_SECONDS", Config.TICK_SECONDS))
    asked = time.monotonic()

    def pulled() -> bool:
        nonlocal asked
        row = db.session.get_one(Integration, stack.integration_id)
        last, following = row.last_pull_at, row.next_pull_at
        if last is not None and last > since:
            return following is not None and (following - last).total_seconds() >= expected - 1
        if time.monotonic() - asked > 3 * tick and (following is None or following > utcnow()):
            row.next_pull_at, asked = None, time.monotonic()  # an earlier pull put ours off: again
            db.session.commit()
        return False

    stack.wait_for(what, pulled, timeout=120)
    integration = db.session.get_one(Integration, stack.integration_id)
    assert integration.next_pull_at is not None and integration.last_pull_at is not None
    return (integration.next_pull_at - integration.last_pull_at).total_seconds()


def _measure(stack: Stack, orders: int, rate: float, reverse: int, spread: float, patience: float) -> Figures:
    """Place the orders at `rate`, enter the tracking codes as their approvals come, and wait for all of
    it; fail with the stack's summary if something never arrives."""
    sandbox = stack.sandbox
    step = orders // reverse if reverse else 0
    created: dict[str, int] = {}  # package id → its creation on the marketplace (epoch ms)
    backs: list[Reverse] = []
    randomness = random.Random(7)
    connection = Redis.from_url(stack.redis.url)
    pulls: set[datetime | None] = set()  # the starts of the pulls seen, a second apart at most
    busy: Counter[str] = Counter()  # what the workers were doing until all of it arrived, sampled
    started = time.monotonic()
    last_placed = checked = sampled = 0.0
    arrived = 0
    while True:
        now = time.monotonic()
        if now - sampled >= SAMPLE:
            sampled = now
            for worker in Worker.all(connection=connection):
                job_id = worker.get_current_job_id()
                busy[job_id.split("-")[0] if job_id else "idle"] += 1
        while len(created) < orders and now >= started + len(created) / rate:
            package = sandbox.order()
            package_id = str(package["shipmentPackageId"])
            if step and len(created) % step == 0 and len(backs) < reverse:
                delay = randomness.uniform(0, spread)
                backs.append(Reverse(package_id, f"SELLER{len(backs) + 1}", delay))
            created[package_id] = int(package["packageHistories"][0]["createdDate"])
            last_placed = time.monotonic()
        for back in backs:
            back.advance(stack)
        if now - checked >= 1:
            checked = now
            stack.check_alive()
            pulls.add(
                db.session.scalar(
                    sa.select(Integration.last_pull_at).where(Integration.id == stack.integration_id)
                )
            )
            db.session.rollback()
            arrived = len(_in_shop(stack, created))
            if len(created) == orders:
                if arrived == orders and all(back.done for back in backs):
                    break
                if now - last_placed > patience:
                    found = _in_shop(stack, created)
                    missing = [package_id for package_id in created if package_id not in found]
                    lost = [back.package_id for back in backs if not back.done]
                    raise StackFailure(
                        f"gave up {now - last_placed:.0f} s after the last order: {len(missing)} of "
                        f"{orders} never reached the shop ({missing[:10]}), {len(lost)} of {len(backs)} "
                        f"tracking codes never reached Trendyol ({lost[:10]})\n{stack.summary()}"
                    )
        time.sleep(POLL)
    connection.close()
    print(f"all {orders:,} in the shop, {len(backs)} tracking codes on Trendyol: {now - started:.1f} s")
    figures = _figures(stack, created, backs)
    samples = sum(busy.values()) or 1
    figures.outbox.append(
        f"    the workers' time from the first order to the last code (sampled every {SAMPLE} s): "
        + ", ".join(f"{kind} {count / samples:.0%}" for kind, count in busy.most_common())
    )
    starts = sorted(moment for moment in pulls if moment is not None)
    gaps = sorted((later - earlier).total_seconds() for earlier, later in pairwise(starts))
    if gaps:
        figures.outbox.append(
            f"    pulls started {len(gaps)} time(s) during the run, {_percentile(gaps, 0.5):.1f} s apart "
            f"at the median ({gaps[0]:.1f}–{gaps[-1]:.1f} s)"
        )
    return figures


def _in_shop(stack: Stack, created: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    """The shop's orders by the package they came from, for the placed packages and any other."""
    with stack.sandbox.world.lock:
        orders = list(stack.sandbox.world.shop_orders.values())
    found: dict[str, list[dict[str, Any]]] = {}
    for order in orders:
        for meta in order["meta_data"]:
            if meta["key"] == "hub_shipment_package_id":
                found.setdefault(str(meta["value"]), []).append(order)
    return found


def _figures(stack: Stack, created: dict[str, int], backs: list[Reverse]) -> Figures:
    """The latencies, once the shop holds exactly the placed orders, each once."""
    found = _in_shop(stack, created)
    twice = {package_id: len(orders) for package_id, orders in found.items() if len(orders) != 1}
    others = set(found) - set(created)
    total = len(stack.sandbox.world.shop_orders)
    if twice or others or total != len(created):
        raise StackFailure(
            f"the shop holds {total} orders for {len(created)} placed: more than once {twice}, not placed "
            f"{sorted(others)[:10]}\n{stack.summary()}"
        )
    db.session.expire_all()
    stored = dict(
        db.session.execute(
            sa.select(Order.package_id, Order.created_at).where(Order.package_id.in_(list(created)))
        )
        .tuples()
        .all()
    )
    forward, to_hub, hub_to_shop = [], [], []
    for package_id, created_ms in created.items():
        shop_ms = int(found[package_id][0]["_created_ms"])
        hub_ms = stored[package_id].timestamp() * 1000
        forward.append((shop_ms - created_ms) / 1000)
        to_hub.append((hub_ms - created_ms) / 1000)
        hub_to_shop.append((shop_ms - hub_ms) / 1000)
    backward, seen_late = [], []
    for back in backs:
        assert back.entered_ms is not None and back.stored_ms is not None and back.seen_ms is not None
        backward.append((back.stored_ms - back.entered_ms) / 1000)
        seen_late.append((back.seen_ms - back.stored_ms) / 1000)
    slowest = max(zip(forward, created, strict=True))[1]
    return Figures(forward, to_hub, hub_to_shop, backward, seen_late, _outbox(slowest, created[slowest]))


def _outbox(slowest: str, created_ms: int) -> list[str]:
    """Where the hub's actions spent their time, per kind (p50/p95, seconds): from their creation until a
    worker claimed them (their last attempt), and of it, for those handed to RQ, before and in RQ's
    queue; then running. Then each action of the slowest order, in seconds after the package's creation."""
    rows = db.session.execute(
        sa.select(
            OrderAction.kind,
            OrderAction.created_at,
            OrderAction.enqueued_at,
            OrderAction.claimed_at,
            OrderAction.finished_at,
            OrderAction.attempts,
            Order.package_id,
        )
        .join(Order, Order.id == OrderAction.order_id)
        .order_by(OrderAction.id)
    ).all()
    # Per kind: created → claimed by a worker, and of it (handed-out ones) created → handed to RQ and
    # handed → claimed; claimed → finished. An action taken by the batch of another action's job
    # (run_next) was never handed to RQ.
    phases: dict[str, tuple[list[float], list[float], list[float], list[float]]] = {}

    def seconds(begin: datetime, end: datetime) -> float:
        return max(0.0, (end - begin).total_seconds())

    for row in rows:
        if row.claimed_at is None or row.finished_at is None:
            continue
        waited, before, queued, running = phases.setdefault(row.kind, ([], [], [], []))
        waited.append(seconds(row.created_at, row.claimed_at))
        running.append(seconds(row.claimed_at, row.finished_at))
        if row.enqueued_at is not None:
            before.append(seconds(row.created_at, row.enqueued_at))
            queued.append(seconds(row.enqueued_at, row.claimed_at))
    lines = []
    for kind, (waited, before, queued, running) in sorted(phases.items()):
        shown = "  ".join(
            f"{name} {_percentile(sorted(values), 0.5):.2f}/{_percentile(sorted(values), 0.95):.2f}"
            if values
            else f"{name} -"
            for name, values in (
                ("waited", waited),
                ("(before RQ", before),
                ("in RQ", queued),
            )
        )
        running_shown = f"{_percentile(sorted(running), 0.5):.2f}/{_percentile(sorted(running), 0.95):.2f}"
        lines.append(
            f"    {kind:<22} {len(waited):>5} ({len(waited) - len(before)} in another's batch)  {shown})  "
            f"running {running_shown}"
        )

    def after(moment: datetime | None) -> str:
        return "-" if moment is None else f"{moment.timestamp() - created_ms / 1000:.2f}"

    for row in rows:
        if row.package_id == slowest:
            lines.append(
                f"    slowest order {slowest}: {row.kind} created {after(row.created_at)}, handed out "
                f"{after(row.enqueued_at)}, claimed {after(row.claimed_at)}, "
                f"finished {after(row.finished_at)} ({row.attempts} attempt(s))"
            )
    db.session.rollback()
    return lines


def _line(what: str, values: Sequence[float]) -> str:
    ordered = sorted(values)
    p50, p95 = _percentile(ordered, 0.5), _percentile(ordered, 0.95)
    return (
        f"  {what:<22} {len(ordered):>5} orders  p50 {p50:6.2f} s  p95 {p95:6.2f} s  max {ordered[-1]:6.2f} s"
    )


def _percentile(ordered: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of sorted values: the smallest that `share` of them do not exceed."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


if __name__ == "__main__":
    main()
