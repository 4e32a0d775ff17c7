"""Flask extensions, created unbound here and bound to an app in `create_app`."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, cast

import sqlalchemy as sa
from flask import request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from htmx_flask.requests import HtmxAwareRequest, HtmxHeaders
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    # Stable constraint names, so migrations can drop and alter them on every database.
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
# Models subclass `Model`; mypy cannot see through Flask-SQLAlchemy's generated `db.Model`.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()
babel = Babel()
htmx = Htmx()
mail = Mail()


def hx() -> HtmxHeaders:
    """The htmx headers of this request; true when htmx sent it (`if hx():`)."""
    return cast(HtmxAwareRequest, request).htmx


limiter = Limiter(key_func=get_remote_address, default_limits=[])


@sa.event.listens_for(sa.Engine, "connect")
def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    """SQLite ignores ON DELETE CASCADE unless asked; PostgreSQL always honours it. The web process, the
    worker and the scheduler share one file: WAL lets them read while one writes, and a writer waits its
    turn instead of failing at once."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA foreign_keys=ON")
        dbapi_connection.execute("PRAGMA busy_timeout=30000")
        # Reads stay outside any transaction, so they never wait; a transaction starts at its first write
        # with BEGIN IMMEDIATE, which waits for the lock. A deferred one would start reading and then fail
        # at once ("database is locked") when its first write finds another writer ahead of it.
        dbapi_connection.isolation_level = "IMMEDIATE"
        if path := dbapi_connection.execute("PRAGMA database_list").fetchone()[2]:  # a file, not :memory:
            _private(Path(path))
            dbapi_connection.execute("PRAGMA journal_mode=WAL")


@sa.event.listens_for(sa.Engine, "savepoint")
def _sqlite_savepoint(connection: sa.Connection, _name: str) -> None:
    """The sqlite3 module begins a transaction before INSERT, UPDATE and DELETE only: a SAVEPOINT outside
    one would start a deferred transaction (see above), so the write lock is taken first."""
    dbapi_connection = connection.connection.dbapi_connection
    if isinstance(dbapi_connection, sqlite3.Connection) and not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN IMMEDIATE")


def _private(database: Path) -> None:
    """The database and its WAL files are readable by the owner only (the WAL files take the database's
    mode when SQLite creates them); files another user owns are theirs to guard."""
    for path in (
        database,
        database.with_name(database.name + "-wal"),
        database.with_name(database.name + "-shm"),
    ):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
