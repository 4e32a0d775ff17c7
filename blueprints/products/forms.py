"""Forms of the products blueprint."""

from __future__ import annotations

import unicodedata
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DecimalField, Field, Form, IntegerField, SelectField, StringField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    StopValidation,
    ValidationError,
)

from sync.settings import SHIPPING_VAT_RATES

MAX_PRICE = 9_999_999_999  # the column holds 12 digits with 2 decimals
PRICE_RANGE = _l("Enter a price from 0 to 9,999,999,999.")


def _finite(form: FlaskForm, field: Field) -> None:
    """'NaN' and 'Infinity' read as decimals, and compare with nothing."""
    if isinstance(field.data, Decimal) and not field.data.is_finite():
        raise StopValidation(str(PRICE_RANGE))


VAT_CHOICES = [("", "–")] + [(str(rate), f"{rate} %") for rate in SHIPPING_VAT_RATES]
VAT_VALUES = {str(rate) for rate in SHIPPING_VAT_RATES}
VAT_INVALID = _l("Choose a VAT rate of 0, 1, 10 or 20, or none.")
CONTROL_CHARACTERS = _l("Remove the control characters (tabs, line breaks and the like) from this field.")


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _printable(form: FlaskForm, field: Field) -> None:
    """Control characters have no place in a product's texts, and PostgreSQL refuses NUL outright."""
    if isinstance(field.data, str) and any(unicodedata.category(char) == "Cc" for char in field.data):
        raise StopValidation(str(CONTROL_CHARACTERS))


def _vat(value: object) -> object:
    """The rate chosen; anything else is handed back as it came, for `VatField` to refuse by name."""
    if value in (None, ""):
        return None
    return int(str(value)) if str(value) in VAT_VALUES else value


class VatField(SelectField):
    """One of the rates the General settings know, or none: never a number the seller made up."""

    def pre_validate(self, form: Form) -> None:
        if self.data is not None and self.data not in SHIPPING_VAT_RATES:
            raise ValidationError(str(VAT_INVALID))


class ProductForm(FlaskForm):
    barcode = StringField(
        _l("Barcode"), filters=[_strip], validators=[DataRequired(), _printable, Length(max=64)]
    )
    stock_code = StringField(
        _l("Stock code"), filters=[_strip], validators=[Optional(), _printable, Length(max=120)]
    )
    name = StringField(
        _l("Product name"), filters=[_strip], validators=[DataRequired(), _printable, Length(max=300)]
    )
    stock = IntegerField(
        _l("Stock"),
        validators=[
            InputRequired(message=_l("Enter the stock as a whole number.")),
            NumberRange(-(10**6), 10**9),
        ],
    )
    price = DecimalField(
        _l("Price"),
        places=2,
        validators=[Optional(), _finite, NumberRange(min=0, max=MAX_PRICE, message=PRICE_RANGE)],
    )
    vat_rate = VatField(_l("VAT"), choices=VAT_CHOICES, coerce=_vat)


class ImportForm(FlaskForm):
    feed = FileField(_l("XML product feed"), validators=[FileRequired(_l("Choose an XML file."))])
