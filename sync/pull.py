"""The pull: read an integration's marketplace from its cursor (with an overlap), ingest, move the cursor;
then, for the reverse flow, read what the seller changed in the shop."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from connectors.base import (
    ConnectorError,
    MarketplaceConnector,
    PackagePage,
    RateLimited,
    Retryable,
    ShopOrder,
)
from connectors.factory import marketplace_for, shop_for
from connectors.registry import Side
from extensions import db
from models import Integration, Order, OrderAction
from models.base import utcnow
from sync.guards import INTERNAL_ERROR, backoff, changed
from sync.history import Dispatch, enqueue, open_actions, record
from sync.ingest import IngestResult, ingest
from sync.rules import TO_SHOP, Action, Event, Facts, decide
from sync.settings import GeneralSettings
from sync.statuses import CANCELLATIONS, CanonicalStatus
from sync.wording import N_

log = logging.getLogger(__name__)
# Trendyol answers at most two weeks per request.
MAX_WINDOW = timedelta(days=14)


@dataclass
class SyncOutcome:
    ran: bool = False
    pulled: bool = False
    result: IngestResult = field(default_factory=IngestResult)
    shop_changes: int = 0
    error: str | None = None
    more: bool = False  # the budget ran out: the rest is read by the next cycle, which is due at once
    actions: list[OrderAction] = field(default_factory=list)


def sync_integration(integration_id: int, dispatch: Dispatch | None = None) -> SyncOutcome:
    """One cycle for one integration; a second worker arriving meanwhile leaves at once.

    `dispatch` hands each page's actions to the workers as soon as the page is committed, so a long
    pull moves orders to the shop while it reads, and keeps nothing per order from page to page;
    without it the actions are kept on the outcome for the caller.
    """
    now = utcnow()
    if claim(integration_id, now) is None:
        # Another run holds it (a webhook run, an import, a cycle): this one comes back at the next tick
        # rather than when the tick's claim runs out, PULL_LEASE_SECONDS on.
        soon = now + timedelta(seconds=current_app.config["TICK_SECONDS"])
        db.session.execute(
            sa.update(Integration)
            .where(Integration.id == integration_id, Integration.next_pull_at > soon)
            .values(next_pull_at=soon)
        )
        db.session.commit()
        return SyncOutcome()
    integration = db.session.get_one(Integration, integration_id)
    outcome = SyncOutcome(ran=True)
    try:
        settings = integration.settings.to_domain()
        if integration.active and settings.retrieve_orders:
            _pull(integration, outcome, dispatch)
        if integration.active and reads_shop(integration, settings):
            _poll_shop(integration, outcome)
    finally:
        db.session.rollback()  # whatever an error left half done; each step above committed its own work
        values: dict[str, object] = {"pull_lease_until": None}
        if not outcome.pulled:  # a pull sets its own next time (interval, or backoff after a failure)
            values["next_pull_at"] = now + interval(integration)
        db.session.execute(sa.update(Integration).where(Integration.id == integration_id).values(**values))
        db.session.commit()
    return outcome


def claim(integration_id: int, now: datetime) -> datetime | None:
    """Take the integration's pull lease, if no one holds it: one sync cycle, import or webhook run at a
    time reads and ingests an integration. Committed; returns the lease's end (None: not taken)."""
    until = now + timedelta(seconds=current_app.config["PULL_LEASE_SECONDS"])
    claimed = changed(
        sa.update(Integration)
        .where(
            Integration.id == integration_id,
            sa.or_(Integration.pull_lease_until.is_(None), Integration.pull_lease_until < now),
        )
        .values(pull_lease_until=until)
    )
    db.session.commit()
    return until if claimed else None


def release(integration_id: int, held: datetime) -> None:
    """Give the lease back, if it is still the one taken (a run that outlived it leaves the next one's)."""
    db.session.rollback()
    db.session.execute(
        sa.update(Integration)
        .where(Integration.id == integration_id, Integration.pull_lease_until == held)
        .values(pull_lease_until=None)
    )
    db.session.commit()


@dataclass
class Budget:
    """How much one run may read before it yields the worker to others: pages, and seconds in all."""

    pages: int
    seconds: float
    started: float = field(default_factory=time.monotonic)
    used: int = 0

    @classmethod
    def from_config(cls) -> Budget:
        config = current_app.config
        return cls(pages=config["SYNC_PAGE_BUDGET"], seconds=config["SYNC_TIME_BUDGET"])

    def spent(self, times: int = 1) -> bool:
        elapsed = time.monotonic() - self.started
        return self.used >= self.pages * times or elapsed >= self.seconds * times

    def exhausted(self) -> bool:
        return self.spent(times=4)

    def allows(self, wait: float) -> bool:
        """Whether waiting this long still fits in the run's time."""
        return time.monotonic() + wait - self.started < self.seconds


def read(
    marketplace: MarketplaceConnector,
    start: datetime,
    end: datetime,
    budget: Budget,
    on_page: Callable[[PackagePage], None],
) -> bool:
    """Read [start, end] oldest first, handing each page to `on_page` as it comes (which ingests it and
    keeps it); True when everything was read, False when the budget ran out first.

    Paged by time, not by page number: each request starts at the newest modification read so far. A
    package modified while the run pages leaves the window, and page numbers would then skip the one that
    moved up into its place; a request from the newest time read cannot. The package(s) at that very
    moment are read twice (no news the second time). Page numbers serve only within one millisecond.

    The newest time read is also where the next run goes on from. A run stops for its budget only once
    it has moved past where it started, so packages sharing one millisecond beyond a budget's worth are
    read through rather than over and over; past four budgets it stops all the same (a platform whose
    pages never move on).
    """
    size = current_app.config["PULL_PAGE_SIZE"]
    reached = start
    for window_start, window_end in windows(start, end):
        at, page = window_start, 0
        while True:
            if budget.spent() and (reached > start or budget.exhausted()):
                return False
            listing = _page(marketplace, at, window_end, page, size, budget)
            budget.used += 1
            on_page(listing)
            newest_here = newest(listing, None)
            reached = max(reached, newest_here or reached)
            if page + 1 >= listing.total_pages:
                break
            if newest_here is not None and newest_here > at:
                at, page = newest_here, 0
            else:  # a whole page of one moment (or of unreadable packages): the next page of it
                page += 1
    return True


def _page(
    marketplace: MarketplaceConnector, start: datetime, end: datetime, page: int, size: int, budget: Budget
) -> PackagePage:
    """One page, tried again after a failure the platform may get over (a 5xx, a timeout, a 429 that
    asks for a short wait), with backoff, while the budget's time allows; then the failure stands, and
    the next cycle goes on from the last page read."""
    attempts = current_app.config["PULL_PAGE_ATTEMPTS"]
    for attempt in range(1, attempts):
        try:
            return marketplace.list_packages(start, end, page, size)
        except Retryable as error:
            wait = error.retry_after if isinstance(error, RateLimited) else backoff(attempt, "PULL_PAGE")
            if not budget.allows(wait):
                raise
            log.info("page %s of a pull failed (%s), again in %.1f s", page, error.category, wait)
            time.sleep(wait)
    return marketplace.list_packages(start, end, page, size)  # the last attempt: its failure stands


def newest(listing: PackagePage, since: datetime | None) -> datetime | None:
    """The newest modification on a page, or `since` if nothing on it is newer."""
    return max([package.modified_at for package in listing.orders] + ([since] if since else []), default=None)


def _pull(integration: Integration, outcome: SyncOutcome, dispatch: Dispatch | None) -> None:
    config = current_app.config
    now = utcnow()
    # The marketplace's own lag where it is longer (N11 shows a change up to 15 minutes late).
    overlap = max(timedelta(seconds=config["PULL_OVERLAP_SECONDS"]), integration.marketplace.pull_overlap)
    first = now - timedelta(hours=config["PULL_FIRST_WINDOW_HOURS"])
    cursor = integration.pull_cursor or first
    rereads = integration.pull_resume_from is None and _rereads_overlap(integration, now)
    start = integration.pull_resume_from or (cursor - overlap if rereads else cursor)
    if rereads:
        # Kept with the first page the cycle commits; a cycle that fails before it reads it again.
        integration.pull_overlap_read_at = now
    settings = integration.settings.to_domain()
    lease = timedelta(seconds=config["PULL_LEASE_SECONDS"])

    def keep(listing: PackagePage) -> None:
        """One page: ingested, its progress noted and the lease renewed, in one transaction; then its
        actions go to the workers."""
        part = ingest(integration, settings, listing.orders, listing.unreadable)
        integration.pull_resume_from = newest(listing, integration.pull_resume_from)
        integration.pull_lease_until = utcnow() + lease
        db.session.commit()
        if dispatch is not None:
            dispatch(part.actions)
            part.actions = []
        outcome.result.add(part)

    try:
        with marketplace_for(integration) as marketplace:
            complete = read(marketplace, start, now, Budget.from_config(), keep)
    except Exception as error:
        db.session.rollback()
        # Progress is a resume point past where the cycle started, not a page read again.
        progressed = (integration.pull_resume_from or start) > start
        _pull_failed(integration, error, progressed=progressed)
        outcome.error = integration.last_pull_error
        outcome.actions.extend(outcome.result.actions)
        outcome.pulled = True
        if not isinstance(error, ConnectorError):
            raise  # a bug, the database, the job's time limit: noted on the integration, and a failed job
        return
    outcome.actions.extend(outcome.result.actions)
    integration.last_pull_at = now
    integration.last_pull_error = integration.last_pull_error_category = None
    integration.pull_failures = 0
    if complete:
        # Everything up to `now` has been read: the next pull starts from what it saw, or from `now` less
        # the overlap, so a quiet integration's window does not grow back towards the history limit.
        seen = [integration.pull_resume_from, now - overlap, integration.pull_cursor]
        integration.pull_cursor = max(moment for moment in seen if moment is not None)
        integration.pull_resume_from = None
        integration.next_pull_at = now + interval(integration)
    else:
        # Out of budget: the rest at once, but behind every integration already waiting for its turn.
        outcome.more = True
        integration.pull_resume_from = integration.pull_resume_from or start
        integration.next_pull_at = now
    db.session.commit()
    result = outcome.result
    if result.new or result.updated or result.errors:  # the run log: a line per pull that brought news
        log.info(
            "pull of integration %s: %d new, %d updated, %d unreadable%s",
            integration.id,
            result.new,
            result.updated,
            result.errors,
            "" if complete else ", more to read",
        )
    outcome.pulled = True


def interval(integration: Integration) -> timedelta:
    """Time between pulls: the seller's interval, or the marketplace's least where its rate limits allow
    fewer reads (an interval saved before the marketplace said so, too; MARKETPLACE_PULL_FLOORS off, for
    the e2e run against the sandbox, drops that floor); at least WEBHOOK_PULL_INTERVAL where every side the
    cycle reads pushes its changes, so pulls only reconcile."""
    config = current_app.config
    floor = integration.marketplace.min_pull_interval if config["MARKETPLACE_PULL_FLOORS"] else 0
    if pushed(integration):
        floor = max(floor, config["WEBHOOK_PULL_INTERVAL"])
    return timedelta(seconds=max(integration.pull_interval, floor))


def pushed(integration: Integration) -> bool:
    """Whether every side the sync cycle reads has its webhooks registered."""
    settings = integration.settings.to_domain()
    reads = {Side.MARKETPLACE: settings.retrieve_orders, Side.SHOP: reads_shop(integration, settings)}
    return any(reads.values()) and all(integration.webhooks_at(side) for side, read in reads.items() if read)


def reads_shop(integration: Integration, settings: GeneralSettings | None = None) -> bool:
    """Whether the cycle reads the shop: the reverse flow's eyes, for an own shipping agreement (the
    tick's query asks the same in SQL)."""
    settings = settings or integration.settings.to_domain()
    return integration.own_shipping_agreement and (settings.reverse_flow or settings.update_feedback)


def _rereads_overlap(integration: Integration, now: datetime) -> bool:
    """Whether a pull reads the overlap before its cursor again: once every PULL_OVERLAP_EVERY seconds
    (every pull, when it is 0), at most every half overlap, so a write that shows up late by up to half the
    overlap is always read. The others go on from the cursor, so a pull every second does not read (and
    ingest, as no news) the last minutes again each time."""
    config = current_app.config
    every = timedelta(seconds=min(config["PULL_OVERLAP_EVERY"], config["PULL_OVERLAP_SECONDS"] // 2))
    last = integration.pull_overlap_read_at
    return not every or last is None or now - last >= every


def _pull_failed(integration: Integration, error: Exception, *, progressed: bool) -> None:
    """Keep the cursor (and what was read: the resume point); come back after the platform's
    Retry-After, or with backoff and jitter (short again after a cycle that read pages before it
    failed: a platform that fails one page in five still gets read). The seller reads the category and a
    short sentence."""
    integration.pull_failures = 1 if progressed else integration.pull_failures + 1
    if isinstance(error, ConnectorError):
        integration.last_pull_error = str(error)
        integration.last_pull_error_category = error.category
        log.warning("pull of integration %s failed (%s): %s", integration.id, error.category, error)
    else:  # its text may hold SQL or a payload: the log has it (the job's traceback), not the page
        integration.last_pull_error = INTERNAL_ERROR
        integration.last_pull_error_category = "internal"
    if isinstance(error, RateLimited):
        delay = error.retry_after
    elif isinstance(error, ConnectorError) and not error.retryable:
        delay = max(interval(integration).total_seconds(), 300)  # wrong credentials: no point in hammering
    else:
        delay = backoff(integration.pull_failures + 1)
    integration.next_pull_at = utcnow() + timedelta(seconds=delay)
    db.session.commit()


def windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end] cut into the longest windows the marketplace accepts."""
    cuts = []
    while start < end:
        cuts.append((start, min(start + MAX_WINDOW, end)))
        start += MAX_WINDOW
    return cuts


def _poll_shop(integration: Integration, outcome: SyncOutcome) -> None:
    """The reverse flow's eyes: statuses and tracking codes the seller changed in the shop."""
    config = current_app.config
    now = utcnow()
    overlap = timedelta(seconds=config["PULL_OVERLAP_SECONDS"])
    since = (integration.shop_cursor or now) - overlap
    try:
        with shop_for(integration) as shop:
            changes = shop.changed_since(since)
    except ConnectorError as error:
        log.warning("shop poll of integration %s failed: %s", integration.id, error)
        outcome.error = str(error)
        return
    outcome.actions.extend(shop_changes(integration, changes, outcome=outcome).actions)
    seen = [order.modified_at for order in changes if order.modified_at]
    integration.shop_cursor = max([*seen, integration.shop_cursor or now])
    db.session.commit()


def shop_changes(
    integration: Integration, changes: Sequence[ShopOrder], *, outcome: SyncOutcome | None = None
) -> ShopChanges:
    """What the seller changed in the shop, from its orders as the shop has them now (a poll's, or the
    one a webhook named): each status or tracking code that differs from what the hub last saw is an
    event for the decision table. An order an action is writing right now is left (`busy`): what the
    action writes is the hub's own, and the next look sees the rest."""
    now = utcnow()
    settings = integration.settings.to_domain()
    result = ShopChanges()
    for shop_order in changes:
        order = _live_order(integration, shop_order.reference)
        if order is None:
            continue  # not ours
        if order.lease_until and order.lease_until > now:
            result.busy.append(shop_order.shop_id)
            continue
        events = []
        if shop_order.status != order.shop_status:
            moved = {"shop_from": order.shop_status, "shop_to": shop_order.status}
            record(order, "received", N_("shop status %(shop_from)s → %(shop_to)s (in the shop)"), moved)
            order.shop_status = shop_order.status
            events.append(Event.SHOP_STATUS_CHANGED)
        if shop_order.tracking_number and shop_order.tracking_number != order.shop_tracking:
            entered = {"code": shop_order.tracking_number}
            record(order, "received", N_("tracking code %(code)s entered in the shop"), entered)
            order.shop_tracking = shop_order.tracking_number
            order.shop_carrier = shop_order.carrier
            events.append(Event.SHOP_TRACKING_CHANGED)
        for event in events:
            facts = Facts(
                event,
                order.canonical_status or CanonicalStatus.CREATED,
                own_shipping=integration.own_shipping_agreement,
                transferred=True,
                other_side_pending=bool(open_actions(order, _CONFLICTING[event])),
            )
            result.actions.extend(enqueue(order, decide(settings, facts)))
            if outcome is not None:
                outcome.shop_changes += 1
    return result


# What a change the seller made in the shop competes with on the other side (Transaction Priority): the
# hub writing the same thing to the shop. A tracking code entered in the shop and a status the hub is
# about to set touch different fields, and neither drops the other.
_CONFLICTING = {
    Event.SHOP_STATUS_CHANGED: TO_SHOP - {Action.SHOP_TRACKING},
    Event.SHOP_TRACKING_CHANGED: frozenset({Action.SHOP_TRACKING}),
}


@dataclass
class ShopChanges:
    """The actions the shop's changes call for, and the shop orders left for an action writing them."""

    actions: list[OrderAction] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)


def _live_order(integration: Integration, reference: str) -> Order | None:
    """The package a shop order stands for now: the newest of its chain that is not cancelled."""
    orders = db.session.scalars(
        sa.select(Order)
        .where(Order.integration_id == integration.id, Order.reference == reference)
        .order_by(Order.id.desc())
    ).all()
    live = [order for order in orders if order.canonical_status not in CANCELLATIONS]
    return next(iter(live or orders), None)
