"""The wording of an order's history lines: stored in English with its parameters, translated when shown.

A line's `summary` is an English sentence with %(name)s placeholders, marked with `N_` so that
`make translations-update` collects it, and its `params` fill it: the panel shows it in the seller's
language (blueprints/orders/history.py, which also translates the parameters that name a status or an
action).
"""

from __future__ import annotations


def N_(wording: str) -> str:
    """Marks a wording for the translations; it is stored as it is and translated when shown."""
    return wording
