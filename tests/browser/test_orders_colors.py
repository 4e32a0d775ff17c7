"""Color Coding on the Orders page in real Chromium: badge colours and row tints follow the settings."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from blueprints.orders.colors import css, parse, text_on, tint
from extensions import db
from models import StatusColor
from tests.browser.conftest import Panel, sign_in
from tests.conftest import make_order

pytestmark = pytest.mark.browser


def rgb(color: str) -> str:
    r, g, b = parse(color)
    return f"rgb({r}, {g}, {b})"


def test_badges_and_rows_take_the_status_colours(page: Page, panel: Panel) -> None:
    integration = panel.integration()
    shipped = make_order(integration, 1, status="Shipped")
    created = make_order(integration, 2, status="Created")
    db.session.add(StatusColor(integration_id=integration.id, status="Shipped", color="#1b5e20"))
    integration.settings.status_color_coding = True
    integration.settings.row_color_coding = False
    db.session.commit()

    sign_in(page)
    page.goto("/orders")
    badge = page.locator(f"#order-{shipped.id} .badge.status")
    expect(badge).to_have_css("background-color", rgb("#1b5e20"))
    expect(badge).to_have_css("color", rgb(css(text_on(parse("#1b5e20")))))
    cell = page.locator(f"#order-{shipped.id} td").nth(3)
    expect(cell).not_to_have_css("background-color", rgb(css(tint(parse("#1b5e20"), 60))))

    # Rows tinted at the chosen rate, badges plain: through the General page, as a seller does it.
    page.goto(f"/integrations/{integration.id}/general")
    colors = page.locator("#section-colors")
    colors.get_by_label("Status Color Coding").uncheck()
    colors.get_by_label("Status Row Color Coding").check()
    colors.get_by_label("Color Coding Rate").fill("60")
    colors.get_by_role("button", name="Save section").click()
    expect(colors.get_by_role("status")).to_contain_text("Saved")

    page.goto("/orders")
    tinted = tint(parse("#1b5e20"), 60)
    expect(page.locator(f"#order-{shipped.id} td").nth(3)).to_have_css("background-color", rgb(css(tinted)))
    expect(page.locator(f"#order-{shipped.id} td").nth(3)).to_have_css("color", rgb(css(text_on(tinted))))
    expect(badge).not_to_have_css("background-color", rgb("#1b5e20"))
    created_color = integration.status_color_map()["Created"]  # type: ignore[index]
    expect(page.locator(f"#order-{created.id} td").nth(3)).to_have_css(
        "background-color", rgb(css(tint(parse(created_color), 60)))
    )
