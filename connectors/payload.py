"""What every marketplace connector does the same when it reads a payload: refuse it by name, quote a
wrong value briefly, read a page count, a text field and an amount it can trust."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import InvalidAnswer
from connectors.http import sanitised

# A page count above this is not one a platform means.
MAX_PAGES = 100_000
# An amount at or above this is not one a platform means.
MAX_AMOUNT = Decimal(10) ** 9
CENT = Decimal("0.01")


class UnreadablePackage(ValueError):
    """A package whose fields the hub cannot make sense of; the reason says which."""


class NotYet(UnreadablePackage):
    """A payload that lacks what the marketplace gives later (Amazon: the address, once the payment is
    confirmed); the reason says what and when."""


def no_nul(value: Any, where: str) -> None:
    """PostgreSQL keeps no NUL character in text: a payload carrying one is refused whole, by name."""
    if isinstance(value, str) and "\x00" in value:
        raise UnreadablePackage(f"{where} contains a NUL character")
    if isinstance(value, Mapping):
        for key, item in value.items():
            no_nul(str(key), where)
            no_nul(item, str(key))
    elif isinstance(value, list):
        for item in value:
            no_nul(item, where)


def shown(value: Any) -> str:
    """A value quoted in a reason: short, one line."""
    return sanitised(repr(value), 40)


def page_count(value: Any, what: str) -> int:
    """A listing's page count; `what` names it in the error (e.g. "Trendyol's totalPages")."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PAGES:
        raise InvalidAnswer(f"{what} is not a page count")
    return value


def split_name(full_name: str) -> tuple[str, str]:
    """One full name (N11's fullName, Hepsiburada's and Amazon's name): the last word is the surname, the
    rest the given names ("Ayşe Nur Yılmaz" → "Ayşe Nur", "Yılmaz"), as Turkish names are written."""
    words = full_name.split()
    if len(words) < 2:
        return full_name.strip(), ""
    return " ".join(words[:-1]), words[-1]


def with_neighbourhood(street: str, neighbourhood: str) -> str:
    """The street line with the neighbourhood (mahalle) in front, where a marketplace gives it as a field of
    its own and the street does not name it already: the courier needs it on the label's line."""
    if neighbourhood and neighbourhood.casefold() not in street.casefold():
        return f"{neighbourhood} {street}".strip()
    return street


def text_field(raw: Mapping[str, Any], name: str, limit: int | None = None) -> str:
    """The field as text ("" if unset); longer than `limit` it cannot be the value meant."""
    value = raw.get(name)
    if value is None or value == "":
        return ""
    if isinstance(value, dict | list | bool):
        raise UnreadablePackage(f"{name} is not a single value")
    text = str(value).strip()
    if limit is not None and len(text) > limit:
        raise UnreadablePackage(f"{name} is longer than {limit} characters")
    return text


def required_field(raw: Mapping[str, Any], name: str, limit: int | None = None) -> str:
    value = text_field(raw, name, limit=limit)
    if not value:
        raise UnreadablePackage(f"{name} is missing")
    return value


def amount(value: Any, name: str, ceiling: Decimal = MAX_AMOUNT) -> Decimal:
    """A number as the platform wrote it (a JSON number or text): finite, not negative, below `ceiling`,
    in cents."""
    if value is None:
        raise UnreadablePackage(f"{name} is missing")
    if isinstance(value, bool | dict | list):
        raise UnreadablePackage(f"{name} is not an amount")
    try:
        # Through str: a JSON float such as 25.99 must not become 25.989999….
        found = Decimal(str(value).strip())
    except InvalidOperation:
        raise UnreadablePackage(f"{name} is not an amount") from None
    if not found.is_finite() or not 0 <= found < ceiling:
        raise UnreadablePackage(f"{name} is out of range (0 to {ceiling})")
    return found.quantize(CENT)
