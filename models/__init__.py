"""SQLAlchemy models, one module per aggregate."""

from models.account import Account
from models.integration import Integration, IntegrationSettings, SettingsChange, StatusColor, StatusMap
from models.order import ActionState, Order, OrderAction, OrderEvent, OrderLine, TransferState
from models.product import Product

__all__ = [
    "Account",
    "ActionState",
    "Integration",
    "IntegrationSettings",
    "Order",
    "OrderAction",
    "OrderEvent",
    "OrderLine",
    "Product",
    "SettingsChange",
    "StatusColor",
    "StatusMap",
    "TransferState",
]
