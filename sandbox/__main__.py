"""`python -m sandbox`: serve the sandbox marketplace and shop, generating orders at a steady rate."""

from __future__ import annotations

import argparse
import os
import threading

from werkzeug.serving import run_simple

from sandbox.app import create_sandbox, run_generator
from sandbox.state import World


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "5050")))
    parser.add_argument(
        "--orders-per-minute", type=float, default=float(os.environ.get("SANDBOX_ORDERS_PER_MINUTE", "6"))
    )
    args = parser.parse_args()
    world = World()
    stop = threading.Event()
    threading.Thread(target=run_generator, args=(world, args.orders_per_minute, stop), daemon=True).start()
    rate = f"{args.orders_per_minute:g} orders a minute"
    print(f"sandbox on http://{args.host}:{args.port} ({rate})", flush=True)
    run_simple(args.host, args.port, create_sandbox(world), threaded=True)


if __name__ == "__main__":
    main()
