"""SQLAlchemy models, one module per aggregate."""

from models.account import Account, LoginSession
from models.export import ExportState, OrderExport
from models.integration import Integration, IntegrationSettings, SettingsChange, StatusColor, StatusMap
from models.notification import MailState, NoticeKind, Notification, OrderNotice
from models.order import (
    ActionState,
    Backfill,
    BackfillState,
    Order,
    OrderAction,
    OrderEvent,
    OrderLine,
    TransferState,
)
from models.product import Product
from models.webhook import WebhookDelivery

__all__ = [
    "Account",
    "ActionState",
    "Backfill",
    "BackfillState",
    "ExportState",
    "Integration",
    "IntegrationSettings",
    "LoginSession",
    "MailState",
    "NoticeKind",
    "Notification",
    "Order",
    "OrderAction",
    "OrderEvent",
    "OrderExport",
    "OrderLine",
    "OrderNotice",
    "Product",
    "SettingsChange",
    "StatusColor",
    "StatusMap",
    "TransferState",
    "WebhookDelivery",
]
