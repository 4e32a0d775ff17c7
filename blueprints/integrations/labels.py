"""Words for the change history: which field changed and what its old and new values mean."""

from __future__ import annotations

import dataclasses
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _

from blueprints.formats import percent
from blueprints.integrations.forms import PRIORITY_CHOICES, SETTING_TEXT, TRACKING_CODE_CHOICES
from models.integration import COLOR_CHANGE_PREFIX, REPLACED, STATUS_MAP_CHANGE_PREFIX
from sync.settings import GeneralSettings
from sync.statuses import CanonicalStatus

# Fields whose history reads "on" / "off"; a name or an address that happens to be "on" stays itself.
SWITCHES = frozenset(
    {field.name for field in dataclasses.fields(GeneralSettings) if field.type == "bool"}
    | {"active", "own_shipping_agreement"}
)


def field_label(field: str) -> str:
    if field in SETTING_TEXT:
        return str(SETTING_TEXT[field][0])
    if field.startswith(COLOR_CHANGE_PREFIX):
        status = CanonicalStatus(field.removeprefix(COLOR_CHANGE_PREFIX))
        return _("Colour of %(status)s", status=status.label)
    if field.startswith(STATUS_MAP_CHANGE_PREFIX):
        status = CanonicalStatus(field.removeprefix(STATUS_MAP_CHANGE_PREFIX))
        return _("Shop status for %(status)s", status=status.label)
    other = {
        "name": _("Name"),
        "active": _("Active"),
        "pull_interval": _("Retrieve orders every (seconds)"),
        "own_shipping_agreement": _("Own shipping agreement"),
        "marketplace_base_url": _("Marketplace API address"),
        "shop_base_url": _("E-commerce site address"),
        "marketplace_credentials": _("Marketplace credentials"),
        "shop_credentials": _("E-commerce site credentials"),
    }
    return other.get(field, field)


def value_label(field: str, value: str) -> str:
    if field.endswith("_credentials") and value == REPLACED:
        return _("Replaced")
    if field in SWITCHES and value in ("on", "off"):
        return _("On") if value == "on" else _("Off")
    choices = {
        "priority": dict(PRIORITY_CHOICES),
        "tracking_code_source": dict(TRACKING_CODE_CHOICES),
    }.get(field)
    if choices and value in choices:
        return str(choices[value])
    if field == "shipping_vat_rate":
        return _("The product's own VAT") if value == "" else _percent(value)
    if field == "color_coding_rate":
        return _percent(value)
    return value


def _percent(value: str) -> str:
    try:
        return percent(Decimal(value))
    except InvalidOperation:  # not a number after all: shown as it was saved
        return value
