"""The panel with the whole product behind it, in real Chromium: worker, scheduler, sandbox, SMTP sink."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from werkzeug.serving import make_server

from extensions import db
from models import Integration, MailState, Notification, Order
from tests.browser.conftest import Panel, screenshot, sign_in
from tests.browser.test_general_page import count_navigations
from tests.stack import POLL_SECONDS, Stack, running_stack

pytestmark = pytest.mark.browser


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with running_stack(tmp_path) as stack:
        yield stack


@pytest.fixture
def panel(stack: Stack) -> Iterator[Panel]:
    """The panel of the running stack, served over HTTP (it replaces the panel of the plain tests)."""
    integration = db.session.get_one(Integration, stack.integration_id)
    server = make_server("127.0.0.1", 0, stack.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Panel(f"http://127.0.0.1:{server.port}", stack.app, integration.account_id, integration.id)
    finally:
        server.shutdown()
        thread.join()


def test_a_new_order_mail_shows_in_the_mailbox(page: Page, panel: Panel, stack: Stack) -> None:
    sign_in(page)
    page.goto(f"/integrations/{panel.integration_id}/general")
    notifications = page.locator("#section-notifications")
    notifications.get_by_label("Newly Added Orders").check()
    notifications.get_by_role("button", name="Save section").click()
    expect(notifications.get_by_role("status")).to_have_text(re.compile("Saved"))

    page.goto(stack.sandbox.url)  # the sandbox's own page, as a person trying the demo uses it
    page.get_by_role("button", name="New order").click()
    [package] = stack.sandbox.world.packages.values()
    stack.wait_for(
        "the mail sent",
        lambda: db.session.scalar(sa.select(Notification.state)) == MailState.SENT,
    )

    page.goto(f"{panel.url}/notifications")
    expect(page.locator("#notifications tbody tr")).to_have_count(1)
    expect(page.locator("#notifications")).to_contain_text(package["orderNumber"])
    page.get_by_role("button", name="Mailbox (development)").click()
    page.get_by_role("link", name=re.compile("1 new order on")).click()
    expect(page.locator("#mail-text")).to_contain_text(package["orderNumber"])
    frame = page.frame_locator("iframe.mail-html")
    expect(frame.get_by_role("cell", name=package["orderNumber"])).to_be_visible()


def order_of(package: dict[str, object]) -> Order | None:
    return db.session.scalar(sa.select(Order).where(Order.package_id == str(package["shipmentPackageId"])))


# Two poll intervals, and a second for the requests themselves on a busy machine.
TWO_POLLS = 2 * POLL_SECONDS * 1000 + 1000


def test_new_orders_and_status_changes_show_without_a_reload(page: Page, panel: Panel, stack: Stack) -> None:
    sign_in(page)
    page.goto("/orders")
    navigations = count_navigations(page)
    expect(page.locator("#orders-body tr")).to_have_count(0)

    package = stack.sandbox.order()
    stack.wait_for("the order in the hub", lambda: order_of(package) is not None)
    order = order_of(package)
    assert order is not None
    row = page.locator(f"#order-{order.id}")
    expect(row).to_be_visible(timeout=TWO_POLLS)
    expect(row).to_have_class(re.compile("changed"))  # highlighted as it arrives
    expect(row).to_contain_text(str(package["orderNumber"]))
    expect(page.locator("#no-orders")).to_have_count(0)  # "no orders yet" went with the first one

    stack.sandbox.set_status(package["shipmentPackageId"], "Shipped")
    stack.wait_for("the status in the hub", lambda: (order_of(package) or order).status == "Shipped")
    expect(row.locator(".badge.status")).to_have_text("Shipped", timeout=TWO_POLLS)
    expect(page.locator("#order-counts")).to_contain_text("Shipped 1")
    assert navigations == [], "the page reloaded"
    for _ in range(4):
        stack.sandbox.order()
    expect(page.locator("#orders-body tr")).to_have_count(5, timeout=15_000)
    screenshot(page, "orders.png")

    # Reading further down: the list does not jump, a marker counts what came in on top.
    page.set_viewport_size({"width": 1280, "height": 300})
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    marker = page.locator("#new-orders")
    expect(marker).to_be_hidden()
    stack.sandbox.order()
    stack.sandbox.order()
    expect(marker).to_have_text("2 new orders on top", timeout=15_000)
    marker.click()
    expect(marker).to_be_hidden()
    expect(page.locator("#orders-body tr").first).to_be_in_viewport()


def test_retrying_from_the_error_queue_clears_the_error(page: Page, panel: Panel, stack: Stack) -> None:
    products = stack.sandbox.world.shop_products
    sku, stock = "ZEYTINYAGI-1L", products.pop("ZEYTINYAGI-1L")
    package = stack.sandbox.order(lines=[{"barcode": "8680001000097", "quantity": 1}])
    stack.wait_for("the order in error", lambda: (order_of(package) or Order()).transfer_state == "error")
    sign_in(page)
    page.goto("/orders/errors")
    group = page.locator('[data-category="unknown_product"]')
    expect(group).to_contain_text(sku)
    expect(page.locator("#nav-errors")).to_contain_text("1")

    products[sku] = stock  # the seller adds the product to the shop, then retries the group
    group.get_by_role("button", name="Retry the order").click()
    expect(page.locator("#no-errors")).to_be_visible()
    stack.wait_for(
        "the order in the shop", lambda: (order_of(package) or Order()).transfer_state == "transferred"
    )
    page.goto("/orders/errors")
    expect(page.locator("#no-errors")).to_be_visible()


def test_an_import_runs_to_a_full_progress_bar(page: Page, panel: Panel, stack: Stack) -> None:
    for _ in range(3):
        stack.sandbox.order()
    sign_in(page)
    page.goto("/integrations")
    page.locator(f"#integration-{panel.integration_id}").get_by_role("link", name="Import orders").click()
    page.get_by_role("button", name="Import").click()
    run = page.locator("#imports li").first
    expect(run.locator("progress")).to_have_attribute("value", "100", timeout=20_000)
    expect(run).to_contain_text("Done")
    expect(run.locator(".import-summary")).to_contain_text("new")


def test_sync_now_shows_its_progress_and_result(page: Page, panel: Panel, stack: Stack) -> None:
    stack.sandbox.order()
    sign_in(page)
    page.goto("/integrations")
    row = page.locator(f"#integration-{panel.integration_id}")
    row.get_by_role("button", name="Sync now").click()
    expect(row.locator(".sync-result")).to_contain_text(re.compile("Synced|Another sync"), timeout=10_000)
    expect(row.get_by_role("button", name="Sync now")).to_be_visible()


def open_a_transferred_order(page: Page, stack: Stack) -> tuple[dict[str, Any], Order]:
    """A new sandbox order, once the stack put it in the shop, open on its page."""
    package = stack.sandbox.order()
    stack.wait_for(
        "the order in the shop", lambda: (order_of(package) or Order()).transfer_state == "transferred"
    )
    order = order_of(package)
    assert order is not None
    sign_in(page)
    page.goto(f"/orders/{order.id}")
    return package, order


def test_an_action_on_the_order_page_shows_its_progress(page: Page, panel: Panel, stack: Stack) -> None:
    open_a_transferred_order(page, stack)
    navigations = count_navigations(page)
    page.get_by_role("button", name="Push status again").click()
    jobs = page.locator("#order-jobs")
    expect(page.locator("#order-live")).to_contain_text("is being pushed to the shop again")
    expect(jobs.locator("tr.job-done", has_text="Status to the shop")).to_have_count(
        1, timeout=TWO_POLLS + 5000
    )
    expect(page.locator("#history")).to_contain_text("shop order already Processing")
    assert navigations == []


def test_an_order_s_way_on_its_page_as_it_goes(page: Page, panel: Panel, stack: Stack) -> None:
    """The timeline of one sandbox order, live: ordered and in the shop at once, shipped with its tracking
    code when the marketplace ships it, without a reload; the history says why, by the setting's name."""
    package, order = open_a_transferred_order(page, stack)
    navigations = count_navigations(page)
    steps = page.locator("#order-timeline li")
    expect(steps).to_have_count(5)
    expect(steps.nth(0)).to_have_class(re.compile("reached"))
    expect(steps.nth(1)).to_have_class(re.compile("reached"))
    expect(steps.nth(1)).to_contain_text(re.compile(rf"In the shop\s+done.*#{order.shop_id}", re.S))
    expect(steps.nth(3)).to_contain_text(re.compile(r"Shipped\s+not yet"))
    expect(page.locator("#history")).to_contain_text(
        f"created in the shop as #{order.shop_id} (Processing) (setting: Automatic E-commerce Order Transfer)"
    )

    stack.sandbox.set_status(package["shipmentPackageId"], "Shipped")
    expect(steps.nth(3)).to_have_class(re.compile("reached"), timeout=TWO_POLLS + 10_000)
    expect(steps.nth(2)).to_have_class(re.compile("reached"))  # shipped: approved on the way
    shipped = stack.sandbox.package(package["shipmentPackageId"])
    expect(steps.nth(3)).to_contain_text(str(shipped["cargoTrackingNumber"]))
    expect(steps.nth(4)).not_to_have_class(re.compile("reached"))
    assert navigations == [], "the page reloaded"
    screenshot(page, "order.png")

    # The Overview with the same real order: in today's figures, its transfer timed, the charts drawn.
    page.goto("/orders/overview")
    expect(page.locator("#figure-today .figure-value")).to_have_text("1")
    expect(page.locator("#figure-transfers .figure-value")).to_have_text("1")
    expect(page.locator("#figure-time .figure-value")).not_to_have_text("–")
    expect(page.locator("#figure-to-ship .figure-value")).to_have_text("0")  # shipped already
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('canvas[data-chart]')].map(c => !!Chart.getChart(c))"
    )
    assert drawn == [True, True, True]
