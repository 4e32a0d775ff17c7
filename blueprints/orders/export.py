"""Orders > Orders > Export: the orders of the view (its filters, every page) as a CSV file for a
spreadsheet, streamed a thousand rows at a time, so a big seller's export runs in flat memory.

Written as the page's language writes numbers and as its spreadsheets read them: in Turkish, fields
separated by ";" and decimals with a comma (Excel's Turkish list separator), in English "," and a dot;
UTF-8 with a byte order mark, so Excel reads Turkish letters; times in the panel's time zone. A text
that starts like a formula (=, +, -, @) is kept as text, so a customer name cannot run in the seller's
spreadsheet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Response, current_app, request, stream_with_context
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal, get_locale, pgettext
from flask_babel import gettext as _
from flask_login import current_user

from blueprints.orders import bp
from blueprints.orders.listing import Filters, conditions
from blueprints.orders.routes import account_integrations, order_words
from extensions import db
from models import Order
from models.base import utcnow

CHUNK = 1000
FORMULA = ("=", "+", "-", "@", "\t", "\r")


@bp.get("/export.csv")
def export_csv() -> ResponseReturnValue:
    integrations = {integration.id: integration for integration in account_integrations()}
    filters = Filters.parse(request.args, set(integrations))
    turkish = str(get_locale()) == "tr"
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    transfer_labels = order_words()["transfer_labels"]
    account_id = current_user.id

    def text(value: object) -> str:
        shown = "" if value is None else str(value)
        return "'" + shown if shown.startswith(FORMULA) else shown

    def amount(value: Decimal | None) -> str:
        return "" if value is None else str(format_decimal(value, format="0.00"))

    def row(order: Order) -> list[str]:
        integration = integrations[order.integration_id]
        moment = order.ordered_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if order.ordered_at else ""
        return [
            text(order.order_number),
            text(order.package_id),
            text(integration.name),
            integration.marketplace.label,
            moment,
            text(order.customer_name),
            text(order.customer_email),
            amount(order.total),
            order.currency,
            order.canonical_status.label if order.canonical_status else _("Unreadable"),
            text(order.marketplace_status),
            text(order.shop_id),
            integration.shop.status_name(order.shop_status) if order.shop_status else "",
            str(transfer_labels[order.transfer_state]),  # type: ignore[index]
            text(order.error_reason or order.ignored_reason or order.review_reason),
            text(order.carrier),
            text(order.tracking_number),
        ]

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";" if turkish else ",", lineterminator="\r\n")
        writer.writerow(_headers())
        yield "\ufeff" + buffer.getvalue()
        where = conditions(account_id, filters)
        before: int | None = None
        while True:
            query = sa.select(Order).where(*where).order_by(Order.id.desc()).limit(CHUNK)
            if before is not None:
                query = query.where(Order.id < before)
            orders = db.session.scalars(query).all()
            if not orders:
                return
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(row(order) for order in orders)
            before = orders[-1].id
            for order in orders:
                db.session.expunge(order)  # nothing kept from chunk to chunk
            yield buffer.getvalue()

    name = f"orders-{utcnow().astimezone(zone):%Y-%m-%d-%H%M}.csv"
    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _headers() -> list[str]:
    """The header row, in the request's language."""
    return [
        _("Order number"),
        _("Package"),
        _("Integration"),
        _("Marketplace"),
        _("Date"),
        _("Customer"),
        _("Email"),
        _("Total"),
        _("Currency"),
        _("Status"),
        _("Marketplace status"),
        _("Shop order"),
        _("Shop status"),
        pgettext("the transfer state of an order", "Transfer"),
        _("Reason"),
        _("Carrier"),
        _("Tracking code"),
    ]
