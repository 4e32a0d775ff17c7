"""The notification log of the signed-in account, and the mails the local SMTP sink received.

The mailbox exists where MAIL_SINK_DIR is set (development): it shows only the account's own
notification mails, known by their Message-ID and checked against the notification log.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

import sqlalchemy as sa
from flask import abort, current_app, render_template
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from blueprints.notifications import bp
from blueprints.params import parse_id
from extensions import db
from models import Integration, MailState, NoticeKind, Notification, Order, OrderNotice

PAGE_SIZE = 100
# The mail's own HTML, shown framed on the mailbox page: its inline styles, nothing that runs.
MAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; "
    "frame-ancestors 'self'; sandbox"
)
NOTIFICATION_ID = re.compile(r"<notification-([0-9]+)@[^>]+>$")
# The names mailsink.py gives its files: "<time in nanoseconds>-<8 hex digits>".
MAIL_NAME = re.compile(r"[0-9]{1,20}-[0-9a-f]{8}")


@bp.before_request
@login_required
def require_login() -> None:
    """Every page of this blueprint needs a signed-in seller."""


@bp.app_context_processor
def notification_words() -> dict[str, object]:
    return {
        "notice_kinds": {
            NoticeKind.NEW_ORDERS: _("Newly Added Orders"),
            NoticeKind.ERROR_ORDERS: _("Orders in Error Status"),
        },
        "mail_states": {
            MailState.PENDING: _("Waiting"),
            MailState.SENDING: _("Sending"),
            MailState.SENT: _("Sent"),
            MailState.REJECTED: _("Address refused"),
            MailState.SKIPPED: _("Not sent"),
            MailState.FAILED: _("Failed"),
            MailState.UNCONFIRMED: _("Address not confirmed"),
            MailState.HELD: _("Held back (daily limit)"),
        },
    }


@bp.get("")
def log() -> ResponseReturnValue:
    """Every notification of the account, newest first: what, to whom, when, and how it went."""
    notifications = db.session.scalars(
        sa.select(Notification)
        .where(Notification.account_id == current_user.id)
        .order_by(Notification.id.desc())
        .limit(PAGE_SIZE)
    ).all()
    orders: dict[int, list[tuple[int, str]]] = {}
    if notifications:
        for notification_id, order_id, number in db.session.execute(
            sa.select(OrderNotice.notification_id, Order.id, Order.order_number)
            .join(Order, Order.id == OrderNotice.order_id)
            .where(
                OrderNotice.notification_id.in_([n.id for n in notifications]),
                Order.account_id == current_user.id,
            )
            .order_by(OrderNotice.id)
        ):
            orders.setdefault(notification_id, []).append((order_id, number))
    names = {
        row.id: row.name
        for row in db.session.execute(
            sa.select(Integration.id, Integration.name).where(Integration.account_id == current_user.id)
        )
    }
    rejected = next((n for n in notifications if n.state == MailState.REJECTED), None)
    return render_template(
        "notifications/log.html",
        notifications=notifications,
        orders=orders,
        names=names,
        rejected=rejected if rejected and rejected.recipient == current_user.notification_email else None,
        mailbox=bool(current_app.config.get("MAIL_SINK_DIR")),
    )


# -- The local mailbox (development) ---------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    name: str
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def recipients(self) -> list[str]:
        return [address for _, address in getaddresses(self.message.get_all("To", []))]

    @property
    def sender(self) -> str:
        return str(self.message["From"] or "")

    @property
    def date(self) -> datetime | None:
        try:
            return parsedate_to_datetime(str(self.message["Date"]))
        except (TypeError, ValueError):
            return None

    @property
    def notification_id(self) -> int | None:
        match = NOTIFICATION_ID.match(str(self.message["Message-ID"] or "").strip())
        # Anyone who reaches the sink can send it a mail: its id is read as every id is.
        return parse_id(match.group(1)) if match else None

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else ""


def _sink() -> Path:
    directory = current_app.config.get("MAIL_SINK_DIR")
    if not directory:
        abort(404)
    return Path(directory)


def _owned(mails: list[Mail]) -> list[Mail]:
    """The mails that are this account's notifications: known by the Message-ID the hub gave them and
    checked against the database, never by the To: address (which a seller can set to anyone's)."""
    ids = {mail.notification_id: mail for mail in mails if mail.notification_id is not None}
    if not ids:
        return []
    mine = set(
        db.session.scalars(
            sa.select(Notification.id).where(
                Notification.id.in_(list(ids)), Notification.account_id == current_user.id
            )
        )
    )
    return [mail for mail in mails if mail.notification_id in mine]


def _read(path: Path) -> Mail:
    with path.open("rb") as file:
        message = email.message_from_binary_file(file, policy=email.policy.default)
    return Mail(path.stem, message)


def _get_mail(name: str) -> Mail:
    # Only a name the sink gives can be one of its mails: anything else never reaches the file system
    # (where a long one is an error of its own, and a path another place).
    if not MAIL_NAME.fullmatch(name):
        abort(404)
    path = _sink() / f"{name}.eml"
    if not path.is_file():
        abort(404)
    mail = _read(path)
    if not _owned([mail]):
        abort(404)
    return mail


@bp.get("/mailbox")
def mailbox() -> ResponseReturnValue:
    """The mails the local SMTP sink received for this account, newest first."""
    directory = _sink()
    paths = sorted(directory.glob("*.eml"), reverse=True) if directory.is_dir() else []
    mails = _owned([_read(path) for path in paths[: PAGE_SIZE * 5]])[:PAGE_SIZE]
    return render_template("notifications/mailbox.html", mails=mails, directory=directory)


@bp.get("/mailbox/<name>")
def mail(name: str) -> ResponseReturnValue:
    return render_template("notifications/mail.html", mail=_get_mail(name))


@bp.get("/mailbox/<name>/html")
def mail_html(name: str) -> ResponseReturnValue:
    """The HTML part alone, for the sandboxed frame on the mail's page."""
    html = _get_mail(name).part("html")
    return (
        html,
        200,
        {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": MAIL_CSP,
            "X-Frame-Options": "SAMEORIGIN",
        },
    )
