"""Numbers as a seller of the page's language writes them: amounts with their currency after them
(1.337,40 ₺ in Turkish, 1,337.40 TRY in English) and percentages (%20 in Turkish, 20% in English)."""

from __future__ import annotations

from decimal import Decimal

from babel import numbers
from flask import Flask
from flask_babel import format_currency, get_locale

# The amount, then the currency's symbol: how Turkish sellers and shops write prices.
MONEY = "#,##0.00\xa0¤"


def money(amount: Decimal | float | None, currency: str | None = None) -> str:
    if amount is None:
        return "–"
    return str(format_currency(amount, currency or "TRY", format=MONEY))


def percent(rate: Decimal | float | int | None) -> str:
    """A rate given in percent (20 for 20 %), with its decimals if it has any."""
    if rate is None:
        return "–"
    return numbers.format_percent(Decimal(str(rate)) / 100, locale=get_locale(), decimal_quantization=False)


def register(app: Flask) -> None:
    app.add_template_filter(money)
    app.add_template_filter(percent)
