"""A seller's account: sign-in, notification email and language; its sign-ins (login sessions)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app
from flask_login import UserMixin
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from extensions import Model, db, login_manager
from models.base import MAX_ID, UTCDateTime, utcnow

# One salt per purpose: a token signed for one thing is never accepted for another.
CONFIRMATION_SALT = "notification-email-confirmation"
RESET_SALT = "password-reset"


def _fingerprint(value: str) -> str:
    """What a token is bound to, without the value itself showing in a URL (tokens are signed, not
    encrypted: anyone holding one can read it)."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


class Account(UserMixin, Model):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    notification_email: Mapped[str | None] = mapped_column(sa.String(254))
    # When the notification address was confirmed by a link mailed to it; None: no mail goes there.
    notification_email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    language: Mapped[str] = mapped_column(sa.String(5), default="en")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    # The sign-in this object was loaded for or started with (not a column): what the cookies carry.
    session_token = ""

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @staticmethod
    def normalize_email(email: str) -> str:
        return email.strip().lower()

    # -- The notification address --------------------------------------------------------------------

    @property
    def notification_email_confirmed(self) -> bool:
        return bool(self.notification_email) and self.notification_email_confirmed_at is not None

    def change_notification_email(self, address: str | None) -> bool:
        """Set the address; a new one must be confirmed again. True when it changed."""
        if (address or None) == self.notification_email:
            return False
        self.notification_email = address or None
        self.notification_email_confirmed_at = None
        return True

    def confirmation_token(self) -> str:
        """The link's token: this account, this address (a changed address makes it worthless)."""
        address = self.notification_email or ""
        return _serializer(CONFIRMATION_SALT).dumps({"account": self.id, "address": _fingerprint(address)})

    @staticmethod
    def from_confirmation_token(token: str) -> Account | None:
        """The account whose current address the token confirms; None if forged, expired or stale."""
        data = _loads(CONFIRMATION_SALT, token, current_app.config["CONFIRMATION_MAX_AGE"])
        account = _account(data)
        if account is None or not account.notification_email:
            return None
        if not hmac.compare_digest(str(data.get("address")), _fingerprint(account.notification_email)):
            return None
        return account

    # -- Passwords ---------------------------------------------------------------------------------------

    def reset_token(self) -> str:
        """A password reset token, bound to the current password: once it is used (or the password
        changed otherwise) it is worthless."""
        return _serializer(RESET_SALT).dumps(
            {"account": self.id, "password": _fingerprint(self.password_hash)}
        )

    @staticmethod
    def from_reset_token(token: str) -> Account | None:
        data = _loads(RESET_SALT, token, current_app.config["PASSWORD_RESET_MAX_AGE"])
        account = _account(data)
        if account is None:
            return None
        if not hmac.compare_digest(str(data.get("password")), _fingerprint(account.password_hash)):
            return None
        return account

    # -- Sign-ins --------------------------------------------------------------------------------------

    def get_id(self) -> str:
        # The cookies carry the sign-in, not just the account, so that it can be ended on the server.
        return f"{self.id}:{self.session_token}"

    def start_session(self, user_agent: str) -> LoginSession:
        """A new sign-in of this account; the account's expired sign-ins are cleared out on the way."""
        db.session.execute(
            sa.delete(LoginSession).where(
                LoginSession.account_id == self.id, LoginSession.created_at < _oldest_live()
            )
        )
        token = secrets.token_urlsafe(32)
        row = LoginSession(id=LoginSession.digest(token), account_id=self.id, user_agent=user_agent[:255])
        db.session.add(row)
        self.session_token = token
        return row

    def end_sessions(self, keep_current: bool = False) -> int:
        """Sign out everywhere (or everywhere else); returns how many sign-ins ended."""
        statement = sa.update(LoginSession).where(
            LoginSession.account_id == self.id, LoginSession.revoked_at.is_(None)
        )
        if keep_current and (current := self.current_session_id()):
            statement = statement.where(LoginSession.id != current)
        result = cast(sa.CursorResult[Any], db.session.execute(statement.values(revoked_at=utcnow())))
        return result.rowcount

    def end_current_session(self) -> None:
        if current := self.current_session_id():
            db.session.execute(
                sa.update(LoginSession).where(LoginSession.id == current).values(revoked_at=utcnow())
            )

    def current_session_id(self) -> str | None:
        return LoginSession.digest(self.session_token) if self.session_token else None

    def live_sessions(self) -> list[LoginSession]:
        return list(
            db.session.scalars(
                sa.select(LoginSession)
                .where(
                    LoginSession.account_id == self.id,
                    LoginSession.revoked_at.is_(None),
                    LoginSession.created_at >= _oldest_live(),
                )
                .order_by(LoginSession.created_at.desc())
            )
        )


class LoginSession(Model):
    """One sign-in. The session and remember cookies carry its token; the table keeps only the token's
    hash, so a copy of the database signs nobody in. Signing out revokes the row, and a cookie copied
    before that is worth nothing after it."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # SHA-256 of the cookie's token
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    user_agent: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @staticmethod
    def digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


def _oldest_live() -> datetime:
    """A sign-in lasts as long as the remember cookie at most, whether the seller asked for it or not."""
    return utcnow() - current_app.config["REMEMBER_COOKIE_DURATION"]


def _loads(salt: str, token: str, max_age: int) -> dict[str, Any]:
    try:
        data = _serializer(salt).loads(token, max_age=max_age)
    except BadData:
        return {}
    return data if isinstance(data, dict) else {}


def _account(data: dict[str, Any]) -> Account | None:
    account_id = data.get("account")
    if not isinstance(account_id, int) or not 0 < account_id <= MAX_ID:
        return None
    return db.session.get(Account, account_id)


@login_manager.user_loader
def load_account(user_id: str) -> Account | None:
    """The account of a live sign-in: a revoked or expired one, or a cookie from before sign-ins were
    kept ("<account id>" alone), signs nobody in."""
    account_id, _, token = user_id.partition(":")
    if not (account_id.isascii() and account_id.isdigit()) or not 0 < int(account_id) <= MAX_ID or not token:
        return None
    account = db.session.scalar(
        sa.select(Account)
        .join(LoginSession, LoginSession.account_id == Account.id)
        .where(
            Account.id == int(account_id),
            LoginSession.id == LoginSession.digest(token),
            LoginSession.revoked_at.is_(None),
            LoginSession.created_at >= _oldest_live(),
        )
    )
    if account is not None:
        account.session_token = token
    return account
