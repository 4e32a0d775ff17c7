"""The RQ side: the Redis connection, the queue, and the wrapper every job runs in."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Flask, current_app, has_app_context
from redis import Redis
from rq import Queue

# Workers take from these in turn (round robin): a long line of actions never holds up the pulls that
# keep orders coming in, and a pipeline that is never empty never starves the actions.
PIPELINE = "pipeline"
ACTIONS = "actions"
# Webhook deliveries have a queue of their own: a change a platform pushed waits for one job of each of
# the others at most, never behind a seller's long line of actions.
HOOKS = "hooks"
QUEUE_NAMES = (HOOKS, PIPELINE, ACTIONS)
P = ParamSpec("P")
R = TypeVar("R")

_app: Flask | None = None
# The process whose database connections the pool holds; a forked work horse must not use them.
_engine_pid = os.getpid()


def redis_connection() -> Redis:
    """This app's Redis client (one connection pool per app and process)."""
    cached = current_app.extensions.get("hub_redis")
    if cached is None or cached[0] != os.getpid():
        cached = (
            os.getpid(),
            Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=5, socket_connect_timeout=2),
        )
        current_app.extensions["hub_redis"] = cached
    client: Redis = cached[1]
    return client


def queue(name: str) -> Queue:
    return Queue(name, connection=redis_connection(), default_timeout=current_app.config["JOB_TIMEOUT"])


def job(function: Callable[P, R]) -> Callable[P, R]:
    """Run a job inside an app context, on database connections of this process.

    RQ forks a work horse per job: connections inherited from the parent must not be shared, so the
    pool is dropped (without closing the parent's sockets) the first time a new process uses it.
    """

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if has_app_context():
            return _isolated(function, *args, **kwargs)
        with _worker_app().app_context():
            return _isolated(function, *args, **kwargs)

    return run


def _isolated(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """One job, one unit of work: a job that fails leaves no half-done session to the next one (the
    in-process worker runs every job in the same app context)."""
    from extensions import db

    _own_connections()
    try:
        return function(*args, **kwargs)
    except BaseException:
        db.session.rollback()
        raise
    finally:
        db.session.remove()


def _worker_app() -> Flask:
    global _app
    if _app is None:
        from app import create_app

        _app = create_app()
    return _app


def _own_connections() -> None:
    global _engine_pid
    from extensions import db

    if _engine_pid != os.getpid():
        db.engine.dispose(close=False)
        _engine_pid = os.getpid()
