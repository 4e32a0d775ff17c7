"""The connector for an integration's side, built from its kind, address and decrypted credentials."""

from __future__ import annotations

from flask import current_app

from connectors.base import MarketplaceConnector, ShopConnector
from connectors.registry import Side
from connectors.trendyol import TrendyolConnector
from connectors.woocommerce import WooCommerceConnector
from models import Integration

MARKETPLACE_CONNECTORS = {"trendyol": TrendyolConnector}
SHOP_CONNECTORS = {"woocommerce": WooCommerceConnector}


def marketplace_for(integration: Integration) -> MarketplaceConnector:
    connector = MARKETPLACE_CONNECTORS[integration.marketplace_kind]
    return connector(
        integration.marketplace_base_url,
        integration.credentials(Side.MARKETPLACE),
        timeout=current_app.config["CONNECTOR_TIMEOUT"],
    )


def shop_for(integration: Integration) -> ShopConnector:
    connector = SHOP_CONNECTORS[integration.shop_kind]
    return connector(
        integration.shop_base_url,
        integration.credentials(Side.SHOP),
        timeout=current_app.config["CONNECTOR_TIMEOUT"],
    )
