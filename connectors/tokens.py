"""Access tokens kept per process, for the platforms that hand one out for a while: Amazon's Login with
Amazon, Shopify's client credentials grant, T-Soft's login.

A token is kept under a digest of everything that makes it (the address and all the credentials, the
secret too: a seller who changes a secret gets a new token at once), never under a credential itself. It
is renewed a margin before it runs out, or halfway for one that lasts less than twice the margin. One
seller's connectors, in many threads, ask for it once (a lock per key); other sellers do not wait. A
process forked from the one that fetched them (RQ's work horse) starts afresh rather than inherit a lock
that may be held.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Token:
    value: str
    refresh_at: float  # on the cache's clock


class TokenCache:
    def __init__(self, margin: float) -> None:
        self.margin = margin
        # The clock tokens run out on: a seam for the tests (monotonic: a wall-clock jump does not matter).
        self.clock: Callable[[], float] = time.monotonic
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self.tokens: dict[str, Token] = {}
        self._fetching: dict[str, threading.Lock] = {}

    def _own(self) -> None:
        if self._pid != os.getpid():
            self._start()

    def get(self, key: str, fetch: Callable[[], tuple[str, float]]) -> tuple[str, bool]:
        """The token kept under `key`, or a new one from `fetch` (its value, and how many seconds it
        lasts); and whether it was kept."""
        self._own()
        with self._lock:
            fetching = self._fetching.setdefault(key, threading.Lock())
        with fetching:
            with self._lock:
                kept = self.tokens.get(key)
            if kept is not None and self.clock() < kept.refresh_at:
                return kept.value, True
            value, lifetime = fetch()
            keep = max(lifetime - self.margin, lifetime / 2)
            with self._lock:
                self.tokens[key] = Token(value, self.clock() + keep)
            return value, False

    def forget(self, key: str, value: str | None = None) -> None:
        """Drop the token under `key` (the platform refused it); only if it is still `value`, when given,
        so a token another thread fetched meanwhile stays."""
        self._own()
        with self._lock:
            kept = self.tokens.get(key)
            if kept is not None and (value is None or kept.value == value):
                del self.tokens[key]

    def clear(self) -> None:
        """Drop every token (the tests)."""
        self._own()
        with self._lock:
            self.tokens.clear()
            self._fetching.clear()
