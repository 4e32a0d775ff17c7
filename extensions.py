"""Flask extensions, created unbound here and bound to an app in `create_app`."""

from __future__ import annotations

import sqlite3
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
        if dbapi_connection.execute("PRAGMA database_list").fetchone()[2]:  # a file, not :memory:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
