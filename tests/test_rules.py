"""The decision table: a test per setting, on and off, and per combination that matters."""

from __future__ import annotations

import dataclasses

import pytest

from sync.rules import Action, Event, Facts, decide, tracking_link
from sync.settings import DEFAULTS, GeneralSettings, Priority
from sync.statuses import CanonicalStatus as S

OWN = {"approval_feedback": True, "update_feedback": True, "reverse_flow": True}


def settings(**changes: object) -> GeneralSettings:
    return dataclasses.replace(DEFAULTS, **changes)  # type: ignore[arg-type]


def actions(config: GeneralSettings, event: Event, status: S = S.CREATED, **facts: object) -> list[Action]:
    values: dict[str, object] = {"own_shipping": True, **facts}
    return decide(config, Facts(event, status, **values)).actions()  # type: ignore[arg-type]


@pytest.mark.parametrize(("auto", "expected"), [(True, [Action.TRANSFER]), (False, [])])
def test_automatic_transfer(auto: bool, expected: list[Action]) -> None:
    assert actions(settings(auto_transfer=auto), Event.NEW_ORDER) == expected


def test_a_waiting_order_goes_when_its_payment_clears() -> None:
    assert actions(settings(), Event.NEW_ORDER, S.AWAITING) == []
    assert actions(settings(), Event.STATUS_CHANGED, S.CREATED) == [Action.TRANSFER]


def test_a_cancelled_new_order_is_neither_transferred_nor_takes_stock() -> None:
    assert actions(settings(decrease_stock=True), Event.NEW_ORDER, S.CANCELLED) == []


def test_manual_transfer_ignores_the_automatic_setting() -> None:
    assert actions(settings(auto_transfer=False), Event.MANUAL_TRANSFER) == [Action.TRANSFER]
    assert actions(settings(auto_transfer=False), Event.MANUAL_TRANSFER, transferred=True) == []


@pytest.mark.parametrize(
    ("on", "own", "expected"), [(True, True, True), (False, True, False), (True, False, False)]
)
def test_approval_feedback_needs_the_setting_and_own_shipping(on: bool, own: bool, expected: bool) -> None:
    result = actions(settings(approval_feedback=on), Event.NEW_ORDER, own_shipping=own)
    assert (Action.APPROVE in result) is expected


def test_approval_waits_for_the_payment() -> None:
    assert Action.APPROVE not in actions(settings(approval_feedback=True), Event.NEW_ORDER, S.AWAITING)
    assert Action.APPROVE in actions(settings(approval_feedback=True), Event.STATUS_CHANGED, S.CREATED)


@pytest.mark.parametrize(("on", "expected"), [(True, [Action.SHOP_STATUS]), (False, [])])
def test_status_change_transfer(on: bool, expected: list[Action]) -> None:
    assert (
        actions(settings(status_change_transfer=on), Event.STATUS_CHANGED, S.SHIPPED, transferred=True)
        == expected
    )


def test_a_status_change_of_an_order_not_in_the_shop_transfers_it_instead() -> None:
    assert actions(settings(), Event.STATUS_CHANGED, S.PICKING) == [Action.TRANSFER]
    assert actions(settings(auto_transfer=False), Event.STATUS_CHANGED, S.PICKING) == []


@pytest.mark.parametrize(
    ("on", "expected"), [(True, [Action.RESTORE_STOCK, Action.SHOP_CANCEL]), (False, [Action.RESTORE_STOCK])]
)
def test_cancellation_transfer(on: bool, expected: list[Action]) -> None:
    result = actions(settings(cancellation_transfer=on), Event.CANCELLED, S.CANCELLED, transferred=True)
    assert result == expected


def test_a_line_cancellation_is_a_note_not_a_cancelled_order() -> None:
    result = actions(settings(), Event.LINES_CANCELLED, S.CANCELLED, transferred=True)
    assert result == [Action.RESTORE_STOCK, Action.SHOP_NOTE]


@pytest.mark.parametrize(("on", "expected"), [(True, [Action.SHOP_TRACKING]), (False, [])])
def test_tracking_code_transfer(on: bool, expected: list[Action]) -> None:
    config = settings(tracking_code_transfer=on)
    assert actions(config, Event.TRACKING_CHANGED, S.SHIPPED, transferred=True) == expected
    # An order that reaches the shop with a code already gets it right after.
    assert actions(config, Event.TRANSFERRED, S.SHIPPED, transferred=True, has_tracking_code=True) == expected
    assert actions(config, Event.TRANSFERRED, S.CREATED, transferred=True, has_tracking_code=False) == []


@pytest.mark.parametrize(
    ("on", "expected"), [(True, [Action.DECREASE_STOCK, Action.TRANSFER]), (False, [Action.TRANSFER])]
)
def test_decrease_stock(on: bool, expected: list[Action]) -> None:
    assert actions(settings(decrease_stock=on), Event.NEW_ORDER) == expected


@pytest.mark.parametrize(
    ("on", "own", "expected"),
    [(True, True, [Action.MARKETPLACE_STATUS]), (False, True, []), (True, False, [])],
)
def test_reverse_flow(on: bool, own: bool, expected: list[Action]) -> None:
    result = actions(settings(reverse_flow=on), Event.SHOP_STATUS_CHANGED, transferred=True, own_shipping=own)
    assert result == expected


@pytest.mark.parametrize(
    ("on", "own", "expected"),
    [(True, True, [Action.MARKETPLACE_TRACKING]), (False, True, []), (True, False, [])],
)
def test_update_feedback(on: bool, own: bool, expected: list[Action]) -> None:
    result = actions(
        settings(update_feedback=on), Event.SHOP_TRACKING_CHANGED, transferred=True, own_shipping=own
    )
    assert result == expected


def test_both_sides_changed_marketplace_first() -> None:
    config = settings(**OWN, priority=Priority.MARKETPLACE)
    # The marketplace's change goes to the shop and drops the shop's pending push back.
    plan = decide(
        config,
        Facts(Event.STATUS_CHANGED, S.SHIPPED, own_shipping=True, transferred=True, other_side_pending=True),
    )
    assert plan.actions() == [Action.SHOP_STATUS]
    assert Action.MARKETPLACE_STATUS in plan.supersede
    # The shop's change meets a pending marketplace change: it is not sent back.
    plan = decide(
        config,
        Facts(
            Event.SHOP_STATUS_CHANGED, S.SHIPPED, own_shipping=True, transferred=True, other_side_pending=True
        ),
    )
    assert plan.actions() == [] and "marketplace first" in plan.note


def test_both_sides_changed_e_commerce_first() -> None:
    config = settings(**OWN, priority=Priority.SHOP)
    plan = decide(
        config,
        Facts(Event.STATUS_CHANGED, S.SHIPPED, own_shipping=True, transferred=True, other_side_pending=True),
    )
    assert plan.actions() == [] and "e-commerce first" in plan.note
    plan = decide(
        config,
        Facts(
            Event.SHOP_STATUS_CHANGED, S.PICKING, own_shipping=True, transferred=True, other_side_pending=True
        ),
    )
    assert plan.actions() == [Action.MARKETPLACE_STATUS]
    assert Action.SHOP_STATUS in plan.supersede


def test_without_a_conflict_the_priority_changes_nothing() -> None:
    for priority in Priority:
        config = settings(**OWN, priority=priority)
        assert actions(config, Event.STATUS_CHANGED, S.SHIPPED, transferred=True) == [Action.SHOP_STATUS]
        assert actions(config, Event.SHOP_STATUS_CHANGED, transferred=True) == [Action.MARKETPLACE_STATUS]


def test_every_decision_names_its_rule() -> None:
    config = settings(**OWN, decrease_stock=True)
    for event in Event:
        for decision in decide(config, Facts(event, S.CREATED, own_shipping=True)).decisions:
            assert decision.rule


@pytest.mark.parametrize(
    ("force", "marketplace_link", "template", "expected"),
    [
        (False, "https://mp/track", "https://carrier/{code}", ""),
        (True, "https://mp/track", "https://carrier/{code}", "https://mp/track"),
        (True, "", "https://carrier/{code}", "https://carrier/ABC"),
        (True, "", None, ""),
    ],
)
def test_forcing_shipment_transfer_link(
    force: bool, marketplace_link: str, template: str | None, expected: str
) -> None:
    assert tracking_link(settings(force_tracking_link=force), marketplace_link, template, "ABC") == expected
