"""CLI: the demo seed (development only, safe to run twice), credential rotation, and `flask worker` and
`flask cron` as real processes riding out a Redis restart and a database outage."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from redis import Redis
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry
from rq.scheduler import RQScheduler

from app import create_app
from config import ProductionConfig
from connectors.registry import Side
from extensions import db
from jobs import ACTIONS, PIPELINE
from jobs.tasks import tick
from models import Account, Integration
from models.crypto import encrypt_json
from sandbox.state import World
from tests.conftest import free_port, make_config
from tests.stack import redis_server

ROOT = Path(__file__).resolve().parents[1]
SCHEDULER_LOCK = RQScheduler.get_locking_key(PIPELINE)


def test_seed_demo_creates_the_demo_account_and_sandbox_integration(app: Flask) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "demo@example.com / demo1234" in first.output
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0
    account = db.session.scalar(sa.select(Account))
    assert account is not None and account.check_password("demo1234")
    assert account.notification_email == "demo@example.com"  # so Order Notifications can be switched on
    assert account.notification_email_confirmed  # the demo's own address in the local sink: mails go
    integrations = db.session.scalars(sa.select(Integration).order_by(Integration.id)).all()
    kinds = [integration.marketplace_kind for integration in integrations]
    assert kinds == ["trendyol", "hepsiburada", "n11", "amazon", "ciceksepeti", "pazarama"]  # once each
    # Every shop the sandbox plays, with the keys it takes.
    assert [integration.shop_kind for integration in integrations] == [
        "woocommerce",
        "shopify",
        "tsoft",
        "woocommerce",
        "ticimax",
        "ideasoft",
    ]
    world = World()
    assert integrations[1].credentials(Side.SHOP) == {
        "shopify_client_id": world.shopify.client_id,
        "shopify_client_secret": world.shopify.client_secret,
    }
    assert integrations[2].credentials(Side.SHOP) == {
        "tsoft_user": world.tsoft.user,
        "tsoft_password": world.tsoft.password,
    }
    assert integrations[4].credentials(Side.MARKETPLACE) == {
        "ciceksepeti_seller_id": world.ciceksepeti.seller_id,
        "ciceksepeti_api_key": world.ciceksepeti.api_key,
    }
    assert integrations[4].credentials(Side.SHOP) == {"ticimax_ws_code": world.ticimax.ws_code}
    assert integrations[5].credentials(Side.MARKETPLACE) == {
        "pazarama_client_id": world.pazarama.client_id,
        "pazarama_client_secret": world.pazarama.client_secret,
    }
    assert integrations[5].credentials(Side.SHOP) == {
        "ideasoft_client_id": world.ideasoft.client_id,
        "ideasoft_client_secret": world.ideasoft.client_secret,
    }
    sandbox = app.config["SANDBOX_URL"]
    for integration in integrations:
        assert integration.marketplace_base_url.startswith(sandbox)
        assert integration.shop_base_url.startswith(sandbox)
        assert all(integration.credentials(Side.MARKETPLACE).values())
    # The keys the sandbox's marketplaces take.
    assert integrations[1].credentials(Side.MARKETPLACE) == {
        "merchant_id": world.hepsiburada.merchant_id,
        "service_key": world.hepsiburada.service_key,
    }
    assert integrations[3].credentials(Side.MARKETPLACE) == {
        "refresh_token": world.amazon.refresh_token,
        "client_id": world.amazon.client_id,
        "client_secret": world.amazon.client_secret,
        "merchant_token": world.amazon.seller_id,
    }
    assert integrations[3].pull_interval == 180  # Amazon's rate limit, whatever the demo's interval


def test_seed_demo_honours_demo_email_and_password(app: Flask) -> None:
    app.config.update(DEMO_EMAIL="Me@Example.com", DEMO_PASSWORD="another-pass")
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0
    account = db.session.scalar(sa.select(Account))
    assert account is not None
    assert account.email == "me@example.com" and account.check_password("another-pass")


def test_seed_demo_refuses_in_production(app: Flask) -> None:
    app.config["DEMO_SEED_ALLOWED"] = ProductionConfig.DEMO_SEED_ALLOWED
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code != 0
    assert "disabled" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 0


def test_production_config_refuses_to_start_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SECRET_KEY", "CREDENTIALS_KEY", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY, CREDENTIALS_KEY, DATABASE_URL, REDIS_URL"):
        ProductionConfig()


def test_rotate_credentials_reencrypts_with_the_newest_key(app: Flask, integration: Integration) -> None:
    integration.webhook_secret_encrypted = encrypt_json({"secret": "webhooks-secret"})
    db.session.commit()
    old_key = app.config["CREDENTIALS_KEY"]
    new_key = Fernet.generate_key().decode()
    app.config["CREDENTIALS_KEY"] = f"{new_key},{old_key}"
    result = app.test_cli_runner().invoke(args=["rotate-credentials"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 3 credential sets" in result.output
    app.config["CREDENTIALS_KEY"] = new_key  # the old key can go now
    db.session.expire_all()
    assert integration.credentials(Side.MARKETPLACE)["api_secret"] == "S3CRET-1"
    assert integration.credentials(Side.SHOP)["consumer_secret"] == "cs_xyz"
    assert integration.webhook_secret() == "webhooks-secret"


@dataclass
class Processes:
    """`flask worker` and `flask cron` processes on one SQLite file and one Redis port, each logging to
    its own file."""

    env: dict[str, str]
    port: int
    database: Path
    logs: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *command: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.running[name] = subprocess.Popen(
                [sys.executable, "-m", "flask", *command],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a signal reaches its scheduler too
            )
        return self.running[name]

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def alive(self, name: str) -> bool:
        return self.running[name].poll() is None

    def wait_for(self, what: str, condition: Callable[[], bool], since: float | None = None) -> None:
        """Poll until `condition` holds (30 s at most); print how long it took, from `since` if given."""
        started = time.monotonic()
        while time.monotonic() < started + 30:
            if condition():
                print(f"{what}: {time.monotonic() - (since or started):.1f} s")
                return
            time.sleep(0.1)
        logs = "\n".join(f"--- {name}\n{self.log(name)[-3000:]}" for name in self.running)
        pytest.fail(f"timed out waiting for {what}\n{logs}")

    def stop_all(self) -> None:
        """Stop them as honcho does (SIGTERM); each must end at once, cleanly."""
        for process in self.running.values():
            os.killpg(process.pid, signal.SIGTERM)
            os.killpg(process.pid, signal.SIGCONT)  # in case a test left it stopped
        ended = {}
        for name, process in self.running.items():
            try:
                ended[name] = process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                ended[name] = process.wait()
        assert all(code in (0, -signal.SIGTERM) for code in ended.values()), ended


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    database = tmp_path / "hub.sqlite3"
    app = create_app(make_config(SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}"))
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "FLASK_APP": "app",
        "HUB_ENV": "development",
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "SECRET_KEY": "processes",
        "CREDENTIALS_KEY": Fernet.generate_key().decode(),
        "TICK_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    running = Processes(env, port, database, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def status(redis: Redis, job_id: str) -> JobStatus | None:
    found = Job.fetch_many([job_id], connection=redis)[0]
    return found.get_status(refresh=False) if found else None


def holds_lock(redis: Redis, worker: subprocess.Popen[bytes]) -> bool:
    """The worker's scheduler holds the pipeline's scheduler lock (RQ's lock keeps the worker's pid)."""
    return bool(redis.get(SCHEDULER_LOCK) == str(worker.pid).encode())


def waiting_for_jobs(redis: Redis) -> bool:
    """A client (the worker) blocks on the queues."""
    clients = cast(list[dict[str, str]], redis.client_list())
    return any("b" in client["flags"] and client["cmd"] == "blpop" for client in clients)


def snapshot(redis: Redis) -> list[tuple[bytes, bytes, int]]:
    """Every key with its value and time to live (ms; -1: none), as a snapshot of Redis keeps them."""
    return [(key, cast(bytes, redis.dump(key)), cast(int, redis.pttl(key))) for key in redis.scan_iter()]


def calls(redis: Redis, command: str) -> int:
    """How many times Redis ran `command` since it started."""
    stats: dict[str, dict[str, int]] = redis.info("commandstats")  # type: ignore[assignment]
    return stats.get(f"cmdstat_{command}", {}).get("calls", 0)


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["--no-fork", "--fork"])
def test_worker_and_cron_ride_out_a_redis_restart(processes: Processes, mode: str) -> None:
    with redis_server(processes.port) as url:
        redis = Redis.from_url(url)
        worker = processes.start("worker", "worker", mode)
        processes.start("cron", "cron")
        processes.wait_for("the first tick", lambda: status(redis, "tick") == JobStatus.FINISHED)
    processes.wait_for(
        "both see the outage",
        lambda: all("Redis unreachable" in processes.log(name) for name in ("worker", "cron")),
    )
    with redis_server(processes.port) as url:  # the same port, nothing in it
        restarted = time.monotonic()
        redis = Redis.from_url(url)
        processes.wait_for(
            "the worker registered again", lambda: len(Worker.all(connection=redis)) == 1, since=restarted
        )
        processes.wait_for("its scheduler locked again", lambda: holds_lock(redis, worker), since=restarted)
        processes.wait_for(
            "a tick queued by cron and run by the worker",
            lambda: status(redis, "tick") == JobStatus.FINISHED,
            since=restarted,
        )
        Queue(ACTIONS, connection=redis).enqueue_in(timedelta(seconds=1), tick, job_id="later")
        processes.wait_for("a job the scheduler queues", lambda: status(redis, "later") == JobStatus.FINISHED)
        assert processes.alive("worker") and processes.alive("cron")
        for name in ("worker", "cron"):
            assert "reconnected to Redis after" in processes.log(name)


@pytest.mark.e2e
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "running-a-job"])
def test_a_worker_that_redis_forgot_registers_again(processes: Processes, busy: bool) -> None:
    """Redis restarted empty faster than the worker could see it go (stopped meanwhile, or running a job):
    it finds itself forgotten, and starts anew."""
    with redis_server(processes.port) as url:
        redis = Redis.from_url(url)
        worker = processes.start("worker", "worker")
        processes.wait_for("the worker waiting for jobs", lambda: waiting_for_jobs(redis))
        [before] = Worker.all(connection=redis)
        if busy:
            Queue(PIPELINE, connection=redis).enqueue(time.sleep, 3, job_id="sleep")
            processes.wait_for("the job running", lambda: status(redis, "sleep") == JobStatus.STARTED)
        else:
            os.killpg(worker.pid, signal.SIGSTOP)  # it will only find its connection dropped
    with redis_server(processes.port) as url:
        redis = Redis.from_url(url)
        os.killpg(worker.pid, signal.SIGCONT)
        restarted = time.monotonic()
        processes.wait_for(
            "the worker registered again", lambda: len(Worker.all(connection=redis)) == 1, since=restarted
        )
        processes.wait_for("its scheduler locked again", lambda: holds_lock(redis, worker), since=restarted)
        Queue(ACTIONS, connection=redis).enqueue_in(timedelta(seconds=1), tick, job_id="later")
        processes.wait_for("a job the scheduler queues", lambda: status(redis, "later") == JobStatus.FINISHED)
        assert Worker.all(connection=redis)[0].name != before.name
        assert "Redis no longer knows this worker" in processes.log("worker")
        assert processes.alive("worker")


@pytest.mark.e2e
def test_a_waiting_tick_is_not_queued_again(processes: Processes) -> None:
    """No worker: however many rounds the scheduler makes (two of them, for availability), one tick waits."""
    with redis_server(processes.port) as url:
        redis = Redis.from_url(url)
        processes.start("cron", "cron")
        processes.wait_for("the first tick", lambda: status(redis, "tick") == JobStatus.QUEUED)
        processes.start("cron-2", "cron")
        # Each round reads the tick's job first, with one HGETALL (as the test's own `status` does): wait
        # for four more rounds of each.
        before = calls(redis, "hgetall")
        processes.wait_for("eight rounds", lambda: calls(redis, "hgetall") >= before + 8)
        assert Queue(PIPELINE, connection=redis).job_ids == ["tick"]


@pytest.mark.e2e
def test_a_scheduler_lock_restored_with_redis_does_not_keep_the_scheduler_away(
    processes: Processes,
) -> None:
    """Redis back from a snapshot holds the lock of the worker's dead scheduler, with the worker's pid."""
    with redis_server(processes.port) as url:
        redis = Redis.from_url(url)
        worker = processes.start("worker", "worker")
        processes.wait_for("the scheduler lock", lambda: holds_lock(redis, worker))
        keys = snapshot(redis)
    processes.wait_for("the worker sees the outage", lambda: "Redis unreachable" in processes.log("worker"))
    os.killpg(worker.pid, signal.SIGSTOP)  # it must not come back before Redis has its snapshot
    with redis_server(processes.port) as url:
        redis = Redis.from_url(url)
        for key, value, ttl in keys:
            redis.restore(key, max(ttl, 0), value)
        assert holds_lock(redis, worker)
        os.killpg(worker.pid, signal.SIGCONT)
        restarted = time.monotonic()
        Queue(ACTIONS, connection=redis).enqueue_in(timedelta(seconds=1), tick, job_id="later")
        processes.wait_for(
            "a job the scheduler queues",
            lambda: status(redis, "later") == JobStatus.FINISHED,
            since=restarted,
        )
        assert processes.alive("worker")


@pytest.mark.e2e
def test_the_worker_outlives_a_database_that_fails_its_jobs(processes: Processes) -> None:
    """The table every tick reads gone for a while: ticks fail, one by one, and the worker goes on."""
    with redis_server(processes.port) as url:
        redis = Redis.from_url(url)
        processes.start("worker", "worker")
        processes.start("cron", "cron")
        processes.wait_for("the first tick", lambda: status(redis, "tick") == JobStatus.FINISHED)
        # (The file's header overwritten would go unnoticed: in WAL mode the worker's open connection
        # does not read it again.)
        rename_table(processes.database, "integrations", "integrations_away")
        try:
            processes.wait_for(
                "a tick failing", lambda: FailedJobRegistry(PIPELINE, connection=redis).count >= 1
            )
        finally:
            rename_table(processes.database, "integrations_away", "integrations")
        processes.wait_for("a tick again", lambda: status(redis, "tick") == JobStatus.FINISHED)
        assert processes.alive("worker") and processes.alive("cron")
        assert "no such table: integrations" in processes.log("worker")


def rename_table(database: Path, name: str, new_name: str) -> None:
    with closing(sqlite3.connect(database)) as connection:
        connection.execute(f"ALTER TABLE {name} RENAME TO {new_name}")


def test_ctrl_c_stops_worker_and_cron_without_a_traceback(processes: Processes) -> None:
    """Ctrl-C in `make run`'s terminal sends SIGINT to every process: each ends, with no traceback."""
    with redis_server(processes.port) as url:
        redis = Redis.from_url(url)
        processes.start("worker", "worker")
        processes.start("cron", "cron")
        processes.wait_for("a tick run", lambda: status(redis, "tick") == JobStatus.FINISHED)
        for process in processes.running.values():
            os.killpg(process.pid, signal.SIGINT)
        codes = {name: process.wait(timeout=20) for name, process in processes.running.items()}
    processes.running.clear()  # ended: nothing left to stop
    assert codes == {"worker": 0, "cron": 0}, codes
    for name in codes:
        log = processes.log(name)
        assert "Traceback" not in log and "Aborted!" not in log, log
    assert "stopped" in processes.log("cron")
