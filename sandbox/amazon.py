"""Amazon in the sandbox, under /amazon (being built: see the issue note)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask

if TYPE_CHECKING:
    from sandbox.state import World

PREFIX = "/amazon"


@dataclass
class AmazonMarket:
    """Amazon's side of the world."""

    def __post_init__(self) -> None:
        self.lock = threading.RLock()

    def snapshot(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        pass

    def advance(self) -> None:
        """The demo's life: every order moving on."""


def register(app: Flask, world: World) -> None:
    """Amazon's routes and its control endpoints on the sandbox app."""
