"""The panel's products: stock the pipeline lowers for ordered lines and restores for cancelled ones."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from extensions import Model
from models.base import UTCDateTime, utcnow


class Product(Model):
    __tablename__ = "products"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "barcode", name="uq_products_account_barcode"),
        sa.Index("ix_products_account_stock_code", "account_id", "stock_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    barcode: Mapped[str] = mapped_column(sa.String(64))
    stock_code: Mapped[str] = mapped_column(sa.String(120), default="")
    name: Mapped[str] = mapped_column(sa.String(300))
    stock: Mapped[int] = mapped_column(default=0)
    price: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))
    vat_rate: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
