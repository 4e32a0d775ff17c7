"""The webhook inbox: every verified delivery, kept before it is answered, handled by a worker after."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from extensions import Model
from models.base import UTCDateTime, utcnow


class WebhookDelivery(Model):
    """One delivery a platform pushed, as far as the hub needs it: which order to read again.

    Unique on (integration, side, key): a delivery sent again, or the same change pushed twice, is one
    row, and the second is answered 200 and dropped. The payload itself is not kept: the worker reads
    the order as the platform holds it now (the payload is a hint), and the hub keeps no customer data
    it does not use.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint(
            "integration_id", "side", "key", name="uq_webhook_deliveries_integration_side_key"
        ),
        # The handler's and the sweeper's question: what is waiting, per integration, oldest first.
        sa.Index("ix_webhook_deliveries_waiting", "integration_id", "handled_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    side: Mapped[str] = mapped_column(sa.String(16))
    key: Mapped[str] = mapped_column(sa.String(128))
    topic: Mapped[str] = mapped_column(sa.String(100))
    subject: Mapped[str] = mapped_column(sa.String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Handed to RQ (the sweeper hands out what waits without it); tried; done, and how it ended.
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0)
    next_try_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(sa.String(32))
