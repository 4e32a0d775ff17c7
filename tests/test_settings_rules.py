"""The General page's rules, as pure functions of the settings."""

from __future__ import annotations

import dataclasses

import pytest

from sync.settings import (
    DEFAULTS,
    NEEDS_NOTIFICATION_EMAIL,
    OWN_SHIPPING_ONLY,
    GeneralSettings,
    Priority,
    violations,
    without_notification_email,
    without_own_shipping,
)


def check(new: dict[str, object], current: GeneralSettings = DEFAULTS, *, own: bool, email: bool) -> set[str]:
    return set(violations(new, current, own_shipping=own, has_notification_email=email))


@pytest.mark.parametrize("name", ["approval_feedback", "update_feedback", "reverse_flow"])
def test_feedback_and_priority_switches_need_own_shipping(name: str) -> None:
    assert check({name: True}, own=False, email=True) == {name}
    assert check({name: True}, own=True, email=True) == set()


def test_priority_choice_needs_own_shipping() -> None:
    assert check({"priority": Priority.SHOP}, own=False, email=True) == {"priority"}
    assert check({"priority": Priority.SHOP}, own=True, email=True) == set()
    # Sending the stored value back is not a change.
    assert check({"priority": DEFAULTS.priority}, own=False, email=True) == set()


@pytest.mark.parametrize("name", NEEDS_NOTIFICATION_EMAIL)
def test_notifications_need_an_email(name: str) -> None:
    assert check({name: True}, own=True, email=False) == {name}
    assert check({name: True}, own=True, email=True) == set()


def test_switching_off_is_always_allowed() -> None:
    on = dataclasses.replace(DEFAULTS, approval_feedback=True, notify_new_orders=True)
    assert (
        check({"approval_feedback": False, "notify_new_orders": False}, on, own=False, email=False) == set()
    )


def test_an_unchanged_guarded_value_is_not_refused() -> None:
    on = dataclasses.replace(DEFAULTS, reverse_flow=True)
    assert check({"reverse_flow": True}, on, own=False, email=False) == set()


def test_unguarded_settings_have_no_rule() -> None:
    assert check({"decrease_stock": True, "color_coding_rate": 90}, own=False, email=False) == set()


def test_losing_own_shipping_resets_exactly_the_guarded_settings() -> None:
    on = dataclasses.replace(
        DEFAULTS,
        approval_feedback=True,
        update_feedback=True,
        reverse_flow=True,
        priority=Priority.SHOP,
        decrease_stock=True,
    )
    reset = without_own_shipping(on)
    assert set(reset) == set(OWN_SHIPPING_ONLY)
    assert reset == {name: getattr(DEFAULTS, name) for name in OWN_SHIPPING_ONLY}
    assert without_own_shipping(DEFAULTS) == {}


def test_losing_the_notification_email_switches_notifications_off() -> None:
    on = dataclasses.replace(DEFAULTS, notify_new_orders=True)
    assert without_notification_email(on) == {"notify_new_orders": False}
    assert without_notification_email(DEFAULTS) == {}


def test_defaults_are_safe_for_a_seller_without_own_shipping_or_email() -> None:
    guarded = OWN_SHIPPING_ONLY + NEEDS_NOTIFICATION_EMAIL
    assert not any(getattr(DEFAULTS, name) is True for name in guarded)
    assert DEFAULTS.priority is Priority.MARKETPLACE
