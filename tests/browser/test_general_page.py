"""The General settings page in real Chromium: HTMX section saves, the page's rules, languages, no-JS."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page, expect

from extensions import db
from sync.settings import Priority, TrackingCodeSource
from sync.statuses import CanonicalStatus
from tests.browser.conftest import Panel, screenshot, sign_in

pytestmark = pytest.mark.browser


def section(page: Page, key: str) -> Locator:
    return page.locator(f"#section-{key}")


def save(page: Page, key: str) -> None:
    """Save one section through HTMX and wait for its confirmation."""
    part = section(page, key)
    part.get_by_role("button", name="Save section").click()
    expect(section(page, key).get_by_role("status")).to_have_text(re.compile("Saved"))


def count_navigations(page: Page) -> list[str]:
    navigations: list[str] = []
    page.on(
        "framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None
    )
    return navigations


def test_every_section_saves_through_htmx_and_is_kept(page: Page, panel: Panel) -> None:
    sign_in(page)
    page.goto(f"/integrations/{panel.integration_id}/general")
    navigations = count_navigations(page)

    section(page, "communication").get_by_label("Cancellation Status Transfer").uncheck()
    save(page, "communication")
    section(page, "feedback").get_by_label("Addition/Approval Feedback").check()
    save(page, "feedback")
    section(page, "priority").get_by_label("Reverse Flow Direction").check()
    section(page, "priority").get_by_label("E-commerce first").check()
    save(page, "priority")
    section(page, "activation").get_by_label("Automatic E-commerce Order Transfer").uncheck()
    save(page, "activation")
    section(page, "notifications").get_by_label("Newly Added Orders").check()
    save(page, "notifications")
    colors = section(page, "colors")
    colors.get_by_label("Status Row Color Coding").check()
    colors.get_by_label("Color Coding Rate").fill("60")
    colors.get_by_label("Shipped").fill("#112233")
    save(page, "colors")
    section(page, "stock").get_by_label("Decrease stock of ordered products").check()
    save(page, "stock")
    section(page, "tracking_code").get_by_label("Shipment barcode").check()
    save(page, "tracking_code")
    section(page, "tracking_link").get_by_label("Forcing Shipment Transfer Link").check()
    save(page, "tracking_link")
    section(page, "shipping_vat").get_by_label("10%", exact=True).check()
    save(page, "shipping_vat")

    assert navigations == [], "a section save reloaded the page"
    # The history below the sections was swapped out of band with each save.
    expect(page.locator("#settings-changes tbody tr")).to_have_count(13)

    page.reload()
    expect(section(page, "communication").get_by_label("Cancellation Status Transfer")).not_to_be_checked()
    expect(section(page, "feedback").get_by_label("Addition/Approval Feedback")).to_be_checked()
    expect(section(page, "priority").get_by_label("E-commerce first")).to_be_checked()
    expect(
        section(page, "activation").get_by_label("Automatic E-commerce Order Transfer")
    ).not_to_be_checked()
    expect(section(page, "notifications").get_by_label("Newly Added Orders")).to_be_checked()
    expect(section(page, "colors").get_by_label("Color Coding Rate")).to_have_value("60")
    expect(section(page, "colors").get_by_label("Shipped")).to_have_value("#112233")
    expect(section(page, "stock").get_by_label("Decrease stock of ordered products")).to_be_checked()
    expect(section(page, "tracking_code").get_by_label("Shipment barcode")).to_be_checked()
    expect(section(page, "tracking_link").get_by_label("Forcing Shipment Transfer Link")).to_be_checked()
    expect(section(page, "shipping_vat").get_by_label("10%", exact=True)).to_be_checked()

    settings = panel.integration().settings
    assert settings.priority is Priority.SHOP and settings.reverse_flow and settings.approval_feedback
    assert settings.tracking_code_source is TrackingCodeSource.SHIPMENT_BARCODE
    assert (settings.color_coding_rate, settings.shipping_vat_rate) == (60, 10)
    assert panel.integration().status_color_map()[CanonicalStatus.SHIPPED] == "#112233"
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "general-settings.png")


def test_an_invalid_value_is_refused_inline(page: Page, panel: Panel) -> None:
    sign_in(page)
    page.goto(f"/integrations/{panel.integration_id}/general")
    colors = section(page, "colors")
    colors.get_by_label("Color Coding Rate").fill("150")
    colors.get_by_role("button", name="Save section").click()
    expect(section(page, "colors").get_by_role("alert").first).to_have_text("Enter a rate from 0 to 100.")
    page.reload()
    expect(section(page, "colors").get_by_label("Color Coding Rate")).to_have_value("30")


def test_own_shipping_rule_refuses_inline(page: Page, panel: Panel) -> None:
    sign_in(page)
    page.goto(f"/integrations/{panel.integration_id}/general")
    # Meanwhile, in another tab, the seller drops the own shipping agreement.
    other = page.context.new_page()
    other.goto(f"/integrations/{panel.integration_id}/edit")
    other.get_by_label("Own shipping agreement").uncheck()
    other.get_by_role("button", name="Save").click()
    other.wait_for_url("**/edit")  # saved, and still on the integration
    other.close()

    section(page, "feedback").get_by_label("Addition/Approval Feedback").check()
    section(page, "feedback").get_by_role("button", name="Save section").click()
    feedback = section(page, "feedback")
    expect(feedback.locator(".error")).to_contain_text("Available only with your own shipping agreement.")
    expect(feedback.locator(".not-saved")).to_be_visible()
    # Fresh from the server, the controls are locked and say why.
    page.reload()
    expect(feedback.get_by_label("Addition/Approval Feedback")).to_be_disabled()
    expect(section(page, "priority").get_by_label("Reverse Flow Direction")).to_be_disabled()
    expect(feedback.locator(".locked").first).to_contain_text("own shipping agreement")
    assert panel.integration().settings.approval_feedback is False


def test_notification_rule_refuses_inline_and_links_to_user_settings(page: Page, panel: Panel) -> None:
    sign_in(page)
    page.goto(f"/integrations/{panel.integration_id}/general")
    other = page.context.new_page()
    other.goto("/settings")
    other.get_by_label("Notification email address").fill("")
    other.get_by_role("button", name="Save").click()
    expect(other.get_by_role("status")).to_have_text("Your settings are saved.")
    other.close()

    notifications = section(page, "notifications")
    notifications.get_by_label("Orders in Error Status").check()
    notifications.get_by_role("button", name="Save section").click()
    error = section(page, "notifications").locator(".error")
    expect(error).to_contain_text("Add a notification email address in User Settings first.")
    error.get_by_role("link", name="Open User Settings").click()
    expect(page).to_have_url(re.compile(r"/settings$"))
    with panel.app.app_context():
        assert panel.integration().settings.notify_error_orders is False


def test_switch_the_language(page: Page, panel: Panel) -> None:
    sign_in(page)
    page.goto("/settings")
    page.get_by_label("Language").select_option("tr")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Ayarlarınız kaydedildi.")
    page.goto(f"/integrations/{panel.integration_id}/general")
    expect(page.locator("html")).to_have_attribute("lang", "tr")
    expect(section(page, "communication").get_by_role("heading")).to_have_text("İletişim Seçenekleri")
    section(page, "stock").get_by_label("Sipariş edilen ürünlerin stoğunu düş").check()
    section(page, "stock").get_by_role("button", name="Bölümü kaydet").click()
    expect(section(page, "stock").get_by_role("status")).to_contain_text("Kaydedildi")
    db.session.expire_all()
    assert panel.account().language == "tr"


def test_the_page_works_without_javascript(browser: Browser, panel: Panel) -> None:
    context = browser.new_context(base_url=panel.url, java_script_enabled=False)
    page = context.new_page()
    sign_in(page)
    page.goto(f"/integrations/{panel.integration_id}/general")
    page.get_by_label("Decrease stock of ordered products").check()
    page.get_by_label("Shipment package number").check()
    page.locator("#save-all").click()
    expect(page.get_by_role("status").first).to_have_text("General settings are saved.")
    expect(page.get_by_label("Shipment package number")).to_be_checked()
    settings = panel.integration().settings
    assert settings.decrease_stock and settings.tracking_code_source is TrackingCodeSource.PACKAGE_NUMBER
    context.close()


def test_deactivate_from_the_list_without_a_reload(page: Page, panel: Panel) -> None:
    sign_in(page)
    page.goto("/integrations")
    navigations = count_navigations(page)
    row = page.locator(f"#integration-{panel.integration_id}")
    expect(row.locator(".badge")).to_have_text("Active")
    row.get_by_role("button", name="Deactivate").click()
    expect(page.locator(f"#integration-{panel.integration_id} .badge")).to_have_text("Passive")
    assert navigations == []
    assert panel.integration().active is False


def test_a_save_after_signing_out_elsewhere_goes_to_sign_in(page: Page, panel: Panel) -> None:
    sign_in(page)
    general = f"/integrations/{panel.integration_id}/general"
    page.goto(general)
    other_tab = page.context.new_page()
    other_tab.goto("/integrations")
    other_tab.get_by_role("button", name="Sign out").click()
    other_tab.wait_for_url("**/login")
    other_tab.close()
    section(page, "stock").get_by_label("Decrease stock of ordered products").check()
    section(page, "stock").get_by_role("button", name="Save section").click()
    # The whole window goes to the sign-in page, which brings the seller back afterwards.
    page.wait_for_url(re.compile(r"/login\?next="))
    expect(page.get_by_text("Please sign in to open this page.")).to_be_visible()
    assert panel.integration().settings.decrease_stock is False
    page.get_by_label("Email").fill(panel.email)
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{general}")


def test_a_refused_request_is_explained(page: Page, panel: Panel) -> None:
    sign_in(page)
    page.goto(f"/integrations/{panel.integration_id}/general")
    alert = page.locator("#request-error")
    expect(alert).to_be_hidden()
    # The page's token no longer matches the session, as when the session ran out.
    page.evaluate("""() => {
        document.body.setAttribute("hx-headers", '{"X-CSRFToken": "stale"}');
        document.querySelectorAll("input[name=csrf_token]").forEach(input => { input.value = "stale"; });
    }""")
    section(page, "stock").get_by_role("button", name="Save section").click()
    expect(alert).to_have_text(re.compile("This page is out of date"))
    expect(section(page, "stock")).to_be_visible()  # the section was not replaced by an error page
    assert panel.integration().settings.decrease_stock is False


def test_unsaved_changes_are_marked_and_leaving_asks_first(page: Page, panel: Panel) -> None:
    sign_in(page)
    page.goto(f"/integrations/{panel.integration_id}/general")
    feedback = section(page, "feedback")
    save_bar = page.locator(".save-bar")
    expect(save_bar.get_by_text("Unsaved changes")).to_be_hidden()

    feedback.get_by_label("Addition/Approval Feedback").check()
    expect(feedback.get_by_text("Unsaved changes")).to_be_visible()
    expect(section(page, "stock").get_by_text("Unsaved changes")).to_be_hidden()
    expect(save_bar.get_by_text("Unsaved changes")).to_be_visible()

    asked: list[str] = []

    def stay(dialog: Dialog) -> None:
        asked.append(dialog.type)
        dialog.dismiss()

    page.once("dialog", stay)
    page.get_by_role("link", name="Statuses").click()
    expect(page).to_have_url(re.compile(r"/general$"))
    assert asked == ["beforeunload"]

    # Saved: clean again, the focus back on the section it was saved from, and leaving asks nothing.
    save(page, "feedback")
    expect(section(page, "feedback").get_by_role("button", name="Save section")).to_be_focused()
    expect(save_bar.get_by_text("Unsaved changes")).to_be_hidden()
    page.on("dialog", lambda dialog: asked.append(dialog.type))
    page.get_by_role("link", name="Statuses").click()
    expect(page).to_have_url(re.compile(r"/statuses$"))
    assert asked == ["beforeunload"]


def test_a_refused_save_leads_to_the_first_field_to_correct(page: Page, panel: Panel) -> None:
    sign_in(page)
    page.goto(f"/integrations/{panel.integration_id}/general")
    rate = section(page, "colors").get_by_label("Color Coding Rate")
    rate.fill("150")
    section(page, "colors").get_by_role("button", name="Save section").click()
    expect(section(page, "colors").get_by_label("Color Coding Rate")).to_be_focused()

    # The whole page, saved at once and refused: after the reload, the focus is on what to correct.
    section(page, "colors").get_by_label("Color Coding Rate").fill("250")
    page.locator("#save-all").click()
    expect(page.get_by_text("Nothing was saved")).to_be_visible()
    expect(section(page, "colors").get_by_label("Color Coding Rate")).to_be_focused()
    expect(section(page, "colors").get_by_text("Unsaved changes")).to_be_visible()


def test_the_general_page_by_keyboard(page: Page, panel: Panel) -> None:
    """A skip link first; each Save section button named after its section; and a control that takes
    the focus is never under the sticky Save bar."""
    page.set_viewport_size({"width": 1280, "height": 600})
    sign_in(page)
    page.goto(f"/integrations/{panel.integration_id}/general")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    names = [button.text_content() or "" for button in page.get_by_role("button", name="Save section").all()]
    assert len(names) == 10 and len(set(names)) == 10, names
    expect(page.get_by_role("button", name="Save section (Stock Management)", exact=True)).to_be_visible()

    bar = page.locator(".save-bar").bounding_box()
    assert bar is not None
    hidden = []
    for _ in range(60):
        page.keyboard.press("Tab")
        box = page.evaluate(
            "() => { const e = document.activeElement, r = e.getBoundingClientRect();"
            " return {top: r.top, bottom: r.bottom, control: e !== document.body && !e.closest('.save-bar'),"
            " label: e.id || e.textContent.trim()} }"
        )
        bar = page.locator(".save-bar").bounding_box()
        assert bar is not None
        if box["control"] and box["bottom"] > bar["y"] and box["top"] < bar["y"] + bar["height"]:
            hidden.append(box["label"])
    assert hidden == [], f"under the Save bar when focused: {hidden}"
