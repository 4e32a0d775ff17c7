"""The integration form in real Chromium: another marketplace brings its own credential fields; Test
connection tries what is typed."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from connectors.registry import Side
from extensions import db
from models import Integration
from sandbox.state import World
from tests.browser.conftest import Panel, screenshot, sign_in
from tests.sandbox_server import serve_sandbox

pytestmark = pytest.mark.browser


def test_choosing_n11_asks_for_n11_s_keys_and_keeps_the_name(page: Page, panel: Panel) -> None:
    sign_in(page)
    page.goto("/integrations/new")
    page.get_by_label("Name").fill("N11 store")
    page.get_by_label("API Secret").fill("typed-for-trendyol")  # never sent with the switch
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.locator("#marketplace_kind").select_option("n11")
    expect(page.get_by_label("App key")).to_be_visible()
    expect(page.get_by_label("Seller ID")).to_have_count(0)
    expect(page.get_by_label("Name")).to_have_value("N11 store")
    (switch,) = [url for url in requests if "/integrations/new" in url]
    assert sorted(parse_qs(urlsplit(switch).query)) == ["marketplace_kind", "name"]
    page.get_by_label("App key").fill("n11-key")
    page.get_by_label("App secret").fill("n11-secret")
    page.locator("#shop_base_url").fill("https://shop.example.com")
    page.get_by_label("Consumer key").fill("ck_new")
    page.get_by_label("Consumer secret").fill("cs_new")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/general")
    expect(page.get_by_text("Not available on N11:")).to_be_visible()
    with panel.app.app_context():
        integration = db.session.scalar(sa.select(Integration).where(Integration.marketplace_kind == "n11"))
        assert integration is not None and integration.name == "N11 store"
        assert integration.credentials(Side.MARKETPLACE) == {"app_key": "n11-key", "app_secret": "n11-secret"}


def test_test_connection_answers_beside_the_button_and_saves_nothing(page: Page, panel: Panel) -> None:
    sign_in(page)
    with serve_sandbox(World()) as sandbox:
        page.goto("/integrations/new")
        page.get_by_label("Name").fill("Tried first")
        page.locator("#marketplace_base_url").fill(sandbox.marketplace_url)
        page.get_by_label("Seller ID").fill("100200")
        page.get_by_label("API Key").fill("sandbox-key")
        page.get_by_label("API Secret").fill("wrong-secret")
        page.locator("#shop_base_url").fill(sandbox.shop_url)
        page.get_by_label("Consumer key").fill("ck_sandbox")
        page.get_by_label("Consumer secret").fill("cs_sandbox")
        page.get_by_role("button", name="Test connection").click()
        answer = page.locator("#connection")
        expect(answer).to_contain_text("✗ Trendyol Trendyol refused the keys.")
        expect(answer).to_contain_text("✓ WooCommerce Connected")
        page.get_by_label("API Secret").fill("sandbox-secret")
        page.get_by_role("button", name="Test connection").click()
        expect(answer).to_contain_text("✓ Trendyol Connected")
        screenshot(page, "integration-test-connection.png")
    with panel.app.app_context():
        assert db.session.scalar(sa.select(Integration).where(Integration.name == "Tried first")) is None
