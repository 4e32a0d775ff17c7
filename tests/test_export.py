"""Orders > Orders > Export to CSV: the view's orders, every page, as the page's language writes them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal

import pytest
from flask import Flask
from redis import Redis

from extensions import db
from models import Account, Integration, TransferState
from tests.conftest import Client, make_account, make_integration, make_order, running_app


@pytest.fixture
def app(redis_url: str) -> Iterator[Flask]:
    Redis.from_url(redis_url).flushdb()
    with running_app(REDIS_URL=redis_url) as app:
        yield app


def rows(answer: bytes, delimiter: str) -> list[list[str]]:
    text = answer.decode("utf-8")
    assert text.startswith("\ufeff")  # so Excel reads Turkish letters
    return list(csv.reader(io.StringIO(text[1:]), delimiter=delimiter))


def test_the_export_holds_every_order_of_the_view_and_no_other(
    seller: Client, integration: Integration, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("blueprints.orders.export.CHUNK", 2)  # several chunks, as a big seller's
    for number in range(1, 6):
        make_order(integration, number, total=Decimal("1337.40"))
    make_order(integration, 6, transfer_state=TransferState.ERROR, error_reason='=HYPERLINK("x")')
    make_order(make_integration(make_account("other@example.com"), name="Theirs"), 7)

    answer = seller.get("/orders/export.csv")
    assert answer.mimetype == "text/csv" and "attachment" in answer.headers["Content-Disposition"]
    table = rows(answer.data, ",")
    assert table[0][:3] == ["Order number", "Package", "Integration"]
    assert [line[0] for line in table[1:]] == [f"104{number:08d}" for number in range(6, 0, -1)]
    assert table[-1][7] == "1337.40" and table[-1][9] == "Created"
    assert table[1][14] == '\'=HYPERLINK("x")'  # a formula in a field stays text in the spreadsheet

    only_errors = rows(seller.get("/orders/export.csv?transfer=error").data, ",")
    assert [line[0] for line in only_errors[1:]] == ["10400000006"]


def test_a_turkish_seller_gets_semicolons_and_decimal_commas(
    seller: Client, account: Account, integration: Integration
) -> None:
    account.language = "tr"
    db.session.commit()
    make_order(integration, 1, total=Decimal("1337.40"))
    table = rows(seller.get("/orders/export.csv").data, ";")
    assert table[0][0] == "Sipariş numarası" and table[1][7] == "1337,40" and table[1][9] == "Oluşturuldu"


def test_the_export_needs_a_signed_in_seller(client: Client) -> None:
    assert client.get("/orders/export.csv").headers["Location"].startswith("/login")
