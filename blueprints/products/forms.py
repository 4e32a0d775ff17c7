"""Forms of the products blueprint."""

from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DecimalField, Field, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, StopValidation

from sync.settings import SHIPPING_VAT_RATES

MAX_PRICE = 9_999_999_999  # the column holds 12 digits with 2 decimals
PRICE_RANGE = _l("Enter a price from 0 to 9,999,999,999.")


def _finite(form: FlaskForm, field: Field) -> None:
    """'NaN' and 'Infinity' read as decimals, and compare with nothing."""
    if isinstance(field.data, Decimal) and not field.data.is_finite():
        raise StopValidation(str(PRICE_RANGE))


VAT_CHOICES = [("", "–")] + [(str(rate), f"{rate} %") for rate in SHIPPING_VAT_RATES]


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _vat(value: object) -> int | None:
    return int(str(value)) if value not in (None, "") else None


class ProductForm(FlaskForm):
    barcode = StringField(_l("Barcode"), filters=[_strip], validators=[DataRequired(), Length(max=64)])
    stock_code = StringField(_l("Stock code"), filters=[_strip], validators=[Optional(), Length(max=120)])
    name = StringField(_l("Product name"), filters=[_strip], validators=[DataRequired(), Length(max=300)])
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
    vat_rate = SelectField(_l("VAT"), choices=VAT_CHOICES, coerce=_vat, validate_choice=False)


class ImportForm(FlaskForm):
    feed = FileField(_l("XML product feed"), validators=[FileRequired(_l("Choose an XML file."))])
