"""The sandbox marketplace and shop, served over real HTTP from a thread for the tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import make_server

from connectors import woocommerce
from sandbox.app import create_sandbox
from sandbox.state import World


@dataclass
class Sandbox:
    url: str
    world: World

    @property
    def marketplace_url(self) -> str:
        return f"{self.url}/trendyol/integration"

    @property
    def shop_url(self) -> str:
        return f"{self.url}/woocommerce"

    @property
    def n11_url(self) -> str:
        return f"{self.url}/n11"

    @property
    def hepsiburada_url(self) -> str:
        return f"{self.url}/hepsiburada"

    @property
    def amazon_url(self) -> str:
        return f"{self.url}/amazon"

    @property
    def shopify_url(self) -> str:
        return f"{self.url}/shopify"

    @property
    def tsoft_url(self) -> str:
        return f"{self.url}/tsoft"

    @property
    def ciceksepeti_url(self) -> str:
        return f"{self.url}/ciceksepeti"

    @property
    def pazarama_url(self) -> str:
        return f"{self.url}/pazarama"

    @property
    def ticimax_url(self) -> str:
        return f"{self.url}/ticimax"

    @property
    def ideasoft_url(self) -> str:
        return f"{self.url}/ideasoft"

    def order(self, **spec: Any) -> dict[str, Any]:
        """A new package on the marketplace."""
        return self.world.create_package(spec)

    def package(self, package_id: int | str) -> dict[str, Any]:
        return self.world.packages[int(package_id)]

    def shop_orders(self) -> list[dict[str, Any]]:
        return list(self.world.shop_orders.values())

    def shop_order_for(self, package_id: int | str) -> dict[str, Any] | None:
        matches = [
            order
            for order in self.world.shop_orders.values()
            if any(
                meta["key"] == "hub_shipment_package_id" and meta["value"] == str(package_id)
                for meta in order["meta_data"]
            )
        ]
        assert len(matches) <= 1, f"package {package_id} is in the shop {len(matches)} times"
        return matches[0] if matches else None

    def set_status(self, package_id: int | str, status: str) -> None:
        with self.world.lock:
            self.world.set_status(self.package(package_id), status)


@contextmanager
def serve_sandbox(world: World | None = None) -> Iterator[Sandbox]:
    world = world or World()
    # A new store, maybe at an address an earlier test's had: what this process read of that one's tax
    # rates is not this one's.
    woocommerce.RATES.clear()
    server = make_server("127.0.0.1", 0, create_sandbox(world), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Sandbox(f"http://127.0.0.1:{server.port}", world)
    finally:
        server.shutdown()
        thread.join()
        world.webhooks.close()
