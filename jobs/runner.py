"""The two long-running processes, `flask worker` and `flask cron`, and how they ride out a Redis outage.

Neither exits when Redis goes away: each logs "Redis unreachable, retrying in N s", waits with a capped
exponential backoff, and goes on once Redis answers. Neither touches the database itself, so a database
outage only fails the jobs that need it, one by one.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import time
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker, Worker
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler
from rq.worker import DequeueStrategy

from jobs import QUEUE_NAMES, redis_connection

log = logging.getLogger(__name__)
# What "Redis went away" looks like: refused or dropped connections, and commands that got no answer.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
# Waits between two tries while Redis is away (seconds): the first, and the longest.
RETRY_FIRST = 0.5
RETRY_MAX = 30.0


class Backoff:
    """Capped exponential backoff with jitter, and the log lines of an outage and of its end."""

    def __init__(self) -> None:
        self.failures = 0
        self.down_since: float | None = None

    def wait(self, reason: str) -> None:
        ceiling = min(RETRY_MAX, RETRY_FIRST * 2**self.failures)
        delay = random.uniform(ceiling / 2, ceiling)  # a crowd of processes does not come back at once
        self.failures += 1
        log.warning("%s, retrying in %.1f s", reason, delay)
        time.sleep(delay)

    def wait_for_redis(self, error: Exception) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
        self.wait(f"Redis unreachable ({error})")

    def redis_answers(self, then: str) -> None:
        if self.down_since is not None:
            log.info("reconnected to Redis after %.1f s; %s", time.monotonic() - self.down_since, then)
            self.down_since = None

    def reset(self) -> None:
        self.failures = 0


class WorkerLost(Exception):
    """Redis is back, but without this worker's registration or with its scheduler gone."""


class HubWorker(Worker):
    """RQ's worker, ended rather than left retrying when Redis goes away, so that `run_worker` starts a
    fresh one: RQ retries a lost connection in place for ever, and when Redis comes back empty it goes on
    unregistered and without its scheduler."""

    # Why it stopped working on its own: Redis went away, or came back without it.
    lost: Exception | None = None
    stop_signalled = False

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        if pipeline is not None:  # part of a job's bookkeeping, sent with the rest
            super().heartbeat(timeout, pipeline)
            return
        try:
            # The set of workers, not the worker's own key: RQ's bookkeeping after a job writes that key
            # back into an empty Redis.
            registered = self.connection.sismember(self.redis_workers_keys, self.key)
            super().heartbeat(timeout)
        except REDIS_DOWN as error:
            self.lost = error
        else:
            if not registered:
                self.lost = WorkerLost("Redis no longer knows this worker (restarted empty?)")
            elif self.scheduler and self.scheduler._process and not self.scheduler._process.is_alive():
                self.lost = WorkerLost("the worker's scheduler died (on a Redis outage?)")
        if self.lost is not None:
            raise StopRequested from self.lost  # RQ's own way out of its work loop

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_signalled = True
        super().request_stop(signum, frame)

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            # RQ's teardown gives up at the first Redis error, before it stops the thread listening for
            # commands, which would otherwise go on retrying in the background.
            if self.pubsub_thread is not None:
                self.pubsub_thread.stop()


class SimpleHubWorker(HubWorker, SimpleWorker):
    """The same, running every job in the worker process."""


def run_worker(fork: bool, burst: bool) -> None:
    """An RQ worker with its scheduler, taking from the queues in turn; after a Redis outage, a new one."""
    # Jobs here are short database-and-HTTP steps; in-process they reuse the connection pool and the
    # compiled statements, which makes them ten times cheaper than a fork per job.
    worker_class = HubWorker if fork else SimpleHubWorker
    # RQ's signal handlers belong to the worker that ended; between two workers a signal ends the process
    # at once, as nothing is left to clean up.
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    backoff = Backoff()
    held: set[str] = set()  # the queues whose scheduler lock the previous worker held
    while True:
        try:
            connection = redis_connection()
            connection.ping()
            _release_scheduler_locks(connection, held)
            # A new name (RQ's default, random), so an old registration restored with Redis is no clash.
            rq_worker = worker_class(list(QUEUE_NAMES), connection=connection)
        except REDIS_DOWN as error:
            backoff.wait_for_redis(error)
            continue
        backoff.redis_answers("starting a new worker")
        started = time.monotonic()
        try:
            # Round robin between the pipeline and the actions: a pipeline that is never empty (a big or
            # slow seller's pulls, run a budget at a time) must not starve the actions, nor a long outbox
            # the pulls.
            rq_worker.work(with_scheduler=True, burst=burst, dequeue_strategy=DequeueStrategy.ROUND_ROBIN)
        except REDIS_DOWN as error:  # its teardown could not reach Redis
            rq_worker.lost = rq_worker.lost or error
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        held = set(rq_worker.scheduler.acquired_locks) if rq_worker.scheduler else set()
        if rq_worker.stop_signalled or (burst and rq_worker.lost is None):
            return
        if time.monotonic() - started > RETRY_MAX:
            backoff.reset()  # it worked a while: this is a new outage, not the same one going on
        if isinstance(rq_worker.lost, REDIS_DOWN):
            backoff.wait_for_redis(rq_worker.lost)
        else:
            backoff.wait(str(rq_worker.lost or "the worker stopped on an error (logged above)"))


def _release_scheduler_locks(connection: Redis, names: set[str]) -> None:
    """Drop the scheduler locks the previous worker of this process held: a Redis restored from a
    snapshot brings them back, and they would keep the new worker's scheduler away until they expire and
    the worker looks again (every ten minutes)."""
    pid = str(os.getpid()).encode()  # RQ's lock holds the pid of the worker that took it
    for name in names:
        key = RQScheduler.get_locking_key(name)
        if connection.get(key) == pid:
            connection.delete(key)


def run_cron(tick_seconds: float) -> None:
    """Queue the tick every `tick_seconds`, under one job id: while a tick waits, none queues behind it."""
    from jobs.tasks import queue_tick

    log.info("queueing the tick every %s s", tick_seconds)
    try:
        _tick_forever(tick_seconds, queue_tick)
    except KeyboardInterrupt:  # Ctrl-C under `make run`: a line, not a traceback or click's "Aborted!"
        log.info("stopped")


def _tick_forever(tick_seconds: float, queue_tick: Callable[[], object]) -> None:
    backoff = Backoff()
    while True:
        try:
            queue_tick()
        except REDIS_DOWN as error:
            backoff.wait_for_redis(error)
            continue
        except RedisError as error:  # Redis answers but refuses (out of memory, read-only): wait the same
            backoff.wait(f"could not queue the tick ({error})")
            continue
        backoff.redis_answers("ticking again")
        backoff.reset()
        time.sleep(tick_seconds)
