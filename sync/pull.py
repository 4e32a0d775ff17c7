"""The pull: read an integration's marketplace from its cursor (with an overlap), ingest, move the cursor;
then, for the reverse flow, read what the seller changed in the shop."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from connectors.base import ConnectorError, MarketplaceOrder, RateLimited
from connectors.factory import marketplace_for, shop_for
from extensions import db
from models import Integration, Order, OrderAction
from models.base import utcnow
from sync.guards import backoff, changed
from sync.history import enqueue, open_actions, record
from sync.ingest import IngestResult, ingest
from sync.rules import TO_SHOP, Event, Facts, decide
from sync.statuses import CANCELLATIONS, CanonicalStatus

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
    actions: list[OrderAction] = field(default_factory=list)


def sync_integration(integration_id: int) -> SyncOutcome:
    """One cycle for one integration; a second worker arriving meanwhile leaves at once."""
    config = current_app.config
    now = utcnow()
    lease = timedelta(seconds=config["PULL_LEASE_SECONDS"])
    claimed = changed(
        sa.update(Integration)
        .where(
            Integration.id == integration_id,
            sa.or_(Integration.pull_lease_until.is_(None), Integration.pull_lease_until < now),
        )
        .values(pull_lease_until=now + lease)
    )
    db.session.commit()
    if not claimed:
        return SyncOutcome()
    integration = db.session.get_one(Integration, integration_id)
    outcome = SyncOutcome(ran=True)
    try:
        settings = integration.settings.to_domain()
        if integration.active and settings.retrieve_orders:
            _pull(integration, outcome)
        if (
            integration.active
            and integration.own_shipping_agreement
            and (settings.reverse_flow or settings.update_feedback)
        ):
            _poll_shop(integration, outcome)
    finally:
        db.session.rollback()  # whatever an error left half done; each step above committed its own work
        values: dict[str, object] = {"pull_lease_until": None}
        if not outcome.pulled:  # a pull sets its own next time (interval, or backoff after a failure)
            values["next_pull_at"] = now + timedelta(seconds=integration.pull_interval)
        db.session.execute(sa.update(Integration).where(Integration.id == integration_id).values(**values))
        db.session.commit()
    return outcome


def _pull(integration: Integration, outcome: SyncOutcome) -> None:
    config = current_app.config
    now = utcnow()
    overlap = timedelta(seconds=config["PULL_OVERLAP_SECONDS"])
    start = (integration.pull_cursor or now - timedelta(hours=config["PULL_FIRST_WINDOW_HOURS"])) - overlap
    packages: dict[str, MarketplaceOrder] = {}
    unreadable: list[tuple[str, str, dict[str, Any]]] = []
    try:
        with marketplace_for(integration) as marketplace:
            for window_start, window_end in windows(start, now):
                page = 0
                while True:
                    listing = marketplace.list_packages(
                        window_start, window_end, page, config["PULL_PAGE_SIZE"]
                    )
                    for package in listing.orders:
                        known = packages.get(package.package_id)
                        if known is None or package.modified_at >= known.modified_at:
                            packages[package.package_id] = package
                    unreadable.extend(listing.unreadable)
                    page += 1
                    if page >= listing.total_pages:
                        break
    except ConnectorError as error:
        _pull_failed(integration, error)
        outcome.error = str(error)
        outcome.pulled = True
        return

    settings = integration.settings.to_domain()
    # Packages split from another before all others, across the whole pull, so an origin's cancellation
    # is read knowing its successor; then oldest first.
    batch = sorted(packages.values(), key=lambda p: (not p.origin_package_ids, p.modified_at))
    size = config["INGEST_BATCH"]
    for index in range(0, max(len(batch), 1), size):
        chunk = batch[index : index + size]
        part = ingest(integration, settings, chunk, unreadable if index == 0 else ())
        db.session.commit()
        outcome.result.add(part)
    outcome.actions.extend(outcome.result.actions)
    # Everything up to `now` has been read: the next pull starts from what it saw, or from `now` less the
    # overlap, so a quiet integration's window does not grow back towards the marketplace's history limit.
    seen = [package.modified_at for package in batch]
    integration.pull_cursor = max([*seen, now - overlap, *filter(None, [integration.pull_cursor])])
    integration.last_pull_at = now
    integration.next_pull_at = now + timedelta(seconds=integration.pull_interval)
    integration.last_pull_error = None
    integration.pull_failures = 0
    db.session.commit()
    outcome.pulled = True


def _pull_failed(integration: Integration, error: ConnectorError) -> None:
    """Keep the cursor; come back after the platform's Retry-After, or with backoff and jitter."""
    integration.pull_failures += 1
    integration.last_pull_error = str(error)[:2000]
    if isinstance(error, RateLimited):
        delay = error.retry_after
    elif error.retryable:
        delay = backoff(integration.pull_failures + 1)
    else:
        delay = max(integration.pull_interval, 300)  # wrong credentials: no point in hammering
    integration.next_pull_at = utcnow() + timedelta(seconds=delay)
    log.warning("pull of integration %s failed: %s", integration.id, error)
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
    settings = integration.settings.to_domain()
    for shop_order in changes:
        order = _live_order(integration, shop_order.reference)
        if order is None or (order.lease_until and order.lease_until > now):
            continue  # not ours, or an action is writing it right now: the overlap brings it back
        events = []
        if shop_order.status != order.shop_status:
            record(order, "received", f"shop status {order.shop_status} → {shop_order.status} (in the shop)")
            order.shop_status = shop_order.status
            events.append(Event.SHOP_STATUS_CHANGED)
        if shop_order.tracking_number and shop_order.tracking_number != order.shop_tracking:
            record(order, "received", f"tracking code {shop_order.tracking_number} entered in the shop")
            order.shop_tracking = shop_order.tracking_number
            events.append(Event.SHOP_TRACKING_CHANGED)
        for event in events:
            facts = Facts(
                event,
                order.canonical_status or CanonicalStatus.CREATED,
                own_shipping=integration.own_shipping_agreement,
                transferred=True,
                other_side_pending=bool(open_actions(order, TO_SHOP)),
            )
            outcome.actions.extend(enqueue(order, decide(settings, facts)))
            outcome.shop_changes += 1
    seen = [order.modified_at for order in changes if order.modified_at]
    integration.shop_cursor = max([*seen, integration.shop_cursor or now])
    db.session.commit()


def _live_order(integration: Integration, reference: str) -> Order | None:
    """The package a shop order stands for now: the newest of its chain that is not cancelled."""
    orders = db.session.scalars(
        sa.select(Order)
        .where(Order.integration_id == integration.id, Order.reference == reference)
        .order_by(Order.id.desc())
    ).all()
    live = [order for order in orders if order.canonical_status not in CANCELLATIONS]
    return next(iter(live or orders), None)
