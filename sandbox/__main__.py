"""`python -m sandbox`: serve the sandbox marketplace and shop, generating orders at a steady rate.

With `--state FILE` (as `make run` starts it: instance/sandbox.json) the sandbox keeps its orders and the
shop's stock across restarts, so a hub that keeps its database finds on the platforms the orders it holds;
`make reset` starts both afresh.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
from pathlib import Path

from werkzeug.serving import run_simple

from sandbox.app import create_sandbox, run_generator
from sandbox.state import World

# How often the state is written when it changed (seconds).
SAVE_EVERY = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "5050")))
    parser.add_argument(
        "--orders-per-minute", type=float, default=float(os.environ.get("SANDBOX_ORDERS_PER_MINUTE", "6"))
    )
    parser.add_argument("--state", type=Path, help="keep the orders in this file across restarts")
    args = parser.parse_args()
    world = World()
    kept = ""
    if args.state is not None and world.load(args.state):
        kept = f", {len(world.packages)} packages and {len(world.shop_orders)} shop orders from {args.state}"
    stop = threading.Event()
    threading.Thread(target=run_generator, args=(world, args.orders_per_minute, stop), daemon=True).start()
    if args.state is not None:
        threading.Thread(target=keep, args=(world, args.state, stop), daemon=True).start()
    rate = f"{args.orders_per_minute:g} orders a minute"
    print(f"sandbox on http://{args.host}:{args.port} ({rate}{kept})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C under `make run`: stop without a traceback
        run_simple(args.host, args.port, create_sandbox(world), threaded=True)
    stop.set()
    if args.state is not None:
        world.save(args.state)


def keep(world: World, path: Path, stop: threading.Event) -> None:
    """Write the world to `path` whenever it changed, every SAVE_EVERY seconds."""
    saved = ""
    while not stop.wait(SAVE_EVERY):
        saved = world.save(path, saved)


if __name__ == "__main__":
    main()
