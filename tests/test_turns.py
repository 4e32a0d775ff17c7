"""Turns shared by every process (connectors/turns.py): two workers' requests for one seller keep a
platform's per-seller pace together, on a real Redis."""

from __future__ import annotations

import pytest
from redis import Redis

from connectors import ciceksepeti
from connectors.turns import RedisTurns


class Recorded(ciceksepeti.Clock):
    """A process's clock whose sleeps are noted rather than slept."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def turns(redis_url: str) -> RedisTurns:
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    return RedisTurns(redis)


def test_turns_are_booked_one_after_the_other_across_processes(turns: RedisTurns) -> None:
    assert turns.book("seller", 5.0, 6.0) == 0.0
    second = turns.book("seller", 5.0, 6.0)
    assert second is not None and 4.9 < second <= 5.0
    assert turns.book("seller", 5.0, 6.0) is None  # ten seconds off: not booked, the caller retries later
    assert turns.book("another seller", 5.0, 6.0) == 0.0


def test_two_workers_keep_cicek_sepeti_s_pace_together(turns: RedisTurns) -> None:
    one, other = ciceksepeti.Pacer(clock=Recorded()), ciceksepeti.Pacer(clock=Recorded())
    one.turn("seller", None, turns)
    other.turn("seller", None, turns)  # another process: its own pacer has seen nothing
    assert isinstance(other.clock, Recorded) and len(other.clock.slept) == 1
    assert ciceksepeti.REQUEST_INTERVAL <= other.clock.slept[0] <= ciceksepeti.MAX_WAIT
    one.turn("seller", None, turns)  # two turns off: waited for (its second request of a job)
    assert isinstance(one.clock, Recorded) and one.clock.slept[-1] >= 2 * ciceksepeti.REQUEST_INTERVAL
    with pytest.raises(ciceksepeti.RateLimited):
        other.turn("seller", None, turns)  # three turns off: left to the queue, no worker held


def test_without_redis_a_process_keeps_its_own_pace() -> None:
    turns = RedisTurns(Redis(port=1, socket_connect_timeout=0.5))
    pacer = ciceksepeti.Pacer(clock=Recorded())
    pacer.turn("seller", None, turns)
    pacer.turn("seller", None, turns)
    assert isinstance(pacer.clock, Recorded) and len(pacer.clock.slept) == 1


def test_a_body_sent_by_one_process_is_varied_by_the_next_within_the_minute(turns: RedisTurns) -> None:
    """Çiçeksepeti takes the same GetOrders body once a minute: another worker's lookup of the same order
    asks with a varied body rather than being refused."""

    def body(attempt: int) -> dict[str, object]:
        return {"orderNo": 7, "page": 0, "pageSize": 100 - attempt}

    one, other = ciceksepeti.Pacer(clock=Recorded()), ciceksepeti.Pacer(clock=Recorded())
    assert one.turn("seller", body, turns) == {"orderNo": 7, "page": 0, "pageSize": 100}
    assert other.turn("seller", body, turns) == {"orderNo": 7, "page": 0, "pageSize": 99}
