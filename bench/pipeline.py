"""The whole pipeline, pull → transfer to the shop: orders per second with 1, 2 and 4 workers, requests per
transferred order, the workers' CPU time and memory.

    .venv/bin/python -m bench.pipeline                           # 1,000 orders; 1, 2 and 4 workers
    .venv/bin/python -m bench.pipeline --orders 5000 --workers 2
    .venv/bin/python -m bench.pipeline --approval-feedback       # each order also approved on Trendyol
    .venv/bin/python -m bench.pipeline --latency-ms 50           # each answer of the sandbox 50 ms late

The stack of the end-to-end tests (tests/stack.py) on PostgreSQL (database `orderhub_bench_pipeline` on the
BENCH_DATABASE_URL server): the sandbox over HTTP with no latency, a Redis of its own, N `flask worker`
processes and one `flask cron`, one integration with the default settings (automatic transfer on, approval
feedback off). Once the workers are registered and the first pull has run, M orders are placed on the
marketplace at once. Printed: orders per second from the first placed to the last in the shop, and per
quarter of the run (a slowdown as the tables grow shows there); when all were in the hub; the requests the
sandbox answered per transferred order, by method and path; the workers' CPU time per order (which other
work on the machine does not inflate, unlike the rates; the load average is printed with it) and each
worker's resident memory at the end.

Targets: at least 50 orders/s per worker, close to linear with 2 and 4, no slowdown from quarter to
quarter, and no more requests than the API needs (one lookup, one create). On a machine whose CPUs the
workers, the sandbox and PostgreSQL saturate, more workers cannot do more; `--latency-ms` makes each
answer of the sandbox late, as a real platform's are, so that the workers wait rather than compute and
their scaling shows on a small machine too.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import cpu_seconds, database_url, load, progress_output, request_shapes, rss_mb
from config import Config
from tests.stack import Stack, running_stack

# Read the hub's settings of a run from here (the rest are the hub's defaults, as in production).
SHOWN = (
    "TICK_SECONDS",
    "PULL_OVERLAP_EVERY",
    "PULL_PAGE_SIZE",
    "SYNC_PAGE_BUDGET",
    "SYNC_TIME_BUDGET",
    "ACTIONS_IN_FLIGHT",
)
# How long a run may take at most, per order (seconds): far beyond any speed worth measuring.
PATIENCE = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--approval-feedback", action="store_true", help="approve each order on Trendyol")
    parser.add_argument("--latency-ms", type=int, default=0, help="how late each sandbox answer comes")
    arguments = parser.parse_args()
    progress_output()
    url = database_url("orderhub_bench_pipeline")
    rates = {}
    for workers in arguments.workers:
        rates[workers] = run(
            url, arguments.orders, workers, arguments.approval_feedback, arguments.latency_ms
        )
    print(f"{'workers':>8} {'orders/s':>9} {'per worker':>11} {'vs one':>7}")
    for workers, rate in rates.items():
        one = rates.get(1)
        print(f"{workers:>8} {rate:>9.1f} {rate / workers:>11.1f} {f'{rate / one:.2f}×' if one else '':>7}")


def timings(workers: int) -> dict[str, str]:
    """The hub's settings for the most orders a second: a tick a second, and every worker busy with one
    of the integration's actions and another queued (one seller: its fair share is the ceiling)."""
    return {"TICK_SECONDS": "1", "ACTIONS_IN_FLIGHT": str(2 * workers)}


def run(url: str, orders: int, workers: int, approval_feedback: bool, latency_ms: int = 0) -> float:
    """One run on a fresh schema; prints what it measured and returns the orders per second."""
    settings = timings(workers)
    shown = " ".join(f"{name}={settings.get(name, getattr(Config, name))}" for name in SHOWN)
    print(
        f"# {orders:,} orders, {workers} worker(s); pull_interval=1 {shown}; automatic transfer on, "
        f"approval feedback {'on' if approval_feedback else 'off'}; sandbox answers {latency_ms} ms late"
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_stack(
            Path(tmp),
            workers=workers,
            database=url,
            timings=settings,
            approval_feedback=approval_feedback,
        ) as stack,
    ):
        stack.wait_ready()
        world = stack.sandbox.world
        world.faults.latency_ms = latency_ms
        before = len(world.requests)
        pids = [stack.processes[name].pid for name in stack.workers]
        cpu = [cpu_seconds(pid) for pid in pids]
        started = time.monotonic()
        for _ in range(orders):
            stack.sandbox.order()
        quarters, in_hub = _watch(stack, orders, started)
        requests = world.requests[before:]
        cpu = [cpu_seconds(pid) - used for pid, used in zip(pids, cpu, strict=True)]
        memory = [rss_mb(pid) for pid in pids]
        machine = load()
    took = quarters[-1]
    print(f"  all {orders:,} in the hub after {in_hub:.1f} s")
    marks = [0.0, *quarters]
    for quarter in range(4):
        done = orders * (quarter + 1) // 4
        size, spent = done - orders * quarter // 4, marks[quarter + 1] - marks[quarter]
        speed = size / spent if spent else float("inf")
        at = marks[quarter + 1]
        print(f"  quarter {quarter + 1}: {done:>7,} in the shop at {at:>6.1f} s {speed:>8.1f} orders/s")
    rate = orders / took
    print(f"  {orders:,} orders in {took:.1f} s: {rate:.1f} orders/s, {rate / workers:.1f} per worker")
    print(f"  requests to the sandbox per transferred order: {len(requests) / orders:.2f}")
    for shape, count in request_shapes(requests).most_common():
        print(f"    {count / orders:>6.2f}  {shape}")
    failed = sum(1 for _, _, status in requests if status >= 400)
    if failed:
        print(f"    ({failed} of them answered 4xx/5xx)")
    print(f"  worker CPU per order: {sum(cpu) / orders * 1000:.1f} ms ({machine} at the end)")
    print(f"  worker memory at the end (RSS): {', '.join(f'{mb:.0f} MB' for mb in memory)}\n")
    return rate


def _watch(stack: Stack, orders: int, started: float) -> tuple[list[float], float]:
    """Seconds from `started` to each quarter of the orders in the shop, and to all of them in the hub."""
    marks = [orders * quarter // 4 for quarter in (1, 2, 3, 4)]
    reached: list[float] = []
    in_hub = 0.0
    polls = 0
    while len(reached) < 4:
        now = time.monotonic() - started
        count = len(stack.sandbox.world.shop_orders)
        while len(reached) < 4 and count >= marks[len(reached)]:
            reached.append(now)
        if not in_hub and polls % 10 == 0 and stack.count() >= orders:
            in_hub = now
        if now > PATIENCE * orders + 60:
            raise SystemExit(
                f"gave up after {now:.0f} s with {count:,} orders in the shop\n{stack.summary()}"
            )
        if polls % 100 == 0:
            stack.check_alive()
        polls += 1
        time.sleep(0.05)
    return reached, in_hub or reached[-1]


if __name__ == "__main__":
    main()
