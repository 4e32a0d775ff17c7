"""Stock Management: each ordered line lowers the panel stock of its product once; a cancelled line
puts it back once. The flags on the line make both exactly-once, whatever is replayed."""

from __future__ import annotations

import sqlalchemy as sa

from extensions import db
from models import Order, OrderLine, Product
from sync.history import record
from sync.wording import N_


def find_product(account_id: int, line: OrderLine) -> Product | None:
    """The panel product of a line: by barcode, else by stock code."""
    for column, value in ((Product.barcode, line.barcode), (Product.stock_code, line.stock_code)):
        if value:
            product = db.session.scalar(
                sa.select(Product).where(Product.account_id == account_id, column == value).limit(1)
            )
            if product is not None:
                return product
    return None


def take(order: Order, rule: str) -> None:
    for line in order.lines:
        if line.stock_taken or line.cancelled:
            continue
        product = find_product(order.account_id, line)
        if product is None:
            record(
                order,
                "stock",
                N_("no panel product with barcode %(barcode)s: stock unchanged"),
                {"barcode": line.barcode or "–"},
                rule=rule,
            )
            continue
        _move(product, -line.quantity)
        line.stock_taken = True
        moved = {"product": product.name, "quantity": line.quantity}
        record(order, "stock", N_("%(product)s: stock −%(quantity)s"), moved, rule=rule)


def give_back(order: Order, rule: str) -> None:
    if order.id is None:
        db.session.flush()  # new on the page being ingested: its lines are matched by its id
    for line in db.session.scalars(
        sa.select(OrderLine).where(
            OrderLine.integration_id == order.integration_id,
            OrderLine.cancelled.is_(True),
            OrderLine.stock_taken.is_(True),
            OrderLine.stock_returned.is_(False),
            OrderLine.order_id == order.id,
        )
    ):
        product = find_product(order.account_id, line)
        line.stock_returned = True
        if product is None:
            continue
        _move(product, line.quantity)
        moved = {"product": product.name, "quantity": line.quantity}
        record(order, "stock", N_("%(product)s: stock +%(quantity)s (cancelled)"), moved, rule=rule)


def _move(product: Product, delta: int) -> None:
    # In the database, not in Python: two workers taking from one product both count.
    db.session.execute(sa.update(Product).where(Product.id == product.id).values(stock=Product.stock + delta))
    db.session.expire(product, ["stock"])
