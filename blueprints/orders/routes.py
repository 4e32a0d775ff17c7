"""The orders of the signed-in account, newest first, and the actions a seller starts by hand.

The live dashboard (filters, counts, polling, colours, detail) builds on this page.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from blueprints.auth.forms import EmptyForm
from blueprints.orders import bp
from blueprints.orders.view import OrderView
from extensions import db
from jobs.tasks import dispatch
from models import Integration, Order, OrderEvent, TransferState
from sync import actions
from sync.statuses import CANCELLATIONS

PAGE_SIZE = 100


@bp.before_request
@login_required
def require_login() -> None:
    """Every page of this blueprint needs a signed-in seller."""


def _get_order(order_id: int) -> Order:
    order = db.session.scalar(
        sa.select(Order).where(Order.id == order_id, Order.account_id == current_user.id)
    )
    if order is None:
        abort(404)
    return order


@bp.app_context_processor
def transfer_words() -> dict[str, object]:
    return {
        "transfer_labels": {
            TransferState.WAITING: _("Waiting"),
            TransferState.TRANSFERRED: _("Transferred"),
            TransferState.ERROR: _("Error"),
            TransferState.IGNORED: _("Ignored"),
        }
    }


@bp.get("")
def list_orders() -> ResponseReturnValue:
    """The latest orders of every integration of the account."""
    orders = db.session.scalars(
        sa.select(Order).where(Order.account_id == current_user.id).order_by(Order.id.desc()).limit(PAGE_SIZE)
    ).all()
    names = {
        row.id: row.name
        for row in db.session.execute(
            sa.select(Integration.id, Integration.name).where(Integration.account_id == current_user.id)
        )
    }
    return render_template("orders/list.html", orders=orders, names=names, button_form=EmptyForm())


@bp.get("/<id:order_id>")
def detail(order_id: int) -> ResponseReturnValue:
    """Order detail: both sides of the order and its whole history."""
    order = _get_order(order_id)
    integration = db.session.get_one(Integration, order.integration_id)
    events = db.session.scalars(order.events.select().order_by(OrderEvent.id)).all()
    return render_template(
        "orders/detail.html",
        order=order,
        integration=integration,
        view=OrderView.of(order),
        events=events,
        button_form=EmptyForm(),
    )


@bp.post("/<id:order_id>/transfer")
def transfer(order_id: int) -> ResponseReturnValue:
    """Transfer: send a waiting order to the shop now."""
    order = _get_order(order_id)
    if EmptyForm().validate_on_submit():
        if (
            order.canonical_status in (None, *CANCELLATIONS)
            or order.transferred
            or order.transfer_state == TransferState.IGNORED
        ):
            flash(_("Order %(number)s cannot be transferred now.", number=order.order_number), "warning")
        else:
            queued = actions.request_transfer(order)
            db.session.commit()
            dispatch(queued)
            flash(_("Order %(number)s is on its way to the shop.", number=order.order_number), "success")
    return redirect(url_for("orders.list_orders"))


@bp.post("/<id:order_id>/retry")
def retry(order_id: int) -> ResponseReturnValue:
    """Retry: run the order's failed steps again."""
    order = _get_order(order_id)
    if EmptyForm().validate_on_submit():
        queued = actions.retry(order)
        db.session.commit()
        dispatch(queued)
        flash(_("Order %(number)s is being retried.", number=order.order_number), "success")
    return redirect(url_for("orders.list_orders"))
