"""SQLAlchemy models, one module per aggregate."""

from models.account import Account
from models.integration import Integration, IntegrationSettings, SettingsChange, StatusColor

__all__ = ["Account", "Integration", "IntegrationSettings", "SettingsChange", "StatusColor"]
