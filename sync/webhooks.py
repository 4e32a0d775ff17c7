"""The webhook inbox's worker: each waiting delivery's order read again from its platform, and taken
through the same path as a pull's (`ingest` for a marketplace package, `shop_changes` for a shop order).

A delivery is a hint: the order is read as the platform holds it now, so deliveries late, out of order
or sent twice change nothing a newer one did, and a webhook and a pull of one change do it once (ingest
and the shop's comparison see no news the second time). The run holds the integration's pull lease, as a
sync cycle and an import do, so the three never ingest the same packages at once; while one of them holds
it, the deliveries wait a moment. Several waiting deliveries naming one order read it once.

A delivery whose order could not be read (the platform failed) is tried again with backoff, up to
WEBHOOK_ATTEMPTS times; after that, or for a refusal, the next pull brings the change: nothing is lost,
and the seller's pulls go on as before.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from connectors.base import LINE_SUBJECT, PARCEL_SUBJECT, ConnectorError, MarketplaceOrder, ShopOrder
from connectors.factory import marketplace_for, shop_for
from connectors.registry import Side
from extensions import db
from models import Integration, Order, OrderAction, OrderLine, WebhookDelivery
from models.base import utcnow
from models.crypto import encrypt_json
from sync.guards import INTERNAL_ERROR, NOT_CONTAINED, backoff
from sync.history import Dispatch
from sync.ingest import ingest
from sync.pull import claim, reads_shop, release, shop_changes

log = logging.getLogger(__name__)
BATCH = 200


@dataclass(frozen=True)
class Handled:
    """When to come back (None: nothing waits), and whether it is because the integration was busy."""

    again: datetime | None
    busy: bool = False


def handle(integration_id: int, dispatch: Dispatch) -> Handled:
    """Handle the integration's waiting deliveries, for up to SYNC_TIME_BUDGET seconds; says when to come
    back: a sync cycle or an import held the integration (`busy`), a delivery waits for its retry, more
    is waiting; or that nothing waits (an integration deleted meanwhile among them)."""
    now = utcnow()
    held = claim(integration_id, now)
    if held is None:
        return Handled(now, busy=True) if _next_due(integration_id) is not None else Handled(None)
    deadline = time.monotonic() + current_app.config["SYNC_TIME_BUDGET"]
    try:
        integration = db.session.get_one(Integration, integration_id)
        while time.monotonic() < deadline:
            waiting = _waiting(integration_id, utcnow())
            if not waiting:
                break
            try:
                dispatch(_handle(integration, waiting, deadline))
            except NOT_CONTAINED:
                raise
            except Exception:  # a bug's, not the platform's: tried again, then left to the pull
                db.session.rollback()
                log.exception("webhook deliveries of integration %s failed", integration_id)
                for delivery in _waiting(integration_id, utcnow()):
                    _again(delivery, INTERNAL_ERROR)
                db.session.commit()
    finally:
        release(integration_id, held)
    return Handled(_next_due(integration_id))


def _next_due(integration_id: int) -> datetime | None:
    """When the first delivery still waiting is due, if any."""
    return db.session.scalar(
        sa.select(
            sa.func.min(sa.func.coalesce(WebhookDelivery.next_try_at, WebhookDelivery.received_at))
        ).where(WebhookDelivery.integration_id == integration_id, WebhookDelivery.handled_at.is_(None))
    )


def _due(now: datetime) -> sa.ColumnElement[bool]:
    """A delivery not handled yet, and not waiting for a retry later than `now`."""
    return sa.and_(
        WebhookDelivery.handled_at.is_(None),
        sa.or_(WebhookDelivery.next_try_at.is_(None), WebhookDelivery.next_try_at <= now),
    )


def _waiting(integration_id: int, now: datetime) -> list[WebhookDelivery]:
    return list(
        db.session.scalars(
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.integration_id == integration_id, _due(now))
            .order_by(WebhookDelivery.id)
            .limit(BATCH)
        )
    )


def _handle(
    integration: Integration, deliveries: list[WebhookDelivery], deadline: float
) -> list[OrderAction]:
    """One batch: each side's orders read once (until the run's time is up: the rest wait, untouched),
    taken in, the deliveries marked; committed."""
    settings = integration.settings.to_domain()
    actions: list[OrderAction] = []
    for side in Side:
        mine = [delivery for delivery in deliveries if delivery.side == side]
        if not mine:
            continue
        busy: set[str] = set()
        if side is Side.MARKETPLACE:
            if not (integration.active and settings.retrieve_orders):
                _done(mine, "ignored")
                continue
            # A line or a parcel named (Hepsiburada's events): the package the hub holds it in.
            named = _packages_named(integration, {delivery.subject for delivery in mine})
            _done([delivery for delivery in mine if delivery.subject not in named], "not ours")
            mine = [delivery for delivery in mine if delivery.subject in named]
            packages = _read(
                named.values(),
                integration,
                side,
                deadline,
                lambda connector, package_id: connector.get_package(package_id),
            )
            read = {subject: packages[package] for subject, package in named.items() if package in packages}
            found = [package for package in packages.values() if isinstance(package, MarketplaceOrder)]
            actions.extend(ingest(integration, settings, found).actions)
        else:
            if not (integration.active and reads_shop(integration, settings)):
                _done(mine, "ignored")
                continue
            # A shop sends its changes to every order it has, the hub's few among them: only those are read.
            ours = _shop_orders_of(integration, {delivery.subject for delivery in mine})
            _done([delivery for delivery in mine if delivery.subject not in ours], "not ours")
            mine = [delivery for delivery in mine if delivery.subject in ours]
            read = _read(
                (delivery.subject for delivery in mine),
                integration,
                side,
                deadline,
                lambda connector, subject: connector.get_order(subject),
            )
            changes = shop_changes(
                integration, [order for order in read.values() if isinstance(order, ShopOrder)]
            )
            actions.extend(changes.actions)
            busy = set(changes.busy)
        for delivery in mine:
            if delivery.subject not in read:
                continue  # the run's time was up before it was read
            outcome = read[delivery.subject]
            if isinstance(outcome, ConnectorError):
                _failed(delivery, outcome)
            elif delivery.subject in busy:  # an action is writing the order: a moment, no attempt spent
                delivery.next_try_at = utcnow() + timedelta(
                    seconds=current_app.config["WEBHOOK_BUSY_SECONDS"]
                )
            else:
                _done([delivery], "handled" if outcome is not None else "not found")
    db.session.commit()
    return actions


def _shop_orders_of(integration: Integration, subjects: set[str]) -> set[str]:
    """Which of the shop's order ids are the hub's orders of this integration."""
    return set(
        db.session.scalars(
            sa.select(Order.shop_id).where(
                Order.integration_id == integration.id, Order.shop_id.in_(subjects)
            )
        )
    )


def _packages_named(integration: Integration, subjects: set[str]) -> dict[str, str]:
    """The package each subject names: a package id as it is; a line (LINE_SUBJECT) or a parcel
    (PARCEL_SUBJECT) the package of the integration's order holding it, left out where the hub holds
    none (the order is not in yet: its pull brings it)."""
    named = {
        subject: subject for subject in subjects if not subject.startswith((LINE_SUBJECT, PARCEL_SUBJECT))
    }
    lines = {subject.removeprefix(LINE_SUBJECT) for subject in subjects if subject.startswith(LINE_SUBJECT)}
    if lines:
        rows = db.session.execute(
            sa.select(OrderLine.line_id, Order.package_id)
            .join(Order, Order.id == OrderLine.order_id)
            .where(OrderLine.integration_id == integration.id, OrderLine.line_id.in_(lines))
        )
        named |= {LINE_SUBJECT + line: package for line, package in rows}
    for subject in subjects:
        if subject.startswith(PARCEL_SUBJECT):
            parcel = subject.removeprefix(PARCEL_SUBJECT)
            # An order's parcels are kept joined ("1, 2"): the one that holds exactly this number.
            holders = db.session.execute(
                sa.select(Order.package_id, Order.package_number).where(
                    Order.integration_id == integration.id,
                    Order.package_number.contains(parcel, autoescape=True),
                )
            )
            package = next((held for held, numbers in holders if parcel in numbers.split(", ")), None)
            if package is not None:
                named[subject] = package
    return named


def _read(
    subjects: Iterable[str],
    integration: Integration,
    side: Side,
    deadline: float,
    fetch: Callable[[Any, str], object],
) -> dict[str, object]:
    """Each order named, read once, while the run's time lasts: what the platform answered (None: it has
    no such order), or the error it failed with."""
    subjects = list(dict.fromkeys(subjects))
    read: dict[str, object] = {}
    if not subjects:
        return read
    try:
        opened = marketplace_for(integration) if side is Side.MARKETPLACE else shop_for(integration)
        with opened as connector:
            for subject in subjects:
                if time.monotonic() >= deadline:
                    break
                try:
                    read[subject] = fetch(connector, subject)
                except ConnectorError as error:
                    read[subject] = error
    except ConnectorError as error:  # the connector could not be made (an address the guard refuses)
        read = dict.fromkeys(subjects, error)
    return read


def _done(deliveries: Iterable[WebhookDelivery], outcome: str) -> None:
    now = utcnow()
    for delivery in deliveries:
        delivery.handled_at = now
        delivery.outcome = outcome
        delivery.attempts += 1


def _failed(delivery: WebhookDelivery, error: ConnectorError) -> None:
    if error.retryable:
        _again(delivery, str(error))
    else:
        delivery.last_error = str(error)[:500]
        _done([delivery], "left to the pull")


def _again(delivery: WebhookDelivery, why: str) -> None:
    """Tried again after a backoff; past WEBHOOK_ATTEMPTS, left to the next pull."""
    delivery.last_error = why[:500]
    if delivery.attempts + 1 >= current_app.config["WEBHOOK_ATTEMPTS"]:
        log.info("webhook delivery %s left to the pull: %s", delivery.id, why)
        _done([delivery], "left to the pull")
        return
    delivery.attempts += 1
    delivery.next_try_at = utcnow() + timedelta(seconds=backoff(delivery.attempts, "WEBHOOK"))


def callback_url(integration: Integration, side: Side) -> str:
    """Where the side's platform sends its webhooks: the hub's public address, this integration's token
    (blueprints/webhooks.py)."""
    return f"{current_app.config['PUBLIC_URL'].rstrip('/')}/webhooks/{integration.webhook_token}/{side}"


def register(integration: Integration) -> dict[Side, ConnectorError]:
    """Register (again) each side's webhooks through its platform's API, where it has them; the address
    and the secret are made the first time. Returns what each platform refused; what it took is noted on
    the integration, and committed. No lock is held while the platforms are called."""
    if integration.webhook_token is None:
        integration.webhook_token = secrets.token_urlsafe(24)
        integration.webhook_secret_encrypted = encrypt_json({"secret": secrets.token_urlsafe(32)})
        db.session.commit()
    problems: dict[Side, ConnectorError] = {}
    for side in Side:
        intake = integration.kind(side).webhooks
        if intake is None:
            continue
        if intake.by_request is not None:  # a ticket's: noted at its first delivery (blueprints/webhooks.py)
            if integration.webhooks_at(side) is not None:
                setattr(integration, f"{side}_webhooks_at", utcnow())
            continue
        opened = marketplace_for(integration) if side is Side.MARKETPLACE else shop_for(integration)
        try:
            with opened as connector:
                url, secret = callback_url(integration, side), integration.webhook_secret()
                registered = connector.subscribe(url, secret)
        except ConnectorError as error:
            problems[side] = error
            continue
        setattr(integration, f"{side}_webhooks", registered[:500])
        setattr(integration, f"{side}_webhooks_at", utcnow())
    db.session.commit()
    return problems


def renew(integration_id: int) -> None:
    """Register the integration's webhooks again once WEBHOOK_RENEW_HOURS have passed since they were:
    a platform that deleted or switched one off after failed deliveries gets it back (the reference's
    advice for Shopify), and a side whose platform refuses now is read by pulls at the seller's interval
    again (its registration forgotten), not every WEBHOOK_PULL_INTERVAL."""
    integration = db.session.get(Integration, integration_id)
    if integration is None or not integration.active:
        return
    due = utcnow() - timedelta(hours=current_app.config["WEBHOOK_RENEW_HOURS"])
    stale_sides = [side for side in Side if (integration.webhooks_at(side) or due) < due]
    if not stale_sides:
        return
    for side, error in register(integration).items():
        if side in stale_sides:
            log.warning(
                "webhooks of integration %s (%s) not registered again: %s", integration_id, side, error
            )
            integration.forget_webhooks(side)
    db.session.commit()


def forget_handled(now: datetime) -> None:
    """Delete the deliveries handled more than WEBHOOK_KEEP_DAYS ago: the inbox keeps what it must to
    take a delivery once, and the days the Webhooks tab shows."""
    before = now - timedelta(days=current_app.config["WEBHOOK_KEEP_DAYS"])
    db.session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.handled_at < before))
    db.session.commit()


def stale(now: datetime) -> list[int]:
    """Integrations with deliveries waiting that no worker has: not handed to RQ (Redis was away when they
    came), or handed out long ago and not handled (a worker died); the tick's sweeper hands them out."""
    requeue = now - timedelta(seconds=current_app.config["OUTBOX_REQUEUE_SECONDS"])
    return list(
        db.session.scalars(
            sa.select(WebhookDelivery.integration_id)
            .where(
                _due(now),
                sa.or_(WebhookDelivery.enqueued_at.is_(None), WebhookDelivery.enqueued_at < requeue),
            )
            .distinct()
            .limit(current_app.config["TICK_BATCH"])
        )
    )


def handed_out(integration_id: int, now: datetime) -> None:
    """Note that the integration's waiting deliveries were handed to RQ just now."""
    db.session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.integration_id == integration_id, WebhookDelivery.handled_at.is_(None))
        .values(enqueued_at=now)
    )
    db.session.commit()
