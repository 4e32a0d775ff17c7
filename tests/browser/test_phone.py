"""The panel at a phone's width (390 px, as an iPhone 12–15) and a laptop's (1366×900); the Overview's
charts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from extensions import db
from models import Product, TransferState
from models.base import utcnow
from tests.browser.conftest import Panel, screenshot, sign_in
from tests.conftest import make_line, make_order, panel_pages

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 390, "height": 844}


def test_every_page_fits_a_phone(page: Page, panel: Panel) -> None:
    integration = panel.integration()
    order = make_order(
        integration,
        customer_name="Ayşe Yılmaz Kocabıyıkoğlu",
        transfer_state=TransferState.ERROR,
        error_category="shop_refused",
        error_reason="woocommerce_rest_invalid_email: Geçersiz fatura e-posta adresi (ayse.yilmaz@örnek).",
    )
    make_line(
        order,
        barcode="8680001000097",
        stock_code="ZEYTINYAGI-SIZMA-1L-CAM-SISE",
        name="Natürel sızma zeytinyağı, 1 litre cam şişe",
        quantity=2,
        unit_price=Decimal("549"),
        vat_rate=Decimal("1"),
    )
    db.session.add(
        Product(
            account_id=panel.account_id,
            barcode="8680001000097",
            stock_code="ZEYTINYAGI-SIZMA-1L-CAM-SISE",
            name="Natürel sızma zeytinyağı, 1 litre cam şişe",
            stock=12,
            price=549,
            vat_rate=1,
        )
    )
    db.session.commit()
    sign_in(page)
    page.set_viewport_size(PHONE)
    wide = {}
    for path in panel_pages(panel.integration_id, order.id):
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            wide[path] = width
    assert wide == {}, f"wider than the phone ({PHONE['width']} px): {wide}"


def test_the_orders_page_shows_fifteen_orders_on_a_laptop(page: Page, panel: Panel) -> None:
    """At 1366×900, a common laptop screen, the first fifteen orders are in view without scrolling."""
    integration = panel.integration()
    for number in range(1, 31):
        make_order(
            integration,
            number,
            customer_name="Ayşe Yılmaz Kocabıyıkoğlu",
            transfer_state=TransferState.ERROR if number % 3 else TransferState.WAITING,
            error_category="shop_refused",
            error_reason="woocommerce_rest_invalid_email: Geçersiz fatura e-posta adresi.",
            shop_id=str(5000 + number),
            shop_status="processing",
            tracking_number=f"YK{number:010d}",
        )
    sign_in(page)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto("/orders")
    in_view = page.evaluate(
        "() => [...document.querySelectorAll('#orders-body tr')]"
        ".filter(row => row.getBoundingClientRect().bottom <= window.innerHeight).length"
    )
    assert in_view >= 15, f"{in_view} orders in view at 1366×900"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366


def test_the_overview_draws_its_charts(page: Page, panel: Panel) -> None:
    """Chart.js from the npm registry, under the strict CSP (the page fixture fails on any violation)."""
    integration, now = panel.integration(), utcnow()
    # Two weeks of a small shop: a few orders a day, more in the evening, one in error.
    for number in range(1, 61):
        placed = now - timedelta(hours=(number * 5) % 330, minutes=number)
        make_order(integration, number, ordered_at=placed, status="Delivered" if number > 12 else "Created")
    make_order(integration, 99, ordered_at=now, transfer_state=TransferState.ERROR, error_category="auth")
    sign_in(page)  # lands on the Overview
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('canvas[data-chart]')].map(c => !!Chart.getChart(c))"
    )
    assert drawn == [True, True, True]
    expect(page.locator("#figure-errors .figure-value")).to_have_text("1")
    screenshot(page, "overview.png")
