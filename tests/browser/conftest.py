"""Browser fixtures: the panel served over real HTTP from a thread, driven by Debian's Chromium.

A missing browser fails these tests; it never skips them.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from werkzeug.serving import make_server

from app import create_app
from extensions import db
from models import Account, Integration
from tests.conftest import PASSWORD, make_account, make_config, make_integration

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-results"


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), (
        f"Chromium not found at {CHROMIUM}: apt-get install chromium"
    )
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Panel:
    """The panel under test: its address, its app (for checking the database) and the demo seller."""

    url: str
    app: Flask
    account_id: int
    integration_id: int
    email: str = "seller@example.com"

    def account(self) -> Account:
        account = db.session.get(Account, self.account_id)
        assert account is not None
        return account

    def integration(self) -> Integration:
        db.session.expire_all()
        integration = db.session.get(Integration, self.integration_id)
        assert integration is not None
        return integration


@pytest.fixture
def panel(tmp_path: Path) -> Iterator[Panel]:
    config = make_config(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'browser.sqlite3'}")
    app = create_app(config)
    with app.app_context():
        db.create_all()
        account = make_account(notification_email="orders@example.com")
        integration = make_integration(account, name="Trendyol → WooCommerce")
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Panel(f"http://127.0.0.1:{server.port}", app, account.id, integration.id)
        finally:
            server.shutdown()
            thread.join()
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def page(browser: Browser, panel: Panel) -> Iterator[Page]:
    context = browser.new_context(base_url=panel.url, viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if _is_error(message.text, message.type) else None,
    )
    yield page
    context.close()
    # A CSP violation or a script error shows up here.
    assert errors == []


# Answers the panel handles on purpose, which Chromium and htmx still log: 422 (a form says "look at
# the messages"), 401 (signed out: htmx goes to the sign-in page), 400 (stale token: the page says so).
HANDLED = re.compile(r"status of (400|401|422)\b|Response Status Error Code 400 ")


def _is_error(text: str, kind: str) -> bool:
    return kind == "error" and not HANDLED.search(text)


def sign_in(page: Page, email: str = "seller@example.com", password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/orders/overview")


def screenshot(page: Page, name: str) -> None:
    """Keep a picture in test-results/; `make screenshots` also puts it into docs/."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 1400})
    page.screenshot(path=str(ARTIFACTS / name))
    docs = os.environ.get("SCREENSHOT_DIR")
    if docs:
        shutil.copy(ARTIFACTS / name, Path(docs) / name)
