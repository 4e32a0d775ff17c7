"""The connector for an integration's side, built from its kind, address and decrypted credentials.

Both are context managers: `with shop_for(integration) as shop:` closes the HTTP client afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app

from connectors.base import MarketplaceConnector, ShopConnector
from connectors.registry import Side
from connectors.trendyol import TrendyolConnector
from connectors.woocommerce import WooCommerceConnector
from models import Integration

MARKETPLACE_CONNECTORS = {"trendyol": TrendyolConnector}
SHOP_CONNECTORS = {"woocommerce": WooCommerceConnector}


@contextmanager
def marketplace_for(integration: Integration) -> Iterator[MarketplaceConnector]:
    connector = MARKETPLACE_CONNECTORS[integration.marketplace_kind](
        integration.marketplace_base_url,
        integration.credentials(Side.MARKETPLACE),
        timeout=current_app.config["CONNECTOR_TIMEOUT"],
    )
    try:
        yield connector
    finally:
        connector.close()


@contextmanager
def shop_for(integration: Integration) -> Iterator[ShopConnector]:
    connector = SHOP_CONNECTORS[integration.shop_kind](
        integration.shop_base_url,
        integration.credentials(Side.SHOP),
        timeout=current_app.config["CONNECTOR_TIMEOUT"],
    )
    try:
        yield connector
    finally:
        connector.close()
