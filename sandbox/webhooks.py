"""Webhooks the sandbox's platforms send, as the real ones do: over HTTP to the address a seller's
integration registered, signed or authenticated in each platform's way (the platform builds the headers),
from a pool of sender threads so a slow receiver never holds up the platform's API. A delivery the
receiver does not take (no answer, not 2xx) is sent again a few times with backoff, as Shopify, Trendyol
and WooCommerce do.

Knobs (`Faults.webhook_*`), for the bad days the hub must take: a share of deliveries sent twice, a share
lost, deliveries held back a random while (so they arrive out of order), and a share followed by a forged
copy whose proof (signature, password, API key) is wrong.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from sandbox.state import Faults

log = logging.getLogger(__name__)
ATTEMPTS = 5
FIRST_BACKOFF = 0.25


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    headers: Mapping[str, str]
    # The headers that prove the sender (a signature, a password, an API key): what a forgery gets wrong.
    proof: tuple[str, ...]
    method: str = "POST"  # Hepsiburada PUTs its package and cancellation events


@dataclass
class Sent:
    """What became of one delivery: the receiver's last status (0: no answer) and how many tries."""

    url: str
    status: int
    attempts: int
    forged: bool = False


@dataclass
class WebhookSender:
    faults: Faults
    seed: int = 11
    sent: list[Sent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)
        self.pending = 0
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook")
        self._client: httpx.Client | None = None  # made at the first delivery: most worlds send none
        # Held rather than sent, for a test that hands them to the hub itself (`release`).
        self.hold = False
        self.held: list[tuple[Delivery, bool]] = []

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        proof: tuple[str, ...] = (),
        method: str = "POST",
    ) -> None:
        """Send a delivery (later, from a sender thread), with whatever the knobs make of it."""
        faults = self.faults
        delivery = Delivery(url, body, dict(headers), proof, method)
        with self.lock:
            if self.rng.random() < faults.webhook_drop_rate:
                return
            copies = [(delivery, False)] * (2 if self.rng.random() < faults.webhook_duplicate_rate else 1)
            if self.rng.random() < faults.webhook_forged_rate:
                wrong = {**delivery.headers, **{name: "forged" + name[:4] for name in proof}}
                copies.append((Delivery(url, body, wrong, proof, method), True))
            if self.hold:
                self.held.extend(copies)
                return
            delays = [self.rng.uniform(0, faults.webhook_delay_ms / 1000) for _ in copies]
            self.pending += len(copies)
        for (each, forged), delay in zip(copies, delays, strict=True):
            self.pool.submit(self._send, each, delay, forged)

    def release(self, send: Callable[[Delivery], int]) -> list[Sent]:
        """Held deliveries (`hold`), handed to `send` in the test's own thread, in the order they were
        made, or shuffled when the knob holds them back at random; what each got back."""
        with self.lock:
            held, self.held = self.held, []
            if self.faults.webhook_delay_ms:
                self.rng.shuffle(held)
        sent = [Sent(delivery.url, send(delivery), 1, forged) for delivery, forged in held]
        with self.lock:
            self.sent.extend(sent)
        return sent

    def wait(self, timeout: float = 30.0) -> bool:
        """Until every delivery is done (sent, or given up); False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self.idle:
            while self.pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.idle.wait(left)
        return True

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:
            self._client.close()

    def _send(self, delivery: Delivery, delay: float, forged: bool) -> None:
        try:
            if delay:
                time.sleep(delay)
            status, attempts = 0, 0
            for attempts in range(1, ATTEMPTS + 1):  # a forger does not insist
                status = self._once(delivery)
                if forged or 200 <= status < 300 or attempts == ATTEMPTS:
                    break
                time.sleep(FIRST_BACKOFF * 2 ** (attempts - 1))
            with self.lock:
                self.sent.append(Sent(delivery.url, status, attempts, forged))
        finally:
            with self.idle:
                self.pending -= 1
                self.idle.notify_all()

    def _once(self, delivery: Delivery) -> int:
        with self.lock:
            if self._client is None:
                self._client = httpx.Client(timeout=5.0)
            client = self._client
        try:
            response = client.request(
                delivery.method, delivery.url, content=delivery.body, headers=dict(delivery.headers)
            )
        except httpx.HTTPError as error:
            log.info("webhook to %s not delivered: %s", delivery.url, error)
            return 0
        return response.status_code
