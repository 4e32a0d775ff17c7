"""The connector for an integration's side, built from its kind, address and decrypted credentials.

Both are context managers: `with shop_for(integration) as shop:`. Every connector gets the outbound guard
built from the config, and its address is checked against it (and against the hosts its kind is pinned
to) before anything is sent. Building one is cheap: it sends through the process's HTTP client for its
platform and guard (`connectors.http.shared_client`), which outlives it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from flask import current_app

from connectors.amazon import AmazonConnector
from connectors.base import MarketplaceConnector, Permanent, ShopConnector
from connectors.ciceksepeti import CiceksepetiConnector
from connectors.hepsiburada import HepsiburadaConnector
from connectors.http import Guard
from connectors.ideasoft import IdeasoftConnector
from connectors.n11 import N11Connector
from connectors.pazarama import PazaramaConnector
from connectors.registry import KINDS, Side
from connectors.shopify import ShopifyConnector
from connectors.ticimax import TicimaxConnector
from connectors.trendyol import TrendyolConnector
from connectors.tsoft import TsoftConnector
from connectors.woocommerce import WooCommerceConnector
from models import Integration

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


@contextmanager
def _connector(integration: Integration, side: Side) -> Iterator[Any]:
    kind = integration.marketplace_kind if side is Side.MARKETPLACE else integration.shop_kind
    base_url = integration.marketplace_base_url if side is Side.MARKETPLACE else integration.shop_base_url
    with connect(side, kind, base_url, integration.credentials(side)) as connector:
        yield connector


@contextmanager
def connect(side: Side, kind: str, base_url: str, credentials: Mapping[str, str]) -> Iterator[Any]:
    """A connector of `kind` at `base_url` with `credentials`, its address checked first."""
    classes: Mapping[str, Any] = MARKETPLACE_CONNECTORS if side is Side.MARKETPLACE else SHOP_CONNECTORS
    outbound = guard()
    outbound.check_url(base_url, base=True, pinned=KINDS[side][kind].pinned_hosts)
    try:
        connector = classes[kind](base_url, credentials, outbound)
    except KeyError as missing:
        raise Permanent(f"the {side} credential {missing} is not set", category="auth") from None
    try:
        yield connector
    finally:
        connector.close()


def probe(side: Side, kind: str, base_url: str, credentials: Mapping[str, str]) -> None:
    """Try the address and credentials with one small read (a marketplace's own `check`, a shop's orders
    changed from now on); raises the connector's error for what is wrong."""
    with connect(side, kind, base_url, credentials) as connector:
        if side is Side.MARKETPLACE:
            connector.check()
        else:
            connector.changed_since(datetime.now(UTC))
