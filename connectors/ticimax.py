"""Ticimax's SOAP web services: being built (issue 16). A shop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.http import Guard

PLATFORM = "Ticimax"
STATUSES: Mapping[str, str] = {}
DEFAULT_STATUS_MAP: Mapping[Any, str] = {}


class TicimaxConnector:
    kind = "ticimax"

    def __init__(self, base_url: str, credentials: Mapping[str, str], guard: Guard) -> None:
        self.base = base_url.rstrip("/")

    def close(self) -> None:
        pass
