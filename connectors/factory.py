"""The connector for an integration's side, built from its kind, address and decrypted credentials.

Both are context managers: `with shop_for(integration) as shop:`. Every connector gets the outbound guard
built from the config, and its address is checked against it (and against the hosts its kind is pinned
to) before anything is sent. Building one is cheap: it sends through the process's HTTP client for its
platform and guard (`connectors.http.shared_client`), which outlives it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import LockError, RedisError
from sqlalchemy.pool import StaticPool

from connectors.amazon import AmazonConnector
from connectors.base import MarketplaceConnector, Permanent, Retryable, ShopConnector
from connectors.ciceksepeti import CiceksepetiConnector
from connectors.hepsiburada import HepsiburadaConnector
from connectors.http import Guard
from connectors.ideasoft import IdeasoftConnector
from connectors.n11 import N11Connector
from connectors.pazarama import PazaramaConnector
from connectors.registry import KINDS, OAuthFlow, Side
from connectors.shopify import ShopifyConnector
from connectors.ticimax import TicimaxConnector
from connectors.trendyol import TrendyolConnector
from connectors.tsoft import TsoftConnector
from connectors.turns import RedisTurns
from connectors.woocommerce import WooCommerceConnector
from extensions import db
from jobs import redis_connection
from models import Integration
from models.crypto import decrypt_json, encrypt_json

log = logging.getLogger(__name__)

MARKETPLACE_CONNECTORS = {
    "trendyol": TrendyolConnector,
    "hepsiburada": HepsiburadaConnector,
    "n11": N11Connector,
    "amazon": AmazonConnector,
    "ciceksepeti": CiceksepetiConnector,
    "pazarama": PazaramaConnector,
}
SHOP_CONNECTORS = {
    "woocommerce": WooCommerceConnector,
    "shopify": ShopifyConnector,
    "tsoft": TsoftConnector,
    "ticimax": TicimaxConnector,
    "ideasoft": IdeasoftConnector,
}


def guard() -> Guard:
    return Guard.from_config(current_app.config)


@contextmanager
def marketplace_for(integration: Integration) -> Iterator[MarketplaceConnector]:
    with _connector(integration, Side.MARKETPLACE) as connector:
        yield connector


@contextmanager
def shop_for(integration: Integration) -> Iterator[ShopConnector]:
    with _connector(integration, Side.SHOP) as connector:
        yield connector


class StoredTokens:
    """A shop's OAuth tokens (`OAuthFlow`) on its integration's row. The platform's refresh tokens are
    single-use, so a renewal is held against every other process's (a Redis lock, `hold`), and written on a
    connection of its own, committed at once: kept even where the work that needed it rolls back, and what
    the next process reads. If that write fails (the row or SQLite's write lock held too long), the tokens
    are parked in Redis, which `load` reads first, until a later save reaches the row: a renewed pair is
    never left only in a transaction that may roll back. An in-memory database (the tests') has one
    connection for everyone: there the session's transaction is the only one."""

    LOCK_SECONDS = 30

    def __init__(self, integration_id: int, flow: OAuthFlow) -> None:
        self.integration_id = integration_id
        self.flow = flow
        self.parked = f"tokens:parked:{integration_id}"

    def _column(self) -> sa.Select[tuple[str | None]]:
        return sa.select(Integration.shop_tokens_encrypted).where(Integration.id == self.integration_id)

    def hold(self) -> AbstractContextManager[object]:
        try:
            lock = redis_connection().lock(
                f"tokens:renewing:{self.integration_id}",
                timeout=self.LOCK_SECONDS,
                blocking_timeout=self.LOCK_SECONDS,
            )
            if lock.acquire():
                return _Released(lock)
        except RedisError as error:
            log.warning("no lock for the shop tokens of integration %s: %s", self.integration_id, error)
            return nullcontext()
        raise Retryable("another worker is renewing the shop's connection: tried again in a moment")

    def load(self) -> Any:
        kept = self._parked()
        if kept is None and _one_connection():
            kept = db.session.scalar(self._column())
        elif kept is None:
            with db.engine.connect() as connection:
                kept = connection.scalar(self._column())
        return self.flow.load(decrypt_json(kept)) if kept else None

    def save(self, tokens: Any) -> None:
        sealed = encrypt_json(self.flow.dump(tokens))
        update = sa.update(Integration).where(Integration.id == self.integration_id)
        if _one_connection():
            db.session.execute(update.values(shop_tokens_encrypted=sealed))
            return
        try:
            with db.engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
                connection.execute(update.values(shop_tokens_encrypted=sealed))
        except sa.exc.OperationalError as error:
            log.error("shop tokens of integration %s parked, not written: %s", self.integration_id, error)
            try:
                redis_connection().set(self.parked, sealed, ex=7 * 24 * 3600)
            except RedisError:  # the last place left: the caller's transaction
                db.session.execute(update.values(shop_tokens_encrypted=sealed))
            return
        with suppress(RedisError):  # nothing was parked where Redis is away
            redis_connection().delete(self.parked)

    def _parked(self) -> str | None:
        try:
            value = redis_connection().get(self.parked)
        except RedisError:
            return None
        return value.decode() if isinstance(value, bytes) else None


class _Released:
    """A held Redis lock, released on leaving (already expired: nothing to release)."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock

    def __enter__(self) -> object:
        return self.lock

    def __exit__(self, *exc: object) -> None:
        with suppress(LockError, RedisError):
            self.lock.release()


def _one_connection() -> bool:
    return isinstance(db.engine.pool, StaticPool)


@contextmanager
def _connector(integration: Integration, side: Side) -> Iterator[Any]:
    kind = integration.marketplace_kind if side is Side.MARKETPLACE else integration.shop_kind
    base_url = integration.marketplace_base_url if side is Side.MARKETPLACE else integration.shop_base_url
    with connect(side, kind, base_url, integration.credentials(side), integration.id) as connector:
        yield connector


@contextmanager
def connect(
    side: Side, kind: str, base_url: str, credentials: Mapping[str, str], integration_id: int | None = None
) -> Iterator[Any]:
    """A connector of `kind` at `base_url` with `credentials`, its address checked first; a shop connected
    on its consent page with the tokens the integration keeps."""
    classes: Mapping[str, Any] = MARKETPLACE_CONNECTORS if side is Side.MARKETPLACE else SHOP_CONNECTORS
    flow = KINDS[side][kind].oauth
    outbound = guard()
    outbound.check_url(base_url, base=True, pinned=KINDS[side][kind].pinned_hosts)
    extra: dict[str, Any] = {}
    if KINDS[side][kind].shared_pace:
        extra["turns"] = RedisTurns(redis_connection())
    if flow is not None:
        extra["tokens"] = StoredTokens(integration_id, flow) if integration_id is not None else None
    try:
        connector = classes[kind](base_url, credentials, outbound, **extra)
    except KeyError as missing:
        raise Permanent(f"the {side} credential {missing} is not set", category="auth") from None
    try:
        yield connector
    finally:
        connector.close()


def probe(
    side: Side, kind: str, base_url: str, credentials: Mapping[str, str], integration_id: int | None = None
) -> None:
    """Try the address and credentials with one small read (a marketplace's own `check`, a shop's orders
    changed from now on); raises the connector's error for what is wrong. A shop connected on its consent
    page is tried with the tokens `integration_id` keeps."""
    with connect(side, kind, base_url, credentials, integration_id) as connector:
        if side is Side.MARKETPLACE:
            connector.check()
        else:
            connector.changed_since(datetime.now(UTC))
