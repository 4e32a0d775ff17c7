"""What the benchmarks share: a PostgreSQL database of their own, an app on it, a Redis, memory, requests."""

from __future__ import annotations

import io
import logging
import os
import re
import resource
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import sqlalchemy as sa
from flask import Flask

from app import create_app
from config import TestConfig
from jobs.embedded_redis import throwaway

BENCH_REDIS_PORT = 6399
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/orderhub_bench"
ID = re.compile(r"/\d+")


def database_url(name: str | None = None) -> str:
    """BENCH_DATABASE_URL (created if missing), default a database of its own on the local PostgreSQL;
    `name` is another database on the same server, so that benches can run side by side."""
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL).replace("postgresql://", "postgresql+psycopg://")
    target = sa.make_url(url)
    if name is not None:
        target = target.set(database=name)
        url = target.render_as_string(hide_password=False)
    engine = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        exists = connection.scalar(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        )
        if not exists:
            connection.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    engine.dispose()
    return url


def bench_app(url: str, redis_url: str, **settings: object) -> Flask:
    config = TestConfig()
    config.SQLALCHEMY_DATABASE_URI = url
    config.REDIS_URL = redis_url
    config.TESTING = False
    for name, value in settings.items():
        setattr(config, name, value)
    return create_app(config)


@contextmanager
def redis() -> Iterator[str]:
    """REDIS_URL if set, else a throwaway redis-server for the run."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with throwaway(BENCH_REDIS_PORT) as url:
        yield url


def peak_mb() -> float:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb(pid: int) -> float:
    """Another process's resident memory now (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """The CPU time another process has used so far, user and system (Linux)."""
    # The fields after the command name (which is in parentheses and may hold spaces); utime, stime.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    """The machine's load, to read the figures by: other work on it slows every process of the stack."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def request_shapes(requests: Iterable[tuple[str, str, int]]) -> Counter[str]:
    """Requests (method, path, status) counted by method and path shape: ids become {id}."""
    return Counter(f"{method} {ID.sub('/{id}', path)}" for method, path, _ in requests)


def progress_output() -> None:
    """Each line of progress as it comes, also into a file or a pipe; no line per sandbox request or mail
    (at hundreds a second, printing them would be what the bench measures)."""
    cast(io.TextIOWrapper, sys.stdout).reconfigure(line_buffering=True)
    for name in ("werkzeug", "mail.log"):
        logging.getLogger(name).setLevel(logging.WARNING)
