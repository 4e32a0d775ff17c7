"""The job wrapper: every job is its own unit of work, even in the in-process worker."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from extensions import db
from jobs import job
from models import Account
from tests.conftest import make_account


@job
def _broken_job(email: str) -> None:
    db.session.add(Account(email=email, password_hash="x", language="en"))
    db.session.flush()  # a duplicate email: the flush fails, the session needs a rollback


@job
def _count_accounts() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Account)) or 0


def test_a_failed_job_leaves_a_clean_session_for_the_next(app: Flask) -> None:
    account = make_account()
    with pytest.raises(sa.exc.IntegrityError):
        _broken_job(account.email)
    assert _count_accounts() == 1
