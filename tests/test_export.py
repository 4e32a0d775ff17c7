"""Orders > Orders > Export to CSV and Excel: the view's orders, every page, as the page's language writes
them; at once when they are few, else by a job whose progress the page follows."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, g
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from redis import Redis
from rq import Queue, SimpleWorker

from blueprints.orders.export import MIMETYPES
from extensions import db
from jobs import PIPELINE, redis_connection
from jobs.exports import queue_export
from models import Account, Integration, OrderExport, TransferState
from tests.conftest import Client, make_account, make_integration, make_order, running_app
from tests.pipeline import free_port


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


def test_the_export_needs_a_signed_in_seller_in_every_format(client: Client) -> None:
    for path in ("/orders/export.xlsx", "/orders/exports/1", "/orders/exports/1/file"):
        assert client.get(path).headers["Location"].startswith("/login"), path
    assert client.post("/orders/exports", data={"format": "csv"}).headers["Location"].startswith("/login")


# -- Excel ---------------------------------------------------------------------------------------------


def workbook(answer: bytes) -> Worksheet:
    sheet = load_workbook(io.BytesIO(answer)).active
    assert isinstance(sheet, Worksheet)
    return sheet


def test_the_excel_file_has_the_csv_columns_with_real_numbers_dates_and_texts(
    seller: Client, integration: Integration
) -> None:
    make_order(integration, 1, total=Decimal("1337.40"), ordered_at=datetime(2026, 11, 20, 12, tzinfo=UTC))
    make_order(integration, 2, customer_name='=HYPERLINK("http://evil.example","x")', package_id="0012")
    make_order(make_integration(make_account("other@example.com"), name="Theirs"), 3)

    answer = seller.get("/orders/export.xlsx")
    assert answer.mimetype == MIMETYPES["xlsx"]
    assert answer.headers["Content-Disposition"].endswith(".xlsx")
    assert answer.headers["Cache-Control"] == "no-store"
    sheet = workbook(answer.data)
    table = list(sheet.iter_rows())
    assert [cell.value for cell in table[0]] == rows(seller.get("/orders/export.csv").data, ",")[0]
    assert [row[0].value for row in table[1:]] == ["10400000002", "10400000001"]  # theirs is not here
    newer, older = table[1:]
    total, moment = older[7], older[4]
    assert total.data_type == "n" and total.value == 1337.4 and total.number_format == "#,##0.00"
    assert moment.is_date and moment.value == datetime(2026, 11, 20, 15, 0)  # Istanbul's clock
    name = newer[5]
    assert name.value == '=HYPERLINK("http://evil.example","x")' and name.data_type == "s"
    assert name.quotePrefix  # shown as text, and kept as text when the seller edits the cell
    assert newer[1].value == "0012" and newer[1].data_type == "s"  # an id keeps its leading zeros


def test_a_turkish_seller_gets_turkish_headers_in_the_excel_file(
    seller: Client, account: Account, integration: Integration
) -> None:
    account.language = "tr"
    db.session.commit()
    make_order(integration, 1, total=Decimal("1337.40"))
    sheet = workbook(seller.get("/orders/export.xlsx").data)
    assert sheet.title == "Siparişler"
    header, row = list(sheet.iter_rows(values_only=True))
    assert header[0] == "Sipariş numarası" and header[7] == "Toplam"
    assert row[7] == 1337.4 and row[9] == "Oluşturuldu"  # a number, which Excel shows as 1.337,40


# -- At once, or by a job ------------------------------------------------------------------------------


@pytest.fixture
def inline_rows(app: Flask) -> int:
    """Exports of more than two orders are written by a job."""
    app.config["EXPORT_INLINE_ROWS"] = 2
    return 2


def exports() -> list[OrderExport]:
    return list(db.session.scalars(sa.select(OrderExport).order_by(OrderExport.id)))


def run_export_jobs() -> None:
    """What a worker does: the queued jobs of the pipeline queue, in this process, in an app context of
    its own as a worker has (no `g` left from the test's requests). Each job ends its database session:
    read rows again afterwards."""
    for name in list(g):
        g.pop(name)
    connection = redis_connection()
    SimpleWorker([Queue(PIPELINE, connection=connection)], connection=connection).work(burst=True)


def make_export(account: Account, **fields: object) -> OrderExport:
    values: dict[str, object] = {"format": "csv", "rows_total": 5}
    values.update(fields)
    export = OrderExport(account_id=account.id, **values)
    db.session.add(export)
    db.session.commit()
    return export


def test_a_small_view_downloads_at_once(seller: Client, integration: Integration, inline_rows: int) -> None:
    make_order(integration, 1, transfer_state=TransferState.ERROR)
    make_order(integration, 2, transfer_state=TransferState.ERROR)
    make_order(integration, 3)  # not in the view: two orders, as many as are written at once
    answer = seller.post("/orders/exports", data={"format": "xlsx", "transfer": "error"}, htmx=True)
    assert answer.status_code == 200 and answer.headers["HX-Redirect"] == "/orders/export.xlsx?transfer=error"
    answer = seller.post("/orders/exports", data={"format": "csv", "transfer": "error"})
    assert answer.status_code == 303 and answer.headers["Location"] == "/orders/export.csv?transfer=error"
    assert exports() == []
    assert seller.post("/orders/exports", data={"format": "pdf"}, htmx=True).status_code == 400


def test_a_larger_view_is_written_by_a_job_whose_progress_the_page_shows(
    seller: Client, account: Account, integration: Integration, inline_rows: int
) -> None:
    for number in range(1, 4):
        make_order(integration, number)
    assert 'hx-post="/orders/exports"' in seller.get("/orders").get_data(as_text=True)

    answer = seller.post("/orders/exports", data={"format": "xlsx"}, htmx=True)
    page = answer.get_data(as_text=True)
    (export,) = exports()
    assert (export.account_id, export.format, export.state, export.rows_total) == (
        account.id,
        "xlsx",
        "queued",
        3,
    )
    assert "0 of 3 orders" in page and 'hx-trigger="every 1s"' in page and "<progress" in page
    assert "Download" not in page
    # Without htmx, the export's own page.
    export.state = "done"
    db.session.commit()
    answer = seller.post("/orders/exports", data={"format": "csv"})
    assert answer.status_code == 303 and answer.headers["Location"] == f"/orders/exports/{export.id + 1}"

    # The link itself writes no more than EXPORT_INLINE_ROWS in a request: it sends the seller back.
    answer = seller.get("/orders/export.xlsx")
    assert answer.status_code == 303 and answer.headers["Location"] == "/orders"
    assert "press Export again" in seller.get("/orders").get_data(as_text=True)


def test_the_job_writes_the_file_a_chunk_at_a_time_in_the_sellers_language(
    seller: Client,
    account: Account,
    integration: Integration,
    inline_rows: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("blueprints.orders.export.CHUNK", 2)
    account.language = "tr"
    db.session.commit()
    for number in range(1, 6):
        make_order(integration, number, total=Decimal("1337.40"))
    make_order(integration, 6, transfer_state=TransferState.ERROR)
    seller.post("/orders/exports", data={"format": "csv", "transfer": "waiting"}, htmx=True)
    written: list[int] = []  # rows_done as the job wrote it, since the last commit
    committed: list[int] = []  # rows_done at each commit that changed it: what the page's poll saw

    def on_execute(
        conn: object, cursor: object, statement: str, parameters: object, context: Any, *_: object
    ) -> None:
        if statement.startswith("UPDATE order_exports") and "rows_done" in statement:
            written.append(context.compiled_parameters[0]["rows_done"])

    def on_commit(conn: object) -> None:
        if written:
            committed.append(written[-1])
        written.clear()

    sa.event.listen(db.engine, "before_cursor_execute", on_execute)
    sa.event.listen(db.engine, "commit", on_commit)
    try:
        run_export_jobs()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", on_execute)
        sa.event.remove(db.engine, "commit", on_commit)

    (export,) = exports()
    assert (export.state, export.rows_done, export.rows_total, export.error) == ("done", 5, 5, None)
    assert committed == [2, 4, 5]  # after every chunk, for the page's poll
    assert export.finished_at is not None and export.content is not None
    table = rows(export.content, ";")
    assert table[0][0] == "Sipariş numarası" and table[1][7] == "1337,40"
    assert [line[0] for line in table[1:]] == [f"104{number:08d}" for number in range(5, 0, -1)]


def test_the_page_follows_the_export_to_its_download_link(
    seller: Client, account: Account, integration: Integration, inline_rows: int
) -> None:
    for number in range(1, 4):
        make_order(integration, number, total=Decimal("12.50"))
    running = make_export(account, state="running", rows_done=2, rows_total=5)
    queue_export(running.id)  # its job, which a worker is running
    page = seller.get(f"/orders/exports/{running.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "2 of 5 orders" in page and 'value="2" max="5"' in page and 'hx-trigger="every 1s"' in page
    full = seller.get(f"/orders/exports/{running.id}").get_data(as_text=True)
    assert '<html lang="en"' in full and 'aria-live="polite"' in full and "2 of 5 orders" in full

    running.state = "failed"  # one export at a time: this one ends
    db.session.commit()
    seller.post("/orders/exports", data={"format": "xlsx"}, htmx=True)
    export_id = exports()[-1].id
    run_export_jobs()
    page = seller.get(f"/orders/exports/{export_id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "3 of 3 orders" in page and "hx-trigger" not in page  # the poll ends with the job
    assert f'href="/orders/exports/{export_id}/file"' in page and "Download" in page

    answer = seller.get(f"/orders/exports/{export_id}/file")
    assert answer.mimetype == MIMETYPES["xlsx"] and answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Content-Disposition"].startswith("attachment; filename=orders-")
    sheet = workbook(answer.data)
    assert [row[7] for row in sheet.iter_rows(min_row=2, values_only=True)] == [12.5, 12.5, 12.5]


def test_a_file_not_written_yet_is_not_there(seller: Client, account: Account) -> None:
    queued = make_export(account)
    assert seller.get(f"/orders/exports/{queued.id}/file").status_code == 404


def test_another_accounts_export_answers_404(seller: Client, account: Account) -> None:
    theirs = make_export(make_account("other@example.com"), state="done", content=b"secret")
    assert seller.get(f"/orders/exports/{theirs.id}").status_code == 404
    assert seller.get(f"/orders/exports/{theirs.id}", headers={"HX-Request": "true"}).status_code == 404
    assert seller.get(f"/orders/exports/{theirs.id}/file").status_code == 404
    assert (
        seller.get(f"/orders/exports/{make_export(account, state='done', content=b'x').id}/file").data == b"x"
    )


def test_an_export_needs_the_csrf_token(seller: Client, integration: Integration, inline_rows: int) -> None:
    for number in range(1, 4):
        make_order(integration, number)
    assert seller.post("/orders/exports", data={"format": "csv"}, csrf=False, htmx=True).status_code == 400
    assert exports() == []


def test_exports_older_than_a_day_go_when_a_new_one_is_made(
    seller: Client, account: Account, integration: Integration, inline_rows: int
) -> None:
    for number in range(1, 4):
        make_order(integration, number)
    now = datetime.now(UTC)
    make_export(account, state="done", content=b"old", created_at=now - timedelta(hours=25))
    make_export(make_account("other@example.com"), state="done", created_at=now - timedelta(hours=30))
    recent = make_export(account, state="done", content=b"recent", created_at=now - timedelta(hours=23))
    seller.post("/orders/exports", data={"format": "csv"}, htmx=True)
    assert [(export.id, export.state) for export in exports()] == [
        (recent.id, "done"),
        (recent.id + 1, "queued"),
    ]


def test_one_export_at_a_time_until_it_ends_or_stalls(
    seller: Client, account: Account, integration: Integration, inline_rows: int, app: Flask
) -> None:
    for number in range(1, 4):
        make_order(integration, number)
    running = make_export(account, state="running", rows_done=1)
    queue_export(running.id)  # its job is in the queue
    page = seller.post("/orders/exports", data={"format": "csv"}, htmx=True).get_data(as_text=True)
    assert "still being written" in page and f'id="export-{running.id}"' in page
    assert len(exports()) == 1

    # A worker killed mid-export leaves it running for ever: long after its timeout it is over.
    running.created_at = datetime.now(UTC) - timedelta(seconds=2 * app.config["EXPORT_JOB_TIMEOUT"] + 1)
    db.session.commit()
    page = seller.get(f"/orders/exports/{running.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "stopped before its file was written" in page and "hx-trigger" not in page
    seller.post("/orders/exports", data={"format": "csv"}, htmx=True)
    assert len(exports()) == 2


def test_an_export_whose_job_is_gone_is_over_at_once(
    seller: Client, account: Account, integration: Integration, inline_rows: int
) -> None:
    """Redis came back empty: the job is lost, and the seller need not wait an hour to export again."""
    for number in range(1, 4):
        make_order(integration, number)
    queued = make_export(account)
    queue_export(queued.id)
    page = seller.get(f"/orders/exports/{queued.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "hx-trigger" in page  # waiting for its job
    redis_connection().flushdb()
    page = seller.get(f"/orders/exports/{queued.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "stopped before its file was written" in page and "hx-trigger" not in page
    seller.post("/orders/exports", data={"format": "csv"}, htmx=True)
    assert len(exports()) == 2


def test_an_export_whose_integration_is_gone_fails_with_a_sentence(
    seller: Client, account: Account, integration: Integration, inline_rows: int
) -> None:
    for number in range(1, 4):
        make_order(integration, number)
    make_order(make_integration(account, name="Another"), 4)
    seller.post("/orders/exports", data={"format": "csv", "integration": str(integration.id)}, htmx=True)
    (export,) = exports()
    assert export.filters == f"integration={integration.id}"
    db.session.delete(integration)  # its orders go with it; the export must not take the other's
    db.session.commit()
    run_export_jobs()
    (export,) = exports()
    assert export.state == "failed" and export.content is None
    assert (
        export.error
        == "An integration this export was filtered by was deleted. Export again from the Orders page."
    )
    page = seller.get(f"/orders/exports/{export.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert export.error in page and "hx-trigger" not in page


def test_without_redis_the_seller_is_told_and_nothing_is_left_behind() -> None:
    with running_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", EXPORT_INLINE_ROWS=0) as app:
        seller: Client = app.test_client()  # type: ignore[assignment]
        account = make_account()
        make_order(make_integration(account), 1)
        seller.login(account.email)
        page = seller.post("/orders/exports", data={"format": "xlsx"}, htmx=True).get_data(as_text=True)
        assert "job queue cannot be reached" in page and 'role="alert"' in page
        answer = seller.post("/orders/exports", data={"format": "xlsx"})
        assert answer.status_code == 303 and answer.headers["Location"] == "/orders"
        assert "job queue cannot be reached" in seller.get("/orders").get_data(as_text=True)
        assert exports() == []
