"""Reading ids and counts from URLs, query strings and forms: one rule for every route and parameter.

`str.isdigit()` and `int()` accept far more than a browser sends: "²" passes the one and fails the other,
"٣" (an Arabic-Indic three) is read as 3, and 20 digits overflow the database's integer. A number here is
ASCII digits only, within its range; an id runs from 1 to 2**31 - 1 (what a 32-bit column holds).
Anything else is no number at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from models.base import MAX_ID


def parse_number(value: object, maximum: int, minimum: int = 0) -> int | None:
    """The whole number `value` spells in ASCII digits, if it is one from `minimum` to `maximum`."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > len(str(maximum)) or not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if minimum <= number <= maximum else None


def parse_id(value: object) -> int | None:
    """The id `value` stands for, or None when it is not one."""
    return parse_number(value, MAX_ID, minimum=1)


def parse_ids(values: Iterable[str]) -> tuple[list[int], int]:
    """The ids among `values` (each once, in order), and how many values were not ids."""
    ids: dict[int, None] = {}
    invalid = 0
    for value in values:
        if (number := parse_id(value)) is None:
            invalid += 1
        else:
            ids[number] = None
    return list(ids), invalid
