"""Column helpers shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

# The largest id a 32-bit integer column holds: ids beyond it are no ids (blueprints/params.py).
MAX_ID = 2**31 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite forgets the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def draw_ids(session: Session) -> None:
    """Give the session's new rows their ids before the flush, on PostgreSQL: one statement per table
    draws them from its sequence, and the flush then writes plain multi-row INSERTs, without the
    RETURNING and the bookkeeping of ids coming back. Elsewhere (SQLite) the flush fetches them."""
    if session.get_bind().dialect.name != "postgresql":
        return
    waiting: dict[sa.Table, list[Any]] = {}
    for row in session.new:
        table = sa.inspect(row).mapper.local_table
        if isinstance(table, sa.Table) and "id" in table.c and getattr(row, "id", 0) is None:
            waiting.setdefault(table, []).append(row)
    for table, rows in waiting.items():
        for row, id_ in zip(rows, new_ids(session, table, len(rows)) or [], strict=True):
            row.id = id_


def new_ids(session: Session, table: sa.Table, count: int) -> list[int] | None:
    """`count` ids for new rows of the table, drawn from its sequence in one statement (PostgreSQL);
    None where there are no sequences (SQLite), and the INSERT has to return them."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return list(
        session.scalars(
            sa.select(sa.func.nextval(sa.func.pg_get_serial_sequence(table.name, "id"))).select_from(
                sa.func.generate_series(1, count)
            )
        )
    )
