"""Exports of the Orders page too big to write inside a request: a job writes the file, and the file is
kept here, in the database, because the web and the workers may run on different machines."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from extensions import Model
from models.base import UTCDateTime, utcnow

# An export is kept this long; older ones go when the next one is created.
EXPORT_KEPT = timedelta(days=1)


class ExportState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class OrderExport(Model):
    """One export of the Orders page's view (its filters, every page) as a CSV or Excel file."""

    __tablename__ = "order_exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(sa.String(8))  # csv or xlsx
    filters: Mapped[str] = mapped_column(sa.Text, default="")  # the view's query string
    state: Mapped[str] = mapped_column(sa.String(16), default=ExportState.QUEUED)
    rows_done: Mapped[int] = mapped_column(default=0)
    rows_total: Mapped[int] = mapped_column(default=0)
    # Loaded only for the download: the progress poll reads the row every second.
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(sa.Text)

    @property
    def live(self) -> bool:
        """Queued or being written."""
        return self.state in (ExportState.QUEUED, ExportState.RUNNING)

    def stalled(self, timeout: int) -> bool:
        """Still live long after its job must have ended (its worker was killed, Redis lost the job)."""
        return self.live and self.created_at < utcnow() - timedelta(seconds=2 * timeout)
