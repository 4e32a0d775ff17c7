"""English and Turkish catalogs: complete, in step with the code, and used by the pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from extensions import db
from models import Account, Integration
from tests.conftest import Client

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def source_messages() -> set[str | tuple[str, ...]]:
    """What `make translations-update` extracts (babel.cfg); dot-folders such as .venv are skipped.

    A plural message is the tuple (singular, plural), as the catalog keys it.
    """
    found = extract_from_dir(
        ROOT,
        method_map=[("**.py", "python"), ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")],
        keywords={"_": None, "gettext": None, "_l": None, "ngettext": (1, 2)},
    )
    return {message for _file, _line, message, _comments, _context in found}


def catalog(language: str) -> Catalog:
    with open(ROOT / "translations" / language / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale=language)


@pytest.fixture(scope="module")
def messages() -> set[str | tuple[str, ...]]:
    return {message for message in source_messages() if message}


@pytest.mark.parametrize("language", ["en", "tr"])
def test_catalog_has_every_message_of_the_code(language: str, messages: set[str | tuple[str, ...]]) -> None:
    entries: dict[str | tuple[str, ...] | None, Message] = {
        message.id if isinstance(message.id, str) else tuple(message.id): message
        for message in catalog(language)
        if message.id
    }
    assert messages - set(entries) == set(), "run `make translations-update` and translate the new messages"
    assert set(entries) - messages == set(), "the catalog holds messages the code no longer uses"
    for message_id in messages:
        entry = entries[message_id]
        forms = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert all(forms), f"untranslated: {message_id}"
        assert "fuzzy" not in entry.flags, f"fuzzy: {message_id}"
        wanted = set(PLACEHOLDER.findall(message_id if isinstance(message_id, str) else message_id[0]))
        assert all(set(PLACEHOLDER.findall(str(form))) == wanted for form in forms), message_id


def test_turkish_differs_from_english_where_it_should(messages: set[str | tuple[str, ...]]) -> None:
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
