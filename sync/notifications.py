"""Order Notifications: the pipeline writes notices; the tick gathers them into mails; a job sends each.

- A notice is unique per order, kind and error, so a replayed page, a restart or a retry that fails the
  same way tells nothing twice.
- Within NOTIFY_WINDOW_SECONDS an integration sends at most one mail per kind: the first notice goes out
  at the next tick, what follows waits for the window to pass and then goes out together.
- A mail the SMTP server does not take stays pending and is tried again with backoff; a recipient the
  server refuses is kept as `rejected` for the panel to show, a 5xx answer to the mail itself as
  `failed`. Nothing else is dropped.
- Only a confirmed address gets mails, and an account at most MAIL_DAILY_CAP in 24 hours: over it, its
  mails are held back (gathered, one per integration and kind) until there is room.
- Account mails (the address confirmation, the password reset) are fixed text and a signed link.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
from collections.abc import Iterable
from datetime import datetime, timedelta
from email.charset import QP, Charset
from email.mime.text import MIMEText
from enum import StrEnum
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app, render_template, url_for
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from flask_mail import Message

from extensions import db, mail
from models import (
    Account,
    Integration,
    IntegrationSettings,
    MailState,
    NoticeKind,
    Notification,
    Order,
    OrderNotice,
)
from models.base import utcnow
from sync.guards import backoff, changed
from sync.settings import GeneralSettings

log = logging.getLogger(__name__)
# The longest server answer kept in the log.
ANSWER_LENGTH = 500
# Every state of a mail that went, or is going, to the SMTP server: what the daily cap counts.
GOING_OUT = (MailState.PENDING, MailState.SENDING, MailState.SENT, MailState.REJECTED)


# -- Notices: written by the pipeline, in the same transaction as the change they tell about ------------


def new_order(order: Order, settings: GeneralSettings) -> None:
    """Newly Added Orders."""
    if settings.notify_new_orders:
        _notice(order, NoticeKind.NEW_ORDERS, "", None)


def new_order_notices(
    settings: GeneralSettings, integration_id: int, order_ids: Iterable[int]
) -> list[dict[str, Any]]:
    """Newly Added Orders for orders the ingest writes in bulk: their notices as rows. None of them was
    told before (they are first seen), so none is looked up."""
    if not settings.notify_new_orders:
        return []
    return [
        {"order_id": order_id, "integration_id": integration_id, "kind": NoticeKind.NEW_ORDERS, "key": ""}
        for order_id in order_ids
    ]


def order_failed(order: Order) -> None:
    """Orders in Error Status: once per order and error, however often it is retried."""
    settings = db.session.get_one(IntegrationSettings, order.integration_id)
    if not settings.notify_error_orders:
        return
    reason = order.error_reason or ""
    key = f"{order.error_category}:{hashlib.sha256(reason.encode()).hexdigest()[:32]}"
    _notice(order, NoticeKind.ERROR_ORDERS, key, reason)


def _notice(order: Order, kind: NoticeKind, key: str, reason: str | None) -> None:
    if order.id is not None:
        told = db.session.scalar(
            sa.select(OrderNotice.id).where(
                OrderNotice.order_id == order.id, OrderNotice.kind == kind, OrderNotice.key == key
            )
        )
        if told is not None:
            return
    db.session.add(
        OrderNotice(order=order, integration_id=order.integration_id, kind=kind, key=key, reason=reason)
    )


# -- Gathering: notices into mails, at most one per integration and kind per window ---------------------


def gather(now: datetime) -> list[Notification]:
    """Open a mail for every integration and kind with notices waiting and no mail in the window; let
    mails held back by the daily cap go once there is room."""
    window = timedelta(seconds=current_app.config["NOTIFY_WINDOW_SECONDS"])
    opened = _release_held(now)
    waiting = db.session.execute(
        sa.select(OrderNotice.integration_id, OrderNotice.kind)
        .where(OrderNotice.notification_id.is_(None))
        .distinct()
    ).all()
    for integration_id, kind in waiting:
        held = db.session.scalar(
            sa.select(Notification).where(
                Notification.integration_id == integration_id,
                Notification.kind == kind,
                Notification.state == MailState.HELD,
            )
        )
        if held is not None:  # one mail waits for room already: what is new joins it
            held.order_count += _claim(held, integration_id, kind)
            db.session.commit()
            continue
        last = db.session.scalar(
            sa.select(sa.func.max(Notification.created_at)).where(
                Notification.integration_id == integration_id,
                Notification.kind == kind,
                Notification.state != MailState.SKIPPED,
            )
        )
        if last is not None and last > now - window:
            continue
        notification = _open(integration_id, NoticeKind(kind), now)
        if notification is not None and notification.state == MailState.PENDING:
            opened.append(notification)
    return opened


def _open(integration_id: int, kind: NoticeKind, now: datetime) -> Notification | None:
    integration = db.session.get_one(Integration, integration_id)
    account = db.session.get_one(Account, integration.account_id)
    state, why_not = _verdict(account, integration, kind, now)
    notification = Notification(
        account_id=account.id,
        integration_id=integration_id,
        kind=kind,
        recipient=account.notification_email or "",
        language=account.language,
        state=state,
        last_error=why_not,
        next_attempt_at=now,
        created_at=now,
    )
    db.session.add(notification)
    db.session.flush()
    taken = _claim(notification, integration_id, kind)
    if taken == 0:
        db.session.rollback()
        return None
    notification.order_count = taken
    db.session.commit()
    return notification


def _claim(notification: Notification, integration_id: int, kind: str) -> int:
    """Take every notice still unsent into the mail; a second scheduler gathering at the same moment
    takes none."""
    result = cast(
        sa.CursorResult[Any],
        db.session.execute(
            sa.update(OrderNotice)
            .where(
                OrderNotice.integration_id == integration_id,
                OrderNotice.kind == kind,
                OrderNotice.notification_id.is_(None),
            )
            .values(notification_id=notification.id)
        ),
    )
    return result.rowcount


def _verdict(account: Account, integration: Integration, kind: str, now: datetime) -> tuple[str, str | None]:
    """Whether a mail goes now (pending), waits for room (held), or not at all, and why."""
    settings = integration.settings
    enabled = settings.notify_new_orders if kind == NoticeKind.NEW_ORDERS else settings.notify_error_orders
    if not enabled:
        return MailState.SKIPPED, "the setting was turned off"
    if not account.notification_email:
        return MailState.SKIPPED, "the account has no notification email"
    if not account.notification_email_confirmed:
        return MailState.UNCONFIRMED, "the address is not confirmed"
    cap = current_app.config["MAIL_DAILY_CAP"]
    if _mails_today(account.id, now) >= cap:
        return (
            MailState.HELD,
            f"held back: the account sent its {cap} mails of 24 hours; it goes when there is room",
        )
    return MailState.PENDING, None


def _mails_today(account_id: int, now: datetime) -> int:
    """The account's mails handed to the SMTP server in the last 24 hours, and those about to be."""
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(
                Notification.account_id == account_id,
                Notification.state.in_(GOING_OUT),
                sa.or_(Notification.claimed_at.is_(None), Notification.claimed_at >= now - timedelta(days=1)),
            )
        )
        or 0
    )


def _release_held(now: datetime) -> list[Notification]:
    """Held mails whose account has room again go, to the address as it is now; the setting or the
    address gone meanwhile, they are not sent, like a mail opened then."""
    released = []
    for held in db.session.scalars(
        sa.select(Notification).where(Notification.state == MailState.HELD).order_by(Notification.id)
    ).all():
        integration = db.session.get_one(Integration, held.integration_id)
        account = db.session.get_one(Account, held.account_id)
        state, why_not = _verdict(account, integration, held.kind, now)
        if state == MailState.HELD:
            continue
        held.state, held.last_error = state, why_not
        held.recipient, held.language = account.notification_email or "", account.language
        held.next_attempt_at = now
        db.session.commit()  # one by one: the next one's count sees this one going
        if state == MailState.PENDING:
            released.append(held)
    return released


def stale_and_due(now: datetime) -> list[int]:
    """The sweeper: mails whose worker died go back to pending; pending mails nobody picked up are
    handed out again."""
    config = current_app.config
    db.session.execute(
        sa.update(Notification)
        .where(
            Notification.state == MailState.SENDING,
            Notification.claimed_at < now - timedelta(seconds=2 * config["MAIL_JOB_TIMEOUT"]),
        )
        .values(state=MailState.PENDING, next_attempt_at=now, enqueued_at=None)
    )
    requeue = now - timedelta(seconds=config["OUTBOX_REQUEUE_SECONDS"])
    due = db.session.scalars(
        sa.select(Notification.id)
        .where(
            Notification.state == MailState.PENDING,
            Notification.next_attempt_at <= now,
            sa.or_(Notification.enqueued_at.is_(None), Notification.enqueued_at < requeue),
        )
        .order_by(Notification.id)
        .limit(config["OUTBOX_SWEEP_BATCH"])
    ).all()
    db.session.commit()
    return list(due)


# -- Sending -------------------------------------------------------------------------------------------


def send(notification_id: int) -> datetime | None:
    """Send one mail if it is still pending; returns when to try again if the SMTP server failed."""
    claimed_at = utcnow()
    claimed = changed(
        sa.update(Notification)
        .where(Notification.id == notification_id, Notification.state == MailState.PENDING)
        .values(state=MailState.SENDING, claimed_at=claimed_at, attempts=Notification.attempts + 1)
    )
    db.session.commit()
    if not claimed:
        return None
    notification = db.session.get_one(Notification, notification_id)

    def settle(**values: object) -> None:
        changed(
            sa.update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.state == MailState.SENDING,
                Notification.claimed_at == claimed_at,
            )
            .values(**values)
        )
        db.session.commit()

    attempts = notification.attempts
    account = db.session.get_one(Account, notification.account_id)
    if not account.notification_email_confirmed or account.notification_email != notification.recipient:
        # A retry after the seller changed or removed the address: it goes nowhere but where they confirmed.
        settle(state=MailState.SKIPPED, last_error="the notification address changed before the mail went")
        return None
    try:
        message = compose(notification)
    except Exception as error:  # a bug in the mail itself: retrying would fail the same way
        log.exception("notification %s could not be composed", notification_id)
        settle(state=MailState.FAILED, last_error=f"could not be written: {type(error).__name__}: {error}")
        return None
    try:
        mail.send(message)
    except smtplib.SMTPRecipientsRefused as error:
        refusal = _bounded(
            "; ".join(
                f"{address}: {code} {text.decode(errors='replace')}"
                for address, (code, text) in error.recipients.items()
            ),
            ANSWER_LENGTH,
        )
        log.warning("the mail server refused notification %s: %s", notification_id, refusal)
        settle(state=MailState.REJECTED, last_error=refusal)
        return None
    except (smtplib.SMTPException, OSError) as error:
        if (answer := _final_answer(error)) is not None:
            log.warning("the mail server refused notification %s for good: %s", notification_id, answer)
            settle(state=MailState.FAILED, last_error=f"the mail server refused the mail: {answer}")
            return None
        retry_at = utcnow() + timedelta(seconds=backoff(attempts, prefix="MAIL"))
        log.warning("notification %s not sent (attempt %s): %s", notification_id, attempts, error)
        settle(
            state=MailState.PENDING,
            next_attempt_at=retry_at,
            enqueued_at=utcnow(),
            last_error=_bounded(f"{type(error).__name__}: {error}", ANSWER_LENGTH),
        )
        return retry_at
    settle(state=MailState.SENT, sent_at=utcnow(), last_error=None)
    return None


def compose(notification: Notification) -> Message:
    """The mail, in the account's language, as HTML with a plain-text part."""
    integration = db.session.get_one(Integration, notification.integration_id)
    notices = notification.notices
    count = len(notices)
    with (
        current_app.test_request_context(base_url=current_app.config["PUBLIC_URL"]),
        force_locale(notification.language),
    ):
        if notification.kind == NoticeKind.NEW_ORDERS:
            subject = ngettext(
                "%(num)d new order on %(name)s",
                "%(num)d new orders on %(name)s",
                count,
                name=integration.name,
            )
        else:
            subject = ngettext(
                "%(num)d order in error on %(name)s",
                "%(num)d orders in error on %(name)s",
                count,
                name=integration.name,
            )
        subject = " ".join(subject.split())  # one line, whatever the integration's name holds
        context = {
            "subject": subject,
            "integration": integration,
            "notices": notices,
            "reason_length": current_app.config["MAIL_REASON_LENGTH"],
        }
        html = render_template(f"mail/{notification.kind}.html", **context)
        text = render_template(f"mail/{notification.kind}.txt", **context)
    message = EncodedMessage(subject=subject, recipients=[notification.recipient], html=html, body=text)
    # The same mail keeps the same id, so a client shows a resend after a crash as one mail.
    domain = current_app.config["MAIL_DEFAULT_SENDER"].rpartition("@")[2].rstrip(">") or "orderhub.local"
    message.msgId = f"<notification-{notification.id}@{domain}>"
    return message


class EncodedMessage(Message):
    """Flask-Mail's message with its text parts in quoted-printable. Flask-Mail registers UTF-8 as 8bit,
    unwrapped: a line over 998 characters reached the server whole, which refused it ("500 Line too
    long"). Quoted-printable keeps every line under 78, whatever a reason or a name holds."""

    def _mimetext(self, text: str | None, subtype: str = "plain") -> MIMEText:
        charset = Charset("utf-8")
        charset.body_encoding = QP
        return MIMEText(text or "", _subtype=subtype, _charset=charset)  # type: ignore[arg-type]


def _final_answer(error: Exception) -> str | None:
    """The server's answer when it refused this mail for good: a 5xx to its sender or to the message
    (too big, a line too long, taken for spam). Trying again would meet the same answer. A 5xx while
    connecting, greeting or logging in is about the hub's SMTP set-up, not this mail: that, 4xx answers
    and lost connections are tried again."""
    if isinstance(error, smtplib.SMTPSenderRefused | smtplib.SMTPDataError) and 500 <= error.smtp_code < 600:
        answer = (
            error.smtp_error.decode(errors="replace")
            if isinstance(error.smtp_error, bytes)
            else error.smtp_error
        )
        return _bounded(f"{error.smtp_code} {answer}", ANSWER_LENGTH)
    return None


def _bounded(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


# -- Account mails: the address confirmation and the password reset ---------------------------------


class AccountMail(StrEnum):
    CONFIRM_ADDRESS = "confirm_address"  # to the notification address, before any notification goes there
    PASSWORD_RESET = "password_reset"  # to the account's sign-in address


def send_account_mail(account_id: int, kind: str, attempt: int) -> datetime | None:
    """One account mail, written when it goes (the link is signed now); returns when to try again if
    the SMTP server did not take it. A mail given up on is asked for again from the panel."""
    account = db.session.get(Account, account_id)
    if account is None:
        return None
    if kind == AccountMail.CONFIRM_ADDRESS:
        if not account.notification_email or account.notification_email_confirmed:
            return None  # removed, or confirmed meanwhile: nothing to confirm
        recipient, endpoint, token = (
            account.notification_email,
            "auth.confirm_address",
            account.confirmation_token(),
        )
    else:
        recipient, endpoint, token = account.email, "auth.reset_password", account.reset_token()
    message = compose_account_mail(AccountMail(kind), account.language, recipient, endpoint, token)
    try:
        mail.send(message)
    except (smtplib.SMTPException, OSError) as error:
        refused = isinstance(error, smtplib.SMTPRecipientsRefused) or _final_answer(error) is not None
        if refused or attempt >= current_app.config["ACCOUNT_MAIL_ATTEMPTS"]:
            log.error("%s mail of account %s not sent, given up: %s", kind, account_id, error)
            return None
        log.warning("%s mail of account %s not sent (attempt %s): %s", kind, account_id, attempt, error)
        return utcnow() + timedelta(seconds=backoff(attempt, prefix="MAIL"))
    log.info("%s mail of account %s sent", kind, account_id)
    return None


def compose_account_mail(
    kind: AccountMail, language: str, recipient: str, endpoint: str, token: str
) -> Message:
    """Fixed text in the account's language and the link: nothing a seller wrote goes to the address."""
    with current_app.test_request_context(base_url=current_app.config["PUBLIC_URL"]), force_locale(language):
        if kind is AccountMail.CONFIRM_ADDRESS:
            subject = _("Confirm your address for Order Hub notifications")
        else:
            subject = _("Reset your Order Hub password")
        context = {
            "subject": subject,
            "link": url_for(endpoint, token=token, _external=True),
            "valid_days": max(1, current_app.config["CONFIRMATION_MAX_AGE"] // 86400),
            "valid_minutes": max(1, current_app.config["PASSWORD_RESET_MAX_AGE"] // 60),
        }
        html = render_template(f"mail/{kind}.html", **context)
        text = render_template(f"mail/{kind}.txt", **context)
    return EncodedMessage(subject=subject, recipients=[recipient], html=html, body=text)
