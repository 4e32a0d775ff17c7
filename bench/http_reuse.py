"""What a connector costs an action: building it and its first request, with a new HTTP client each time
(as every action did before) and with the process's shared client.

    .venv/bin/python -m bench.http_reuse              # 500 rounds
    .venv/bin/python -m bench.http_reuse --rounds 2000

A shop on this machine (plain HTTP, keep-alive) answers one order. Each round builds a WooCommerce connector
behind the outbound guard, reads the order and closes the connector. "new client" forgets the process's
clients first, so every round builds a client and opens a connection; "shared client" reuses both; "fresh
process" also loads the certificate store again, as a work horse forked per job (WORKER_FORK) does when its
parent never loaded it. Printed: milliseconds per round (median and 95th percentile), and the building
alone. A real shop adds the TLS handshake to every new connection, which this local one does not have.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from connectors.http import Guard, _ssl_context, close_clients
from connectors.woocommerce import WooCommerceConnector

ORDER = '{"id": 1, "status": "processing", "meta_data": [], "date_modified_gmt": "2026-11-27T10:00:00"}'
CREDENTIALS = {"consumer_key": "ck_bench", "consumer_secret": "cs_bench"}


def timings(rounds: int, step: Callable[[], None], *, fresh: bool, cold: bool = False) -> list[float]:
    """Milliseconds of each round; `fresh`: the process's clients forgotten (and closed) before it;
    `cold`: the certificate store too."""
    taken = []
    for _ in range(rounds):
        if fresh:
            close_clients()
        if cold:
            _ssl_context.cache_clear()
        started = time.perf_counter()
        step()
        taken.append((time.perf_counter() - started) * 1000)
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=500)
    rounds = parser.parse_args().rounds

    server = make_server(
        "127.0.0.1",
        0,
        Request.application(lambda request: Response(ORDER, mimetype="application/json")),
        threaded=True,
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shop = f"http://127.0.0.1:{server.port}"
    guard = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}))

    def build() -> None:
        WooCommerceConnector(shop, CREDENTIALS, guard).close()

    def build_and_read() -> None:
        connector = WooCommerceConnector(shop, CREDENTIALS, guard)
        connector.get_order("1")
        connector.close()

    build_and_read()  # the SSL context and the imports, once per process either way
    print(f"{rounds} rounds against a local shop")
    print(f"{'case':<36} {'median ms':>10} {'p95 ms':>8} {'total s':>8}")
    for case, step, fresh, cold in (
        ("build only, fresh process", build, True, True),
        ("build only, new client", build, True, False),
        ("build only, shared client", build, False, False),
        ("build + one request, new client", build_and_read, True, False),
        ("build + one request, shared client", build_and_read, False, False),
    ):
        taken = timings(rounds, step, fresh=fresh, cold=cold)
        p95 = statistics.quantiles(taken, n=20)[-1]
        print(f"{case:<36} {statistics.median(taken):>10.3f} {p95:>8.3f} {sum(taken) / 1000:>8.2f}")
    close_clients()
    server.shutdown()


if __name__ == "__main__":
    main()
