"""A General setting changed: the open orders it bears on are looked at again, so that what the seller
sees on the page is what happens to orders already in the shop, not only to the next ones.

Shipment Tracking Code is such a setting: an order is told its code when the code appears or changes
(sync/ingest.py), so an order in the shop whose code under the new choice was there all along (the
package number, say) would never get it. Here each open order in the shop whose code under the
setting differs from the one the shop holds goes through the decision table as if the code had just
changed (Tracking Code Transfer still decides).
"""

from __future__ import annotations

import sqlalchemy as sa

from extensions import db
from models import Integration, Order, OrderAction
from sync.history import Dispatch, enqueue
from sync.ingest import tracking_code
from sync.rules import Event, Facts, decide
from sync.statuses import RANK, CanonicalStatus

# Orders read and decided on per transaction.
BATCH = 500
# Open: in the shop and not yet with the customer, nor ended.
OPEN = [status.value for status in CanonicalStatus if RANK[status] < RANK[CanonicalStatus.DELIVERED]]


def tracking_codes(integration_id: int, dispatch: Dispatch | None = None) -> int:
    """Give each open order in the shop the code the setting now names; returns the actions queued for
    it. `dispatch` hands each batch's actions to the workers once it is committed."""
    integration = db.session.get(Integration, integration_id)
    if integration is None:
        return 0
    settings = integration.settings.to_domain()
    own_shipping, after, queued = integration.own_shipping_agreement, 0, 0
    while True:
        orders = db.session.scalars(
            sa.select(Order)
            .where(
                Order.integration_id == integration_id,
                Order.shop_id.is_not(None),
                Order.status.in_(OPEN),
                Order.id > after,
            )
            .order_by(Order.id)
            .limit(BATCH)
        ).all()
        if not orders:
            return queued
        actions: list[OrderAction] = []
        for order in orders:
            code = tracking_code(order, settings.tracking_code_source)
            if not code or code == order.shop_tracking:
                continue
            facts = Facts(
                Event.TRACKING_CHANGED,
                order.canonical_status or CanonicalStatus.CREATED,
                own_shipping=own_shipping,
                transferred=True,
                has_tracking_code=True,
            )
            actions += enqueue(order, decide(settings, facts))
        after = orders[-1].id
        queued += len(actions)
        db.session.commit()
        if dispatch is not None:
            dispatch(actions)
        for order in orders:
            db.session.expunge(order)  # nothing kept from batch to batch
