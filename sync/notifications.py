"""Order Notifications: the pipeline writes notices; the tick gathers them into mails; a job sends each.

- A notice is unique per order, kind and error, so a replayed page, a restart or a retry that fails the
  same way tells nothing twice.
- Within NOTIFY_WINDOW_SECONDS an integration sends at most one mail per kind: the first notice goes out
  at the next tick, what follows waits for the window to pass and then goes out together.
- A mail the SMTP server does not take stays pending and is tried again with backoff; a recipient the
  server refuses is kept as `rejected` for the panel to show. Nothing is dropped.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app, render_template
from flask_babel import force_locale, ngettext
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


# -- Notices: written by the pipeline, in the same transaction as the change they tell about ------------


def new_order(order: Order, settings: GeneralSettings) -> None:
    """Newly Added Orders."""
    if settings.notify_new_orders:
        _notice(order, NoticeKind.NEW_ORDERS, "", None)


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
    """Open a mail for every integration and kind with notices waiting and no mail in the window."""
    window = timedelta(seconds=current_app.config["NOTIFY_WINDOW_SECONDS"])
    waiting = db.session.execute(
        sa.select(OrderNotice.integration_id, OrderNotice.kind)
        .where(OrderNotice.notification_id.is_(None))
        .distinct()
    ).all()
    opened = []
    for integration_id, kind in waiting:
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
    settings = integration.settings
    enabled = settings.notify_new_orders if kind is NoticeKind.NEW_ORDERS else settings.notify_error_orders
    why_not = None
    if not enabled:
        why_not = "the setting was turned off"
    elif not account.notification_email:
        why_not = "the account has no notification email"
    notification = Notification(
        account_id=account.id,
        integration_id=integration_id,
        kind=kind,
        recipient=account.notification_email or "",
        language=account.language,
        state=MailState.SKIPPED if why_not else MailState.PENDING,
        last_error=why_not,
        next_attempt_at=now,
        created_at=now,
    )
    db.session.add(notification)
    db.session.flush()
    # Take every notice still unsent; a second scheduler gathering at the same moment takes none.
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
    if result.rowcount == 0:
        db.session.rollback()
        return None
    notification.order_count = result.rowcount
    db.session.commit()
    return notification


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
    try:
        message = compose(notification)
    except Exception as error:  # a bug in the mail itself: retrying would fail the same way
        log.exception("notification %s could not be composed", notification_id)
        settle(state=MailState.FAILED, last_error=f"could not be written: {type(error).__name__}: {error}")
        return None
    try:
        mail.send(message)
    except smtplib.SMTPRecipientsRefused as error:
        refusal = "; ".join(
            f"{address}: {code} {text.decode(errors='replace')}"
            for address, (code, text) in error.recipients.items()
        )
        log.warning("the mail server refused notification %s: %s", notification_id, refusal)
        settle(state=MailState.REJECTED, last_error=refusal)
        return None
    except (smtplib.SMTPException, OSError) as error:
        retry_at = utcnow() + timedelta(seconds=backoff(attempts, prefix="MAIL"))
        log.warning("notification %s not sent (attempt %s): %s", notification_id, attempts, error)
        settle(
            state=MailState.PENDING,
            next_attempt_at=retry_at,
            enqueued_at=utcnow(),
            last_error=f"{type(error).__name__}: {error}",
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
        context = {"subject": subject, "integration": integration, "notices": notices}
        html = render_template(f"mail/{notification.kind}.html", **context)
        text = render_template(f"mail/{notification.kind}.txt", **context)
    message = Message(subject=subject, recipients=[notification.recipient], html=html, body=text)
    # The same mail keeps the same id, so a client shows a resend after a crash as one mail.
    domain = current_app.config["MAIL_DEFAULT_SENDER"].rpartition("@")[2].rstrip(">") or "orderhub.local"
    message.msgId = f"<notification-{notification.id}@{domain}>"
    return message
