"""What a hostile answer costs the worker: memory and time of one call through the outbound guard.

    .venv/bin/python -m bench.outbound                 # 100 MB, with and without Content-Length
    .venv/bin/python -m bench.outbound --megabytes 500

A platform on this machine answers a listing with N megabytes of JSON; the guard reads it as a stream up
to OUTBOUND_MAX_BYTES (16 MB by default) and stops. Printed: the peak resident memory of this process
before and after each call (ru_maxrss), the time the call took and how it ended. Without the cap, the
worker read the whole answer and more than doubled its memory.
"""

from __future__ import annotations

import argparse
import resource
import threading
import time
from collections.abc import Iterator

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from connectors.base import ConnectorError
from connectors.http import Guard, Outbound

CHUNK = b'{"x": "' + b"y" * 65_000 + b'"},\n'


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=int, default=100)
    size = parser.parse_args().megabytes * 1024 * 1024

    def answer(request: Request) -> Response:
        chunks = size // len(CHUNK)

        def body() -> Iterator[bytes]:
            for _ in range(chunks):
                yield CHUNK

        headers = {"Content-Length": str(chunks * len(CHUNK))} if request.args.get("declared") else {}
        return Response(body(), mimetype="application/json", headers=headers)

    server = make_server("127.0.0.1", 0, Request.application(answer), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    guard = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}))
    print(f"answer of {size / 1024 / 1024:.0f} MB, cap {guard.max_bytes / 1024 / 1024:.0f} MB")
    print(f"{'case':<34} {'peak MB before':>15} {'peak MB after':>14} {'seconds':>8}  result")
    for case, query in (("streamed, no Content-Length", ""), ("Content-Length declared", "?declared=1")):
        before = peak_mb()
        started = time.perf_counter()
        try:
            Outbound(guard, platform="Bench").request("GET", f"http://127.0.0.1:{server.port}/{query}")
            result = "read in full"
        except ConnectorError as error:
            result = str(error)
        took = time.perf_counter() - started
        print(f"{case:<34} {before:>15.1f} {peak_mb():>14.1f} {took:>8.2f}  {result}")
    server.shutdown()


if __name__ == "__main__":
    main()
