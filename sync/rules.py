"""The General settings as one decision table: (settings, what happened) → the actions to take.

Pure: no database, no HTTP, no clock. The ingest, the shop poll and the action runner describe what
happened as `Facts`; this module alone decides what follows, and names the setting (the rule) behind each
action so the order history can say why something was done.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sync.settings import GeneralSettings, Priority
from sync.statuses import CANCELLATIONS, CanonicalStatus
from sync.wording import N_

S = CanonicalStatus


class Event(StrEnum):
    """What happened to an order."""

    NEW_ORDER = "new_order"  # first seen on the marketplace
    STATUS_CHANGED = "status_changed"  # the marketplace moved it forward (not to a cancellation)
    CANCELLED = "cancelled"  # the marketplace cancelled the whole package
    LINES_CANCELLED = "lines_cancelled"  # some lines cancelled; the rest live on in a new package
    TRACKING_CHANGED = "tracking_changed"  # the chosen shipment code appeared or changed
    TRANSFERRED = "transferred"  # the order now exists in the shop
    SHOP_STATUS_CHANGED = "shop_status_changed"  # the seller changed the status in the shop
    SHOP_TRACKING_CHANGED = "shop_tracking_changed"  # the seller entered a tracking code in the shop
    MANUAL_TRANSFER = "manual_transfer"  # the seller pressed Transfer
    MANUAL_PUSH = "manual_push"  # the seller pressed Push status again


class Action(StrEnum):
    TRANSFER = "transfer"  # create the order in the shop
    APPROVE = "approve"  # marketplace: the seller has taken it (Trendyol: Picking)
    SHOP_STATUS = "shop_status"  # the mapped status to the shop order
    SHOP_CANCEL = "shop_cancel"  # cancel the shop order; a completed one is flagged for review instead
    SHOP_NOTE = "shop_note"  # a note on the shop order (lines cancelled on the marketplace)
    SHOP_TRACKING = "shop_tracking"  # the tracking code (and link) to the shop order
    MARKETPLACE_STATUS = "marketplace_status"  # the shop's status back to the marketplace
    MARKETPLACE_TRACKING = "marketplace_tracking"  # the shop's tracking code back to the marketplace
    DECREASE_STOCK = "decrease_stock"  # panel stock of the ordered lines, once per line
    RESTORE_STOCK = "restore_stock"  # put back what a cancelled line took, once per line


# Actions that talk to the shop / the marketplace: the two sides a priority decides between.
TO_SHOP = frozenset({Action.SHOP_STATUS, Action.SHOP_CANCEL, Action.SHOP_TRACKING})
TO_MARKETPLACE = frozenset({Action.MARKETPLACE_STATUS, Action.MARKETPLACE_TRACKING})

# Statuses an order may be created in the shop with: paid, not yet over.
TRANSFERABLE = frozenset({S.CREATED, S.PICKING, S.INVOICED, S.SHIPPED, S.AT_COLLECTION_POINT, S.DELIVERED})
# Marketplace events after which a waiting order may go to the shop.
MOVES = frozenset({Event.NEW_ORDER, Event.STATUS_CHANGED, Event.TRACKING_CHANGED})


@dataclass(frozen=True)
class Facts:
    event: Event
    status: CanonicalStatus
    own_shipping: bool
    transferred: bool = False  # the order exists in the shop
    has_tracking_code: bool = False  # the code chosen under Shipment Tracking Code exists
    # The other side changed this order too and that change has not been passed on yet.
    other_side_pending: bool = False


@dataclass(frozen=True)
class Decision:
    action: Action
    rule: str  # the setting (or principle) that caused it, for the order history


@dataclass(frozen=True)
class Plan:
    decisions: tuple[Decision, ...]
    # Pending actions of the other side that this change overrides (Transaction Priority).
    supersede: frozenset[Action] = frozenset()
    note: str = ""  # why something expected did not happen, for the history

    def actions(self) -> list[Action]:
        return [decision.action for decision in self.decisions]


def decide(settings: GeneralSettings, facts: Facts) -> Plan:
    """The actions the settings ask for when `facts.event` happens."""
    decisions: list[Decision] = []

    def do(action: Action, rule: str) -> None:
        decisions.append(Decision(action, rule))

    event, status = facts.event, facts.status
    talks_back = facts.own_shipping  # Marketplace Feedback and Transaction Priority need it

    if event is Event.MANUAL_TRANSFER:
        if not facts.transferred:
            do(Action.TRANSFER, "manual")
        return Plan(tuple(decisions))

    if event is Event.MANUAL_PUSH:
        if facts.transferred:
            do(Action.SHOP_STATUS, "manual")
            if facts.has_tracking_code:
                do(Action.SHOP_TRACKING, "manual")
        return Plan(tuple(decisions))

    if event is Event.TRANSFERRED:
        if settings.tracking_code_transfer and facts.has_tracking_code:
            do(Action.SHOP_TRACKING, "tracking_code_transfer")
        return Plan(tuple(decisions))

    if event in (Event.SHOP_STATUS_CHANGED, Event.SHOP_TRACKING_CHANGED):
        return _from_shop(settings, facts, talks_back)

    # The marketplace spoke: NEW_ORDER, STATUS_CHANGED, CANCELLED, LINES_CANCELLED, TRACKING_CHANGED.
    # Both sides changed the order and the shop comes first: this change is kept here, not pushed over it.
    shop_wins = facts.other_side_pending and talks_back and settings.priority is Priority.SHOP
    if event is Event.NEW_ORDER and settings.decrease_stock and status not in CANCELLATIONS:
        do(Action.DECREASE_STOCK, "decrease_stock")
    # A new order, or one whose payment just cleared (Awaiting → Created), is taken on the marketplace.
    approvable = event in (Event.NEW_ORDER, Event.STATUS_CHANGED) and status is S.CREATED
    if approvable and talks_back and settings.approval_feedback:
        do(Action.APPROVE, "approval_feedback")
    if not facts.transferred and settings.auto_transfer and status in TRANSFERABLE and event in MOVES:
        do(Action.TRANSFER, "auto_transfer")
    if event is Event.CANCELLED:
        do(Action.RESTORE_STOCK, "decrease_stock")
        if facts.transferred and settings.cancellation_transfer and not shop_wins:
            do(Action.SHOP_CANCEL, "cancellation_transfer")
    if event is Event.LINES_CANCELLED:
        do(Action.RESTORE_STOCK, "decrease_stock")
        if facts.transferred and settings.cancellation_transfer:
            do(Action.SHOP_NOTE, "cancellation_transfer")
    if facts.transferred and not shop_wins:
        if event is Event.STATUS_CHANGED and settings.status_change_transfer:
            do(Action.SHOP_STATUS, "status_change_transfer")
        if event is Event.TRACKING_CHANGED and settings.tracking_code_transfer:
            do(Action.SHOP_TRACKING, "tracking_code_transfer")

    if shop_wins:
        return Plan(
            tuple(decisions),
            note=N_("the shop changed this order too; e-commerce first keeps the shop's change"),
        )
    if facts.other_side_pending:
        note = N_("the shop changed this order too; marketplace first passes the marketplace's change on")
        return Plan(tuple(decisions), supersede=TO_MARKETPLACE, note=note)
    return Plan(tuple(decisions))


def _from_shop(settings: GeneralSettings, facts: Facts, talks_back: bool) -> Plan:
    """The seller changed the order in the shop: pass it back only with an own shipping agreement."""
    if not talks_back:
        return Plan(())
    if facts.other_side_pending and settings.priority is Priority.MARKETPLACE:
        return Plan((), note=N_("the marketplace changed this order too; marketplace first keeps its change"))
    decisions = []
    if facts.event is Event.SHOP_STATUS_CHANGED and settings.reverse_flow:
        decisions.append(Decision(Action.MARKETPLACE_STATUS, "reverse_flow"))
    if facts.event is Event.SHOP_TRACKING_CHANGED and settings.update_feedback:
        decisions.append(Decision(Action.MARKETPLACE_TRACKING, "update_feedback"))
    if facts.other_side_pending and decisions:
        note = N_("the marketplace changed this order too; e-commerce first passes the shop's change on")
        return Plan(tuple(decisions), supersede=TO_SHOP, note=note)
    return Plan(tuple(decisions))


def tracking_link(
    settings: GeneralSettings, marketplace_link: str, carrier_template: str | None, code: str
) -> str:
    """Forcing Shipment Transfer Link: on, a link always goes with the code (the marketplace's, else one
    built from the carrier's tracking page); off, the code goes alone."""
    if not settings.force_tracking_link or not code:
        return ""
    if marketplace_link:
        return marketplace_link
    return carrier_template.format(code=code) if carrier_template else ""
