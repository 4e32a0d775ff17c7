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
