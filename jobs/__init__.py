"""The RQ side: the Redis connection and queues. Jobs are thin functions that call `sync/`."""

from __future__ import annotations

from flask import current_app
from redis import Redis
from rq import Queue

QUEUE_NAMES = ("default",)


def redis_connection() -> Redis:
    return Redis.from_url(current_app.config["REDIS_URL"])


def queue(name: str = "default") -> Queue:
    return Queue(name, connection=redis_connection())
