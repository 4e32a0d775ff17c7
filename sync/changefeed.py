"""Which orders changed, per account, for the live pages: a version counter and the ids behind it.

Every commit that changed an order (its row, its history or its outbox) bumps the account's version in
Redis and files the order ids under it. A page that holds version N asks "what changed after N?": the
same version answers without a database query; otherwise the ids say which rows to render again. Only
committed changes are filed (after commit), so a poll never sees a change that is later rolled back or
misses one committed after it read the rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from itertools import islice
from typing import cast

import sqlalchemy as sa
from flask import current_app, has_app_context
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)
# Ids kept per account; a page further behind than this reloads its list instead.
KEEP = 2000
PUBLISH = """
local version = redis.call('INCR', KEYS[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[2], version, ARGV[i]) end
local keep = tonumber(ARGV[1])
local size = redis.call('ZCARD', KEYS[2])
if size > keep then
  local cut = redis.call('ZRANGE', KEYS[2], size - keep - 1, size - keep - 1, 'WITHSCORES')
  redis.call('SET', KEYS[3], cut[2])
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, size - keep - 1)
end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], 604800) end
return version
"""
_last_warning = 0.0
# Changes this process could not announce (Redis was away), per Redis, passed on with its next commit.
_missed: dict[str, dict[int, set[int]]] = {}


def _keys(account_id: int | str) -> list[str]:
    prefix = f"hub:changes:{account_id}"
    return [f"{prefix}:version", f"{prefix}:ids", f"{prefix}:floor"]


def version(redis: Redis, account_id: int | str) -> int:
    value = cast(bytes | None, redis.get(_keys(account_id)[0]))
    return int(value) if value else 0


@dataclass(frozen=True)
class Changes:
    version: int
    order_ids: list[int] | None  # None: too far behind (or Redis lost its data): reload the list


def since(redis: Redis, account_id: int | str, known: int) -> Changes:
    """The orders changed after version `known`."""
    version_key, ids_key, floor_key = _keys(account_id)
    with redis.pipeline(transaction=True) as pipe:
        pipe.get(version_key)
        pipe.get(floor_key)
        pipe.zrangebyscore(ids_key, f"({known}", "+inf")
        current_raw, floor_raw, ids = pipe.execute()
    current = int(current_raw or 0)
    if known > current or known < int(float(floor_raw or 0)):
        return Changes(current, None)
    return Changes(current, [int(order_id) for order_id in ids])


def publish(redis: Redis, changed: dict[int, set[int]], reload: frozenset[int] = frozenset()) -> None:
    """File the changed ids under a new version per account; the pages of `reload` accounts (whose
    changes are too many to tell one by one) reload their list instead."""
    script = redis.register_script(PUBLISH)
    for account_id, order_ids in changed.items():
        ids = [] if account_id in reload else sorted(order_ids)
        version = script(keys=_keys(account_id), args=[KEEP, *ids])
        if account_id in reload:
            redis.set(_keys(account_id)[2], version)


# -- Collecting the changes of a session ---------------------------------------------------------------


@sa.event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: object) -> None:
    from models import Order, OrderAction, OrderEvent

    changed: dict[int, set[int]] = session.info.setdefault("changed_orders", {})
    dirty = (item for item in session.dirty if session.is_modified(item, include_collections=False))
    for item in (*session.new, *dirty):
        order = None
        if isinstance(item, Order):
            order = item
        elif isinstance(item, (OrderEvent, OrderAction)):
            order = item.__dict__.get("order")  # set when the pipeline writes it; never loaded here
        if order is not None and order.id is not None and order.account_id is not None:
            changed.setdefault(order.account_id, set()).add(order.id)


def touch(account_id: int, order_id: int) -> None:
    """Announce, with the next commit, an order changed by a Core UPDATE (the outbox claims), which the
    session events do not see."""
    from extensions import db

    db.session.info.setdefault("changed_orders", {}).setdefault(account_id, set()).add(order_id)


@sa.event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    changed: dict[int, set[int]] = session.info.pop("changed_orders", None) or {}
    if not has_app_context():
        return
    from jobs import redis_connection

    url = current_app.config["REDIS_URL"]
    missed = _missed.pop(url, {})
    for account_id, order_ids in missed.items():  # what this process could not announce before
        changed.setdefault(account_id, set()).update(order_ids)
    if not changed:
        return
    # Past KEEP ids nobody catches up row by row: that account's pages reload instead.
    reload = frozenset(account_id for account_id, order_ids in changed.items() if len(order_ids) > KEEP)
    try:
        publish(redis_connection(), changed, reload)
    except RedisError as error:
        # For the next commit of this process; KEEP + 1 ids are enough to know the pages must reload.
        _missed[url] = {account_id: set(islice(ids, KEEP + 1)) for account_id, ids in changed.items()}
        _warn(error)


@sa.event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    """A rolled-back transaction changed nothing (a savepoint's rollback leaves the rest to tell)."""
    if transaction.parent is None:
        session.info.pop("changed_orders", None)


def _warn(error: Exception) -> None:
    """Live pages fall back to their next full load; say so now and then, not on every commit."""
    global _last_warning
    if time.monotonic() - _last_warning > 60:
        _last_warning = time.monotonic()
        log.warning("could not publish order changes for the live pages: %s", error)
