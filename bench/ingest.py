"""Ingest speed and memory: waiting packages into orders, lines, history and outbox, page by page.

    .venv/bin/python -m bench.ingest                       # 20,000 and 100,000 packages
    .venv/bin/python -m bench.ingest --sizes 5000          # one size

Targets: at least 1,000 orders/s on PostgreSQL, at least half the speed of a raw bulk insert of the same
rows into the same database (measured side by side here), and peak memory under 200 MB at 100,000.

The packages are the sandbox's (Trendyol's shape), made a page at a time and read by the connector's
parser, then ingested as a pull does it: a page of PULL_PAGE_SIZE, ingested and committed with the pull's
resume point. Printed per quarter of the run, so a slowdown as the tables grow shows. The baseline then
reads back the rows the ingest wrote for the first orders (up to --baseline), deletes them and inserts
them again with multi-row INSERTs, a page's worth per transaction. Needs PostgreSQL (BENCH_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any, cast

import psycopg
import sqlalchemy as sa

from bench.common import bench_app, database_url, peak_mb, redis
from connectors.base import PackagePage
from connectors.trendyol import parse_package
from extensions import db
from models import Account, Integration, IntegrationSettings, Order, OrderAction, OrderEvent, OrderLine
from models.notification import OrderNotice
from sandbox.state import World
from sync.ingest import ingest
from sync.pull import newest

# What one order leaves behind, child tables after their parents.
TABLES = (Order, OrderLine, OrderEvent, OrderAction, OrderNotice)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--baseline", type=int, default=20_000, help="orders in the raw insert")
    arguments = parser.parse_args()
    url = database_url()
    with redis() as redis_url:
        app = bench_app(url, redis_url)
        with app.app_context():
            page_size = app.config["PULL_PAGE_SIZE"]
            for size in arguments.sizes:
                integration_id = _fresh_schema()
                print(f"# {size:,} packages, pages of {page_size}; peak memory at start {peak_mb():.0f} MB")
                rate = _ingest(integration_id, size, page_size)
                peak = peak_mb()  # before the baseline, which holds its rows in memory
                raw = _baseline(integration_id, min(size, arguments.baseline), page_size)
                print(
                    f"ingest {rate:,.0f} orders/s · raw multi-row INSERT of the same rows {raw:,.0f} "
                    f"orders/s · ingest at {rate / raw:.0%} of raw · peak memory while ingesting "
                    f"{peak:.0f} MB\n"
                )
            db.session.remove()
            db.engine.dispose()


def _fresh_schema() -> int:
    db.drop_all()
    db.create_all()
    account = Account(email="bench@example.com", password_hash="x", language="en")
    db.session.add(account)
    db.session.flush()
    integration = Integration(
        account_id=account.id,
        name="Trendyol",
        marketplace_kind="trendyol",
        marketplace_base_url="https://apigw.trendyol.com/integration",
        shop_kind="woocommerce",
        shop_base_url="https://shop.example.com",
        own_shipping_agreement=True,
        settings=IntegrationSettings.defaults(),
    )
    integration.settings.approval_feedback = True
    integration.settings.notify_new_orders = True
    db.session.add(integration)
    db.session.commit()
    return integration.id


def _pages(size: int, page_size: int) -> Iterator[PackagePage]:
    """The packages a page at a time, as the connector hands them over; nothing kept in between."""
    world = World(seed=5)
    made = 0
    while made < size:
        count = min(page_size, size - made)
        orders = tuple(parse_package(world.create_package()) for _ in range(count))
        world.packages.clear()
        made += count
        yield PackagePage(orders=orders, unreadable=(), page=0, total_pages=1)


def _ingest(integration_id: int, size: int, page_size: int) -> float:
    """Ingest the pages as a pull does; print the rate per quarter. The rate of the whole run."""
    quarter, done, spent, quarter_spent = max(size // 4, 1), 0, 0.0, 0.0
    counter = _StatementCounter()
    # Without autovacuum (some test set-ups turn it off) the planner keeps the empty tables' statistics
    # and reads a growing table from start to end: analysed every tenth of the run, as autovacuum would.
    analyse = db.session.scalar(sa.text("SHOW autovacuum")) == "off"
    if analyse:
        print("  autovacuum is off here: the tables are analysed every tenth of the run instead")
    for page in _pages(size, page_size):
        started = time.perf_counter()
        with counter:
            integration = db.session.get_one(Integration, integration_id)
            settings = integration.settings.to_domain()
            result = ingest(integration, settings, page.orders)
            integration.pull_resume_from = newest(page, integration.pull_resume_from)
            db.session.commit()
        elapsed = time.perf_counter() - started
        assert result.new == len(page.orders) and not result.errors, result
        spent += elapsed
        quarter_spent += elapsed
        before, done = done, done + len(page.orders)
        if analyse and done // max(size // 10, 1) != before // max(size // 10, 1):
            db.session.execute(sa.text("ANALYZE orders, order_lines, order_events, order_actions"))
            db.session.commit()
        if done // quarter != before // quarter or done == size:
            print(
                f"  {done:>8,} orders  {quarter / quarter_spent if quarter_spent else 0:>8,.0f} orders/s "
                f"this quarter  peak {peak_mb():.0f} MB"
            )
            quarter_spent = 0.0
    print(f"  {counter.count / size:.2f} statements per order; {spent:.1f} s in all")
    return size / spent


class _StatementCounter:
    """Counts the statements sent to the database inside its blocks: those SQLAlchemy runs, and the COPYs
    the ingest's bulk path sends past it (sync/ingest.py `_write`)."""

    def __init__(self) -> None:
        self.count = 0
        self._copy = psycopg.Cursor.copy

    def _count(self, *_: object) -> None:
        self.count += 1

    def __enter__(self) -> None:
        sa.event.listen(db.engine, "before_cursor_execute", self._count)
        copy = self._copy

        def counted(cursor: psycopg.Cursor[Any], *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return copy(cursor, *args, **kwargs)

        psycopg.Cursor.copy = counted  # type: ignore[assignment,method-assign]

    def __exit__(self, *_: object) -> None:
        sa.event.remove(db.engine, "before_cursor_execute", self._count)
        psycopg.Cursor.copy = self._copy  # type: ignore[method-assign]


def _baseline(integration_id: int, orders: int, page_size: int) -> float:
    """The same rows as the first `orders` orders, written again with plain multi-row INSERTs."""
    order_ids = db.session.scalars(
        sa.select(Order.id).where(Order.integration_id == integration_id).order_by(Order.id).limit(orders)
    ).all()
    tables = [cast(sa.Table, model.__table__) for model in TABLES]
    keys = [table.c.id if table.name == "orders" else table.c.order_id for table in tables]
    rows = [
        [dict(row) for row in db.session.execute(sa.select(table).where(key.in_(order_ids))).mappings()]
        for table, key in zip(tables, keys, strict=True)
    ]
    for table, key in reversed(list(zip(tables, keys, strict=True))):
        db.session.execute(sa.delete(table).where(key.in_(order_ids)))
    db.session.commit()
    # Page by page, each table's rows of the page's orders: grouped before the clock starts.
    page_of = {order_id: index // page_size for index, order_id in enumerate(order_ids)}
    pages: list[list[list[dict[str, Any]]]] = [
        [[] for _ in tables] for _ in range(len(order_ids) // page_size + 1)
    ]
    for position, (table_rows, key) in enumerate(zip(rows, keys, strict=True)):
        for row in table_rows:
            pages[page_of[row[key.name]]][position].append(row)
    started = time.perf_counter()
    for page in pages:
        for table, page_rows in zip(tables, page, strict=True):
            if page_rows:
                db.session.execute(sa.insert(table), page_rows)
        db.session.commit()
    return len(order_ids) / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
