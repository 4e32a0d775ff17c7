"""Orders > Orders: the live list of the account's orders, the order detail, the error queue, and the
actions a seller starts by hand (each one runs as an RQ job; the pages follow it live)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from redis.exceptions import RedisError
from sqlalchemy.orm import selectinload

from blueprints.auth.forms import EmptyForm
from blueprints.integrations.forms import SETTING_TEXT
from blueprints.orders import bp, history
from blueprints.orders.colors import Palette, fingerprint, stylesheet
from blueprints.orders.listing import PAGE_SIZES, Filters, counts, matching, page
from blueprints.orders.view import OrderView
from blueprints.params import parse_id, parse_ids, parse_number
from extensions import db, hx
from jobs import redis_connection
from jobs.tasks import dispatch
from models import ActionState, Integration, Order, OrderAction, OrderEvent, TransferState
from sync import actions, changefeed
from sync.rules import Action
from sync.statuses import CANCELLATIONS, CanonicalStatus

# Routes that answer from Redis alone when nothing changed: they check the session themselves.
SELF_CHECKED = {"orders.changes", "orders.detail_live"}
REASON_LENGTH = 500
BACK_LENGTH = 2000
MAX_VERSION = 2**63 - 1  # the change feed's version is a Redis counter
# The pages of this blueprint, without dot segments or escapes a browser would resolve to another page.
BACK_PATH = re.compile(r"/orders(?:/[A-Za-z0-9_-]+)*")


@bp.before_request
def require_login() -> ResponseReturnValue | None:
    """Every page of this blueprint needs a signed-in seller."""
    if request.endpoint in SELF_CHECKED:
        return None
    return login_required(lambda: None)()


@bp.app_context_processor
def order_words() -> dict[str, object]:
    return {
        "transfer_labels": {
            TransferState.WAITING: _("Waiting"),
            TransferState.TRANSFERRED: _("Transferred"),
            TransferState.ERROR: _("Error"),
            TransferState.IGNORED: _("Ignored"),
            TransferState.CANCELLED: _("Cancelled first"),
        },
        "kind_labels": kind_labels(),
        # Why the hub did it: the General setting by its name on the page, or the seller's own ask.
        "rule_labels": {
            **{name: str(text[0]) for name, text in SETTING_TEXT.items()},
            "manual": _("You asked for it"),
            "priority": _("Transaction Priority"),
        },
        "event_labels": {
            "received": _("Received"),
            "decided": _("Decided"),
            "sent": _("Sent"),
            "failed": _("Failed"),
            "changed": _("Changed"),
            "stock": _("Stock"),
            "request": _("Requests"),
        },
        "action_labels": {
            ActionState.PENDING: _("Queued"),
            ActionState.RUNNING: _("Running"),
            ActionState.DONE: _("Done"),
            ActionState.FAILED: _("Failed"),
            ActionState.SUPERSEDED: _("Dropped"),
        },
    }


def kind_labels() -> dict[str, str]:
    """The outbox's actions as the seller reads them."""
    return {
        Action.TRANSFER.value: _("Transfer to the shop"),
        Action.APPROVE.value: _("Approve on the marketplace"),
        Action.SHOP_STATUS.value: _("Status to the shop"),
        Action.SHOP_CANCEL.value: _("Cancel in the shop"),
        Action.SHOP_NOTE.value: _("Note to the shop order"),
        Action.SHOP_TRACKING.value: _("Tracking code to the shop"),
        Action.MARKETPLACE_STATUS.value: _("Status to the marketplace"),
        Action.MARKETPLACE_TRACKING.value: _("Tracking code to the marketplace"),
    }


@bp.app_template_filter("pretty_json")
def pretty_json(value: object) -> str:
    """A payload for a person to read: indented, Turkish letters as they are (escaped by the template)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _get_order(order_id: int) -> Order:
    order = db.session.scalar(
        sa.select(Order).where(Order.id == order_id, Order.account_id == current_user.id)
    )
    if order is None:
        abort(404)
    return order


def account_integrations() -> list[Integration]:
    return list(
        db.session.scalars(
            sa.select(Integration)
            .where(Integration.account_id == current_user.id)
            .options(selectinload(Integration.settings), selectinload(Integration.status_colors))
            .order_by(Integration.name)
        )
    )


def _palettes(integrations: Iterable[Integration]) -> dict[int, Palette]:
    return {
        integration.id: Palette(
            integration.id,
            integration.status_color_map(),
            integration.settings.status_color_coding,
            integration.settings.row_color_coding,
            integration.settings.color_coding_rate,
        )
        for integration in integrations
    }


def _version(account_id: int | str) -> int:
    try:
        return changefeed.version(redis_connection(), account_id)
    except RedisError:
        return 0


def _known_version() -> int | None:
    """The account's version the page was drawn at (`?v=`)."""
    return parse_number(request.args.get("v"), maximum=MAX_VERSION)


def _unchanged() -> bool:
    """Whether the page's version (`?v=`) is still the account's: read from the signed session cookie
    and Redis alone, so an idle page's polls cost no database query."""
    # The cookie holds the account's id, or "<id>:<sign-in token>": the id is all this needs.
    account_id = parse_id(str(session.get("_user_id") or "").partition(":")[0])
    known = _known_version()
    if account_id is None or known is None:
        return False
    try:
        return changefeed.version(redis_connection(), account_id) == known
    except RedisError:
        return True  # cannot tell: the page stays as it is, and the next poll asks again


def _poll_start() -> ResponseReturnValue | None:
    """How a poll starts: 204 while the page is current (no database), the sign-in answer when the
    seller is signed out; None when the poll goes on to read what changed."""
    if _unchanged():
        return "", 204
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    return None


def _feed() -> changefeed.Changes | None:
    """The orders changed since the page's version; None when Redis cannot tell (the page waits)."""
    try:
        return changefeed.since(redis_connection(), current_user.id, _known_version() or 0)
    except RedisError:
        return None


# -- The list ------------------------------------------------------------------------------------------


@bp.get("")
def list_orders() -> ResponseReturnValue:
    """Every order of the account, filtered by the URL, newest first, kept live by a poll."""
    integrations = account_integrations()
    filters = Filters.parse(request.args, {integration.id for integration in integrations})
    version = _version(current_user.id)  # before the rows: a change after this shows on the next poll
    size = current_app.config["ORDERS_PAGE_SIZE"]
    shown = page(current_user.id, filters, size)
    if filters.after is not None and shown.newer is None:
        # Back at the newest orders: the first page itself, where new orders come in on top.
        return redirect(url_for("orders.list_orders", **filters.page()))
    palettes = _palettes(integrations)
    return render_template(
        "orders/list.html",
        orders=shown.orders,
        pages=shown,
        page_sizes=PAGE_SIZES,
        page_size=filters.size or size,
        filters=filters,
        integrations=integrations,
        names={integration.id: integration.name for integration in integrations},
        marketplaces={integration.id: integration.marketplace for integration in integrations},
        shops={integration.id: integration for integration in integrations},
        palettes=palettes,
        colors_version=fingerprint(palettes.values()),
        counts=counts(current_user.id, filters, redis_connection(), version),
        version=version,
        statuses=list(CanonicalStatus),
        transfer_states=list(TransferState),
        poll_seconds=current_app.config["ORDERS_POLL_SECONDS"],
        button_form=EmptyForm(),
    )


@bp.get("/changes")
def changes() -> ResponseReturnValue:
    """The list's poll. Nothing changed: 204 from the account's version in Redis, no database query.
    Otherwise the changed rows (and the counts) go out of band: replaced, added on top, or removed."""
    if (answer := _poll_start()) is not None:
        return answer
    if (feed := _feed()) is None:
        return "", 204
    if feed.order_ids is None:
        return "", 200, {"HX-Refresh": "true"}  # too far behind to catch up row by row
    integrations = account_integrations()
    filters = Filters.parse(request.args, {integration.id for integration in integrations})
    # Only the page itself sends these: a value that is no id is no row of it.
    shown = set(parse_ids(request.args.getlist("shown"))[0])
    selected = set(parse_ids(request.args.getlist("order"))[0])
    found = matching(current_user.id, filters, feed.order_ids)
    found_ids = {order.id for order in found}
    newest_shown = max(shown, default=0)
    replaced = [order for order in found if order.id in shown]
    # New on top only where the top is: page one of the list.
    added = [order for order in found if order.id not in shown and order.id > newest_shown and filters.top]
    removed = [order_id for order_id in feed.order_ids if order_id in shown and order_id not in found_ids]
    return render_template(
        "orders/_changes.html",
        replaced=replaced,
        added=added,
        first_rows=not shown,  # the page said "no orders yet": that goes with the first ones
        removed=removed,
        selected=selected,
        filters=filters,
        names={integration.id: integration.name for integration in integrations},
        marketplaces={integration.id: integration.marketplace for integration in integrations},
        shops={integration.id: integration for integration in integrations},
        palettes=_palettes(integrations),
        counts=counts(current_user.id, filters, redis_connection(), feed.version),
        version=feed.version,
        statuses=list(CanonicalStatus),
        transfer_states=list(TransferState),
    )


@bp.get("/counts")
def count_view() -> ResponseReturnValue:
    """The counts alone: asked for again when the page got counts from before its latest change."""
    filters = Filters.parse(request.args, {integration.id for integration in account_integrations()})
    return render_template(
        "orders/_counts.html",
        oob=False,
        filters=filters,
        counts=counts(current_user.id, filters, redis_connection(), _version(current_user.id)),
        statuses=list(CanonicalStatus),
        transfer_states=list(TransferState),
    )


@bp.get("/colors.css")
def colors_css() -> ResponseReturnValue:
    """The account's status colours (Color Coding), as a stylesheet: the CSP allows no inline style."""
    palettes = _palettes(account_integrations())
    return (
        stylesheet(palettes.values()),
        200,
        {"Content-Type": "text/css; charset=utf-8", "Cache-Control": "private, max-age=31536000, immutable"},
    )


# -- Bulk actions --------------------------------------------------------------------------------------


@bp.post("/bulk")
def bulk() -> ResponseReturnValue:
    """Transfer, Retry or Ignore the selected orders; each order is checked on its own."""
    back = _back()
    if not EmptyForm().validate_on_submit():
        abort(400)
    action = request.form.get("action", "")
    ids, invalid = parse_ids(request.form.getlist("order"))
    if invalid:
        abort(400)  # the page's checkboxes hold ids: this request was made by hand
    reason = request.form.get("reason", "").strip()[:REASON_LENGTH]
    if action not in BULK:
        flash(_("Choose Transfer, Retry or Ignore."), "error")
        return redirect(back)
    if not ids:
        flash(_("Select the orders first."), "warning")
        return redirect(back)
    if action == "ignore" and not reason:
        flash(_("Write why these orders are ignored; nothing was changed."), "error")
        return redirect(back)
    orders = db.session.scalars(
        sa.select(Order).where(Order.account_id == current_user.id, Order.id.in_(ids))
    ).all()
    act_on_orders(action, orders, reason, asked=len(ids))
    return redirect(back)


def act_on_orders(action: str, orders: Iterable[Order], reason: str, *, asked: int) -> None:
    """Transfer, Retry or Ignore the orders, each checked on its own; commit, hand the actions to the
    workers, and tell the seller how many it did of the `asked`."""
    done, queued = 0, []
    for order in orders:
        outcome = BULK[action](order, reason)
        if outcome is not None:
            done += 1
            queued.extend(outcome)
    db.session.commit()
    dispatch(queued)
    flash(
        _("%(action)s: %(done)d of %(total)d orders.", action=BULK_NAMES[action], done=done, total=asked),
        "success",
    )
    if asked > done:
        flash(_("%(count)d could not be: their state does not allow it.", count=asked - done), "warning")


def _back() -> str:
    """Where to go after an action: the Orders page it came from, checked as a browser would read it."""
    target = request.form.get("back", "")
    # A browser drops tabs and line breaks, reads a backslash as "/" and resolves dot segments before it
    # goes: such a target is refused rather than told apart from what the check saw.
    if len(target) <= BACK_LENGTH and target.isprintable() and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and BACK_PATH.fullmatch(parts.path):
            return f"{parts.path}?{parts.query}" if parts.query else parts.path
    return url_for("orders.list_orders")


def _transfer(order: Order, _reason: str = "") -> list[OrderAction] | None:
    if order.error_category == "shop_order_gone":  # deleted in the shop: made anew
        return actions.transfer_again(order)
    if order.canonical_status in (None, *CANCELLATIONS) or order.transferred:
        return None
    if order.transfer_state == TransferState.IGNORED:  # Transfer now on an ignored order takes it back
        order.transfer_state, order.ignored_reason = TransferState.WAITING, None
    elif order.transfer_state != TransferState.WAITING:
        return None
    return actions.request_transfer(order)


def _retry(order: Order, _reason: str = "") -> list[OrderAction] | None:
    if order.transfer_state != TransferState.ERROR:
        return None
    return actions.retry(order)


def _ignore(order: Order, reason: str) -> list[OrderAction] | None:
    return [] if actions.ignore(order, reason) else None


def _push(order: Order, _reason: str = "") -> list[OrderAction] | None:
    if not order.transferred:
        return None
    return actions.push_status(order)


BULK: dict[str, Callable[[Order, str], list[OrderAction] | None]] = {
    "transfer": _transfer,
    "retry": _retry,
    "ignore": _ignore,
}
ONE: dict[str, Callable[[Order, str], list[OrderAction] | None]] = {**BULK, "push": _push}
BULK_NAMES = {"transfer": _l("Transfer"), "retry": _l("Retry"), "ignore": _l("Ignore")}


# -- One order -----------------------------------------------------------------------------------------


@bp.get("/<id:order_id>")
def detail(order_id: int) -> ResponseReturnValue:
    """Order detail: both sides of the order, its actions as they run, and its whole history."""
    order = _get_order(order_id)
    return render_template("orders/detail.html", **_detail_context(order))


@bp.get("/<id:order_id>/live")
def detail_live(order_id: int) -> ResponseReturnValue:
    """The detail page's poll: 204 from Redis while the account's orders are unchanged, else the live
    part of the page again (actions in progress, statuses, history)."""
    if (answer := _poll_start()) is not None:
        return answer
    order = _get_order(order_id)
    if (feed := _feed()) is None:
        return "", 204
    if feed.order_ids is not None and order.id not in feed.order_ids:
        # Other orders of the account changed: only the page's version moves on.
        return render_template("orders/_live_update.html", order=None, version=feed.version)
    return render_template("orders/_live_update.html", oob=True, **_detail_context(order))


def _detail_context(order: Order) -> dict[str, object]:
    version = _version(current_user.id)  # before the reads: a change after it shows on the next poll
    integration = db.session.get_one(Integration, order.integration_id)
    events = db.session.scalars(order.events.select().order_by(OrderEvent.id)).all()
    recent = db.session.scalars(
        sa.select(OrderAction)
        .where(OrderAction.order_id == order.id)
        .order_by(OrderAction.id.desc())
        .limit(10)
    ).all()
    return {
        "order": order,
        "integration": integration,
        "view": OrderView.of(order, integration.marketplace),
        "timeline": history.timeline(order, events),
        "history": history.lines(events, integration, kind_labels()),
        "recent_actions": recent,
        "busy": any(action.state in (ActionState.PENDING, ActionState.RUNNING) for action in recent),
        "version": version,
        "poll_seconds": current_app.config["ORDERS_POLL_SECONDS"],
        "button_form": EmptyForm(),
        "hx_request": bool(hx()),
    }


@bp.post("/<id:order_id>/<any(transfer, retry, ignore, push):action>")
def act(order_id: int, action: str) -> ResponseReturnValue:
    """Transfer now, Retry, Ignore (with a reason) or Push status again, on one order."""
    order = _get_order(order_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    reason = request.form.get("reason", "").strip()[:REASON_LENGTH]
    if action == "ignore" and not reason:
        flash(_("Write why this order is ignored; nothing was changed."), "error")
    else:
        outcome = ONE[action](order, reason)
        if outcome is None:
            db.session.rollback()
            flash(_("Order %(number)s cannot do that now.", number=order.order_number), "warning")
        else:
            db.session.commit()
            dispatch(outcome)
            flash(MESSAGES[action] % {"number": order.order_number}, "success")
    if hx():
        return render_template("orders/_live_update.html", **_detail_context(_get_order(order_id)))
    return redirect(_back() if request.form.get("back") else url_for("orders.detail", order_id=order_id))


MESSAGES = {
    "transfer": _l("Order %(number)s is on its way to the shop."),
    "retry": _l("Order %(number)s is being retried."),
    "ignore": _l("Order %(number)s is ignored."),
    "push": _l("The status of order %(number)s is being pushed to the shop again."),
}
