"""Turns shared by every process of the hub, for a platform whose rate limit is per seller and tight
(Çiçeksepeti: one request per 5 seconds). A process's own pacing cannot see another worker's requests:
two workers would each keep to the pace and still break it together, and their retries after the
platform's 429 would meet again at the same moment. The turns are booked in Redis instead, one after the
other, on Redis's own clock, so the hub's requests for a seller keep the pace whichever process sends them.

Connectors take a `Turns` where their kind asks for one (`ConnectorKind.shared_pace`, given by the
factory); without it, or with Redis away, they keep to their own process's pace.
"""

from __future__ import annotations

import logging
from typing import Protocol

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# KEYS[1] the seller's next free moment; ARGV[1] the interval, ARGV[2] the longest wait worth booking.
# Returns the seconds to wait for the turn booked, or -1 (nothing booked) when the turn is further off.
_BOOK = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local free = tonumber(redis.call('GET', KEYS[1]) or now)
if free < now then free = now end
local wait = free - now
if wait > tonumber(ARGV[2]) then return '-1' end
local after = free + tonumber(ARGV[1])
redis.call('SET', KEYS[1], tostring(after), 'PX', math.ceil((after - now) * 1000) + 1000)
return tostring(wait)
"""

# KEYS[1] the seller's next free moment; ARGV[1] the interval: the next turn no sooner than that from now.
_PUSH = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local after = now + tonumber(ARGV[1])
local free = tonumber(redis.call('GET', KEYS[1]) or 0)
if free < after then
  redis.call('SET', KEYS[1], tostring(after), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 1
"""


class Turns(Protocol):
    def book(self, key: str, interval: float, longest: float) -> float | None:
        """Book `key`'s next turn, `interval` after the one booked before: the seconds to wait for it, or
        None where it is more than `longest` away (then nothing is booked)."""
        ...

    def push(self, key: str, interval: float) -> None:
        """A request of `key` was answered just now: its next turn no sooner than `interval` from now."""
        ...

    def first(self, key: str, seconds: float) -> bool:
        """Whether this is the first time `key` is asked for within `seconds`, by any process (a request
        body a platform takes once a minute)."""
        ...


class RedisTurns:
    """Turns booked in Redis. Redis away: no wait from here (the process's own pacing still holds)."""

    PREFIX = "turns:"

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def book(self, key: str, interval: float, longest: float) -> float | None:
        try:
            wait = float(self.redis.eval(_BOOK, 1, self.PREFIX + key, str(interval), str(longest)))  # type: ignore[arg-type]
        except RedisError as error:
            log.warning("shared turns unavailable, pacing this process only: %s", error)
            return 0.0
        return None if wait < 0 else wait

    def push(self, key: str, interval: float) -> None:
        try:
            self.redis.eval(_PUSH, 1, self.PREFIX + key, str(interval))
        except RedisError as error:
            log.warning("shared turns unavailable, pacing this process only: %s", error)

    def first(self, key: str, seconds: float) -> bool:
        try:
            return bool(self.redis.set(f"{self.PREFIX}once:{key}", 1, nx=True, px=int(seconds * 1000)))
        except RedisError:
            return True  # the process's own record still holds
