"""The hub's one status vocabulary; every connector maps its native statuses to and from it."""

from __future__ import annotations

from enum import StrEnum

from flask_babel import lazy_gettext as _l


class CanonicalStatus(StrEnum):
    AWAITING = "Awaiting"
    CREATED = "Created"
    PICKING = "Picking"
    INVOICED = "Invoiced"
    SHIPPED = "Shipped"
    AT_COLLECTION_POINT = "AtCollectionPoint"
    DELIVERED = "Delivered"
    UNDELIVERED = "UnDelivered"
    CANCELLED = "Cancelled"
    UNSUPPLIED = "UnSupplied"
    RETURNED = "Returned"

    @property
    def label(self) -> str:
        return str(STATUS_LABELS[self])


STATUS_LABELS = {
    CanonicalStatus.AWAITING: _l("Awaiting payment"),
    CanonicalStatus.CREATED: _l("Created"),
    CanonicalStatus.PICKING: _l("Picking"),
    CanonicalStatus.INVOICED: _l("Invoiced"),
    CanonicalStatus.SHIPPED: _l("Shipped"),
    CanonicalStatus.AT_COLLECTION_POINT: _l("At collection point"),
    CanonicalStatus.DELIVERED: _l("Delivered"),
    CanonicalStatus.UNDELIVERED: _l("Undelivered"),
    CanonicalStatus.CANCELLED: _l("Cancelled"),
    CanonicalStatus.UNSUPPLIED: _l("Unsupplied"),
    CanonicalStatus.RETURNED: _l("Returned"),
}


# How far along an order is. A status only ever moves to a higher rank, so a late or replayed payload
# never drags an order back; a cancellation is final.
RANK = {
    CanonicalStatus.AWAITING: 0,
    CanonicalStatus.CREATED: 1,
    CanonicalStatus.PICKING: 2,
    CanonicalStatus.INVOICED: 3,
    CanonicalStatus.SHIPPED: 4,
    CanonicalStatus.AT_COLLECTION_POINT: 5,
    CanonicalStatus.UNDELIVERED: 5,
    CanonicalStatus.DELIVERED: 6,
    CanonicalStatus.RETURNED: 7,
    CanonicalStatus.CANCELLED: 8,
    CanonicalStatus.UNSUPPLIED: 8,
}
CANCELLATIONS = frozenset({CanonicalStatus.CANCELLED, CanonicalStatus.UNSUPPLIED})


def moves_forward(old: CanonicalStatus | None, new: CanonicalStatus) -> bool:
    """Whether `new` is news after `old`: further along, and never out of a cancellation."""
    if old is None:
        return True
    if old == new or old in CANCELLATIONS:
        return False
    return RANK[new] >= RANK[old]
