"""IdeaSoft's Admin API: being built (issue 16). A shop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import WebhookNotice, WebhookRefused
from connectors.http import Guard

PLATFORM = "IdeaSoft"
STATUSES: Mapping[str, str] = {}
DEFAULT_STATUS_MAP: Mapping[Any, str] = {}


def read_webhook(headers: Mapping[str, str], body: bytes, secret: str, path: str = "") -> WebhookNotice:
    raise WebhookRefused("not built yet")


class IdeasoftConnector:
    kind = "ideasoft"

    def __init__(self, base_url: str, credentials: Mapping[str, str], guard: Guard) -> None:
        self.base = base_url.rstrip("/")

    def close(self) -> None:
        pass
