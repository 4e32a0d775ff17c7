"""What every claim and retry of the pipeline shares: the guarded UPDATE and the backoff."""

from __future__ import annotations

import random
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app
from rq.timeouts import JobTimeoutException

from extensions import db

# What a seller reads when the hub itself failed: the exception's text (SQL, a payload) is for the log.
INTERNAL_ERROR = "an internal error of the hub (its log has the details)"

# Failures that are not one order's or one package's fault, so no `except Exception` that contains a
# failure to its order may swallow them: the job's time limit (RQ raises it inside the job), and a
# database that went away or broke the transaction off. The job fails; the cycle comes back.
NOT_CONTAINED: tuple[type[Exception], ...] = (
    JobTimeoutException,
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
)


def changed(statement: sa.Update, parameters: dict[str, Any] | None = None) -> bool:
    """Run a guarded UPDATE; true when it changed a row, i.e. this worker won the claim."""
    result = cast(sa.CursorResult[Any], db.session.execute(statement, parameters))
    return result.rowcount > 0


def backoff(attempts: int, prefix: str = "ACTION") -> float:
    """Exponential with jitter: a crowd of failed tries does not come back at the same second.

    `prefix` names the config pair to use: ACTION_BACKOFF_BASE/_MAX, or MAIL_BACKOFF_BASE/_MAX.
    """
    config = current_app.config
    base, cap = config[f"{prefix}_BACKOFF_BASE"], config[f"{prefix}_BACKOFF_MAX"]
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    return random.uniform(ceiling / 2, ceiling)
