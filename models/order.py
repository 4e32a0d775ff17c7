"""Orders as the hub holds them: one row per marketplace package, its lines, its history, its outbox."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from extensions import Model
from models.base import UTCDateTime, utcnow
from sync.statuses import CanonicalStatus


class TransferState(StrEnum):
    WAITING = "waiting"  # not in the shop yet (automatic transfer off, or on its way)
    TRANSFERRED = "transferred"
    ERROR = "error"  # something needs the seller: the reason says what
    IGNORED = "ignored"  # the seller chose to leave it out of the shop
    CANCELLED = "cancelled"  # cancelled on the marketplace before it reached the shop: nothing to do


class ActionState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SUPERSEDED = "superseded"  # overridden by a change from the other side (Transaction Priority)


MONEY = sa.Numeric(12, 2)


class Order(Model):
    __tablename__ = "orders"
    __table_args__ = (
        sa.UniqueConstraint("integration_id", "package_id", name="uq_orders_integration_package"),
        sa.Index("ix_orders_account_recent", "account_id", "id"),
        sa.Index("ix_orders_integration_reference", "integration_id", "reference"),
        # The Orders page: newest first within a filter, keyset by id.
        sa.Index("ix_orders_account_status", "account_id", "status", "id"),
        sa.Index("ix_orders_account_transfer", "account_id", "transfer_state", "id"),
        sa.Index("ix_orders_account_integration", "account_id", "integration_id", "id"),
        sa.Index("ix_orders_account_tracking", "account_id", "tracking_number"),
        sa.Index("ix_orders_integration_ordered", "integration_id", "ordered_at"),  # orders today
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    package_id: Mapped[str] = mapped_column(sa.String(64))
    order_number: Mapped[str] = mapped_column(sa.String(64), index=True)
    # The package this one was split from (Trendyol re-creates a package when a line is cancelled).
    origin_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    # The hub's reference in the shop order's meta_data: the first package of the chain.
    reference: Mapped[str] = mapped_column(sa.String(80))

    status: Mapped[str | None] = mapped_column(sa.String(32))  # CanonicalStatus; None while unreadable
    marketplace_status: Mapped[str] = mapped_column(sa.String(32), default="")
    marketplace_modified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A status the hub itself sent to the marketplace; when the marketplace reports it, it is no news.
    marketplace_echo: Mapped[str | None] = mapped_column(sa.String(32))
    transfer_state: Mapped[str] = mapped_column(sa.String(16), default=TransferState.WAITING)
    shop_id: Mapped[str | None] = mapped_column(sa.String(64))
    # When the hub first sent a create that may have reached the shop (committed before it goes out): only
    # then can the shop hold the order without the hub knowing its id, and a transfer looks it up first.
    shop_create_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shop_status: Mapped[str | None] = mapped_column(sa.String(32))  # last written or seen
    shop_tracking: Mapped[str] = mapped_column(sa.String(120), default="")  # last written or seen
    # The carrier the seller named in the shop with a tracking code of their own (for the marketplace).
    shop_carrier: Mapped[str] = mapped_column(sa.String(120), default="", server_default="")

    customer_name: Mapped[str] = mapped_column(sa.String(200), default="")
    customer_email: Mapped[str] = mapped_column(sa.String(254), default="")
    currency: Mapped[str] = mapped_column(sa.String(3), default="TRY")
    total: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    ordered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    carrier: Mapped[str] = mapped_column(sa.String(120), default="")
    tracking_number: Mapped[str] = mapped_column(sa.String(120), default="")
    shipment_barcode: Mapped[str] = mapped_column(sa.String(120), default="")
    package_number: Mapped[str] = mapped_column(sa.String(120), default="")
    tracking_link: Mapped[str] = mapped_column(sa.String(500), default="")

    error_reason: Mapped[str | None] = mapped_column(sa.Text)
    error_category: Mapped[str | None] = mapped_column(sa.String(32))
    review_reason: Mapped[str | None] = mapped_column(sa.Text)  # needs the seller's eye, not an error
    ignored_reason: Mapped[str | None] = mapped_column(sa.Text)  # why the seller left it out of the shop
    raw: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)  # the latest payload, as it came

    # While an action talks to a platform about this order, no other action does.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", order_by="OrderLine.id")
    events: WriteOnlyMapped[OrderEvent] = relationship(back_populates="order", passive_deletes=True)

    @property
    def canonical_status(self) -> CanonicalStatus | None:
        return CanonicalStatus(self.status) if self.status else None

    @property
    def transferred(self) -> bool:
        return self.shop_id is not None

    def fail(self, category: str, reason: str) -> None:
        self.transfer_state = TransferState.ERROR
        self.error_category = category
        self.error_reason = reason


class OrderLine(Model):
    """A marketplace order line; it follows its line id from package to package when Trendyol splits, and
    belongs to the package that holds it now (sync/ingest.py `_upsert_lines`)."""

    __tablename__ = "order_lines"
    __table_args__ = (
        sa.UniqueConstraint("integration_id", "line_id", name="uq_order_lines_integration_line"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    line_id: Mapped[str] = mapped_column(sa.String(64))
    barcode: Mapped[str] = mapped_column(sa.String(64), default="")
    stock_code: Mapped[str] = mapped_column(sa.String(120), default="")
    name: Mapped[str] = mapped_column(sa.String(300), default="")
    # The units as the live package holding the line last listed them (a cancelled package changes
    # nothing: which lines it still lists is not documented).
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(MONEY)
    vat_rate: Mapped[Decimal] = mapped_column(sa.Numeric(5, 2))
    cancelled: Mapped[bool] = mapped_column(default=False)  # the whole line: its package is cancelled
    # Units cancelled off the line as it went on into this package: left behind by a part cancellation of
    # the package it came from.
    cancelled_quantity: Mapped[int] = mapped_column(default=0, server_default="0")
    # Stock Management: the units the panel stock holds for the line, taken and not given back. It
    # should hold the live units (none for a cancelled line); moving the difference makes every take
    # and every give-back exactly-once, whatever is replayed.
    stock_held: Mapped[int] = mapped_column(default=0, server_default="0")
    # The units the shop order's notes have named as cancelled off this line: a line cut in place again
    # (Hepsiburada, Amazon) is noted for its new cut only.
    noted_cancelled: Mapped[int] = mapped_column(default=0, server_default="0")

    order: Mapped[Order] = relationship(back_populates="lines")

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity

    @property
    def live_quantity(self) -> int:
        """The units still going to the customer."""
        return 0 if self.cancelled else self.quantity


class OrderEvent(Model):
    """The order's history, append-only: what came in, what went out, the answer, and the rule behind it."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(sa.String(24))  # received, decided, sent, failed, changed, note
    # An English wording with %(name)s placeholders (a message id of the translations) and its values,
    # so the panel shows the line in the seller's language (blueprints/orders/history.py). Lines written
    # before it have no params: their summary is the wording itself.
    summary: Mapped[str] = mapped_column(sa.Text)
    params: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    rule: Mapped[str | None] = mapped_column(sa.String(64))
    payload: Mapped[Any | None] = mapped_column(sa.JSON)  # what came in or went out
    response: Mapped[str | None] = mapped_column(sa.Text)

    order: Mapped[Order] = relationship(back_populates="events")


class OrderAction(Model):
    """The outbox: an action decided in the same transaction as the change that caused it, run by RQ."""

    __tablename__ = "order_actions"
    __table_args__ = (
        sa.Index("ix_order_actions_due", "state", "next_attempt_at"),
        # An integration's actions in flight and waiting their turn (the fair share of the workers).
        sa.Index("ix_order_actions_integration_state", "integration_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    rule: Mapped[str] = mapped_column(sa.String(64))
    state: Mapped[str] = mapped_column(sa.String(16), default=ActionState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    # The platform's "later" (429) answers in a row: they give their attempt back, and the wait grows.
    throttles: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    order: Mapped[Order] = relationship()


class BackfillState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Backfill(Model):
    """Import orders from a date range: one run, its progress and its summary."""

    __tablename__ = "backfills"
    __table_args__ = (
        sa.Index("ix_backfills_integration_recent", "integration_id", "id"),
        # One import at a time per integration: a second one waiting or running is refused by the database.
        sa.Index(
            "uq_backfills_one_live",
            "integration_id",
            unique=True,
            sqlite_where=sa.text("state IN ('queued', 'running')"),
            postgresql_where=sa.text("state IN ('queued', 'running')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    end: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(sa.String(16), default=BackfillState.QUEUED)
    progress: Mapped[int] = mapped_column(default=0)  # per cent
    new: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    # Where the next run goes on from (each run has a time budget; a new run resumes, oldest first).
    resume_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
