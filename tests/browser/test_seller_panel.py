"""What a seller sees in real Chromium: the error queue's groups and where their fix links lead, and
every page of the panel in Turkish (the Overview's charts included) without English left on it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from playwright.sync_api import Browser, Page, expect

from extensions import db
from models import Product, TransferState
from models.base import utcnow
from tests.browser.conftest import Panel, _is_error, sign_in
from tests.conftest import PASSWORD, make_action, make_import, make_integration, make_order, panel_pages
from tests.test_i18n import catalog

pytestmark = pytest.mark.browser

# -- The error queue ---------------------------------------------------------------------------------

KEYS_ADVICE = "The platform did not accept the keys: enter them again on the integration's page."
PRODUCT_ADVICE = "Add the product with this stock code or barcode to your shop, then Retry."


def test_the_error_queue_groups_causes_and_links_to_where_they_are_fixed(page: Page, panel: Panel) -> None:
    shop = panel.integration()
    other = make_integration(panel.account(), name="Hepsiburada → WooCommerce")
    for number in (1, 2, 3):  # the shop's keys were changed: every transfer is refused alike
        make_order(
            shop,
            number,
            transfer_state=TransferState.ERROR,
            error_category="auth",
            error_reason="401 woocommerce_rest_cannot_create",
        )
    make_order(
        shop, 4, transfer_state=TransferState.ERROR, error_category="unknown_product", error_reason="KUPA-9"
    )
    for number in (5, 6):
        make_order(
            other,
            number,
            transfer_state=TransferState.ERROR,
            error_category="auth",
            error_reason="401 woocommerce_rest_cannot_create",
        )
    make_order(shop, 7)  # not in error: neither in the queue nor counted

    sign_in(page)
    # The navigation's badge counts the open errors; the queue is one click away in its menu.
    orders_menu = page.locator("header summary", has_text="Orders")
    expect(orders_menu.locator(".badge")).to_have_text("6")
    orders_menu.click()
    page.get_by_role("link", name="Error queue 6 orders in error").click()
    expect(page).to_have_url(f"{panel.url}/orders/errors")
    expect(page.get_by_role("heading", level=1)).to_have_text("Error queue")

    # One row per cause on one integration, the largest first, each with its count and its meaning.
    groups = page.locator("article.error-group")
    expect(groups.locator("h2")).to_have_text(
        [
            re.compile(r"^Keys refused · Trendyol → WooCommerce\s+3 orders$"),
            re.compile(r"^Keys refused · Hepsiburada → WooCommerce\s+2 orders$"),
            re.compile(r"^Unknown product · Trendyol → WooCommerce\s+1 order$"),
        ]
    )
    expect(groups.locator(".advice")).to_have_text([KEYS_ADVICE, KEYS_ADVICE, PRODUCT_ADVICE])
    expect(groups.nth(0).locator("tbody tr")).to_have_count(3)

    # Wrong keys: the fix link opens that integration's Connection tab, where the shop's keys are.
    for position, integration in ((0, shop), (1, other)):
        page.goto("/orders/errors")
        groups.nth(position).get_by_role("link", name="Enter the keys again on the Connection tab").click()
        expect(page).to_have_url(f"{panel.url}/integrations/{integration.id}/edit")
        expect(page.get_by_role("heading", level=1)).to_have_text(integration.name)
        tabs = page.get_by_role("navigation", name="Integration tabs")
        expect(tabs.get_by_role("link", name="Connection")).to_have_attribute("aria-current", "page")
        expect(page.get_by_label("Consumer key (ck_…)")).to_be_visible()
        expect(page.get_by_label("Consumer secret (cs_…)")).to_be_visible()

    # An unknown product: the fix link opens the Products page.
    page.goto("/orders/errors")
    groups.nth(2).get_by_role("link", name="Check the product on the Products page").click()
    expect(page).to_have_url(f"{panel.url}/products")
    expect(page.get_by_role("heading", level=1)).to_have_text("Products")
    expect(page.get_by_role("searchbox", name="Search products")).to_be_visible()


# -- Turkish -----------------------------------------------------------------------------------------


@pytest.fixture
def problems() -> list[str]:
    """Script errors, console errors and CSP violations of the pages a test opens."""
    return []


@pytest.fixture
def turkish_page(browser: Browser, panel: Panel, problems: list[str]) -> Iterator[Page]:
    """A Turkish seller's browser (Accept-Language tr) on a Turkish account."""
    panel.account().language = "tr"
    db.session.commit()
    context = browser.new_context(
        base_url=panel.url, locale="tr-TR", viewport={"width": 1280, "height": 1000}
    )
    context.set_default_timeout(10_000)

    # Chromium logs a violation to the console too, but the event names the directive, whatever the log.
    def report(violation: str) -> None:
        problems.append(violation)

    context.expose_function("reportViolation", report)
    context.add_init_script(
        "document.addEventListener('securitypolicyviolation', (event) =>"
        " window.reportViolation(`CSP ${event.violatedDirective}: ${event.blockedURI}`));"
    )
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    page.on(
        "console",
        lambda message: problems.append(f"{page.url}: {message.text}")
        if _is_error(message.text, message.type)
        else None,
    )
    yield page
    context.close()


def sign_in_in_turkish(page: Page, panel: Panel) -> None:
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "tr")
    page.get_by_label("E-posta").fill(panel.email)
    page.get_by_label("Şifre").fill(PASSWORD)
    page.get_by_role("button", name="Giriş yap").click()
    page.wait_for_url("**/orders/overview")


def busy_account(panel: Panel) -> int:
    """Orders today (one per cause in error, one transferred), a failed transfer, an import and a
    product: every page has something to say. Returns the id of an order in error."""
    integration = panel.integration()
    now = utcnow()
    broken = make_order(
        integration,
        1,
        ordered_at=now - timedelta(hours=2),
        customer_name="Ayşe Yılmaz",
        transfer_state=TransferState.ERROR,
        error_category="auth",
        error_reason="401 woocommerce_rest_cannot_create",
    )
    make_action(broken, finished_at=now - timedelta(hours=1), last_error="401 woocommerce_rest_cannot_create")
    make_order(
        integration,
        2,
        ordered_at=now - timedelta(hours=1),
        customer_name="Mehmet Demir",
        transfer_state=TransferState.ERROR,
        error_category="unknown_product",
        error_reason="KUPA-9",
    )
    make_order(
        integration,
        3,
        ordered_at=now,
        customer_name="Zeynep Kaya",
        transfer_state=TransferState.TRANSFERRED,
        shop_id="501",
    )
    make_import(integration)
    db.session.add(
        Product(account_id=panel.account_id, barcode="869000", stock_code="KUPA-1", name="Kupa", stock=3)
    )
    db.session.commit()
    return broken.id


def _english() -> set[str]:
    """Every English message of the catalog whose Turkish differs, plural forms included."""
    english: set[str] = set()
    for message in catalog("tr"):
        if message.id:
            forms = message.id if isinstance(message.id, tuple) else (message.id,)
            turkish = message.string if isinstance(message.string, tuple) else (message.string,)
            english |= {str(form) for form in forms if form not in turkish}
    return english


# The English a Turkish page must not show, read as the test client's walk (tests/test_i18n.py) reads
# it: a message as the whole text, a sentence anywhere; here also a message with its number or name
# filled in, and the panel's everyday words wherever they stand.
ENGLISH = _english()
SENTENCES = [message for message in ENGLISH if len(message.split()) >= 3]
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")
PATTERNS = [
    re.compile(".+?".join(re.escape(part) for part in PLACEHOLDER.split(message)))
    for message in ENGLISH
    if PLACEHOLDER.search(message) and len(PLACEHOLDER.sub("", message).split()) >= 2
]
EVERYDAY = re.compile(
    r"\b(?:Save|Cancel|Delete|Edit|Add|Search|Settings|Orders?|Products?|Overview|Retry|Ignored?|Errors?|"
    r"Status|Name|Date|Total|Price|Stock|Import|Notifications|Connection|General|Statuses|Integrations?|"
    r"Sign (?:in|out)|Back|Next|Previous|Show|Select all|Loading|Saved|Yes|Active|Passive|Waiting|"
    r"Transferred|Shipped|Delivered|Cancelled|Today|None|Never|Marketplace|Shop|Help|Close|History|"
    r"Language|Email|Password|Barcode|Quantity|Address|Customer|Reason|Attempts|Keys?|Unknown|refused|"
    r"Export|Download|Upload|Filter|Apply|Page|Submit|Confirm)\b"
)

# The text a reader meets: visible text nodes (a closed menu or <details> opened first, as a click
# would) and what is read out or shown on hover; not scripts, nor the platforms' own codes.
SHOWN_TEXT = """() => {
  const skip = "script, style, pre, code, template, noscript";
  const tidy = (text) => text.replace(/\\s+/g, " ").trim();
  const texts = [tidy(document.title)];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    const text = tidy(node.data);
    if (text && parent && !parent.closest(skip) && parent.checkVisibility()) texts.push(text);
  }
  for (const element of document.body.querySelectorAll("[aria-label], [placeholder], [title], [alt]")) {
    for (const name of ["aria-label", "placeholder", "title", "alt"]) {
      const value = element.getAttribute(name);
      if (value && !element.closest(skip)) texts.push(tidy(value));
    }
  }
  return texts.filter(Boolean);
}"""


def english_in(texts: list[str]) -> set[str]:
    """The English among the texts: a message of the catalog, or an everyday word of the panel."""
    found = {text for text in texts if text in ENGLISH}
    for text in texts:
        found |= {sentence for sentence in SENTENCES if sentence in text}
        found |= {f"{text!r} ({pattern.pattern})" for pattern in PATTERNS if pattern.fullmatch(text)}
        found |= {f"{text!r} ({word})" for word in EVERYDAY.findall(text)}
    return found


def test_every_page_in_turkish_shows_no_english(
    turkish_page: Page, panel: Panel, problems: list[str]
) -> None:
    page = turkish_page
    order_id = busy_account(panel)
    sign_in_in_turkish(page, panel)
    left: dict[str, set[str]] = {}
    for path in panel_pages(panel.integration_id, order_id):
        response = page.goto(path)
        assert response is not None and response.ok, path
        expect(page.locator("html")).to_have_attribute("lang", "tr")
        page.evaluate("document.querySelectorAll('details').forEach((details) => { details.open = true; })")
        if found := english_in(page.evaluate(SHOWN_TEXT)):
            left[path] = found
    assert left == {}, f"English on Turkish pages: {left}"
    assert problems == []


def test_the_breadcrumb_is_named_in_turkish(turkish_page: Page, panel: Panel) -> None:
    """A screen reader names the breadcrumb in the page's language (it was "breadcrumb", the name Pico
    styles it by)."""
    sign_in_in_turkish(turkish_page, panel)
    turkish_page.goto("/orders/errors")
    breadcrumb = turkish_page.get_by_role("navigation", name="Gezinti yolu")
    expect(breadcrumb.get_by_role("link")).to_have_text("Siparişler")


def test_the_overview_draws_its_charts_in_turkish(
    turkish_page: Page, panel: Panel, problems: list[str]
) -> None:
    page = turkish_page
    busy_account(panel)
    sign_in_in_turkish(page, panel)
    expect(page.get_by_role("heading", level=1)).to_have_text("Genel Bakış")
    charts = page.locator("canvas[data-chart]")
    expect(charts).to_have_count(3)
    expect(page.get_by_role("img", name="Son 14 günde günlük siparişler, pazaryerine göre")).to_be_visible()
    # Chart.js drew each canvas: a chart is bound to it and it holds painted pixels.
    page.wait_for_function(
        "() => [...document.querySelectorAll('canvas[data-chart]')]"
        ".every((canvas) => window.Chart.getChart(canvas))"
    )
    for chart in charts.all():
        painted = chart.evaluate(
            """(canvas) => {
              const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
              return pixels.filter((value, index) => index % 4 === 3 && value > 0).length;
            }"""
        )
        assert painted > 0, chart.get_attribute("id")
    drawn = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('canvas[data-chart]')].map((canvas) => {
          const chart = window.Chart.getChart(canvas);
          return [canvas.id, {
            labels: chart.data.labels,
            series: chart.data.datasets.map((set) => [set.label, set.data.reduce((a, b) => a + b, 0)]),
          }];
        }))"""
    )
    # The three orders of today, on the marketplace's series; the failed transfer on Turkish "Errors".
    assert drawn["chart-hours"]["series"] == [["Trendyol", 3]]
    assert drawn["chart-days"]["series"] == [["Trendyol", 3]]
    assert drawn["chart-errors"]["series"] == [["Hatalar", 1]]
    today = utcnow().astimezone(ZoneInfo(panel.app.config["BABEL_DEFAULT_TIMEZONE"]))
    assert drawn["chart-days"]["labels"][-1] == format_date(today, "d MMM", locale="tr")
    assert problems == []
