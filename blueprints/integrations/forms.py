"""Forms of the integrations blueprint: the integration itself and the sections of the General page."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    Field,
    Form,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    URLField,
)
from wtforms.validators import (
    AnyOf,
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Regexp,
    ValidationError,
)
from wtforms.validators import Optional as OptionalValidator
from wtforms.widgets import PasswordInput

from blueprints.formats import percent
from connectors.base import Blocked
from connectors.http import Guard, check_base_url
from connectors.registry import KINDS, MARKETPLACES, SHOPS, ConnectorKind, CredentialField, Side
from sync.settings import SHIPPING_VAT_RATES, Priority, TrackingCodeSource
from sync.statuses import STATUS_LABELS, CanonicalStatus

# ---------------------------------------------------------------------------------------------------
# The integration (Integration List > New / Edit)


class IntegrationForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    marketplace_kind = SelectField(
        _l("Marketplace"),
        choices=[(kind.key, kind.label) for kind in MARKETPLACES.values()],
        default=next(iter(MARKETPLACES)),
    )
    marketplace_base_url = URLField(
        _l("Marketplace API address"), validators=[DataRequired(), Length(max=500)]
    )
    shop_kind = SelectField(
        _l("E-commerce site"),
        choices=[(kind.key, kind.label) for kind in SHOPS.values()],
        default=next(iter(SHOPS)),
    )
    shop_base_url = URLField(_l("E-commerce site address"), validators=[DataRequired(), Length(max=500)])
    own_shipping_agreement = BooleanField(
        _l("Own shipping agreement"),
        description=_l(
            "You ship with your own contract with the carrier. Marketplace Feedback and Transaction "
            "Priority need it."
        ),
    )
    active = BooleanField(_l("Active"), default=True)
    pull_interval = IntegerField(
        _l("Retrieve orders every (seconds)"),
        default=60,
        description=_l("How often the marketplace is asked for new and changed orders: 10 to 3600 seconds."),
        validators=[
            InputRequired(message=_l("Enter a number of seconds from 10 to 3600.")),
            NumberRange(10, 3600, message=_l("Enter a number of seconds from 10 to 3600.")),
        ],
    )

    def validate_pull_interval(self, field: Field) -> None:
        kind = MARKETPLACES.get(self.marketplace_kind.data or "")
        if kind is not None and field.data is not None and field.data < kind.min_pull_interval:
            raise ValidationError(
                _l(
                    "%(marketplace)s allows reading its orders at most every %(seconds)s seconds.",
                    marketplace=kind.label,
                    seconds=kind.min_pull_interval,
                )
            )

    def validate_marketplace_base_url(self, field: Field) -> None:
        _outbound_url(field, MARKETPLACES.get(self.marketplace_kind.data or ""))

    def validate_shop_base_url(self, field: Field) -> None:
        _outbound_url(field, SHOPS.get(self.shop_kind.data or ""))

    def credential_field(self, side: Side, credential: CredentialField) -> Field:
        return self[credential_field_name(side, credential)]


def credential_field_name(side: Side, credential: CredentialField) -> str:
    return f"{side}_{credential.name}"


# A field for every credential of every kind; the page shows the chosen kind's.
for _side, _kinds in KINDS.items():
    for _kind in _kinds.values():
        for _credential in _kind.credential_fields:
            # A secret holds only what the seller typed in this very submit (a stored one is never put
            # in the form): a refused submit shows it back, masked, rather than asking for it again.
            _field_class = (
                partial(PasswordField, widget=PasswordInput(hide_value=False))
                if _credential.secret
                else StringField
            )
            _shape = Regexp(
                rf"^(?:{_credential.pattern})\Z",
                message=_credential.pattern_help
                or _l("Letters, digits and symbols only, without spaces or other characters."),
            )
            setattr(
                IntegrationForm,
                credential_field_name(_side, _credential),
                _field_class(_credential.label, validators=[OptionalValidator(), Length(max=255), _shape]),
            )


class ActiveForm(FlaskForm):
    """Activate or deactivate: the button posts the state it asks for, so a double click is harmless."""

    active = HiddenField(validators=[AnyOf(["on", "off"])])


# What the seller reads when the outbound guard refuses an address (connectors/http.py names the reason).
BLOCKED_ADDRESS = {
    "syntax": _l("This address cannot be read. Enter it as https://host/path, without spaces."),
    "scheme": _l("Enter an address that starts with https://."),
    "https": _l("Enter an address that starts with https://: the hub sends your keys over HTTPS only."),
    "userinfo": _l("Leave the user name and password out of the address; enter them as the keys below."),
    "query": _l("Leave “?” and “#” parts out of the address: enter only the site or API address."),
    "pinned": _l("This marketplace is reached only at its own API address: %(hosts)s."),
    "private": _l("This address is not on the public internet, so the hub cannot call it."),
    "unresolvable": _l("This address's host cannot be found."),
}


def _outbound_url(field: Field, kind: ConnectorKind | None) -> None:
    """The address is checked by the same guard that every call goes through, as far as it can be now."""
    pinned = kind.pinned_hosts if kind else ()
    try:
        check_base_url((field.data or "").strip(), Guard.from_config(current_app.config), pinned=pinned)
    except Blocked as error:
        raise ValidationError(BLOCKED_ADDRESS[error.reason] % {"hosts": ", ".join(pinned)}) from None


# ---------------------------------------------------------------------------------------------------
# The General page: one small form per section, so a section can be saved on its own.

# Label and one-line help of every setting; the change history reads its labels from here too.
SETTING_TEXT: dict[str, tuple[LazyString, LazyString]] = {
    "tracking_code_transfer": (
        _l("Shipment Tracking Code Transfer"),
        _l("Write the code chosen under Shipment Tracking Code to the order on your site."),
    ),
    "status_change_transfer": (
        _l("Status Change Transfer"),
        _l("Update the order on your e-commerce site when its status changes on the marketplace."),
    ),
    "cancellation_transfer": (
        _l("Cancellation Status Transfer"),
        _l("Cancel the order on your e-commerce site when it is cancelled on the marketplace."),
    ),
    "approval_feedback": (
        _l("Addition/Approval Feedback"),
        _l("Mark new marketplace orders as approved as soon as they arrive."),
    ),
    "update_feedback": (
        _l("Update Feedback"),
        _l("Send the shipping status of your orders back to the marketplace."),
    ),
    "reverse_flow": (
        _l("Reverse Flow Direction"),
        _l("Send status changes made on your e-commerce site back to the marketplace."),
    ),
    "priority": (
        _l("When both sides changed"),
        _l("Which side wins when an order changed on both sides since the last sync."),
    ),
    "retrieve_orders": (
        _l("Retrieve Marketplace Orders"),
        _l("Bring the marketplace's orders into this panel automatically."),
    ),
    "auto_transfer": (
        _l("Automatic E-commerce Order Transfer"),
        _l("Transfer new orders to your e-commerce site; when off they wait here for a manual transfer."),
    ),
    "notify_new_orders": (
        _l("Newly Added Orders"),
        _l("Email the notification address when new orders arrive."),
    ),
    "notify_error_orders": (
        _l("Orders in Error Status"),
        _l("Email the notification address when an order goes into error."),
    ),
    "status_color_coding": (
        _l("Status Color Coding"),
        _l("Show each order status in its colour."),
    ),
    "row_color_coding": (
        _l("Status Row Color Coding"),
        _l("Tint the whole order row in its status colour."),
    ),
    "color_coding_rate": (
        _l("Color Coding Rate"),
        _l("How strong the row tint is, from 0 % (none) to 100 % (full colour)."),
    ),
    "decrease_stock": (
        _l("Decrease stock of ordered products"),
        _l("Lower the panel stock of each ordered product, and put it back when the order is cancelled."),
    ),
    "tracking_code_source": (
        _l("Shipment Tracking Code"),
        _l("Which shipment code is transferred to your site as the tracking code."),
    ),
    "force_tracking_link": (
        _l("Forcing Shipment Transfer Link"),
        _l("Always send a tracking link with the code: the marketplace's, or one built for the carrier."),
    ),
    "shipping_vat_rate": (
        _l("Shipment VAT Selection"),
        _l(
            "The VAT rate the shipping fee is split at on orders transferred to your site. WooCommerce "
            "taxes shipping at its own shipping tax class (WooCommerce › Settings › Tax): give it the "
            "same rate for the tax lines to match. The order's total is the marketplace's either way."
        ),
    ),
}

PRIORITY_CHOICES = [
    (Priority.MARKETPLACE.value, _l("Marketplace first")),
    (Priority.SHOP.value, _l("E-commerce first")),
]
TRACKING_CODE_CHOICES = [
    (TrackingCodeSource.TRACKING_NUMBER.value, _l("Tracking number")),
    (TrackingCodeSource.SHIPMENT_BARCODE.value, _l("Shipment barcode")),
    (TrackingCodeSource.PACKAGE_NUMBER.value, _l("Shipment package number")),
]
PRODUCT_VAT = "product"
VAT_CHOICES = [(PRODUCT_VAT, _l("The product's own VAT"))] + [
    (str(rate), LazyString(percent, rate))
    for rate in SHIPPING_VAT_RATES  # %20 in Turkish
]


class Choice(RadioField):
    """A radio group whose refusal names what was offered, not just 'Not a valid choice'."""

    def __init__(self, *args: Any, invalid: LazyString, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.invalid = invalid

    def pre_validate(self, form: Form) -> None:
        if not any(selected for _value, _label, selected, *_ in self.iter_choices()):
            raise ValidationError(self.invalid)


def _switch(name: str) -> BooleanField:
    label, help_text = SETTING_TEXT[name]
    return BooleanField(label, description=help_text)


def _choice(
    name: str, choices: list[tuple[str, Any]], coerce: Callable[[Any], Any], invalid: LazyString
) -> Choice:
    label, help_text = SETTING_TEXT[name]
    return Choice(label, description=help_text, choices=choices, coerce=coerce, invalid=invalid)


# Coercions hand back what they cannot read unchanged, so `Choice` reports one clear message.
def _vat(value: object) -> object:
    if value is None or value == PRODUCT_VAT:
        return None
    try:
        return int(str(value))
    except ValueError:
        return value


def _member_of(enum: type[StrEnum]) -> Callable[[object], object]:
    def coerce(value: object) -> object:
        return enum(str(value)) if value in enum._value2member_map_ else value

    return coerce


class SectionForm(Form):
    """CSRF is checked once per request by CSRFProtect, so the section forms carry no token."""

    def settings_values(self) -> dict[str, object]:
        return {name: field.data for name, field in self._fields.items() if name in SETTING_TEXT}


class CommunicationForm(SectionForm):
    tracking_code_transfer = _switch("tracking_code_transfer")
    status_change_transfer = _switch("status_change_transfer")
    cancellation_transfer = _switch("cancellation_transfer")


class FeedbackForm(SectionForm):
    approval_feedback = _switch("approval_feedback")
    update_feedback = _switch("update_feedback")


class PriorityForm(SectionForm):
    reverse_flow = _switch("reverse_flow")
    priority = _choice(
        "priority",
        PRIORITY_CHOICES,
        _member_of(Priority),
        _l("Choose marketplace first or e-commerce first."),
    )


class ActivationForm(SectionForm):
    retrieve_orders = _switch("retrieve_orders")
    auto_transfer = _switch("auto_transfer")


class NotificationsForm(SectionForm):
    notify_new_orders = _switch("notify_new_orders")
    notify_error_orders = _switch("notify_error_orders")


COLOR_FIELD_PREFIX = "color_"


class ColorsForm(SectionForm):
    status_color_coding = _switch("status_color_coding")
    row_color_coding = _switch("row_color_coding")
    color_coding_rate = IntegerField(
        SETTING_TEXT["color_coding_rate"][0],
        description=SETTING_TEXT["color_coding_rate"][1],
        validators=[
            InputRequired(message=_l("Enter a rate from 0 to 100.")),
            NumberRange(0, 100, message=_l("Enter a rate from 0 to 100.")),
        ],
    )

    def status_colors(self) -> dict[CanonicalStatus, str]:
        return {status: self[COLOR_FIELD_PREFIX + status.value].data.lower() for status in CanonicalStatus}

    def color_fields(self) -> list[tuple[CanonicalStatus, Field]]:
        return [(status, self[COLOR_FIELD_PREFIX + status.value]) for status in CanonicalStatus]


for _status in CanonicalStatus:
    setattr(
        ColorsForm,
        COLOR_FIELD_PREFIX + _status.value,
        StringField(
            STATUS_LABELS[_status],  # lazy: read in the page's language, not the import's
            validators=[
                InputRequired(message=_l("Choose a colour.")),
                Regexp(r"#[0-9a-fA-F]{6}\Z", message=_l("Enter a colour as #RRGGBB, e.g. #1565c0.")),
            ],
        ),
    )


class StockForm(SectionForm):
    decrease_stock = _switch("decrease_stock")


class TrackingCodeForm(SectionForm):
    tracking_code_source = _choice(
        "tracking_code_source",
        TRACKING_CODE_CHOICES,
        _member_of(TrackingCodeSource),
        _l("Choose tracking number, shipment barcode or shipment package number."),
    )


class TrackingLinkForm(SectionForm):
    force_tracking_link = _switch("force_tracking_link")


class ShippingVatForm(SectionForm):
    shipping_vat_rate = _choice(
        "shipping_vat_rate",
        VAT_CHOICES,
        _vat,
        _l("Choose the product's own VAT or one of 0 %, 1 %, 10 %, 20 %."),
    )


@dataclass(frozen=True)
class Section:
    key: str
    title: LazyString
    intro: LazyString | None
    form_class: type[SectionForm]


SECTIONS: dict[str, Section] = {
    section.key: section
    for section in (
        Section("communication", _l("Communication Options"), None, CommunicationForm),
        Section(
            "feedback",
            _l("Marketplace Feedback"),
            _l("Some marketplaces need to hear when an order is received or updated."),
            FeedbackForm,
        ),
        Section(
            "priority",
            _l("Transaction Priority"),
            _l("Decides the order in which your e-commerce site and the marketplace update each other."),
            PriorityForm,
        ),
        Section(
            "activation",
            _l("Activation"),
            _l("Retrieving orders from the marketplace and transferring them to your site."),
            ActivationForm,
        ),
        Section(
            "notifications",
            _l("Order Notifications"),
            _l("Emails to the notification address set in User Settings."),
            NotificationsForm,
        ),
        Section(
            "colors", _l("Color Coding"), _l("How order statuses are coloured in the order list."), ColorsForm
        ),
        Section("stock", _l("Stock Management"), None, StockForm),
        Section("tracking_code", _l("Shipment Tracking Code"), None, TrackingCodeForm),
        Section(
            "tracking_link",
            _l("Forcing Shipment Transfer Link"),
            _l("Some marketplace integrations require a shipment link with every tracking code."),
            TrackingLinkForm,
        ),
        Section("shipping_vat", _l("Shipment VAT Selection"), None, ShippingVatForm),
    )
}


# ---------------------------------------------------------------------------------------------------
# The Statuses tab: which shop status each canonical status becomes.

STATUS_FIELD_PREFIX = "status_"


class StatusMapForm(FlaskForm):
    def status_map(self) -> dict[CanonicalStatus, str]:
        return {status: self[STATUS_FIELD_PREFIX + status.value].data for status in CanonicalStatus}

    def status_fields(self) -> list[tuple[CanonicalStatus, Field]]:
        return [(status, self[STATUS_FIELD_PREFIX + status.value]) for status in CanonicalStatus]


def status_map_form(statuses: Mapping[str, LazyString | str]) -> type[StatusMapForm]:
    """The Statuses tab's form, its choices the shop's statuses (as read from the shop, or its kind's)."""
    fields = {
        STATUS_FIELD_PREFIX + status.value: SelectField(
            STATUS_LABELS[status],
            choices=list(statuses.items()),
            validate_choice=True,
        )
        for status in CanonicalStatus
    }
    return type("StatusMapForm", (StatusMapForm,), fields)
