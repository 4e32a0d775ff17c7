"""Bulk actions on the Orders page in real Chromium: select all, Ignore with a reason."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from extensions import db
from models import Order, TransferState
from tests.browser.conftest import Panel, sign_in
from tests.conftest import make_order

pytestmark = pytest.mark.browser


def test_select_all_then_ignore_with_a_reason(page: Page, panel: Panel) -> None:
    integration = panel.integration()
    integration.settings.auto_transfer = False
    db.session.commit()
    orders = [make_order(integration, number).id for number in range(1, 4)]
    sign_in(page)
    page.goto("/orders")
    page.get_by_label("Select all").check()
    for order_id in orders:
        expect(page.locator(f"#order-{order_id} input[name='order']")).to_be_checked()

    page.get_by_role("button", name="Ignore").click()  # no reason: refused, nothing changed
    expect(page.get_by_role("alert")).to_contain_text("Write why these orders are ignored")
    page.get_by_label("Select all").check()
    page.get_by_label("Reason to ignore").fill("Test orders")
    page.get_by_role("button", name="Ignore").click()
    expect(page.get_by_role("status")).to_contain_text("Ignore: 3 of 3 orders.")
    for order_id in orders:
        expect(page.locator(f"#order-{order_id} .transfer-state")).to_have_text("Ignored")
    db.session.expire_all()
    assert {db.session.get_one(Order, order_id).transfer_state for order_id in orders} == {
        TransferState.IGNORED
    }
