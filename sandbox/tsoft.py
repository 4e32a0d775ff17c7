"""T-Soft's REST1 API in the sandbox, under /tsoft (being built: see the issue's note)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask

if TYPE_CHECKING:
    from sandbox.state import World

PREFIX = "/tsoft"


@dataclass
class TsoftShop:
    """T-Soft's side of the world. It has its own lock; nothing holds it while taking another."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"orders": list(self.orders.values())}

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.orders = {order["id"]: order for order in state["orders"]}


def register(app: Flask, world: World) -> None:
    """T-Soft's routes on the sandbox app."""
