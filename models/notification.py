"""Order Notifications: what is to be told (notices) and the mails that told it (notifications)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import Model
from models.base import UTCDateTime, utcnow
from models.order import Order


class NoticeKind(StrEnum):
    NEW_ORDERS = "new_orders"  # Newly Added Orders
    ERROR_ORDERS = "error_orders"  # Orders in Error Status


class MailState(StrEnum):
    PENDING = "pending"  # waiting for its first send or for a retry after an SMTP failure
    SENDING = "sending"
    SENT = "sent"
    REJECTED = "rejected"  # the mail server refused the recipient: the seller must fix the address
    FAILED = "failed"  # the hub could not write the mail (a bug): logged, not tried again
    SKIPPED = "skipped"  # the setting was turned off, or the address removed, before it went
    UNCONFIRMED = "unconfirmed"  # not sent: nobody confirmed the address (it may be a stranger's)
    HELD = "held"  # over the account's daily cap: goes out, with whatever joins it, once there is room


class OrderNotice(Model):
    """One thing to tell about one order; unique, so a replayed page or a restart tells it once.

    `key` tells errors apart: the same error again (a retry that failed the same way) is not news, a new
    one is. A new order has one notice, with an empty key.
    """

    __tablename__ = "order_notices"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "kind", "key", name="uq_order_notices_order_kind_key"),
        sa.Index("ix_order_notices_unsent", "integration_id", "kind", "notification_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"))
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    key: Mapped[str] = mapped_column(sa.String(64), default="")
    reason: Mapped[str | None] = mapped_column(sa.Text)  # the error as it was when it happened
    notification_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("notifications.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    order: Mapped[Order] = relationship()


class Notification(Model):
    """One mail: the notices of one integration and kind, gathered over the batching window."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("ix_notifications_account_recent", "account_id", "id"),
        sa.Index("ix_notifications_integration_kind", "integration_id", "kind", "created_at"),
        sa.Index("ix_notifications_due", "state", "next_attempt_at"),
        sa.Index("ix_notifications_account_claimed", "account_id", "claimed_at"),  # the daily cap
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    recipient: Mapped[str] = mapped_column(sa.String(254), default="")
    language: Mapped[str] = mapped_column(sa.String(5), default="en")
    order_count: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(sa.String(16), default=MailState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    notices: Mapped[list[OrderNotice]] = relationship(order_by=OrderNotice.id)
