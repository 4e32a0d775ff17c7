"""The panel with the whole product behind it, in real Chromium: worker, scheduler, sandbox, SMTP sink."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from werkzeug.serving import make_server

from extensions import db
from models import Integration, MailState, Notification
from tests.browser.conftest import Panel, sign_in
from tests.stack import Stack, running_stack

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
