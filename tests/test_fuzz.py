"""What fuzzing found (issue 10, part 7): hostile ids and dates in every parameter, product values, feeds in
encodings nobody reads, mailbox names, duplicates sent at once, file modes, and SQLite writers that wait
their turn instead of failing."""

from __future__ import annotations

import io
import os
import re
import smtplib
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from werkzeug.test import TestResponse

import config
from blueprints.params import MAX_ID, parse_id, parse_ids, parse_number
from extensions import db
from models import Account, Integration, Notification, OrderAction, Product, TransferState
from tests.conftest import PASSWORD, Client, make_account, make_integration, make_order, running_app
from tests.stack import mail_sink

ROW = re.compile(r'<tr id="order-(\d+)"')
# What a fuzzer puts where an id belongs: digits of other scripts ("²" passes str.isdigit(), "٣" and the
# full-width "１" pass int()), numbers past the column, signs, fractions, blanks.
NOT_IDS = [
    "²",
    "٣",
    "１",
    "99999999999999999999",
    str(MAX_ID + 1),
    "0",
    "-1",
    "+1",
    "1.5",
    "1e3",
    "0x10",
    "1_0",
]
VAT_MESSAGE = "Choose a VAT rate of 0, 1, 10 or 20, or none."
DUPLICATE = "You already have a product with this barcode."


@pytest.fixture
def app(redis_url: str) -> Iterator[Flask]:
    Redis.from_url(redis_url).flushdb()
    with running_app(REDIS_URL=redis_url) as app:
        yield app


def shown(page: str) -> list[int]:
    return [int(found) for found in ROW.findall(page)]


def version_of(page: str) -> int:
    match = re.search(r'id="live-version" name="v" value="(\d+)"', page)
    assert match, "no live version on the page"
    return int(match.group(1))


def products() -> dict[str, Product]:
    db.session.expire_all()
    return {product.barcode: product for product in db.session.scalars(sa.select(Product))}


def upload(client: Client, data: bytes) -> TestResponse:
    return client.post(
        "/products/import", data={"feed": (io.BytesIO(data), "feed.xml")}, content_type="multipart/form-data"
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def umask(value: int) -> Iterator[None]:
    """The usual umask of a shell, so a file made without care shows as readable by all."""
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


# -- One id parser -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("1", 1), ("42", 42), (" 42 ", 42), ("0042", 42), (str(MAX_ID), MAX_ID)]
)
def test_an_id_is_ascii_digits_within_the_column(value: str, expected: int) -> None:
    assert parse_id(value) == expected


@pytest.mark.parametrize("value", [*NOT_IDS, "", " ", "00000000042", None])
def test_anything_else_is_no_id(value: str | None) -> None:
    assert parse_id(value) is None


def test_ids_are_read_once_and_the_rest_counted() -> None:
    assert parse_ids(["3", "²", "3", "1", "-1"]) == ([3, 1], 2)
    assert parse_number("9223372036854775807", maximum=2**63 - 1) == 2**63 - 1
    assert parse_number("9223372036854775808", maximum=2**63 - 1) is None


# -- The Orders page, its counts and its poll --------------------------------------------------------


@pytest.mark.parametrize("value", NOT_IDS)
@pytest.mark.parametrize("name", ["integration", "before"])
def test_a_hostile_id_in_a_filter_is_named_and_ignored(
    seller: Client, integration: Integration, name: str, value: str
) -> None:
    order = make_order(integration)
    page = seller.get("/orders", query_string={name: value})
    assert page.status_code == 200
    assert f"is not a valid {name}; it is ignored." in page.get_data(as_text=True)
    assert shown(page.get_data(as_text=True)) == [order.id]
    counts = seller.get("/orders/counts", query_string={name: value})
    assert counts.status_code == 200 and 'data-count="status-Created">Created <b>1</b>' in counts.get_data(
        as_text=True
    )


@pytest.mark.parametrize("value", NOT_IDS)
@pytest.mark.parametrize("name", ["shown", "order", "integration", "before", "v"])
def test_a_hostile_id_in_a_poll_is_no_row(
    seller: Client, integration: Integration, name: str, value: str
) -> None:
    first = make_order(integration, 1)
    version = version_of(seller.get("/orders").get_data(as_text=True))
    newcomer = make_order(integration, 2)
    args: dict[str, Any] = {"v": version, "shown": [first.id], name: value}
    if name == "shown":
        args["shown"] = [first.id, value]
    response = seller.get("/orders/changes", query_string=args, headers={"HX-Request": "true"})
    assert response.status_code == 200
    if response.headers.get("HX-Refresh") == "true":
        assert name == "v"  # a version ahead of the account's (a big number): the page reloads
    else:  # an unreadable version catches up from the start: the new row is there all the same
        assert f'id="order-{newcomer.id}"' in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/orders", "/orders/counts", "/orders/changes"])
@pytest.mark.parametrize(
    "dates", [{"to": "9999-12-31"}, {"from": "0001-01-01"}, {"from": "0001-01-01", "to": "9999-12-31"}]
)
def test_open_ended_dates_are_clamped(
    seller: Client, integration: Integration, path: str, dates: dict[str, str]
) -> None:
    order = make_order(integration)
    response = seller.get(path, query_string={**dates, "v": 0}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    if path == "/orders/counts":
        assert 'data-count="status-Created">Created <b>1</b>' in text
    else:
        assert f'id="order-{order.id}"' in text
    if path == "/orders":  # the form shows the dates the view stands for
        assert ('value="2100-12-31"' in text) == ("to" in dates)
        assert ('value="2000-01-01"' in text) == ("from" in dates)


@pytest.mark.parametrize("value", [*NOT_IDS, ""])
def test_bulk_with_an_order_that_is_no_id_changes_nothing(
    seller: Client, integration: Integration, value: str
) -> None:
    order = make_order(integration)
    response = seller.post(
        "/orders/bulk", data={"action": "ignore", "reason": "test", "order": [order.id, value]}
    )
    assert response.status_code == 400
    db.session.expire_all()
    assert order.transfer_state == TransferState.WAITING
    assert db.session.scalars(sa.select(OrderAction)).all() == []


@pytest.mark.parametrize("value", NOT_IDS)
def test_a_hostile_id_in_a_path_is_a_404(seller: Client, integration: Integration, value: str) -> None:
    make_order(integration)  # order 1 and integration 1 exist: a full-width "１" must not reach them
    for path in ("/orders/{}", "/orders/{}/live", "/products/{}/edit", "/integrations/{}/general"):
        assert seller.get(path.format(quote(value))).status_code == 404, path


@pytest.mark.parametrize(
    "back",
    [
        "//evil.example/orders",
        "https://evil.example/orders",
        "/orders\r\nSet-Cookie: stolen=1",
        "/orders\t//evil.example",
        "/orders/\\evil.example",
        "/orders/../integrations",
        "/orders/%2e%2e/integrations",
        "/ordersevil",
        "/orders/" + "x" * 3000,
        "/orders\x00",
    ],
)
def test_a_back_address_is_checked_as_a_browser_reads_it(
    seller: Client, integration: Integration, back: str
) -> None:
    order = make_order(integration)
    # Ignore without a reason changes nothing and goes back at once.
    response = seller.post("/orders/bulk", data={"action": "ignore", "order": order.id, "back": back})
    assert response.status_code == 302 and response.headers["Location"] == "/orders"


@pytest.mark.parametrize("back", ["/orders?status=Created&q=Kaya", "/orders/errors", "/orders"])
def test_a_back_address_of_the_orders_pages_is_kept(
    seller: Client, integration: Integration, back: str
) -> None:
    order = make_order(integration)
    response = seller.post("/orders/bulk", data={"action": "ignore", "order": order.id, "back": back})
    assert response.headers["Location"] == back


def test_a_nul_in_the_search_finds_nothing_and_breaks_nothing(
    seller: Client, integration: Integration
) -> None:
    make_order(integration)
    for path in ("/orders?q=Customer%001", "/orders/counts?q=a%00", "/products?q=a%00b"):
        assert seller.get(path).status_code == 200, path


# -- Products ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("vat", ["7", "99999999999999999999", "²", "-0", "20.0", "1e1", "NaN", "20 %"])
def test_vat_is_one_of_the_rates(seller: Client, account: Account, vat: str) -> None:
    data = {"barcode": "1", "name": "Kupa", "stock": "1", "vat_rate": vat}
    response = seller.post("/products/new", data=data)
    assert response.status_code == 422 and VAT_MESSAGE in response.get_data(as_text=True)
    assert products() == {}
    assert seller.post("/products/new", data={**data, "vat_rate": "10"}).status_code == 302
    product = products()["1"]
    response = seller.post(f"/products/{product.id}/edit", data=data)
    assert response.status_code == 422 and VAT_MESSAGE in response.get_data(as_text=True)
    assert products()["1"].vat_rate == 10


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stock", "9" * 30),
        ("stock", "-" + "9" * 30),
        ("stock", "²"),
        ("price", "9" * 40),
        ("price", "1e999999999999"),
        ("price", "-1e-999999"),
        ("price", "Infinity"),
        ("barcode", "a\x00b"),
        ("name", "Kupa\x00"),
        ("stock_code", "SKU\r\n1"),
        ("barcode", "x" * 5000),
    ],
)
def test_out_of_range_product_values_are_refused(
    seller: Client, account: Account, field: str, value: str
) -> None:
    data = {"barcode": "1", "name": "Kupa", "stock": "1", "price": "10", field: value}
    response = seller.post("/products/new", data=data)
    assert response.status_code == 422
    assert '<small class="error" role="alert">' in response.get_data(as_text=True)
    assert products() == {}


@pytest.mark.parametrize(
    "encoding", ["x-unknown", "utf-32", "shift_jis", "rot13", "idna", "undefined", "x" * 5000]
)
def test_a_feed_in_an_encoding_nobody_reads_changes_nothing(
    seller: Client, account: Account, encoding: str
) -> None:
    feed = f'<?xml version="1.0" encoding="{encoding}"?>'.encode() + (
        b"<products><product><barcode>1</barcode><name>Kupa</name></product></products>"
    )
    response = upload(seller, feed)
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and "character encoding cannot be read" in text
    assert "Nothing was imported" in text and len(text) < 50_000
    assert products() == {}


def test_a_feed_with_bytes_that_are_no_text_changes_nothing(seller: Client, account: Account) -> None:
    feed = (
        b'<?xml version="1.0" encoding="UTF-8"?><products><product><barcode>1</barcode><name>\xff\xfe</name>'
    )
    response = upload(seller, feed + b"</product></products>")
    assert response.status_code == 422 and "not a readable XML file" in response.get_data(as_text=True)
    assert products() == {}


def test_a_utf16_feed_without_a_byte_order_mark_is_read(seller: Client, account: Account) -> None:
    feed = "<products><product><barcode>1</barcode><name>Çay</name></product></products>".encode("utf-16-le")
    assert upload(seller, feed).status_code == 302
    assert products()["1"].name == "Çay"


# -- Duplicates sent at once -------------------------------------------------------------------------


@pytest.fixture
def shared_app(tmp_path: Path) -> Iterator[Flask]:
    """An app whose requests run in threads of their own, each on its own connection: the test PostgreSQL,
    or a SQLite file (the in-memory database is one connection for all)."""
    overrides = (
        {}
        if os.environ.get("TEST_DATABASE_URL")
        else {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'hub.sqlite3'}"}
    )
    with running_app(**overrides) as app:
        yield app


@contextmanager
def meeting_before(statement: str) -> Iterator[None]:
    """Every request thread stops before its first `statement` until the other is there too: both have
    passed the form's duplicate check, and both write."""
    barrier = threading.Barrier(2, timeout=30)
    arrived: set[int] = set()

    def wait(_conn: object, _cursor: object, text: str, *_args: object) -> None:
        if text.startswith(statement) and threading.get_ident() not in arrived:
            arrived.add(threading.get_ident())
            barrier.wait()

    sa.event.listen(db.engine, "before_cursor_execute", wait)
    try:
        yield
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", wait)


def at_once(app: Flask, *requests: Callable[[Client], TestResponse]) -> list[TestResponse]:
    """Each request from its own signed-in client, in its own thread, at the same time."""
    clients = []
    for _ in requests:
        client: Client = app.test_client()  # type: ignore[assignment]
        assert client.login("seller@example.com").status_code == 302
        clients.append(client)
    answers: list[Any] = [None] * len(requests)

    def run(index: int) -> None:
        try:
            answers[index] = requests[index](clients[index])
        except BaseException as error:  # the test reads it below; a thread must not die with it
            answers[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return answers


def one_saved_one_refused(answers: list[TestResponse], message: str) -> None:
    assert sorted(answer.status_code for answer in answers) == [302, 422]
    refused = next(answer for answer in answers if answer.status_code == 422)
    assert message in refused.get_data(as_text=True)


def test_a_product_sent_twice_at_once_is_added_once(shared_app: Flask) -> None:
    make_account()
    data = {"barcode": "868", "name": "Kupa", "stock": "1"}
    with meeting_before("INSERT INTO products"):
        answers = at_once(shared_app, *[lambda client: client.post("/products/new", data=data)] * 2)
    one_saved_one_refused(answers, DUPLICATE)
    assert list(products()) == ["868"]


def test_two_products_given_one_barcode_at_once_keep_theirs(shared_app: Flask) -> None:
    account = make_account()
    first = Product(account_id=account.id, barcode="1", name="First", stock=1)
    second = Product(account_id=account.id, barcode="2", name="Second", stock=1)
    db.session.add_all([first, second])
    db.session.commit()
    ids = first.id, second.id
    with meeting_before("UPDATE products"):
        answers = at_once(
            shared_app,
            *[
                lambda client, product_id=product_id: client.post(
                    f"/products/{product_id}/edit", data={"barcode": "3", "name": "Renamed", "stock": "1"}
                )
                for product_id in ids
            ],
        )
    one_saved_one_refused(answers, DUPLICATE)
    assert sorted(products()) == ["1", "3"] or sorted(products()) == ["2", "3"]


def test_a_feed_imported_twice_at_once_is_imported_once(shared_app: Flask) -> None:
    make_account()
    feed = b"<products><product><barcode>1</barcode><name>Kupa</name><stock>4</stock></product></products>"
    with meeting_before("INSERT INTO products"):
        answers = at_once(shared_app, *[lambda client: upload(client, feed)] * 2)
    one_saved_one_refused(answers, "Some of these products were added meanwhile; import the file again.")
    assert [(barcode, product.stock) for barcode, product in products().items()] == [("1", 4)]


# -- The mailbox -------------------------------------------------------------------------------------


def mail(directory: Path, name: str, notification_id: object, subject: str) -> None:
    (directory / f"{name}.eml").write_bytes(
        f"To: seller@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <notification-{notification_id}@orderhub.local>\r\n\r\nhello\r\n".encode()
    )


@pytest.mark.parametrize(
    "name",
    [
        "a" * 5000,
        "1" * 21 + "-0123abcd",
        "٣-0123abcd",
        "1-0123ABCD",
        "1-0123abcd.eml",
        "1-0123abc",
        ".1-0123abcd",
        "..%2F1-0123abcd",
        "1-0123abcd%00",
    ],
)
def test_a_mail_name_the_sink_never_gives_is_a_404(
    seller: Client, integration: Integration, tmp_path: Path, name: str
) -> None:
    seller.application.config["MAIL_SINK_DIR"] = str(tmp_path)
    notification = Notification(
        account_id=integration.account_id, integration_id=integration.id, kind="new_orders"
    )
    db.session.add(notification)
    db.session.commit()
    mail(tmp_path, "1-0123abcd", notification.id, "Mine")
    assert seller.get("/notifications/mailbox/1-0123abcd").status_code == 200
    assert seller.get(f"/notifications/mailbox/{name}").status_code == 404
    assert seller.get(f"/notifications/mailbox/{name}/html").status_code == 404


def test_mails_with_ids_that_are_no_ids_are_no_ones_mails(
    seller: Client, integration: Integration, tmp_path: Path
) -> None:
    seller.application.config["MAIL_SINK_DIR"] = str(tmp_path)
    other = make_account("other@example.com")
    theirs = Notification(
        account_id=other.id, integration_id=make_integration(other, name="Theirs").id, kind="new_orders"
    )
    mine = Notification(account_id=integration.account_id, integration_id=integration.id, kind="new_orders")
    db.session.add_all([theirs, mine])
    db.session.commit()
    mail(tmp_path, "1-00000001", "99999999999999999999", "Huge")
    mail(tmp_path, "2-00000002", "٣", "Arabic")
    mail(tmp_path, "3-00000003", theirs.id, "Theirs")
    mail(tmp_path, "4-00000004", mine.id, "Mine")
    box = seller.get("/notifications/mailbox")
    assert box.status_code == 200
    text = box.get_data(as_text=True)
    assert "Mine" in text and "Huge" not in text and "Arabic" not in text and "Theirs" not in text
    for name in ("1-00000001", "2-00000002", "3-00000003"):
        assert seller.get(f"/notifications/mailbox/{name}").status_code == 404


# -- File modes --------------------------------------------------------------------------------------


def test_the_instance_folder_and_the_keys_are_the_owners_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = tmp_path / "instance"
    monkeypatch.setattr(config, "INSTANCE", instance)
    with umask(0o022):
        keys = config._local_keys()
        assert (mode(instance), mode(instance / "secret-keys.json")) == (0o700, 0o600)
        instance.chmod(0o755)  # as an earlier version left it
        assert config._local_keys() == keys
    assert mode(instance) == 0o700


def test_the_sqlite_database_and_its_wal_files_are_the_owners_alone(tmp_path: Path) -> None:
    database = tmp_path / "hub.sqlite3"
    with umask(0o022), running_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}"):
        make_account()  # written: the WAL and its index exist while the connection is open
        for suffix in ("", "-wal", "-shm"):
            path = database.with_name(database.name + suffix)
            assert mode(path) == 0o600, path
    old = tmp_path / "old.sqlite3"
    with umask(0o022):
        sqlite3.connect(old).close()
    assert mode(old) == 0o644  # as an earlier version made it
    with running_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{old}"):
        assert mode(old) == 0o600


def test_the_mail_sink_keeps_its_mails_to_the_owner(tmp_path: Path) -> None:
    directory = tmp_path / "mail"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)  # as an earlier version left it
    with umask(0o022), mail_sink(directory) as (sink, port), smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.sendmail("hub@example.com", ["seller@example.com"], b"Subject: hi\r\n\r\nhello\r\n")
        [kept] = sink.mails()
    assert (mode(directory), mode(kept)) == (0o700, 0o600)


# -- SQLite: writers wait their turn, readers never wait -------------------------------------------


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[Flask]:
    """On a SQLite file whatever the test database is: these are about SQLite's own locking."""
    with running_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'hub.sqlite3'}") as app:
        yield app


def test_a_writer_that_read_first_waits_for_the_lock_instead_of_failing(sqlite_app: Flask) -> None:
    """The worker ingests a package (a savepoint, a read, then a write) while the web saves something.
    Taking the write lock only at the write, after the web committed, failed at once: "database is
    locked". Taken up front, the web's write waits for it, and both get through."""
    account_id = make_account().id
    engine = db.engine
    worker_read, web_tried = threading.Event(), threading.Event()
    web: dict[str, object] = {}

    def web_saves() -> None:
        try:
            worker_read.wait(30)
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA busy_timeout=0")  # see whether the worker holds the lock
                try:
                    connection.execute(
                        sa.insert(Product).values(account_id=account_id, barcode="web", name="w")
                    )
                    connection.commit()
                    web["first try"] = "saved"
                except sa.exc.OperationalError:
                    connection.rollback()
                    web["first try"] = "waits"
                finally:
                    web_tried.set()
                if web["first try"] == "waits":
                    connection.exec_driver_sql("PRAGMA busy_timeout=30000")
                    connection.execute(
                        sa.insert(Product).values(account_id=account_id, barcode="web", name="w")
                    )
                    connection.commit()
        except BaseException as error:
            web["error"] = error
            web_tried.set()

    thread = threading.Thread(target=web_saves)
    thread.start()
    try:
        with db.session.begin_nested():
            db.session.scalar(sa.select(sa.func.count(Product.id)))
            worker_read.set()
            web_tried.wait(30)
            db.session.add(Product(account_id=account_id, barcode="worker", name="k"))
        db.session.commit()
    finally:
        worker_read.set()
        thread.join()
    assert "error" not in web, web
    assert web["first try"] == "waits"  # the worker held the lock from its first statement
    assert sorted(products()) == ["web", "worker"]


def test_pages_read_while_another_process_writes(sqlite_app: Flask, tmp_path: Path) -> None:
    """A read-only request takes no lock: it reads while the worker holds the write lock."""
    make_account()
    client: Client = sqlite_app.test_client()  # type: ignore[assignment]
    assert client.login("seller@example.com", PASSWORD).status_code == 302
    writer = sqlite3.connect(tmp_path / "hub.sqlite3", timeout=0, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE accounts SET language = 'tr'")
        for page in ("/orders/errors", "/products", "/notifications"):
            assert client.get(page).status_code == 200, page
        writer.execute("COMMIT")
    finally:
        writer.close()
