"""Stock Management: each ordered line lowers the panel stock of its product by its live units; a line
cancelled in whole or in part puts the units back. The units the stock holds for each line are on the line
(`stock_held`), and only the difference to what it should hold moves: exactly-once, whatever is replayed,
and right however a cancellation splits the package."""

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
    """Take what the order's live lines need from the stock and the stock does not hold yet."""
    for line in _locked(OrderLine.order_id == _written_id(order)):
        units = line.live_quantity - line.stock_held
        if units <= 0:
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
        _move(product, -units)
        line.stock_held += units
        moved = {"product": product.name, "quantity": units}
        record(order, "stock", N_("%(product)s: stock −%(quantity)s"), moved, rule=rule)


def give_back(order: Order, rule: str) -> None:
    """Put back what the stock holds beyond the live units, for every line of the order's chain: a part
    cancellation leaves the cut units on a line that lives on in a newer package of the same order."""
    chain = sa.select(Order.id).where(
        Order.integration_id == order.integration_id, Order.reference == order.reference
    )
    for line in _locked(
        OrderLine.integration_id == order.integration_id,
        OrderLine.order_id.in_(chain),
        OrderLine.stock_held > 0,
        OrderLine.cancelled.is_(True) | (OrderLine.stock_held > OrderLine.quantity),
    ):
        units = line.stock_held - line.live_quantity
        line.stock_held = line.live_quantity
        product = find_product(order.account_id, line)
        if product is None:
            continue
        _move(product, units)
        moved = {"product": product.name, "quantity": units}
        record(order, "stock", N_("%(product)s: stock +%(quantity)s (cancelled)"), moved, rule=rule)


def _written_id(order: Order) -> int:
    """The order's id; one new on the page being ingested is written first (its lines are found by it)."""
    if order.id is None:
        db.session.flush()
    return order.id


def _locked(*where: sa.ColumnElement[bool]) -> list[OrderLine]:
    """The lines, locked and read afresh (what the session has is written first): two ingests of one
    order's packages (a pull and an import) then move its stock one after the other, each from what the
    other left, not both from what they read before."""
    return list(
        db.session.scalars(
            sa.select(OrderLine)
            .where(*where)
            .order_by(OrderLine.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def _move(product: Product, delta: int) -> None:
    # In the database, not in Python: two workers taking from one product both count.
    db.session.execute(sa.update(Product).where(Product.id == product.id).values(stock=Product.stock + delta))
    db.session.expire(product, ["stock"])
