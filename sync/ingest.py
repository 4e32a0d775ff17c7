"""Ingest: upsert a page of marketplace packages, see what changed, and turn it into actions.

Idempotent: an order is keyed by (integration, package id); a replayed page, an overlapping window or a
duplicated package changes nothing. A package Trendyol re-created after a line cancellation is linked to
its origin (same shop order, same reference), never transferred twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import psycopg
import sqlalchemy as sa

from connectors.base import Line, MarketplaceOrder, Shipment
from connectors.registry import MARKETPLACES
from extensions import db
from models import Integration, Order, OrderAction, OrderEvent, OrderLine, OrderNotice, TransferState
from models.base import draw_ids, new_ids
from sync import changefeed, notifications
from sync.guards import NOT_CONTAINED
from sync.history import OPEN, STOCK_MOVES, enqueue, planned, record
from sync.rules import TO_MARKETPLACE, Event, Facts, Plan, decide
from sync.settings import GeneralSettings, TrackingCodeSource
from sync.statuses import CANCELLATIONS, RANK, CanonicalStatus, moves_forward
from sync.stock import give_back
from sync.wording import N_

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: int = 0
    pages: int = 0
    actions: list[OrderAction] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.pages += other.pages
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.errors += other.errors
        self.actions.extend(other.actions)


def ingest(
    integration: Integration,
    settings: GeneralSettings,
    packages: Sequence[MarketplaceOrder],
    unreadable: Iterable[tuple[str, str, dict[str, Any]]] = (),
    *,
    announce: bool = True,
) -> IngestResult:
    """Upsert the packages; one that fails becomes an order in error, and the rest go on.

    The page goes in at once: what the database holds about its packages is read in a few queries, and
    what changes is written in one flush (batched INSERTs), so a page costs a handful of round trips
    rather than a dozen per package; packages seen for the first time (most of a big first pull) skip
    the ORM and go as rows, one COPY or INSERT per table (`_insert_new`). If that fails (a package the
    database refuses), the page is done again package by package, each in its own savepoint, and only
    the one that fails is kept as broken.

    `announce`: whether first-seen orders are news for *Newly Added Orders* (an import of past orders
    is not).
    """
    # A package split from another first, so its origin knows it has a successor; then oldest first.
    # At the same moment, a live package before a cancelled one: a split the marketplace does not name
    # (N11) is then read as the rest of an order going on, not as an order cancelled whole.
    ordered = sorted(
        packages, key=lambda p: (not p.origin_package_ids, p.modified_at, p.status in CANCELLATIONS)
    )
    result = IngestResult(pages=1)
    try:
        with db.session.begin_nested():
            _ingest_page(integration, settings, ordered, result, announce)
    except NOT_CONTAINED:
        raise
    except Exception:
        log.info("page of integration %s: one package failed, ingesting one by one", integration.id)
        result = IngestResult(pages=1)
        for package in ordered:
            part = IngestResult()
            try:
                with db.session.begin_nested():
                    _ingest_page(integration, settings, [package], part, announce)
            except NOT_CONTAINED:
                raise
            except Exception:  # one bad package must never stop the page
                # The exception's text may carry SQL and the payload: the log has it, the seller a sentence.
                log.exception(
                    "package %s of integration %s could not be ingested", package.package_id, integration.id
                )
                _keep_broken(integration, package.package_id, NOT_STORED, package.raw)
                part = IngestResult(errors=1)
            result.add(part)
    for package_id, reason, raw in unreadable:
        _keep_broken(integration, package_id, reason, raw)
        result.errors += 1
    return result


def _ingest_page(
    integration: Integration,
    settings: GeneralSettings,
    packages: Sequence[MarketplaceOrder],
    result: IngestResult,
    announce: bool,
) -> None:
    """The ORM way for what changes or relates to other orders, then the first-seen rest in bulk (which
    nothing before it on the page touches: see `_bulk_plans`)."""
    known = Known.read(integration, packages)
    plans = _bulk_plans(integration, settings, packages, known)
    for package in packages:
        if package.package_id not in plans:
            _ingest_one(integration, settings, package, result, announce, known)
    draw_ids(db.session())
    db.session.flush()
    if plans:
        _insert_new(
            integration, settings, [p for p in packages if p.package_id in plans], plans, result, announce
        )


@dataclass
class Known:
    """What the database holds about a page's packages, read before any is ingested: their orders (and
    the orders they were split from) by package id, their lines by line id, and the orders' open actions
    by package id. What the page adds joins it, so a package twice on a page is seen the second time."""

    orders: dict[str, Order]
    lines: dict[str, OrderLine]
    actions: dict[str, list[OrderAction]]

    @classmethod
    def read(cls, integration: Integration, packages: Sequence[MarketplaceOrder]) -> Known:
        package_ids = {p.package_id for p in packages} | {o for p in packages for o in p.origin_package_ids}
        orders = {
            order.package_id: order
            for order in db.session.scalars(
                sa.select(Order).where(
                    Order.integration_id == integration.id, Order.package_id.in_(package_ids)
                )
            )
        }
        line_ids = {line.line_id for package in packages for line in package.lines}
        lines = {
            line.line_id: line
            for line in db.session.scalars(
                sa.select(OrderLine).where(
                    OrderLine.integration_id == integration.id, OrderLine.line_id.in_(line_ids)
                )
            )
        }
        actions: dict[str, list[OrderAction]] = {package_id: [] for package_id in orders}
        by_id = {order.id: order.package_id for order in orders.values()}
        if by_id:
            for action in db.session.scalars(
                sa.select(OrderAction).where(OrderAction.order_id.in_(by_id), OrderAction.state.in_(OPEN))
            ):
                actions[by_id[action.order_id]].append(action)
        return cls(orders, lines, actions)

    def origin(self, package: MarketplaceOrder) -> Order | None:
        """The first known order of those the package was split from. None named or known (N11 names
        none; a package split from one split in turn, both new on this page and the later read first):
        the order holding its lines now, since lines keep their ids from package to package, and a line
        id is the marketplace's for one line of one order."""
        found = [self.orders[p] for p in package.origin_package_ids if p in self.orders]
        if not found:
            found = [
                held.order
                for line in package.lines
                if (held := self.lines.get(line.line_id)) is not None
                and held.order.package_id != package.package_id
                and held.order.order_number == package.order_number  # a split keeps the order number
            ]
        return min(found, key=lambda order: (order.id is None, order.id or 0), default=None)


def _keep_broken(integration: Integration, package_id: str, reason: str, raw: dict[str, Any]) -> None:
    """File a package as an order in error; if even that fails, the log says so and the page goes on."""
    try:
        with db.session.begin_nested():
            broken(integration, package_id, "invalid_data", reason, raw)
    except NOT_CONTAINED:
        raise
    except Exception:
        log.exception("package %r of integration %s could not even be filed", package_id, integration.id)


def broken(
    integration: Integration, package_id: str, category: str, reason: str, raw: dict[str, Any]
) -> Order:
    """Keep a package the hub could not read as an order in error, with the payload, to fix and retry."""
    raw = _storable(raw)
    if not _fits(package_id, PACKAGE_ID_LENGTH):
        digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]
        package_id = f"unreadable-{digest}"
    order = _find(integration, package_id)
    if order is not None and order.status is not None:
        # An order read before: keep what the hub knows, and say that the latest copy was unreadable.
        summary = N_("an update of the package could not be read")
        record(order, "failed", summary, {"reason": reason}, payload=_masked(raw))
        return order
    if order is None:
        order = Order(
            account_id=integration.account_id,
            integration_id=integration.id,
            package_id=package_id,
            order_number=_number(raw.get("orderNumber")),
            reference=reference(integration, package_id),
            status=None,
        )
        db.session.add(order)
    if order.error_reason != reason:
        summary = N_("the package could not be read")
        record(order, "failed", summary, {"reason": reason}, payload=_masked(raw))
    order.fail(category, reason)
    notifications.order_failed(order)
    order.raw = raw
    return order


# A package whose fields the connector accepted but the database did not (a bug): the log has the details.
NOT_STORED = "the package could not be stored (the hub's log has the details)"
PACKAGE_ID_LENGTH = 64


def _fits(text: str, length: int) -> bool:
    return bool(text) and text != "?" and len(text) <= length and text.isprintable()


def _number(value: Any) -> str:
    """The order number of an unreadable package, if it can be one; the panel finds it by that."""
    text = value.strip() if isinstance(value, str) else str(value) if isinstance(value, int) else ""
    return text if _fits(text, 64) else ""


def _storable(value: Any) -> Any:
    """A payload the database can keep: NUL characters (PostgreSQL keeps none in text) shown as U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_storable(str(key)): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and infinities are no JSON
    return value


def reference(integration: Integration, package_id: str) -> str:
    return f"hub-{integration.id}-{package_id}"


def tracking_code(order: Order | Shipment, source: TrackingCodeSource) -> str:
    """Shipment Tracking Code: which of the shipment's codes the shop gets."""
    return {
        TrackingCodeSource.TRACKING_NUMBER: order.tracking_number,
        TrackingCodeSource.SHIPMENT_BARCODE: order.shipment_barcode,
        TrackingCodeSource.PACKAGE_NUMBER: order.package_number,
    }[source]


def _find(integration: Integration, package_id: str) -> Order | None:
    return db.session.scalar(
        sa.select(Order).where(Order.integration_id == integration.id, Order.package_id == package_id)
    )


def _ingest_one(
    integration: Integration,
    settings: GeneralSettings,
    package: MarketplaceOrder,
    result: IngestResult,
    announce: bool,
    known: Known,
) -> None:
    order = known.orders.get(package.package_id)
    origin = None
    if order is None:
        origin = known.origin(package)
        if origin is not None and origin.id is None:
            db.session.flush()  # the origin came in on this very page: it needs its id
        order = Order(**_first_columns(integration, package, origin))
        db.session.add(order)
        known.orders[package.package_id] = order
        known.actions[package.package_id] = []
        previous: CanonicalStatus | None = None
        first_sight = True
    elif order.marketplace_modified_at and package.modified_at < order.marketplace_modified_at:
        result.unchanged += 1  # a late copy of an older state
        return
    else:
        previous = order.canonical_status
        first_sight = previous is None  # it was unreadable until now
    old_code = tracking_code(order, settings.tracking_code_source)
    forward = moves_forward(previous, package.status)
    if not first_sight and not forward and _same(order, package):
        result.unchanged += 1
        return

    _copy(order, package, forward)
    if first_sight and order.transfer_state == TransferState.ERROR and order.error_category == "invalid_data":
        order.transfer_state, order.error_category, order.error_reason = TransferState.WAITING, None, None
    cut_here = _upsert_lines(integration, order, package, known.lines)
    record(order, **_received(package, first_sight))
    if cut_here and not first_sight:
        cut = ", ".join(f"{line.name} × {units}" for line, units in cut_here)
        record(order, "changed", N_("cancelled on the marketplace: %(lines)s"), {"lines": cut})
    if first_sight:
        result.new += 1
        if announce and origin is None:  # a package split from a known one is no new order
            notifications.new_order(order, settings)
    else:
        result.updated += 1

    # Cancelled: the whole order, or only lines whose rest lives on in another package of the order.
    lives_on = package.status in CANCELLATIONS and lives_on_elsewhere(order)
    if package.status in CANCELLATIONS:
        _cancelled_first(order)  # never in the shop: it ends (what lives on goes as its own package)
    # A package split from one in the shop is the same shop order, and it goes on from where its origin
    # was: approved as a new package would be, its status passed on where it is further along, its own
    # cancellation passed on. (One split from an order that never reached the shop carries the order
    # there in its origin's place: a new order.)
    carried_on = origin is not None and origin.transferred
    if origin is not None:
        summary = N_("split from package %(package)s: same order, same shop order")
        record(order, "changed", summary, {"package": origin.package_id})
    events = []
    if first_sight and carried_on and package.status in CANCELLATIONS:
        events.append(Event.LINES_CANCELLED if lives_on else Event.CANCELLED)
    elif first_sight:
        events.append(Event.NEW_ORDER)
        if carried_on and origin is not None and _further(package.status, origin):
            events.append(Event.STATUS_CHANGED)
    elif forward:
        if order.marketplace_echo and _is_echo(order.marketplace_echo, package.status):
            summary = N_("the marketplace confirms %(status)s, which the shop sent")
            record(order, "changed", summary, {"status": package.status.value})
            order.marketplace_echo = None
            if package.status in CANCELLATIONS:
                give_back(order, rule="decrease_stock")  # not news for the shop, but the stock comes back
        elif package.status in CANCELLATIONS:
            events.append(Event.LINES_CANCELLED if lives_on else Event.CANCELLED)
        else:
            events.append(Event.STATUS_CHANGED)
    if cut_here and not first_sight and package.status not in CANCELLATIONS:
        # Lines cancelled in the package itself, which lives on (Hepsiburada, Amazon): the order is
        # cancelled in part, as when the rest goes on in a new package.
        events.append(Event.LINES_CANCELLED)
    new_code = tracking_code(order, settings.tracking_code_source)
    # A package split from one in the shop has a parcel (and a code) of its own: the shop holds its origin's.
    was = order.shop_tracking if carried_on and first_sight else old_code
    if (not first_sight or carried_on) and new_code and new_code != was:
        events.append(Event.TRACKING_CHANGED)
    pending = known.actions[package.package_id]
    for event in events:
        facts = Facts(
            event=event,
            status=package.status,
            own_shipping=integration.own_shipping_agreement,
            transferred=order.transferred,
            has_tracking_code=bool(new_code),
            other_side_pending=any(a.kind in TO_MARKETPLACE and a.state in OPEN for a in pending),
        )
        result.actions.extend(enqueue(order, decide(settings, facts), pending))


def _further(status: CanonicalStatus, origin: Order) -> bool:
    """Whether a package split from `origin` is further along than the origin was before it was
    cancelled (which the hub may have seen already: then only a status past Created is news)."""
    before = origin.canonical_status
    if before is None or before in CANCELLATIONS:
        before = CanonicalStatus.CREATED
    return status not in CANCELLATIONS and RANK[status] > RANK[before]


def _cancelled_first(order: Order) -> None:
    """An order cancelled on the marketplace before it reached the shop has nothing left to do: it ends
    (not waiting for ever, and out of the error queue). Lines that live on in a newer package go to the
    shop with that one, which waits for its own transfer."""
    if order.transferred or order.transfer_state not in (TransferState.WAITING, TransferState.ERROR):
        return
    order.transfer_state = TransferState.CANCELLED
    order.error_category = order.error_reason = None
    record(
        order, "changed", N_("cancelled on the marketplace before it reached the shop: nothing to transfer")
    )


def _copy(order: Order, package: MarketplaceOrder, forward: bool) -> None:
    for name, value in _package_columns(package, forward).items():
        setattr(order, name, value)


# -- Column values: one source for the ORM objects and the bulk path's rows --------------------------------


def _first_columns(
    integration: Integration, package: MarketplaceOrder, origin: Order | None
) -> dict[str, Any]:
    """A first-seen package's order before the package is copied in; one split from a known order
    carries its origin's reference and shop side."""
    columns: dict[str, Any] = {
        "account_id": integration.account_id,
        "integration_id": integration.id,
        "package_id": package.package_id,
        "reference": reference(integration, package.package_id),
        "origin_id": None,
        "status": None,
        "transfer_state": TransferState.WAITING,
        "shop_tracking": "",
    }
    if origin is not None:
        columns |= {"reference": origin.reference, "origin_id": origin.id}
    if origin is not None and origin.transfer_state == TransferState.IGNORED:
        columns |= {"transfer_state": TransferState.IGNORED}  # the seller left the order out of the shop
    if origin is not None and origin.transferred:
        # The same shop order; one the origin never made is this package's to make (a cancelled or failed
        # origin's state is not this one's).
        columns |= {
            "shop_id": origin.shop_id,
            "shop_status": origin.shop_status,
            "shop_tracking": origin.shop_tracking,
            "transfer_state": origin.transfer_state,
        }
    return columns


def _package_columns(package: MarketplaceOrder, forward: bool) -> dict[str, Any]:
    """What an order takes from each copy of its package; the status only when it moves forward."""
    shipment = package.shipment
    columns: dict[str, Any] = {
        "order_number": package.order_number,
        "marketplace_modified_at": package.modified_at,
        "customer_name": package.customer_name[:200],
        "customer_email": package.customer_email[:254],
        "currency": package.currency[:3],
        "total": package.total,
        "ordered_at": package.ordered_at,
        "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number,
        "shipment_barcode": shipment.shipment_barcode,
        "package_number": shipment.package_number,
        "tracking_link": shipment.tracking_link,
        "raw": package.raw,
    }
    if forward:
        columns |= {"status": package.status.value, "marketplace_status": package.native_status}
    return columns


def _line_columns(incoming: Line) -> dict[str, Any]:
    """What a line takes from each copy of its package."""
    return {
        "barcode": incoming.barcode,
        "stock_code": incoming.stock_code,
        "name": incoming.name[:300],
        "quantity": incoming.quantity,
        "unit_price": incoming.unit_price,
        "vat_rate": incoming.vat_rate,
    }


def _received(package: MarketplaceOrder, first_sight: bool) -> dict[str, Any]:
    """The history line of a package that came in."""
    return {
        "kind": "received",
        "summary": N_("new package: %(status)s") if first_sight else N_("package updated: %(status)s"),
        # The canonical status, which the page translates and its timeline dates the steps by; the
        # marketplace's own word for it among the technical details.
        "params": {"status": package.status.value, "native": package.native_status},
        "payload": _masked(package.raw),
    }


def _same(order: Order, package: MarketplaceOrder) -> bool:
    shipment = package.shipment
    return (
        order.marketplace_status == package.native_status
        and order.tracking_number == shipment.tracking_number
        and order.shipment_barcode == shipment.shipment_barcode
        and order.tracking_link == shipment.tracking_link
        and order.total == package.total
    )


def _upsert_lines(
    integration: Integration, order: Order, package: MarketplaceOrder, known: dict[str, OrderLine]
) -> list[tuple[OrderLine, int]]:
    """The package's lines, which belong to the package that holds them now; returns the units a live
    package cut off lines it held (a part cancellation in place), line by line.

    A live package takes each line it lists and says how many units go on; fewer than the hub held means
    units cancelled off the line (a part cancellation), none means the line is cancelled (its units are
    kept: what was cancelled), and a line that was taken for cancelled lives again. A cancelled package
    is not asked which lines it still lists (Trendyol's docs do not say): it never takes a line from a
    package split from it, nor from a live one, and never changes a quantity; every line it holds then
    is cancelled. What was cancelled is derived from what lives on.
    """
    cancelled = package.status in CANCELLATIONS
    cut_here: list[tuple[OrderLine, int]] = []
    for incoming in package.lines:
        columns = _line_columns(incoming)
        line = known.get(incoming.line_id)
        if line is None:
            line = known[incoming.line_id] = OrderLine(
                integration_id=integration.id,
                line_id=incoming.line_id,
                cancelled=False,
                cancelled_quantity=0,
                stock_held=0,
            )
            db.session.add(line)
        elif line.order is not order and _holds_on(line.order, order, cancelled):
            continue
        elif cancelled:
            del columns["quantity"]
        elif line.order is not order:
            # Going on into this package: the units that did not come along were cut by the cancellation
            # of the package it leaves (what that package's note names).
            line.cancelled_quantity = max(line.quantity - incoming.quantity, 0)
        elif incoming.quantity == 0:
            if not line.cancelled:
                cut_here.append((line, line.quantity))
            del columns["quantity"]
        elif incoming.quantity < line.quantity and not line.cancelled:
            line.cancelled_quantity += line.quantity - incoming.quantity
            cut_here.append((line, line.quantity - incoming.quantity))
        if line.order is not order:
            line.order = order  # a split moves the line to its new package
        for name, value in columns.items():
            setattr(line, name, value)
        line.cancelled = cancelled or incoming.quantity == 0
    if cancelled:
        for line in order.lines:
            line.cancelled = True
    return cut_here


# How many splits the hub follows back from a package (Trendyol splits a package once per cancellation).
MAX_CHAIN = 50


def _holds_on(holder: Order, order: Order, cancelled: bool) -> bool:
    """Whether the line's holder keeps it from the package being ingested: a package split from it
    (directly or further down the chain) holds it now, and so does any live package against a
    cancelled one (a successor whose link to its origin the hub has not seen)."""
    if cancelled and holder.canonical_status not in CANCELLATIONS:
        return True
    ancestor, steps = holder, 0
    while ancestor.origin_id is not None and steps < MAX_CHAIN:
        if ancestor.origin_id == order.id:
            return True
        ancestor = db.session.get_one(Order, ancestor.origin_id)
        steps += 1
    return False


# -- The bulk path: first-seen packages as rows ---------------------------------------------------------


def _bulk_plans(
    integration: Integration, settings: GeneralSettings, packages: Sequence[MarketplaceOrder], known: Known
) -> dict[str, Plan]:
    """The packages the bulk path writes, by package id, with the plan of their new order: first seen
    (no order, no origin), touching nothing the database or the rest of the page holds (their package
    and line ids occur once on the page, and no line is known), and with a plan that moves no stock
    (which reads products line by line). Everything else goes through `_ingest_one`."""
    package_ids = Counter(package.package_id for package in packages)
    line_ids = Counter(line.line_id for package in packages for line in package.lines)
    plans = {}
    for package in packages:
        if (
            package.package_id in known.orders
            or package.origin_package_ids
            or package.status in CANCELLATIONS  # it ends at once (`_cancelled_first`): rare, the ORM way
            or package_ids[package.package_id] > 1
            or any(line_ids[line.line_id] > 1 or line.line_id in known.lines for line in package.lines)
        ):
            continue
        facts = Facts(
            event=Event.NEW_ORDER,
            status=package.status,
            own_shipping=integration.own_shipping_agreement,
            has_tracking_code=bool(tracking_code(package.shipment, settings.tracking_code_source)),
        )
        plan = decide(settings, facts)
        if not any(decision.action in STOCK_MOVES for decision in plan.decisions):
            plans[package.package_id] = plan
    return plans


def _insert_new(
    integration: Integration,
    settings: GeneralSettings,
    packages: Sequence[MarketplaceOrder],
    plans: dict[str, Plan],
    result: IngestResult,
    announce: bool,
) -> None:
    """Write first-seen packages as `_ingest_one` would, without ORM objects: one statement per table for
    the page (building and flushing the objects cost more than writing the rows). The column values and
    the history's wording come from the functions the ORM path uses; the new orders are announced to
    the live pages as Core UPDATEs are, and their actions loaded into the session for the dispatch (and
    for callers that change them before the commit)."""
    orders = [{**_first_columns(integration, p, None), **_package_columns(p, forward=True)} for p in packages]
    order_ids = _insert(Order, orders)
    lines, events, actions = [], [], []
    for package, order_id in zip(packages, order_ids, strict=True):
        cancelled = package.status in CANCELLATIONS
        for line in package.lines:
            lines.append(
                {
                    "integration_id": integration.id,
                    "order_id": order_id,
                    "line_id": line.line_id,
                    **_line_columns(line),
                    "cancelled": cancelled or line.quantity == 0,  # a line cancelled before the hub saw it
                    "cancelled_quantity": 0,
                    "stock_held": 0,
                }
            )
        decided, queued = planned(plans[package.package_id])
        events += [
            {"order_id": order_id, "rule": None, "payload": None, **event}
            for event in [_received(package, first_sight=True), *decided]
        ]
        actions += [{"order_id": order_id, "integration_id": integration.id, **action} for action in queued]
    notices = notifications.new_order_notices(settings, integration.id, order_ids) if announce else []
    for model, rows in ((OrderLine, lines), (OrderEvent, events), (OrderNotice, notices)):
        if rows:
            _write(_table(model), rows)
    if actions:
        action_ids = _insert(OrderAction, actions)
        result.actions += db.session.scalars(
            sa.select(OrderAction).where(OrderAction.id.in_(action_ids)).order_by(OrderAction.id)
        )
    for order_id in order_ids:  # announced once written (a page redone one by one announces its own)
        changefeed.touch(integration.account_id, order_id)
    result.new += len(order_ids)


def _insert(model: type[Order] | type[OrderAction], rows: list[dict[str, Any]]) -> list[int]:
    """Write the rows and give back their ids, in the order of the rows: drawn from the sequence first
    on PostgreSQL (so the rows can go by COPY), returned by the INSERT elsewhere."""
    table = _table(model)
    ids = new_ids(db.session(), table, len(rows))
    if ids is None:
        return list(
            db.session.scalars(sa.insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
        )
    for row, id_ in zip(rows, ids, strict=True):
        row["id"] = id_
    _write(table, rows)
    return ids


def _write(table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Write the rows (all with the same keys, in the same order) in one statement. On PostgreSQL a COPY,
    1.3–1.9 times as fast as the executemany (an INSERT per row, pipelined; measured on the bench's
    rows); it binds the rows as SQLAlchemy would (the columns' Python defaults filled in, once for the
    page, and each value through its type: JSON, UTC datetimes) and raises what SQLAlchemy would, so
    that a database gone away is still not contained (sync/guards.py)."""
    dialect = db.session.get_bind().dialect
    if dialect.name != "postgresql":
        db.session.execute(sa.insert(table), rows)
        return
    defaults = {
        column.name: column.default.arg(cast(Any, None)) if column.default.is_callable else column.default.arg
        for column in table.c
        if column.name not in rows[0] and isinstance(column.default, sa.ColumnDefault)
    }
    names = [*rows[0], *defaults]
    binds = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
    statement = (
        f"COPY {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(dialect.identifier_preparer.quote(n) for n in names)}) FROM STDIN"
    )
    connection = cast(psycopg.Connection[Any], db.session.connection().connection.driver_connection)
    try:
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = [row[name] for name in rows[0]] + list(defaults.values())
                copy.write_row(
                    [bind(value) if bind else value for bind, value in zip(binds, values, strict=True)]
                )
    except psycopg.Error as error:
        raise sa.exc.DBAPIError.instance(statement, None, error, psycopg.Error) from error


def _table(model: type[Any]) -> sa.Table:
    return cast(sa.Table, model.__table__)


# Built once: the pipeline asks it for every transfer.
SUCCESSOR = (
    sa.select(Order.id)
    .where(Order.origin_id == sa.bindparam("origin"), Order.status.not_in(list(CANCELLATIONS)))
    .limit(1)
)


def has_successor(order: Order) -> bool:
    """Whether the order's lines live on in a newer package (Trendyol's line cancellation). An order not
    written yet (new on the page being ingested) has none: a successor gets its origin's id first."""
    if order.id is None:
        return False
    return db.session.scalar(SUCCESSOR, {"origin": order.id}) is not None


LIVE_ELSEWHERE = (
    sa.select(OrderLine.id)
    .join(Order, OrderLine.order_id == Order.id)
    .where(
        Order.integration_id == sa.bindparam("integration"),
        Order.reference == sa.bindparam("reference"),
        Order.id != sa.bindparam("order"),
        Order.status.not_in(list(CANCELLATIONS)),
        OrderLine.cancelled.is_(False),
    )
    .limit(1)
)


def lives_on_elsewhere(order: Order) -> bool:
    """Whether another package of the order (its chain: one shop order, one reference) still holds a live
    line, however the packages link: a cancellation of this one then cut only some lines. (A package a
    seller split holds none once its lines went on; an origin whose cancellation the hub has not read yet
    may: then it is cancelled in part, and the origin's cancellation, when read, cancels the order.)"""
    if order.id is None:
        db.session.flush()
    values = {"integration": order.integration_id, "reference": order.reference, "order": order.id}
    return db.session.scalar(LIVE_ELSEWHERE, values) is not None


# Personal and tax identifiers a seller does not need to read in an order's history: every marketplace's
# (a key one marketplace uses for them means no other thing in another's payload).
MASKED_KEYS = frozenset().union(*(kind.masked_keys for kind in MARKETPLACES.values()))


def _masked(value: Any) -> Any:
    """A copy of a payload with identity and tax numbers cut to their last two characters."""
    if isinstance(value, dict):
        return {
            key: (
                "•" * max(len(str(item)) - 2, 0) + str(item)[-2:]
                if key in MASKED_KEYS and item
                else _masked(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _is_echo(echo: str, status: CanonicalStatus) -> bool:
    expected = CanonicalStatus(echo)
    return status == expected or (expected in CANCELLATIONS and status in CANCELLATIONS)
