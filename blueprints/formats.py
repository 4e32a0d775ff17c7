"""Numbers as a seller of the page's language writes them: amounts with their currency after them
(1.337,40 ₺ in Turkish, 1,337.40 TRY in English), percentages (%20 in Turkish, 20% in English) and
spans of time (2,3 sn.)."""

from __future__ import annotations

from decimal import Decimal

from babel import numbers, units
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


def duration(seconds: float) -> str:
    """A span of time in the largest unit under which it stays readable: 2,3 sn., 12 dk., 1,5 sa."""
    for unit, size in (("duration-hour", 3600), ("duration-minute", 60)):
        if seconds >= size:
            return units.format_unit(
                seconds / size, unit, length="short", format="#,##0.#", locale=get_locale()
            )
    return units.format_unit(
        seconds, "duration-second", length="short", format="#,##0.#", locale=get_locale()
    )


def register(app: Flask) -> None:
    app.add_template_filter(money)
    app.add_template_filter(percent)
    app.add_template_filter(duration)
