"""Çiçeksepeti's order API: being built (issue 16). A marketplace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import Address
from connectors.http import Guard

PLATFORM = "Çiçeksepeti"
DEFAULT_BASE_URL = "https://apis.ciceksepeti.com/api/v1"
SETTABLE: tuple[Any, ...] = ()
MASKED_KEYS: frozenset[str] = frozenset()


def addresses(raw: Mapping[str, Any]) -> tuple[Address, Address]:
    raise ValueError("not built yet")


class CiceksepetiConnector:
    kind = "ciceksepeti"

    def __init__(self, base_url: str, credentials: Mapping[str, str], guard: Guard) -> None:
        self.base = base_url.rstrip("/")

    def close(self) -> None:
        pass
