"""Orders > Error queue: one row per cause on one integration (27 orders refused for the same wrong keys
are one problem), with its count, what it means, where to fix it, and Retry or Ignore for the whole
group or for the orders picked in it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_login import current_user

from blueprints.auth.forms import EmptyForm
from blueprints.errors import ERROR_CATEGORIES
from blueprints.orders import bp
from blueprints.orders.routes import REASON_LENGTH, account_integrations, act_on_orders
from blueprints.params import parse_id, parse_number
from extensions import db
from models import ActionState, Integration, Order, OrderAction, TransferState
from models.base import MAX_ID

# The orders of a group listed on the page; Retry and Ignore of the group reach all of them.
SHOWN = 50


def _cause() -> sa.ColumnElement[str]:
    """An order's cause in the queue: its error category; one filed without is the hub's own failure."""
    # A literal, not a bound parameter: PostgreSQL groups by the very expression it selects.
    return sa.func.coalesce(sa.cast(Order.error_category, sa.String), sa.literal_column("'internal'"))


# Where a seller fixes a cause, when it is a place in the panel: (endpoint, link text, needs the
# integration). Causes fixed on the platform itself or by waiting have none; their advice says so.
FIX: dict[str, tuple[str, LazyString, bool]] = {
    "auth": ("integrations.edit_integration", _l("Enter the keys again on the Connection tab"), True),
    "blocked": ("integrations.edit_integration", _l("Correct the address on the Connection tab"), True),
    "unknown_product": ("products.list_products", _l("Check the product on the Products page"), False),
    "refused": ("integrations.general", _l("Check the General settings"), True),
}


@dataclass
class Group:
    integration: Integration
    category: str
    count: int
    orders: list[Order]  # the newest SHOWN of them

    @property
    def key(self) -> str:
        return f"{self.integration.id}-{self.category}"

    @property
    def fix(self) -> tuple[str, str] | None:
        """The link to where the cause is fixed, and its text."""
        if self.category not in FIX:
            return None
        endpoint, text, per_integration = FIX[self.category]
        if per_integration:
            return url_for(endpoint, integration_id=self.integration.id), str(text)
        return url_for(endpoint), str(text)


def open_errors(account_id: int, integration_id: int | None = None) -> int:
    """How many of the account's orders (or of one integration's) wait in the error queue."""
    query = (
        sa.select(sa.func.count())
        .select_from(Order)
        .where(Order.account_id == account_id, Order.transfer_state == TransferState.ERROR)
    )
    if integration_id is not None:
        query = query.where(Order.integration_id == integration_id)
    return db.session.scalar(query) or 0


def groups(account_id: int, integrations: dict[int, Integration]) -> list[Group]:
    """The account's orders in error by integration and cause, the largest group first."""
    found = []
    for integration_id, category, count in db.session.execute(
        sa.select(Order.integration_id, _cause(), sa.func.count())
        .where(
            Order.account_id == account_id,
            Order.transfer_state == TransferState.ERROR,
            Order.integration_id.in_(integrations),
        )
        .group_by(Order.integration_id, _cause())
        .order_by(sa.func.count().desc(), Order.integration_id, _cause())
    ):
        orders = db.session.scalars(
            _members(account_id, integration_id, category).order_by(Order.id.desc()).limit(SHOWN)
        ).all()
        found.append(Group(integrations[integration_id], category, count, list(orders)))
    return found


def _members(account_id: int, integration_id: int, category: str) -> sa.Select[tuple[Order]]:
    return sa.select(Order).where(
        Order.account_id == account_id,
        Order.integration_id == integration_id,
        Order.transfer_state == TransferState.ERROR,
        _cause() == category,
    )


@bp.get("/errors")
def errors() -> ResponseReturnValue:
    """The error queue, of every integration or of the one in `?integration=`."""
    integrations = {integration.id: integration for integration in account_integrations()}
    chosen = integrations.get(parse_id(request.args.get("integration", "")) or 0)
    if chosen is not None:
        integrations = {chosen.id: chosen}
    found = groups(current_user.id, integrations)
    shown = [order.id for group in found for order in group.orders]
    attempts: dict[int, int] = {}
    next_retry: dict[int, datetime | None] = {}
    if shown:
        for order_id, tries, due in db.session.execute(
            sa.select(
                OrderAction.order_id,
                sa.func.max(OrderAction.attempts),
                sa.func.min(
                    sa.case(
                        (OrderAction.state == ActionState.PENDING, OrderAction.next_attempt_at), else_=None
                    )
                ),
            )
            .where(OrderAction.order_id.in_(shown))
            .group_by(OrderAction.order_id)
        ):
            attempts[order_id], next_retry[order_id] = tries, due
    return render_template(
        "orders/errors.html",
        groups=found,
        only=chosen,
        attempts=attempts,
        next_retry=next_retry,
        button_form=EmptyForm(),
    )


@bp.post("/errors/<id:integration_id>/<category>/<any(retry, transfer, ignore):action>")
def act_on_group(integration_id: int, category: str, action: str) -> ResponseReturnValue:
    """Retry (Transfer again, for a deleted shop order) or Ignore every order of one cause on one
    integration, each order checked on its own."""
    back = url_for("orders.errors")
    if not EmptyForm().validate_on_submit():
        abort(400)
    if category not in ERROR_CATEGORIES:
        abort(404)
    integration = db.session.scalar(
        sa.select(Integration).where(
            Integration.id == integration_id, Integration.account_id == current_user.id
        )
    )
    if integration is None:
        abort(404)
    reason = request.form.get("reason", "").strip()[:REASON_LENGTH]
    if action == "ignore" and not reason:
        flash(_("Write why these orders are ignored; nothing was changed."), "error")
        return redirect(back)
    orders = db.session.scalars(_members(current_user.id, integration.id, category)).all()
    if parse_number(request.form.get("seen"), maximum=MAX_ID) != len(orders):
        # Orders came into the group (or left it) since the page was drawn: none is acted on unseen.
        flash(
            _("This group changed since you looked: %(count)d orders now. Look again.", count=len(orders)),
            "warning",
        )
        return redirect(back)
    act_on_orders(action, orders, reason, asked=len(orders))
    return redirect(back)


@bp.app_context_processor
def error_badge() -> dict[str, object]:
    """The navigation's count of orders in error, read only by the pages that show the navigation."""

    def count() -> int:
        return open_errors(current_user.id) if current_user.is_authenticated else 0

    return {"open_errors": count}
