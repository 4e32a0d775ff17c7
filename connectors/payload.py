"""What every marketplace connector does the same when it reads a payload: refuse it by name, quote a
wrong value briefly, and read a page count it can trust."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import InvalidAnswer
from connectors.http import sanitised

# A page count above this is not one a platform means.
MAX_PAGES = 100_000


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
