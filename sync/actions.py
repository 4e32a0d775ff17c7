"""Running one outbox action: claim it, talk to the platform, record the answer, decide what follows.

Every remote effect is idempotent: a transfer whose create may have reached the shop already looks the
order up by the hub's reference before creating it again, a status or tracking push compares with what
the shop holds first. So a retry after a crash between the remote call and the local commit does nothing
twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

import httpx
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from connectors.base import (
    Blocked,
    ConnectorError,
    Permanent,
    RateLimited,
    Retryable,
    ShippingCharge,
    ShopConnector,
    ShopLine,
    ShopOrder,
    ShopOrderPlan,
)
from connectors.carriers import tracking_page
from connectors.factory import marketplace_for, shop_for
from connectors.http import recording
from connectors.payload import NotYet
from connectors.registry import MARKETPLACES
from extensions import db
from models import ActionState, Integration, Order, OrderAction, OrderLine, TransferState
from models.base import utcnow
from sync import changefeed, notifications
from sync.guards import INTERNAL_ERROR, NOT_CONTAINED, backoff, changed
from sync.history import enqueue, open_actions, record
from sync.ingest import has_successor, lives_on_elsewhere, tracking_code
from sync.rules import TO_MARKETPLACE, TO_SHOP, Action, Event, Facts, decide, tracking_link
from sync.settings import GeneralSettings
from sync.statuses import CANCELLATIONS, RANK, CanonicalStatus
from sync.wording import N_

log = logging.getLogger(__name__)
# The actions that call the marketplace (what a kind's `actions_in_flight` counts).
CALL_MARKETPLACE = frozenset({Action.APPROVE, *TO_MARKETPLACE})
CENT = Decimal("0.01")
INTERNAL = f"{INTERNAL_ERROR}; Retry once it is fixed"
# The history lines of a transfer that made or found the shop order (the order page's timeline looks
# for them).
CREATED = N_("created in the shop as #%(shop_id)s (%(shop_status)s)")
CREATED_AFTER_LOOKUP = N_(
    "created in the shop as #%(shop_id)s (%(shop_status)s); no order with reference %(reference)s was "
    "there yet"
)
FOUND = N_(
    "already in the shop as #%(shop_id)s (found by reference %(reference)s: an earlier attempt created it)"
)
IN_THE_SHOP = frozenset({CREATED, CREATED_AFTER_LOOKUP, FOUND})
# What the seller must settle by hand (`review_reason`, shown translated; the history says the rest).
COMPLETED_THEN_CANCELLED = N_(
    "Cancelled on the marketplace after the shop completed it: check the shipment and refund by hand."
)
SHIPPED_THEN_CANCELLED = N_(
    "Cancelled in the shop after the marketplace shipped it: the marketplace takes no cancellation now. "
    "Let the customer return it, or settle it with the customer by hand."
)
ACCEPT_THEN_CANCEL = N_(
    "Cancelled in the shop, but the marketplace takes a seller's cancellation only once the package is "
    "accepted: accept it there and cancel it again, or reject it in the marketplace's seller panel."
)
TOTAL_DIFFERS = N_(
    "The shop order's total is not what the customer paid on the marketplace, even with the hub's "
    "correction line: check the order in the shop and the shop's tax settings."
)
# How far behind the hub's clock a shop's clock may run: a lookup after a lost answer reads the orders
# created since the first create went out, less this.
SHOP_CLOCK_MARGIN = timedelta(minutes=10)

# The statements every action runs, built once as Core statements with parameters. Built per call, an
# ORM statement cost more to build, to key for SQLAlchemy's compiled cache and to pass through the ORM's
# bulk-update machinery than to run (a third of a transfer's CPU, measured with py-spy): these rows are
# changed by guarded UPDATEs that the session holds no copy of, or does not read again before the commit
# expires it. (Bind names differ from column names: SQLAlchemy keeps those for the SET clause.)
ACTIONS = cast(sa.Table, OrderAction.__table__)
ORDERS = cast(sa.Table, Order.__table__)
CLAIMED = (
    ACTIONS.c.id,
    ACTIONS.c.order_id,
    ACTIONS.c.integration_id,
    ACTIONS.c.attempts,
    ACTIONS.c.throttles,
)


def _claiming(statement: sa.Update) -> sa.Update:
    return statement.values(
        state=ActionState.RUNNING, attempts=ACTIONS.c.attempts + 1, claimed_at=sa.bindparam("now")
    ).returning(*CLAIMED)


# An action waiting for its turn: pending, due, and not handed out, or handed out and lost: due for
# OUTBOX_REQUEUE_SECONDS (`handed`) and still pending. (A retry handed to RQ's scheduler long before it is
# due is not lost while it waits: handing it out again would run it twice.)
HANDED: sa.BindParameter[datetime] = sa.bindparam("handed")
TURN = sa.and_(
    ACTIONS.c.state == ActionState.PENDING,
    ACTIONS.c.next_attempt_at <= sa.bindparam("now"),
    sa.or_(
        ACTIONS.c.enqueued_at.is_(None),
        sa.and_(ACTIONS.c.enqueued_at < HANDED, ACTIONS.c.next_attempt_at < HANDED),
    ),
)


# Never before its time: a job the scheduler hands out early (it keeps whole seconds) claims nothing.
CLAIM = _claiming(
    sa.update(ACTIONS).where(
        ACTIONS.c.id == sa.bindparam("action"),
        ACTIONS.c.state == ActionState.PENDING,
        ACTIONS.c.next_attempt_at <= sa.bindparam("now"),
    )
)
NOT_YET = sa.select(ACTIONS.c.next_attempt_at).where(
    ACTIONS.c.id == sa.bindparam("action"), ACTIONS.c.state == ActionState.PENDING
)
# An integration's oldest action waiting for its turn, claimed in the same statement; a row another
# worker is claiming at this moment is skipped, not waited for (PostgreSQL; SQLite runs one writer).
CLAIM_NEXT = _claiming(
    sa.update(ACTIONS).where(
        ACTIONS.c.id
        == sa.select(ACTIONS.c.id)
        .where(ACTIONS.c.integration_id == sa.bindparam("integration"), TURN)
        .order_by(ACTIONS.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery(),
        ACTIONS.c.state == ActionState.PENDING,
    )
)
# The order's row is skipped, not waited for, while another transaction holds it (an ingest page, a shop
# poll): the claim is not committed yet, and waiting for the order while holding the action could meet
# a transaction that holds the order and waits for the action (PostgreSQL; SQLite runs one writer).
LEASE = (
    sa.update(ORDERS)
    .where(
        ORDERS.c.id == sa.bindparam("order"),
        sa.or_(ORDERS.c.lease_until.is_(None), ORDERS.c.lease_until < sa.bindparam("now")),
        ORDERS.c.id.in_(
            sa.select(ORDERS.c.id)
            .where(ORDERS.c.id == sa.bindparam("order"))
            .with_for_update(skip_locked=True)
        ),
    )
    .values(lease_until=sa.bindparam("until"))
    .returning(ORDERS.c.account_id)
)
RELEASE = (
    sa.update(ORDERS)
    .where(ORDERS.c.id == sa.bindparam("order"), ORDERS.c.lease_until == sa.bindparam("until"))
    .values(lease_until=None)
)
# The claim's outcome; the columns it sets come with the parameters.
SETTLE = sa.update(ACTIONS).where(
    ACTIONS.c.id == sa.bindparam("action"),
    ACTIONS.c.state == ActionState.RUNNING,
    ACTIONS.c.claimed_at == sa.bindparam("claimed"),
)
# The note that a create goes out, and its withdrawal.
CREATE_SENT = (
    sa.update(ORDERS)
    .where(ORDERS.c.id == sa.bindparam("order"), ORDERS.c.shop_create_sent_at.is_(None))
    .values(shop_create_sent_at=sa.bindparam("sent_at"))
)
CREATE_TAKEN_BACK = (
    sa.update(ORDERS)
    .where(ORDERS.c.id == sa.bindparam("order"), ORDERS.c.shop_create_sent_at == sa.bindparam("sent_at"))
    .values(shop_create_sent_at=None)
)
FIRST_CREATE_SENT = sa.select(sa.func.min(ORDERS.c.shop_create_sent_at)).where(
    ORDERS.c.integration_id == sa.bindparam("integration"), ORDERS.c.reference == sa.bindparam("reference")
)


class Deferred(Exception):
    """The action cannot run yet (its order is busy, or waits for its transfer); try again shortly."""

    def __init__(self, why: str, seconds: float = 3) -> None:
        super().__init__(why)
        self.seconds = seconds


@dataclass
class Outcome:
    action_id: int = 0
    integration_id: int | None = None
    ran: bool = False
    retry_at: datetime | None = None
    follow_ups: list[OrderAction] = field(default_factory=list)


def run(action_id: int) -> Outcome:
    """Run one action if it is still pending and due; whatever happens, the outbox row says so afterwards.
    Handed out before its time, it runs nothing and says when it is due."""
    now = utcnow()
    outcome = _run(CLAIM, {"action": action_id}, now)
    if outcome is not None:
        return outcome
    due = db.session.scalar(NOT_YET, {"action": action_id})
    db.session.rollback()
    # Not yet due: come back then. Otherwise done, running elsewhere or superseded: nothing to do.
    return Outcome(action_id, retry_at=due if due is not None and due > now else None)


def run_next(integration_id: int) -> Outcome | None:
    """Claim and run the integration's oldest action that waits for its turn; None when none does."""
    now = utcnow()
    return _run(CLAIM_NEXT, {"integration": integration_id, "handed": _handed(now)}, now)


def _run(statement: sa.Update, parameters: dict[str, object], now: datetime) -> Outcome | None:
    """Claim a row with `statement`, lease its order, and run it.

    The claim is the row's `claimed_at`: every later change of the row is guarded by it, so a worker that
    outlived its lease (and saw the sweeper hand the action to another) changes nothing. The claim and
    the lease go in one commit.
    """
    claimed = db.session.execute(statement, {**parameters, "now": now}).first()
    if claimed is None:
        db.session.rollback()
        return None
    action_id, order_id, integration_id, attempts, throttles = claimed
    claim = Claim(action_id, now, attempts, throttles)
    lease = Lease(order_id, now + timedelta(seconds=current_app.config["ACTION_LEASE_SECONDS"]))
    account_id = db.session.scalar(LEASE, {"order": order_id, "now": now, "until": lease.until})
    if account_id is None:
        outcome = _later(claim, "the order is busy with another action", seconds=2)
    else:
        changefeed.touch(account_id, order_id)  # the page shows it running
        db.session.commit()
        lease.held = True
        try:
            # Read once the order is ours, so nothing read before the lease has to be read again.
            action = db.session.scalars(_action_with_order(), {"action": action_id}).one()
            outcome = _attempt(action, claim, lease)
        finally:
            if lease.held:
                db.session.rollback()
                lease.release()
    outcome.action_id, outcome.integration_id = action_id, integration_id
    return outcome


@functools.cache
def _action_with_order() -> sa.Select[tuple[OrderAction]]:
    """The action with its order, in one query (built once, when the mappers are ready)."""
    return (
        sa.select(OrderAction)
        .options(joinedload(OrderAction.order))
        .where(OrderAction.id == sa.bindparam("action"))
    )


@functools.cache
def _integration_with_settings() -> sa.Select[tuple[Integration]]:
    """The integration with its settings and status map, which every action reads, in one query."""
    return (
        sa.select(Integration)
        .options(joinedload(Integration.settings), joinedload(Integration.status_maps))
        .where(Integration.id == sa.bindparam("integration"))
    )


@dataclass(frozen=True)
class Claim:
    action_id: int
    claimed_at: datetime
    attempts: int  # this one included
    throttles: int  # the platform's 429s in a row before this run

    def settle(self, **values: object) -> bool:
        """Change the row only if it is still this worker's claim."""
        return changed(SETTLE, {"action": self.action_id, "claimed": self.claimed_at, **values})


@dataclass
class Lease:
    """The order's lease while its action runs (no other action talks about the order meanwhile);
    only its holder releases it."""

    order_id: int
    until: datetime
    held: bool = False

    def release(self) -> None:
        """Give the order back, committing it with whatever else the session holds."""
        db.session.execute(RELEASE, {"order": self.order_id, "until": self.until})
        db.session.commit()
        self.held = False


def _attempt(action: OrderAction, claim: Claim, lease: Lease) -> Outcome:
    kind, order_id, attempts = action.kind, action.order_id, action.attempts
    account_id = action.order.account_id
    exchanges: list[dict[str, Any]] = []
    try:
        with recording() as exchanges:
            follow_ups = _execute(action)
        if exchanges:
            record(action.order, "request", _calls(exchanges), rule=action.rule, payload=exchanges)
        if not claim.settle(state=ActionState.DONE, finished_at=utcnow(), last_error=None):
            db.session.rollback()  # taken over meanwhile: the other run's outcome counts
            return Outcome()
        changefeed.touch(account_id, order_id)
        lease.release()  # in the same commit as the outcome
        return Outcome(ran=True, follow_ups=follow_ups)
    except Deferred as wait:
        db.session.rollback()
        return _later(claim, str(wait), seconds=wait.seconds)
    except RateLimited as error:
        db.session.rollback()
        return _throttled(claim, order_id, kind, error, exchanges)
    except Retryable as error:
        db.session.rollback()
        return _retry(claim, order_id, kind, attempts, error, backoff(attempts), exchanges)
    except Permanent as error:
        db.session.rollback()
        _fail(claim, order_id, kind, _category(kind, error), str(error), exchanges)
    except NOT_CONTAINED:
        # The job's time limit, the database gone: not this action's fault. The job fails, and the
        # sweeper puts the row back to pending once its lease has run out.
        raise
    except Exception:  # a bug must not leave the row running until its lease runs out
        # The exception's text may hold SQL or a payload: the log gets it, the seller a plain sentence.
        log.exception("action %s (%s) failed", claim.action_id, kind)
        db.session.rollback()
        _fail(claim, order_id, kind, "internal", INTERNAL, exchanges)
    return Outcome(ran=True)


def _later(claim: Claim, why: str, *, seconds: float) -> Outcome:
    """Not this time, and it does not count as an attempt; why is kept on the action (its order's page
    shows what it waits for)."""
    retry_at = utcnow() + timedelta(seconds=seconds)
    claim.settle(
        state=ActionState.PENDING,
        attempts=claim.attempts - 1,
        next_attempt_at=retry_at,
        enqueued_at=utcnow(),
        last_error=why,
    )
    log.debug("action %s deferred: %s", claim.action_id, why)
    db.session.commit()
    return Outcome(retry_at=retry_at)


def _retry(
    claim: Claim,
    order_id: int,
    kind: str,
    attempts: int,
    error: ConnectorError,
    delay: float,
    exchanges: list[dict[str, Any]],
) -> Outcome:
    if attempts >= current_app.config["ACTION_MAX_ATTEMPTS"]:
        reason = f"gave up after {attempts} attempts: {error}"
        _fail(claim, order_id, kind, error.category, reason, exchanges)
        return Outcome(ran=True)
    wording = N_("%(action)s did not go through (attempt %(attempt)s); it is tried again")
    line = (wording, {"action": kind, "attempt": attempts, "reason": str(error)})
    return _again(claim, order_id, error, delay, exchanges, line, throttles=0)


def _throttled(
    claim: Claim, order_id: int, kind: str, error: RateLimited, exchanges: list[dict[str, Any]]
) -> Outcome:
    """A 429: the platform says "later", which is no failed attempt. The attempt is given back and the
    action waits Retry-After, or longer with each 429 in a row (the backoff of failed attempts, so a
    crowd of throttled actions spreads out), until ACTION_MAX_THROTTLES in a row."""
    throttles = claim.throttles + 1
    if throttles > current_app.config["ACTION_MAX_THROTTLES"]:
        reason = f"gave up after {claim.throttles} answers in a row asking to wait: {error}"
        _fail(claim, order_id, kind, error.category, reason, exchanges)
        return Outcome(ran=True)
    wording = N_("%(action)s: the platform asked the hub to wait; it tries again by itself")
    # The first of a spell is news; the history need not count them.
    line = (wording, {"action": kind, "reason": str(error)}) if throttles == 1 else None
    delay = max(error.retry_after, backoff(throttles), 1.0)
    return _again(
        claim, order_id, error, delay, exchanges, line, attempts=claim.attempts - 1, throttles=throttles
    )


def _again(
    claim: Claim,
    order_id: int,
    error: ConnectorError,
    delay: float,
    exchanges: list[dict[str, Any]],
    line: tuple[str, dict[str, Any]] | None,
    **values: object,
) -> Outcome:
    """Back to pending, due after `delay`, with `values` besides; the history `line` (wording, params)
    if the row was still this worker's claim."""
    retry_at = utcnow() + timedelta(seconds=delay)
    settled = claim.settle(
        state=ActionState.PENDING,
        next_attempt_at=retry_at,
        enqueued_at=utcnow(),
        last_error=str(error),
        **values,
    )
    if settled and line is not None:
        record(db.session.get_one(Order, order_id), "failed", *line, payload=exchanges or None)
    db.session.commit()
    return Outcome(ran=True, retry_at=retry_at)


def _fail(
    claim: Claim,
    order_id: int,
    kind: str,
    category: str,
    reason: str,
    exchanges: list[dict[str, Any]],
) -> None:
    if claim.settle(state=ActionState.FAILED, finished_at=utcnow(), last_error=reason):
        order = db.session.get_one(Order, order_id)
        order.fail(category, reason)
        record(
            order,
            "failed",
            N_("%(action)s failed: %(category)s"),
            {"action": kind, "category": category, "reason": reason},
            payload=exchanges or None,
        )
        notifications.order_failed(order)
    db.session.commit()


def _calls(exchanges: list[dict[str, Any]]) -> str:
    """One line for the history: the calls made, with their answers."""
    return "; ".join(
        f"{call['method']} {httpx.URL(call['url']).path} → {call['status']}" for call in exchanges
    )


# Actions on the shop order the hub created: a 404 says the seller deleted it in the shop.
ON_THE_SHOP_ORDER = frozenset({*TO_SHOP, Action.SHOP_NOTE})


def _category(kind: str, error: Permanent) -> str:
    """The error queue's group: the guard's and the credentials' own, else who refused and why."""
    if error.category != "refused":
        return error.category
    if error.status == 404 and kind in ON_THE_SHOP_ORDER:
        return "shop_order_gone"  # deleted in the shop: Transfer again (`transfer_again`) makes it anew
    if "invalid_product" in error.code or "No product with SKU" in error.code:
        return "unknown_product"
    if kind in (Action.APPROVE, Action.MARKETPLACE_STATUS, Action.MARKETPLACE_TRACKING):
        return "marketplace_refused"
    return "shop_refused"


# ---------------------------------------------------------------------------------------------------


def _execute(action: OrderAction) -> list[OrderAction]:
    order = action.order
    integration = (
        db.session.scalars(_integration_with_settings(), {"integration": order.integration_id}).unique().one()
    )
    settings = integration.settings.to_domain()
    executor = EXECUTORS[Action(action.kind)]
    return executor(order, integration, settings, action) or []


Executor = Callable[[Order, Integration, GeneralSettings, OrderAction], "list[OrderAction] | None"]


def transfer(order: Order, integration: Integration, settings: GeneralSettings, action: OrderAction) -> list:
    if order.transferred:
        return []
    reason = _not_transferable(order)
    if reason:
        record(order, "decided", N_("not transferred: %(why)s"), {"why": reason}, rule=action.rule)
        return []
    plan = shop_plan(order, integration, settings)
    sent_at = _create_sent_at(order)
    with shop_for(integration) as shop:
        # Only a create that may have reached the shop can have made the order there: until one went out,
        # there is nothing to look for, however big the shop.
        found = None
        if sent_at is not None:
            found = shop.find_order(order.reference, since=sent_at - SHOP_CLOCK_MARGIN)
        if found is not None:
            record(order, "sent", FOUND, {"shop_id": found.shop_id, "reference": order.reference})
            created = found
        else:
            created = _create(shop, order, plan)
            record(
                order,
                "sent",
                CREATED if sent_at is None else CREATED_AFTER_LOOKUP,
                {"shop_id": created.shop_id, "shop_status": plan.status, "reference": order.reference},
                rule=action.rule,
                payload=_plan_summary(plan),
            )
        created = _settled(shop, order, created, plan.total, action.rule)
    order.shop_id = created.shop_id
    order.shop_status = created.status
    order.transfer_state = TransferState.TRANSFERRED
    order.error_category = order.error_reason = None
    code = tracking_code(order, settings.tracking_code_source)
    facts = Facts(
        Event.TRANSFERRED,
        order.canonical_status or CanonicalStatus.CREATED,
        own_shipping=integration.own_shipping_agreement,
        transferred=True,
        has_tracking_code=bool(code),
    )
    follow_ups = enqueue(order, decide(settings, facts))
    # Found from an earlier attempt, the shop order may hold an older status: bring it up to date.
    behind = order.shop_status != integration.status_map()[order.canonical_status or CanonicalStatus.CREATED]
    if behind and settings.status_change_transfer:
        follow_ups += enqueue(order, decide(settings, _status_facts(order, integration)))
    return follow_ups


def _settled(shop: ShopConnector, order: Order, created: ShopOrder, total: Decimal, rule: str) -> ShopOrder:
    """The shop order, its total brought to the marketplace's where the shop calculated another (a
    create that could not correct it, an order found after a lost answer). The order is in the shop
    whatever happens here: a total that cannot be brought right is put before the seller, and the
    transfer stands."""
    if created.total is None or created.total == total:
        return created
    try:
        created = shop.settle_total(created.shop_id, total)
    except ConnectorError as error:
        log.warning("order %s: the shop order's total was not corrected: %s", order.id, error)
    if created.total is not None and created.total != total:
        order.review_reason = TOTAL_DIFFERS
        totals = {"shop_total": str(created.total), "total": str(total)}
        summary = N_("the shop order's total %(shop_total)s is not the marketplace's %(total)s")
        record(order, "failed", summary, totals, rule=rule)
    return created


def _create_sent_at(order: Order) -> datetime | None:
    """When the first create of the order's shop order went out, from this package or another of its
    chain (a package split off carries the same reference, and its origin's lost create may be in the
    shop). The first, not the latest: a create lost on its way may show in the shop only after a later
    attempt looked and found nothing, so every lookup reads from the first on."""
    return db.session.scalar(
        FIRST_CREATE_SENT, {"integration": order.integration_id, "reference": order.reference}
    )


def _create(shop: ShopConnector, order: Order, plan: ShopOrderPlan) -> ShopOrder:
    """Create the shop order, noting first that a create goes out. The note is committed before the
    request leaves, so a worker killed while it waits for the answer leaves it too, and whoever tries next
    looks the order up. The note is the first create's and stays: only a first create that surely made
    nothing (see `_not_taken`) takes it back. A later one turned down must not, since an earlier create
    lost on its way may still come into the shop."""
    sent_at = utcnow()
    # A Core UPDATE of one row: no history line, nothing for the live pages to redraw.
    db.session.execute(CREATE_SENT, {"order": order.id, "sent_at": sent_at})
    _commit_keeping_loaded()
    try:
        return shop.create_order(plan)
    except ConnectorError as error:
        if _not_taken(error):
            db.session.execute(CREATE_TAKEN_BACK, {"order": order.id, "sent_at": sent_at})
            db.session.commit()
        raise


def _commit_keeping_loaded() -> None:
    """Commit, leaving what the session has loaded as it is: only the note changed, and reloading the
    order, its integration and its action afterwards cost more than the note (measured on PostgreSQL)."""
    session = db.session()
    expire = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def _not_taken(error: ConnectorError) -> bool:
    """The create made nothing: it never left (the guard stopped it), or the shop turned it down with a
    4xx (an unknown SKU, the keys, 429). A 5xx, a lost answer or an unreadable one may have made it."""
    return isinstance(error, Blocked) or (error.status is not None and 400 <= error.status < 500)


def _not_transferable(order: Order) -> str | None:
    """Why an order that was waiting must not go to the shop after all, if it must not."""
    if order.transfer_state == TransferState.IGNORED:
        return N_("the seller ignores this order")
    if order.canonical_status in CANCELLATIONS:
        return N_("cancelled on the marketplace before it reached the shop")
    if has_successor(order):
        return N_("its lines moved to a new package, which goes instead")
    if not any(not line.cancelled for line in order.lines):
        return N_("no line is left to send")
    return None


def _status_facts(order: Order, integration: Integration) -> Facts:
    return Facts(
        Event.STATUS_CHANGED,
        order.canonical_status or CanonicalStatus.CREATED,
        own_shipping=integration.own_shipping_agreement,
        transferred=order.transferred,
    )


def shop_plan(order: Order, integration: Integration, settings: GeneralSettings) -> ShopOrderPlan:
    try:
        billing, shipping = integration.marketplace.reader().addresses(order.raw)
    except NotYet as waiting:
        # Sent by hand before the marketplace gave what a shop order needs: it goes once it has.
        raise Deferred(str(waiting), seconds=60) from None
    except ValueError as unreadable:
        raise Permanent(
            f"the order's addresses cannot be read: {unreadable}", category="invalid_data"
        ) from None
    lines = [line for line in order.lines if not line.cancelled]
    goods = sum((line.total for line in lines), Decimal(0))
    fee = max(order.total - goods, Decimal(0))
    return ShopOrderPlan(
        reference=order.reference,
        status=integration.status_map()[order.canonical_status or CanonicalStatus.CREATED],
        marketplace=integration.marketplace_kind,
        order_number=order.order_number,
        package_id=order.package_id,
        currency=order.currency,
        customer_email=order.customer_email,
        billing=billing,
        shipping=shipping,
        lines=tuple(
            ShopLine(
                sku=line.stock_code or line.barcode,
                name=line.name,
                quantity=line.quantity,
                total=line.total,
                vat_rate=line.vat_rate,
            )
            for line in lines
        ),
        shipping_charge=shipping_charge(
            fee, settings.shipping_vat_rate, lines, integration.marketplace.label
        ),
        total=goods + fee,
    )


def shipping_charge(
    gross: Decimal, vat_rate: int | None, lines: list[OrderLine], carrier_title: str
) -> ShippingCharge:
    """Shipment VAT Selection: the fee the customer paid, VAT included, split at the chosen rate; "the
    product's own VAT" takes the highest rate among the order's lines."""
    rate = (
        Decimal(vat_rate)
        if vat_rate is not None
        else max((line.vat_rate for line in lines), default=Decimal(0))
    )
    net = (gross / (1 + rate / 100)).quantize(CENT, rounding=ROUND_HALF_UP)
    return ShippingCharge(title=f"{carrier_title} Kargo", net=net, tax=gross - net, vat_rate=rate)


def _plan_summary(plan: ShopOrderPlan) -> dict[str, object]:
    """What went out, for the history: no addresses beyond the city, no secrets."""
    return {
        "reference": plan.reference,
        "status": plan.status,
        "lines": [
            {"sku": line.sku, "quantity": line.quantity, "total": str(line.total)} for line in plan.lines
        ],
        "shipping": {
            "net": str(plan.shipping_charge.net),
            "tax": str(plan.shipping_charge.tax),
            "vat_rate": str(plan.shipping_charge.vat_rate),
        },
    }


def _require_transfer(order: Order) -> None:
    """Shop actions need the shop order: wait for a transfer on its way, else there is nothing to do."""
    if not order.transferred and open_actions(order, {Action.TRANSFER}):
        raise Deferred("waiting for the transfer")


def shop_status(
    order: Order, integration: Integration, settings: GeneralSettings, action: OrderAction
) -> None:
    _require_transfer(order)
    if not order.transferred or order.shop_id is None:
        return
    target = integration.status_map()[order.canonical_status or CanonicalStatus.CREATED]
    with shop_for(integration) as shop:
        _move_shop_order(shop, order, shop.get_order(order.shop_id).status, target, action.rule)


def shop_cancel(
    order: Order, integration: Integration, settings: GeneralSettings, action: OrderAction
) -> None:
    _require_transfer(order)
    if not order.transferred or order.shop_id is None:
        return
    if integration.pull_resume_from is not None:
        # A pull is still catching up: the package that carries on some of these lines may be further on.
        raise Deferred("waiting for the pull to catch up before cancelling the whole shop order", seconds=15)
    if lives_on_elsewhere(order):
        # Only some lines were cancelled; the rest live on in another package of the same shop order.
        shop_note(order, integration, settings, action)
        return
    _no_package_unseen(order, integration)
    target = integration.status_map()[CanonicalStatus.CANCELLED]
    with shop_for(integration) as shop:
        current = shop.get_order(order.shop_id).status
        if current == "completed" and current != target:
            order.review_reason = COMPLETED_THEN_CANCELLED
            why = {"why": order.review_reason}
            record(order, "decided", N_("not cancelled in the shop: %(why)s"), why, rule=action.rule)
        else:
            _move_shop_order(shop, order, current, target, action.rule)


def _no_package_unseen(order: Order, integration: Integration) -> None:
    """Before the whole shop order is cancelled, the marketplace is asked whether some of it went on in
    a package the hub has not read yet (a pull reads the cancelled package and the new one in either
    order, maybe pages apart); then the cancellation waits for the pull to bring it."""
    with marketplace_for(integration) as marketplace:
        packages = marketplace.packages_of(order.order_number)
    live = {package.package_id for package in packages if package.status not in CANCELLATIONS}
    if live and live - set(
        db.session.scalars(
            sa.select(Order.package_id).where(
                Order.integration_id == integration.id, Order.package_id.in_(live)
            )
        )
    ):
        raise Deferred(
            "waiting for the pull to read the package the rest of the order went on in", seconds=30
        )


def _move_shop_order(shop: ShopConnector, order: Order, current: str, target: str, rule: str) -> None:
    """Set the shop order's status, unless it is there already; either way the hub now knows it."""
    if current == target:
        record(order, "sent", N_("shop order already %(shop_status)s"), {"shop_status": target}, rule=rule)
    else:
        shop.set_status(order.shop_id or "", target)
        moved = {"shop_from": current, "shop_to": target}
        record(order, "sent", N_("shop status %(shop_from)s → %(shop_to)s"), moved, rule=rule)
    order.shop_status = target


def shop_note(order: Order, integration: Integration, settings: GeneralSettings, action: OrderAction) -> None:
    _require_transfer(order)
    if order.shop_id is None:
        return
    cancelled = cut_by_cancellation(order)
    if not cancelled:
        record(order, "decided", N_("no note on the shop order: no line was cancelled"), rule=action.rule)
        return
    text = "Pazaryerinde iptal edilen satırlar: " + ", ".join(
        f"{line.name} ({line.stock_code or line.barcode}) × {units}{_in_all(order, line, units)}"
        for line, units in cancelled
    )
    with shop_for(integration) as shop:
        shop.add_note(order.shop_id, text)
    for line, units in cancelled:
        line.noted_cancelled += units
    record(order, "sent", N_("note on the shop order: %(text)s"), {"text": text}, rule=action.rule)


def _in_all(order: Order, line: OrderLine, units: int) -> str:
    """A line cut in place again: its units cut in all so far, after this cut's (the note says what is
    new, and the shop order's notes add up)."""
    total = line.cancelled_quantity + (line.quantity if line.cancelled else 0)
    if order.canonical_status in CANCELLATIONS or total <= units:
        return ""
    return f" (toplam {total})"  # in the shop note's language, Turkish


def cut_by_cancellation(order: Order) -> list[tuple[OrderLine, int]]:
    """What the cancellation of this package cut, with the units: the lines it still holds (cancelled
    with it) and the units left behind by lines that went on into a package split from it. (Asked
    late, after a line went on again, the line's cut is its latest one: a rare case, read as it is.)
    A package that lives on had its lines cut in place (Hepsiburada, Amazon): what was cut off each
    line (its units kept when the whole line went) that no note named yet."""
    if order.canonical_status not in CANCELLATIONS:
        cut = (
            (line, line.cancelled_quantity + (line.quantity if line.cancelled else 0)) for line in order.lines
        )
        return [(line, units - line.noted_cancelled) for line, units in cut if units > line.noted_cancelled]
    went_on = db.session.scalars(
        sa.select(OrderLine)
        .where(
            OrderLine.order_id.in_(sa.select(Order.id).where(Order.origin_id == order.id)),
            OrderLine.cancelled_quantity > 0,
        )
        .order_by(OrderLine.id)
    )
    return [(line, line.quantity) for line in order.lines if line.cancelled] + [
        (line, line.cancelled_quantity) for line in went_on
    ]


def shop_tracking(
    order: Order, integration: Integration, settings: GeneralSettings, action: OrderAction
) -> None:
    _require_transfer(order)
    code = tracking_code(order, settings.tracking_code_source)
    if order.shop_id is None or not code:
        return
    link = tracking_link(settings, order.tracking_link, tracking_page(order.carrier), code)
    with shop_for(integration) as shop:
        written = shop.set_tracking(order.shop_id, order.carrier, code, link)
    order.shop_tracking = code
    # Where the shop keeps a code only with a status of its own (Shopify fulfils the order, T-Soft sends
    # it to cargo), that status is the hub's doing: the next look at the shop must not read it as the
    # seller's.
    order.shop_status = written.status or order.shop_status
    wording = N_("tracking code %(code)s with link %(link)s") if link else N_("tracking code %(code)s")
    record(order, "sent", wording, {"code": code, "link": link}, rule=action.rule)


def approve(order: Order, integration: Integration, settings: GeneralSettings, action: OrderAction) -> None:
    if order.canonical_status is not CanonicalStatus.CREATED:
        return  # moved on already: nothing to approve
    if not _live_lines(order):
        _nothing_to_send(order, action)
        return
    with marketplace_for(integration) as marketplace:
        # The hub's copy may be a pull behind: ask first, approve only what is still waiting.
        current = marketplace.get_package(order.package_id)
        if current is not None and current.status is not CanonicalStatus.CREATED:
            record(
                order,
                "decided",
                N_("not approved: already %(status)s on the marketplace"),
                {"status": current.status.value, "native": current.native_status},
                rule=action.rule,
            )
            return
        marketplace.approve(order.package_id, _live_lines(order))
    approved = {"status": CanonicalStatus.PICKING.value}
    record(order, "sent", N_("approved on the marketplace (%(status)s)"), approved, rule=action.rule)


def marketplace_status(
    order: Order, integration: Integration, settings: GeneralSettings, action: OrderAction
) -> None:
    """The shop's status, back to the marketplace: as far as the marketplace lets a seller move it."""
    target = shop_to_canonical(integration, order.shop_status or "")
    if target is None or order.canonical_status is None:
        return
    if not _live_lines(order):
        _nothing_to_send(order, action)
        return
    with marketplace_for(integration) as marketplace:
        # Where the package is now, not where the hub last saw it: a retry after a half-done push, or a
        # marketplace that moved on meanwhile, then sends only what is still ahead.
        live = marketplace.get_package(order.package_id)
        current = live.status if live is not None else order.canonical_status
        cancellable = integration.marketplace.cancellable
        if target in CANCELLATIONS and current not in CANCELLATIONS | cancellable:
            # The marketplace takes no cancellation now: not yet (N11 takes one only once the package is
            # accepted), or no more (with the carrier or the customer). The hub does not send one it
            # would refuse; the seller hears why and what to do instead.
            first = min(cancellable, key=lambda status: RANK[status], default=None)
            if first is not None and RANK[current] < RANK[first]:
                order.review_reason = ACCEPT_THEN_CANCEL
                summary = N_(
                    "not cancelled on the marketplace: it takes a cancellation from %(to_status)s on"
                )
                record(order, "decided", summary, {"to_status": first.value}, rule=action.rule)
            else:
                order.review_reason = SHIPPED_THEN_CANCELLED
                summary = N_("not cancelled on the marketplace: the package is already %(status)s there")
                record(order, "decided", summary, {"status": current.value}, rule=action.rule)
            return
        if target in CANCELLATIONS:
            steps = [] if current in CANCELLATIONS else [CanonicalStatus.UNSUPPLIED]
        else:
            settable = integration.marketplace.settable
            steps = [step for step in settable if RANK[current] < RANK[step] <= RANK[target]]
        if not steps:
            summary = N_("nothing to send for %(to_status)s: the marketplace is at %(status)s")
            where = {"to_status": target.value, "status": current.value}
            record(order, "decided", summary, where, rule=action.rule)
            return
        for step in steps:
            marketplace.push_status(order.package_id, _live_lines(order), step)
            summary = N_("marketplace status → %(status)s (from the shop)")
            record(order, "sent", summary, {"status": step.value}, rule=action.rule)
            order.marketplace_echo = step.value


def marketplace_tracking(
    order: Order, integration: Integration, settings: GeneralSettings, action: OrderAction
) -> None:
    code = order.shop_tracking
    if not code or code in (order.tracking_number, order.shipment_barcode):
        return
    # The carrier the seller named in the shop, else the one the marketplace has for the package.
    carrier = order.shop_carrier or order.carrier
    with marketplace_for(integration) as marketplace:
        marketplace.push_tracking(order.package_id, code, carrier)
    # What the marketplace will report back (Trendyol shows it as the package's cargoSenderNumber, the
    # hub's shipment barcode): no news then.
    order.shipment_barcode = code
    summary = N_("tracking code %(code)s (%(carrier)s) to the marketplace (from the shop)")
    record(order, "sent", summary, {"code": code, "carrier": carrier}, rule=action.rule)


def shop_to_canonical(integration: Integration, shop_status: str) -> CanonicalStatus | None:
    """The least advanced canonical status the shop status stands for."""
    candidates = [status for status, mapped in integration.status_map().items() if mapped == shop_status]
    return min(candidates, key=lambda status: RANK[status], default=None)


def _live_lines(order: Order) -> list[tuple[str, int]]:
    return [(line.line_id, line.quantity) for line in order.lines if not line.cancelled]


def _nothing_to_send(order: Order, action: OrderAction) -> None:
    """A package whose lines all went on in a newer one, or were cancelled, has nothing to send: the
    marketplace takes no status for an empty list of lines (the newer package gets it instead)."""
    record(order, "decided", N_("nothing sent: no line is left on this package"), rule=action.rule)


EXECUTORS: dict[Action, Executor] = {
    Action.TRANSFER: transfer,
    Action.APPROVE: approve,
    Action.SHOP_STATUS: shop_status,
    Action.SHOP_CANCEL: shop_cancel,
    Action.SHOP_NOTE: shop_note,
    Action.SHOP_TRACKING: shop_tracking,
    Action.MARKETPLACE_STATUS: marketplace_status,
    Action.MARKETPLACE_TRACKING: marketplace_tracking,
}


# ---------------------------------------------------------------------------------------------------
# What the seller (and the sweeper) can ask for.


def request_transfer(order: Order) -> list[OrderAction]:
    """Transfer: the manual action for an order waiting in the panel."""
    integration = db.session.get_one(Integration, order.integration_id)
    facts = Facts(
        Event.MANUAL_TRANSFER,
        order.canonical_status or CanonicalStatus.CREATED,
        own_shipping=integration.own_shipping_agreement,
        transferred=order.transferred,
    )
    return enqueue(order, decide(integration.settings.to_domain(), facts))


def transfer_again(order: Order) -> list[OrderAction] | None:
    """Transfer again: the shop order is gone (the seller deleted it in the shop), so the hub forgets it
    and creates the order anew; the actions that failed on the old one are dropped. No lookup before the
    create: the old order, if the shop keeps it in a bin, is not the one to take up again."""
    if order.transfer_state != TransferState.ERROR or order.error_category != "shop_order_gone":
        return None
    for action in _failed(order):
        action.state = ActionState.SUPERSEDED
    gone = {"shop_id": order.shop_id}
    record(order, "decided", N_("transfer again asked: shop order #%(shop_id)s is gone"), gone, rule="manual")
    order.shop_id = order.shop_status = order.shop_create_sent_at = None
    order.shop_tracking = ""
    order.transfer_state = TransferState.WAITING
    order.error_category = order.error_reason = None
    return request_transfer(order)


def push_status(order: Order) -> list[OrderAction]:
    """Push status again: the order's status (and tracking code) to the shop order once more."""
    integration = db.session.get_one(Integration, order.integration_id)
    settings = integration.settings.to_domain()
    facts = Facts(
        Event.MANUAL_PUSH,
        order.canonical_status or CanonicalStatus.CREATED,
        own_shipping=integration.own_shipping_agreement,
        transferred=order.transferred,
        has_tracking_code=bool(tracking_code(order, settings.tracking_code_source)),
    )
    record(order, "decided", N_("push status again asked"), rule="manual")
    return enqueue(order, decide(settings, facts))


def ignore(order: Order, reason: str) -> bool:
    """Ignore: leave an order that is not in the shop out of it, for the reason the seller gives."""
    if order.transferred or order.transfer_state == TransferState.IGNORED:
        return False
    transfers = open_actions(order, {Action.TRANSFER})
    if any(action.state == ActionState.RUNNING for action in transfers):
        return False  # on its way to the shop right now
    for action in transfers:
        # Guarded like a worker's claim: if one took the transfer meanwhile, the order is not ignored.
        if not changed(
            sa.update(OrderAction)
            .where(OrderAction.id == action.id, OrderAction.state == ActionState.PENDING)
            .values(state=ActionState.SUPERSEDED)
        ):
            return False
    order.transfer_state = TransferState.IGNORED
    order.ignored_reason = reason
    order.error_category = order.error_reason = None
    record(order, "decided", N_("ignored by the seller: %(text)s"), {"text": reason}, rule="manual")
    return True


def retry(order: Order) -> list[OrderAction]:
    """Run the order's failed actions again, from the first attempt, and clear its error."""
    failed = _failed(order)
    for action in failed:
        action.state = ActionState.PENDING
        action.attempts = 0
        action.next_attempt_at = utcnow()
        action.enqueued_at = None  # not handed out: the sweeper or the dispatch hands it out now
        action.last_error = None
    if order.status is not None:
        order.transfer_state = TransferState.TRANSFERRED if order.transferred else TransferState.WAITING
        order.error_category = order.error_reason = None
    again = {"count": len(failed)}
    record(order, "decided", N_("retry asked: %(count)s action(s) again"), again, rule="manual")
    return failed


def _failed(order: Order) -> list[OrderAction]:
    """The order's actions that gave up."""
    return list(
        db.session.scalars(
            sa.select(OrderAction).where(
                OrderAction.order_id == order.id, OrderAction.state == ActionState.FAILED
            )
        )
    )


def fair_share(rows: Iterable[OrderAction], now: datetime) -> list[OrderAction]:
    """Of the rows to hand to the workers, those within their integration's share: at most
    ACTIONS_IN_FLIGHT per integration queued or running at once. The others wait in the outbox and go
    when one of their integration's actions ends (`waiting`), so a seller whose platform is slow, or who
    has ten thousand actions, holds that many workers at most and never queues ahead of everyone else.
    A marketplace whose kind allows fewer of its calls at once (`actions_in_flight`: Çiçeksepeti, a
    request every 5 s per seller) gets at most that many of the actions that call it; the shop's go on."""
    wanted: dict[int, list[OrderAction]] = {}
    for row in {row.id: row for row in rows}.values():
        wanted.setdefault(row.integration_id, []).append(row)
    if not wanted:
        return []
    counts = db.session.execute(
        sa.select(
            OrderAction.integration_id,
            sa.func.count(),
            sa.func.count().filter(OrderAction.kind.in_(CALL_MARKETPLACE)),
        )
        .where(
            OrderAction.integration_id.in_(list(wanted)),
            _in_flight(now),
            OrderAction.id.not_in([row.id for group in wanted.values() for row in group]),
        )
        .group_by(OrderAction.integration_id)
    ).tuples()
    busy = {integration_id: (count, calling) for integration_id, count, calling in counts}
    share = current_app.config["ACTIONS_IN_FLIGHT"]
    kinds = db.session.execute(
        sa.select(Integration.id, Integration.marketplace_kind).where(Integration.id.in_(list(wanted)))
    ).tuples()
    caps = {
        integration_id: MARKETPLACES[kind].actions_in_flight
        for integration_id, kind in kinds
        if kind in MARKETPLACES and MARKETPLACES[kind].actions_in_flight is not None
    }
    # One action of an order at a time: two would race for the order's lease, and the loser wait out a
    # retry; the next goes when the first ends, in the same job (`run_next`) or handed out then.
    taken = _orders_in_flight(wanted, now)
    chosen = []
    for integration_id, group in wanted.items():
        count, calling = busy.get(integration_id, (0, 0))
        room = max(share - count, 0)
        cap = caps.get(integration_id)
        calls_left = max(cap - calling, 0) if cap is not None else None
        for row in sorted(group, key=lambda row: row.id):
            if not room or row.order_id in taken:
                continue
            if calls_left is not None and row.kind in CALL_MARKETPLACE:
                if not calls_left:
                    continue
                calls_left -= 1
            chosen.append(row)
            taken.add(row.order_id)
            room -= 1
    return chosen


def _in_flight(now: datetime) -> sa.ColumnElement[bool]:
    """An action running, or handed to RQ and not lost."""
    return sa.or_(
        OrderAction.state == ActionState.RUNNING,
        sa.and_(OrderAction.state == ActionState.PENDING, OrderAction.enqueued_at >= _handed(now)),
    )


def _orders_in_flight(wanted: dict[int, list[OrderAction]], now: datetime) -> set[int]:
    """The orders among `wanted`'s with an action running or handed out already (other than these)."""
    rows = [row for group in wanted.values() for row in group]
    return set(
        db.session.scalars(
            sa.select(OrderAction.order_id).where(
                OrderAction.order_id.in_({row.order_id for row in rows}),
                _in_flight(now),
                OrderAction.id.not_in([row.id for row in rows]),
            )
        )
    )


def waiting(integration_id: int, now: datetime) -> list[OrderAction]:
    """An integration's due actions that wait for their turn."""
    return list(
        db.session.scalars(
            sa.select(OrderAction)
            .where(OrderAction.integration_id == integration_id, TURN)
            .order_by(OrderAction.id)
            .limit(current_app.config["ACTIONS_IN_FLIGHT"]),
            {"now": now, "handed": _handed(now)},
        )
    )


def _handed(now: datetime) -> datetime:
    """A row handed to RQ after this is taken as queued; one handed out before, as lost."""
    return now - timedelta(seconds=current_app.config["OUTBOX_REQUEUE_SECONDS"])


def stale_and_due(now: datetime) -> list[OrderAction]:
    """The sweeper: running rows whose worker died go back to pending; pending rows nobody picked up are
    handed out again."""
    config = current_app.config
    lease = timedelta(seconds=config["ACTION_LEASE_SECONDS"])
    db.session.execute(
        sa.update(OrderAction)
        .where(OrderAction.state == ActionState.RUNNING, OrderAction.claimed_at < now - lease)
        .values(state=ActionState.PENDING, next_attempt_at=now, enqueued_at=None)
    )
    # At most each integration's share, so one seller's backlog of thousands never fills the batch and
    # leaves another seller's rows unswept.
    turn = (
        sa.func.row_number()
        .over(partition_by=OrderAction.integration_id, order_by=OrderAction.id)
        .label("turn")
    )
    candidates = sa.select(OrderAction.id, turn).where(TURN).subquery()
    due = list(
        db.session.scalars(
            sa.select(OrderAction)
            .join(candidates, candidates.c.id == OrderAction.id)
            .where(candidates.c.turn <= config["ACTIONS_IN_FLIGHT"])
            .order_by(OrderAction.id)
            .limit(config["OUTBOX_SWEEP_BATCH"]),
            {"now": now, "handed": _handed(now)},
        )
    )
    return due
