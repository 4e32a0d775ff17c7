"""A bad day for the whole pipeline: the end-to-end fault run (tests/stack.py `bad_day`) at full size.

    .venv/bin/python -m bench.faults --orders 10000              # 10,000 waiting, 5 minutes of faults
    .venv/bin/python -m bench.faults --orders 2000 --seconds 120 --arriving 200

The stack of the end-to-end tests on PostgreSQL (database `orderhub_bench_faults` on the BENCH_DATABASE_URL
server) with the tests' quick timings (tests/stack.py QUICK), N workers and one `flask cron`. The orders
wait on the marketplace; then for --seconds the sandbox answers 20 % 5xx, 10 % 429 (Retry-After 1 s),
loses 2 % of its answers after the effect and repeats the tail of the page before on half the listing
pages; a worker is killed (SIGKILL, with its scheduler) every --kill-every seconds and started again;
Redis is stopped a quarter of the way in and started again empty; the database terminates every
connection three quarters of the way in. Printed as it goes: what was done, and how many orders reached
the shop in each 10 s; then how long the rest took once the faults ended, the requests per order, and
the check: every order in the shop exactly once, no failed action, every process still up.

Targets: orders keep arriving in the shop throughout the faults (no interval without), and all of them
end there exactly once.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

from bench.common import database_url, progress_output
from tests.stack import QUICK, BadDay, bad_day, running_stack


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=10_000, help="waiting when the faults begin")
    parser.add_argument("--arriving", type=int, default=0, help="placed one by one during the faults")
    parser.add_argument("--seconds", type=float, default=300, help="how long the faults last")
    parser.add_argument("--kill-every", type=float, default=30, help="seconds between two killed workers")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shipped", type=int, default=0, help="packages shipped halfway through")
    parser.add_argument("--settle-timeout", type=float, default=3600, help="for the rest, after the faults")
    arguments = parser.parse_args()
    progress_output()
    plan = BadDay(
        orders=arguments.orders,
        arriving=arguments.arriving,
        seconds=arguments.seconds,
        kill_every=arguments.kill_every,
        shipped=arguments.shipped,
        settle_timeout=arguments.settle_timeout,
    )
    print(f"# {plan}\n# {arguments.workers} workers, pull_interval=1, hub settings {QUICK}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_stack(
            Path(tmp), workers=arguments.workers, database=database_url("orderhub_bench_faults")
        ) as stack,
    ):
        report = bad_day(stack, plan)
    total = plan.orders + plan.arriving
    still = sum(1 for count in report.arrivals if not count)
    print(
        f"\nduring the faults, per {plan.interval:.0f} s: {report.arrivals} "
        f"({sum(report.arrivals):,} orders; {still} interval(s) without one)"
    )
    print(f"after the faults, per {plan.interval:.0f} s: {report.after} ({sum(report.after):,} orders)")
    print(f"all {total:,} in the shop, outbox quiet, {report.seconds:.0f} s after the faults began")
    statuses = Counter(
        "2xx" if status < 300 else "429" if status == 429 else f"{status // 100}xx"
        for _, _, status in report.requests.elements()
    )
    requests = sum(statuses.values())
    print(
        f"requests to the sandbox: {requests / total:.2f} per order "
        f"({', '.join(f'{kind} {count:,}' for kind, count in sorted(statuses.items()))})"
    )
    print("exactly once in the shop, no failed action, every process still up: yes")


if __name__ == "__main__":
    main()
