"""Ticimax in the sandbox: being built (issue 16)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask

if TYPE_CHECKING:
    from sandbox.state import World

PREFIX = "/ticimax"


@dataclass
class TicimaxShop:
    def __post_init__(self) -> None:
        self.lock = threading.RLock()

    def snapshot(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        pass


def register(app: Flask, world: World) -> None:
    pass
