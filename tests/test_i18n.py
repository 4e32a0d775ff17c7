"""English and Turkish catalogs: complete, in step with the code, and used by the pages."""

from __future__ import annotations

import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from extensions import db
from models import Account, Integration, Product
from tests.conftest import Client, make_action, make_import, make_line, make_order, panel_pages

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\(\w+\)s")


# A message as the catalog keys it: its context (pgettext's, or None) and its id, a plural message's id
# being the tuple (singular, plural).
Key = tuple[str | None, str | tuple[str, ...]]


def source_messages() -> set[Key]:
    """What `make translations-update` extracts (babel.cfg); dot-folders such as .venv are skipped."""
    found = extract_from_dir(
        ROOT,
        method_map=[("**.py", "python"), ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")],
        keywords={
            "_": None,
            "gettext": None,
            "_l": None,
            "N_": None,
            "ngettext": (1, 2),
            "pgettext": ((1, "c"), 2),
        },
    )
    return {(context, message) for _file, _line, message, _comments, context in found if message}


def catalog(language: str) -> Catalog:
    with open(ROOT / "translations" / language / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale=language)


@pytest.fixture(scope="module")
def messages() -> set[Key]:
    return source_messages()


@pytest.mark.parametrize("language", ["en", "tr"])
def test_catalog_has_every_message_of_the_code(language: str, messages: set[Key]) -> None:
    entries: dict[Key, Message] = {
        (message.context, message.id if isinstance(message.id, str) else tuple(message.id)): message
        for message in catalog(language)
        if message.id
    }
    assert messages - set(entries) == set(), "run `make translations-update` and translate the new messages"
    assert set(entries) - messages == set(), "the catalog holds messages the code no longer uses"
    for key in messages:
        entry, message_id = entries[key], key[1]
        forms = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert all(forms), f"untranslated: {key}"
        assert "fuzzy" not in entry.flags, f"fuzzy: {key}"
        wanted = set(PLACEHOLDER.findall(message_id if isinstance(message_id, str) else message_id[0]))
        assert all(set(PLACEHOLDER.findall(str(form))) == wanted for form in forms), key


def test_turkish_differs_from_english_where_it_should(messages: set[Key]) -> None:
    same = {str(m.id) for m in catalog("tr") if m.id and m.id == m.string}
    # Brand names and formats read the same in both languages; prose never does.
    assert all(len(text.split()) <= 2 for text in same), same


def test_general_page_in_turkish(seller: Client, account: Account, integration: Integration) -> None:
    account.language = "tr"
    db.session.commit()
    page = seller.get(f"/integrations/{integration.id}/general").get_data(as_text=True)
    assert '<html lang="tr"' in page
    for label in (
        "İletişim Seçenekleri",
        "Kargo Takip Kodu Aktarımı",
        "Pazaryeri Geri Bildirimi",
        "İşlem Önceliği",
        "Renk Kodlama Oranı",
        "Kargo KDV Seçimi",
        "Bölümü kaydet",
    ):
        assert label in page
    assert "Communication Options" not in page


def test_validation_messages_in_turkish(seller: Client, account: Account, integration: Integration) -> None:
    account.language = "tr"
    db.session.commit()
    response = seller.post(
        f"/integrations/{integration.id}/general/colors", data={"color_coding_rate": "101"}, htmx=True
    )
    assert "0 ile 100 arasında bir oran girin." in response.get_data(as_text=True)
    response = seller.post("/settings", data={"notification_email": "x@", "language": "tr"})
    assert "Geçersiz e-posta adresi." in response.get_data(as_text=True)  # WTForms' own catalog


def test_signed_out_pages_follow_the_browser_language(client: Client) -> None:
    page = client.get("/login", headers={"Accept-Language": "tr-TR,tr;q=0.9"}).get_data(as_text=True)
    assert "Giriş yap" in page


class _Text(HTMLParser):
    """The text a reader meets on a page: text nodes and the attributes read out or shown (labels,
    placeholders, titles), without scripts, styles, preformatted payloads and the platforms' own codes."""

    SHOWN = ("aria-label", "placeholder", "title", "alt", "data-stale", "data-limited", "data-offline")

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "pre", "template", "code"):
            self.skipping += 1
        self.texts += [" ".join(value.split()) for name, value in attrs if name in self.SHOWN and value]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "pre", "template", "code"):
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text and not self.skipping:
            self.texts.append(text)


def test_no_english_is_left_on_a_turkish_page(
    seller: Client, account: Account, integration: Integration
) -> None:
    """Every page of the panel, in Turkish, with an order in error, an import and a product: no text
    of the catalog is left in its English form (a message whose Turkish differs)."""
    account.language = "tr"
    order = make_order(integration, error_category="shop_refused", transfer_state="error")
    make_action(order, last_error="refused")
    make_import(integration)
    db.session.add(Product(account_id=account.id, barcode="869000", stock_code="SKU-1", name="Kupa", stock=3))
    db.session.commit()
    english = {
        str(message.id): str(message.string)
        for message in catalog("tr")
        if message.id and isinstance(message.id, str) and message.string != message.id
    }
    # A sentence anywhere in a text; a word or two only as the whole text (they hide in other words).
    sentences = [text for text in english if len(text.split()) >= 3]
    left: dict[str, set[str]] = {}
    for path in panel_pages(integration.id, order.id):
        response = seller.get(path)
        assert response.status_code == 200, path
        parser = _Text()
        parser.feed(response.get_data(as_text=True))
        found = {text for text in parser.texts if text in english}
        found |= {sentence for text in parser.texts for sentence in sentences if sentence in text}
        if found:
            left[path] = found
    assert left == {}, f"English on Turkish pages: {left}"


def test_amounts_and_rates_as_a_turkish_seller_writes_them(
    seller: Client, account: Account, integration: Integration
) -> None:
    order = make_order(integration, total=Decimal("1337.40"))
    make_line(order, "9", barcode="869", stock_code="S", unit_price=Decimal("1337.40"))
    account.language = "tr"
    db.session.commit()
    page = seller.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "1.337,40\xa0₺" in page and "%20" in page
    assert "1.337,40\xa0₺" in seller.get("/orders").get_data(as_text=True)
    assert "%20" in seller.get(f"/integrations/{integration.id}/general").get_data(as_text=True)
    account.language = "en"
    db.session.commit()
    page = seller.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "1,337.40\xa0TRY" in page and "20%" in page
