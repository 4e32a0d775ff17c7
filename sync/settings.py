"""An integration's General settings: their types, their defaults (here and nowhere else) and their rules.

The order pipeline reads a `GeneralSettings`; the panel checks every change with `violations` before it
saves it, so a rule holds whether the change came from the page, a forced POST or a script.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString


class TrackingCodeSource(StrEnum):
    """Which shipment code is written to the shop as the tracking code."""

    TRACKING_NUMBER = "tracking_number"
    SHIPMENT_BARCODE = "shipment_barcode"
    PACKAGE_NUMBER = "package_number"


class Priority(StrEnum):
    """Which side wins when both changed an order since the last sync."""

    MARKETPLACE = "marketplace"
    SHOP = "shop"


# Shipment VAT Selection: None means "the product's own VAT rate".
SHIPPING_VAT_RATES = (0, 1, 10, 20)


@dataclass(frozen=True)
class GeneralSettings:
    """Every setting of the General page with its default."""

    # Communication Options
    tracking_code_transfer: bool = True
    status_change_transfer: bool = True
    cancellation_transfer: bool = True
    # Marketplace Feedback (own shipping agreement only)
    approval_feedback: bool = False
    update_feedback: bool = False
    # Transaction Priority (own shipping agreement only)
    reverse_flow: bool = False
    priority: Priority = Priority.MARKETPLACE
    # Activation
    retrieve_orders: bool = True
    auto_transfer: bool = True
    # Order Notifications (need the account's notification email)
    notify_new_orders: bool = False
    notify_error_orders: bool = False
    # Color Coding
    status_color_coding: bool = True
    row_color_coding: bool = False
    color_coding_rate: int = 30
    # Stock Management
    decrease_stock: bool = False
    # Shipment Tracking Code
    tracking_code_source: TrackingCodeSource = TrackingCodeSource.TRACKING_NUMBER
    # Forcing Shipment Transfer Link
    force_tracking_link: bool = False
    # Shipment VAT Selection
    shipping_vat_rate: int | None = None


DEFAULTS = GeneralSettings()
FIELDS = tuple(field.name for field in dataclasses.fields(GeneralSettings))

# Settings that talk back to the marketplace: only safe when the seller ships on their own agreement.
OWN_SHIPPING_ONLY = ("approval_feedback", "update_feedback", "reverse_flow", "priority")
NEEDS_NOTIFICATION_EMAIL = ("notify_new_orders", "notify_error_orders")

OWN_SHIPPING_REASON = _l(
    "Available only with your own shipping agreement. Turn it on for this integration first."
)
NOTIFICATION_EMAIL_REASON = _l("Add a notification email address in User Settings first.")


def violations(
    new: dict[str, object],
    current: GeneralSettings,
    *,
    own_shipping: bool,
    has_notification_email: bool,
    unavailable: Mapping[str, LazyString] | None = None,
) -> dict[str, LazyString]:
    """The rules a change breaks, as {field: reason}; `new` holds only the fields being saved.

    A rule refuses a change, never a value already stored, so turning a guarded setting off is always
    allowed.
    """
    errors: dict[str, LazyString] = {}
    for name, value in new.items():
        # Switching off is always allowed; a choice (priority) counts as switching on.
        if value == getattr(current, name) or value is False:
            continue
        if unavailable and name in unavailable:
            errors[name] = unavailable[name]
        elif name in OWN_SHIPPING_ONLY and not own_shipping:
            errors[name] = OWN_SHIPPING_REASON
        elif name in NEEDS_NOTIFICATION_EMAIL and not has_notification_email:
            errors[name] = NOTIFICATION_EMAIL_REASON
    return errors


def without_own_shipping(settings: GeneralSettings) -> dict[str, object]:
    """What must change when an integration loses its own shipping agreement."""
    return _reset(settings, OWN_SHIPPING_ONLY)


def without(settings: GeneralSettings, names: Iterable[str]) -> dict[str, Any]:
    """What must change for the named settings to be off (those a marketplace cannot carry out): a switch
    off, a choice back to its default."""
    off = {name: _off(name) for name in names}
    return {name: value for name, value in off.items() if getattr(settings, name) != value}


def _off(name: str) -> Any:
    default = getattr(DEFAULTS, name)
    return False if isinstance(default, bool) else default


def without_notification_email(settings: GeneralSettings) -> dict[str, object]:
    """What must change when the account removes its notification email."""
    return _reset(settings, NEEDS_NOTIFICATION_EMAIL)


def _reset(settings: GeneralSettings, names: tuple[str, ...]) -> dict[str, object]:
    return {
        name: getattr(DEFAULTS, name) for name in names if getattr(settings, name) != getattr(DEFAULTS, name)
    }
