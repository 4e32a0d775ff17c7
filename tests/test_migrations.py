"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade

from app import create_app
from extensions import db
from tests.conftest import make_account, make_config, make_integration, make_line, make_order


@pytest.fixture
def empty_app(tmp_path: Path) -> Iterator[Flask]:
    """An app on an empty database: a fresh SQLite file, or the test PostgreSQL emptied first."""
    config = make_config()
    if config.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
        config.SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
    app = create_app(config)
    with app.app_context():
        db.drop_all()
        _drop_alembic_version()
        yield app
        db.session.remove()
        db.drop_all()
        _drop_alembic_version()
        db.engine.dispose()


def _drop_alembic_version() -> None:
    with db.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))


def test_upgrade_matches_the_models_and_downgrade_undoes_it(empty_app: Flask) -> None:
    upgrade()
    with db.engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), db.metadata
        )
    assert diff == []
    downgrade(revision="base")
    assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}


def test_upgrade_creates_every_check_constraint(empty_app: Flask) -> None:
    """Autogenerate does not compare CHECK constraints, so list them: a rule the model declares must be
    one the database enforces."""
    upgrade()
    inspector = sa.inspect(db.engine)
    checked = 0
    for table in db.metadata.sorted_tables:
        declared = {
            constraint.name
            for constraint in table.constraints
            if isinstance(constraint, sa.CheckConstraint) and constraint.name
        }
        built = {constraint["name"] for constraint in inspector.get_check_constraints(table.name)}
        assert declared <= built, table.name
        checked += len(declared)
    assert checked >= 4  # the rate range, the VAT choice and the two enums at least


def test_orders_cancelled_before_the_shop_end_on_upgrade(empty_app: Flask) -> None:
    """0011: an order cancelled on the marketplace that waited (or sat in the error queue) ends as
    cancelled first; one in the shop, or whose lines moved to a newer package, is left as it is."""
    # Written with today's models, then taken back to 0010's schema, so that 0011 meets them as it would.
    upgrade()
    integration = make_integration(make_account())
    waiting = make_order(integration, 1, status="Cancelled", error_reason="why")
    failed = make_order(integration, 2, status="UnSupplied", transfer_state="error", error_reason="why")
    shipped = make_order(integration, 3, status="Cancelled", transfer_state="transferred", shop_id="77")
    alive = make_order(integration, 4, status="Created", error_reason="why")
    origin = make_order(integration, 5, status="Cancelled")
    successor = make_order(integration, 6, origin_id=origin.id)
    ids = [order.id for order in (waiting, failed, shipped, alive, origin, successor)]
    db.session.remove()
    downgrade(revision="0010")
    upgrade(revision="0011")
    with db.engine.connect() as connection:
        found = {
            order_id: (state, reason)
            for order_id, state, reason in connection.execute(
                sa.text("SELECT id, transfer_state, error_reason FROM orders")
            )
        }
    assert [found[order_id] for order_id in ids] == [
        ("cancelled", None),
        ("cancelled", None),
        ("transferred", None),
        ("waiting", "why"),
        ("waiting", None),
        ("waiting", None),
    ]


def test_line_stock_flags_become_units_held_on_upgrade(empty_app: Flask) -> None:
    """0015: a line whose stock was taken and not given back holds its units; one given back, or never
    taken, holds none (written with today's models, taken back to 0014's two flags, then up again)."""
    upgrade()
    order = make_order(make_integration(make_account()), 1)
    held = make_line(order, "1", quantity=3, stock_held=3)
    returned = make_line(order, "2", quantity=2, cancelled=True, stock_held=0)
    untouched = make_line(order, "3", quantity=4, stock_held=0)
    db.session.commit()
    ids = [line.id for line in (held, returned, untouched)]
    db.session.remove()
    downgrade(revision="0014")
    with db.engine.connect() as connection:
        flags = dict(
            connection.execute(sa.text("SELECT id, stock_taken AND NOT stock_returned FROM order_lines"))
            .tuples()
            .all()
        )
    assert [bool(flags[line_id]) for line_id in ids] == [True, False, False]
    upgrade(revision="0015")
    with db.engine.connect() as connection:
        found = dict(connection.execute(sa.text("SELECT id, stock_held FROM order_lines")).tuples().all())
    assert [found[line_id] for line_id in ids] == [3, 0, 0]
