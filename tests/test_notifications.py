"""Order Notifications against a real SMTP server (aiosmtpd): the mails, their batching, their retries."""

from __future__ import annotations

import email
import email.policy
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask

from extensions import db
from mailsink import serve
from models import (
    Account,
    Integration,
    MailState,
    NoticeKind,
    Notification,
    Order,
    OrderNotice,
    TransferState,
)
from models.base import utcnow
from sync import actions, notifications, pull
from tests.conftest import Client, make_account, make_integration, make_order, running_app
from tests.pipeline import configure, cycle, drain, free_port, order_for
from tests.sandbox_server import Sandbox

OIL = "8680001000097"  # ZEYTINYAGI-1L
WINDOW = timedelta(seconds=300)


@dataclass
class Inbox:
    """What the SMTP server received, parsed."""

    directory: Path
    port: int
    refuse: tuple[str, ...] = ()
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = serve(self.directory, self.port, refuse=self.refuse)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def mails(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted(self.directory.glob("*.eml"))
        ]


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def app(smtp_port: int) -> Iterator[Flask]:
    with running_app(MAIL_PORT=smtp_port, NOTIFY_WINDOW_SECONDS=int(WINDOW.total_seconds())) as app:
        yield app


@pytest.fixture
def inbox(smtp_port: int, tmp_path: Path) -> Iterator[Inbox]:
    inbox = Inbox(tmp_path / "mail", smtp_port)
    inbox.start()
    yield inbox
    inbox.stop()


@pytest.fixture
def account(app: Flask) -> Account:
    return make_account(notification_email="alerts@shop.example", notification_email_confirmed_at=utcnow())


def send_all(now: object = None) -> list[Notification]:
    """The tick's part: gather what is due, then send each mail as its job would."""
    opened = notifications.gather(now or utcnow())  # type: ignore[arg-type]
    for notification in opened:
        notifications.send(notification.id)
    db.session.expire_all()
    return opened


def text(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())


# -- Newly Added Orders ------------------------------------------------------------------------------


def test_new_orders_make_one_mail_that_lists_them(hub: Integration, sandbox: Sandbox, inbox: Inbox) -> None:
    configure(hub, notify_new_orders=True)
    packages = [sandbox.order() for _ in range(3)]
    cycle(hub)
    send_all()

    [mail] = inbox.mails()
    assert mail["To"] == "alerts@shop.example"
    assert mail["Subject"] == f"3 new orders on {hub.name}"
    assert {part.get_content_type() for part in mail.walk()} >= {
        "multipart/alternative",
        "text/plain",
        "text/html",
    }
    html, plain = text(mail, "html"), text(mail, "plain")
    for package in packages:
        order = order_for(package)
        link = f"http://hub.test/orders/{order.id}"
        for body in (html, plain):
            assert order.order_number in body and order.customer_name in body and link in body
            assert "Trendyol" in body
        assert f"{order.total:,.2f}" in plain
    notification = db.session.scalars(sa.select(Notification)).one()
    assert notification.state == MailState.SENT and notification.order_count == 3
    assert notification.sent_at is not None


def test_the_mail_speaks_the_accounts_language(
    hub: Integration, account: Account, sandbox: Sandbox, inbox: Inbox
) -> None:
    account.language = "tr"
    configure(hub, notify_new_orders=True)
    sandbox.order()
    cycle(hub)
    send_all()
    [mail] = inbox.mails()
    assert mail["Subject"] == f"{hub.name}: 1 yeni sipariş"
    assert "Sipariş numarası" in text(mail, "html")


def test_a_window_makes_one_mail_of_many_orders(hub: Integration, sandbox: Sandbox, inbox: Inbox) -> None:
    configure(hub, notify_new_orders=True)
    for _ in range(300):
        sandbox.order()
    cycle(hub)
    start = utcnow()
    send_all(start)
    [mail] = inbox.mails()
    assert mail["Subject"] == f"300 new orders on {hub.name}"

    # More orders within the window wait for it to pass, then go out together.
    late = [sandbox.order(), sandbox.order()]
    cycle(hub)
    assert send_all(start + WINDOW - timedelta(seconds=1)) == []
    assert len(inbox.mails()) == 1
    send_all(start + WINDOW + timedelta(seconds=1))
    mails = inbox.mails()
    assert len(mails) == 2 and mails[1]["Subject"] == f"2 new orders on {hub.name}"
    assert all(order_for(package).order_number in text(mails[1], "plain") for package in late)


def test_no_mail_when_the_setting_is_off(hub: Integration, sandbox: Sandbox, inbox: Inbox) -> None:
    sandbox.order()
    cycle(hub)
    assert send_all() == []
    assert inbox.mails() == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OrderNotice)) == 0


def test_no_mail_when_turned_off_or_the_address_is_gone_before_it_went(
    hub: Integration, account: Account, sandbox: Sandbox, inbox: Inbox
) -> None:
    configure(hub, notify_new_orders=True)
    sandbox.order()
    cycle(hub)
    configure(hub, notify_new_orders=False)
    send_all()
    configure(hub, notify_new_orders=True)
    account.notification_email = None
    sandbox.order()
    cycle(hub)
    send_all()
    assert inbox.mails() == []
    reasons = db.session.scalars(sa.select(Notification.last_error).order_by(Notification.id)).all()
    assert reasons == ["the setting was turned off", "the account has no notification email"]
    assert set(db.session.scalars(sa.select(Notification.state))) == {MailState.SKIPPED}


def test_a_replayed_page_or_a_restart_tells_nothing_twice(
    hub: Integration, sandbox: Sandbox, inbox: Inbox
) -> None:
    configure(hub, notify_new_orders=True)
    sandbox.order()
    sandbox.order()
    cycle(hub)
    start = utcnow()
    send_all(start)
    hub.pull_cursor = None  # the next pull reads the whole first window again
    db.session.commit()
    cycle(hub)
    assert send_all(start + 2 * WINDOW) == []
    assert notifications.send(db.session.scalars(sa.select(Notification.id)).one()) is None  # a job run twice
    assert len(inbox.mails()) == 1


# -- Orders in Error Status ----------------------------------------------------------------------------


def test_an_order_in_error_is_told_once_per_error(hub: Integration, sandbox: Sandbox, inbox: Inbox) -> None:
    configure(hub, notify_error_orders=True)
    del sandbox.world.shop_products["ZEYTINYAGI-1L"]
    package = sandbox.order(lines=[{"barcode": OIL, "quantity": 1}])
    sandbox.order()  # transferred: not in the mail
    cycle(hub)
    order = order_for(package)
    assert order.transfer_state == TransferState.ERROR
    start = utcnow()
    send_all(start)

    [mail] = inbox.mails()
    assert mail["Subject"] == f"1 order in error on {hub.name}"
    plain = text(mail, "plain")
    assert order.order_number in plain and "ZEYTINYAGI-1L" in plain
    assert f"http://hub.test/orders/{order.id}" in plain

    # The seller retries, it fails the same way: no second alert.
    actions.retry(order)
    db.session.commit()
    drain()
    assert order_for(package).transfer_state == TransferState.ERROR
    assert send_all(start + 2 * WINDOW) == []
    assert len(inbox.mails()) == 1


def test_actions_retried_by_the_hub_alert_only_when_they_give_up(
    app: Flask, hub: Integration, sandbox: Sandbox, inbox: Inbox
) -> None:
    app.config["ACTION_MAX_ATTEMPTS"] = 3
    configure(hub, notify_error_orders=True)
    package = sandbox.order()
    pull.sync_integration(hub.id)
    sandbox.world.faults.update({"error_rate": 1})  # the shop (and the marketplace) answer 503 from now on
    drain()
    db.session.expire_all()
    order = order_for(package)
    assert order.transfer_state == TransferState.ERROR and order.error_category == "unavailable"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OrderNotice)) == 1
    send_all()
    assert len(inbox.mails()) == 1


# -- SMTP trouble --------------------------------------------------------------------------------------


def waiting_for_smtp(hub: Integration, sandbox: Sandbox, inbox: Inbox) -> Notification:
    """A new order's mail, gathered while the SMTP server is down."""
    configure(hub, notify_new_orders=True)
    inbox.stop()
    sandbox.order()
    cycle(hub)
    [notification] = notifications.gather(utcnow())
    return notification


def test_smtp_down_then_up_the_mail_arrives_once(
    hub: Integration, sandbox: Sandbox, inbox: Inbox, client: Client
) -> None:
    notification = waiting_for_smtp(hub, sandbox, inbox)
    retry_at = notifications.send(notification.id)
    db.session.expire_all()
    assert retry_at is not None and retry_at > utcnow()
    assert notification.state == MailState.PENDING and notification.attempts == 1
    assert "Connection refused" in (notification.last_error or "")
    assert notifications.gather(utcnow() + 2 * WINDOW) == []  # still the same mail, not a second one

    inbox.start()
    assert notifications.send(notification.id) is None
    assert notifications.send(notification.id) is None  # the retry job and the sweeper both ran it
    db.session.expire_all()
    assert notification.state == MailState.SENT and notification.attempts == 2
    assert len(inbox.mails()) == 1


def test_a_mail_waiting_for_smtp_goes_nowhere_once_the_address_changed(
    hub: Integration, sandbox: Sandbox, inbox: Inbox, account: Account
) -> None:
    notification = waiting_for_smtp(hub, sandbox, inbox)
    assert notifications.send(notification.id) is not None  # SMTP down: it waits
    account.change_notification_email("someone-else@example.com")
    db.session.commit()
    inbox.start()
    assert notifications.send(notification.id) is None
    db.session.expire_all()
    assert notification.state == MailState.SKIPPED and inbox.mails() == []


def test_a_mail_whose_worker_died_is_sent_again_by_the_sweeper(
    hub: Integration, sandbox: Sandbox, inbox: Inbox
) -> None:
    configure(hub, notify_new_orders=True)
    sandbox.order()
    cycle(hub)
    [notification] = notifications.gather(utcnow())
    assert notifications.stale_and_due(utcnow()) == [notification.id]  # never handed to RQ: handed now
    notification.state, notification.claimed_at = MailState.SENDING, utcnow()  # a worker took it, then died
    db.session.commit()
    assert notifications.stale_and_due(utcnow()) == []
    later = utcnow() + timedelta(minutes=5)
    assert notifications.stale_and_due(later) == [notification.id]
    notifications.send(notification.id)
    assert len(inbox.mails()) == 1


def test_a_refused_address_is_shown_in_the_panel(
    smtp_port: int, tmp_path: Path, hub: Integration, sandbox: Sandbox, seller: Client
) -> None:
    inbox = Inbox(tmp_path / "mail", smtp_port, refuse=("alerts@shop.example",))
    inbox.start()
    try:
        configure(hub, notify_new_orders=True)
        sandbox.order()
        cycle(hub)
        send_all()
    finally:
        inbox.stop()
    notification = db.session.scalars(sa.select(Notification)).one()
    assert notification.state == MailState.REJECTED
    assert "550" in (notification.last_error or "")
    page = seller.get("/notifications").get_data(as_text=True)
    assert 'id="rejected-address"' in page and "alerts@shop.example" in page
    assert "Address refused" in page


# -- The panel -----------------------------------------------------------------------------------------


def test_the_log_lists_each_mail_with_its_orders_and_only_the_accounts(
    hub: Integration, sandbox: Sandbox, inbox: Inbox, seller: Client
) -> None:
    configure(hub, notify_new_orders=True)
    package = sandbox.order()
    cycle(hub)
    send_all()
    other = make_account("other@example.com", notification_email="other@example.com")
    theirs = make_integration(other, name="Their integration")
    db.session.add(
        Notification(account_id=other.id, integration_id=theirs.id, kind="new_orders", recipient="x@y.z")
    )
    db.session.commit()

    page = seller.get("/notifications").get_data(as_text=True)
    order = order_for(package)
    assert "Newly Added Orders" in page and "alerts@shop.example" in page and "Sent" in page
    assert f'href="/orders/{order.id}"' in page and order.order_number in page
    assert "x@y.z" not in page and "Their integration" not in page


def test_the_mailbox_shows_the_sinks_mails_to_the_account_only(
    tmp_path: Path, smtp_port: int, hub: Integration, sandbox: Sandbox, inbox: Inbox, seller: Client
) -> None:
    seller.application.config["MAIL_SINK_DIR"] = str(inbox.directory)
    configure(hub, notify_new_orders=True)
    sandbox.order()
    cycle(hub)
    send_all()
    # Mails to the seller's own address that are not the account's notifications: another account's
    # (whose seller put this address in), and one with no notification id at all.
    other = make_account("other@example.com", notification_email="alerts@shop.example")
    theirs = Notification(
        account_id=other.id, integration_id=make_integration(other, name="Theirs").id, kind="new_orders"
    )
    db.session.add(theirs)
    db.session.commit()
    stranger = inbox.directory / "0-00000000.eml"  # the sink's shape: only ownership refuses it
    stranger.write_bytes(
        b"To: alerts@shop.example\r\nSubject: Not yours\r\n"
        + f"Message-ID: <notification-{theirs.id}@orderhub.local>\r\n\r\nhello\r\n".encode()
    )
    (inbox.directory / "0-plain.eml").write_bytes(b"To: alerts@shop.example\r\nSubject: No id\r\n\r\nhi\r\n")

    box = seller.get("/notifications/mailbox").get_data(as_text=True)
    assert f"1 new order on {hub.name}" in box and "Not yours" not in box and "No id" not in box
    name = next(path.stem for path in inbox.directory.glob("*.eml") if not path.stem.startswith("0-"))
    page = seller.get(f"/notifications/mailbox/{name}").get_data(as_text=True)
    assert "http://hub.test/orders/" in page  # the plain-text part
    html = seller.get(f"/notifications/mailbox/{name}/html")
    assert html.status_code == 200 and "default-src 'none'" in html.headers["Content-Security-Policy"]
    assert "sandbox" in html.headers["Content-Security-Policy"]
    assert seller.get("/notifications/mailbox/0-00000000").status_code == 404
    assert seller.get("/notifications/mailbox/..%2Fsecret-keys").status_code == 404


def test_no_mailbox_without_a_sink(seller: Client) -> None:
    assert seller.get("/notifications/mailbox").status_code == 404


def test_notification_pages_need_a_signed_in_seller(client: Client) -> None:
    for path in ("/notifications", "/notifications/mailbox"):
        assert client.get(path).status_code == 302


def test_order_detail_is_the_accounts_own(hub: Integration, sandbox: Sandbox, seller: Client) -> None:
    package = sandbox.order()
    cycle(hub)
    order = order_for(package)
    page = seller.get(f"/orders/{order.id}").get_data(as_text=True)
    assert order.order_number in page and order.customer_name in page
    other = make_account("other@example.com")
    theirs = make_integration(other, name="Theirs")
    foreign = Order(
        account_id=other.id, integration_id=theirs.id, package_id="1", order_number="X1", reference="r"
    )
    db.session.add(foreign)
    db.session.commit()
    assert seller.get(f"/orders/{foreign.id}").status_code == 404


def test_a_subject_stays_on_one_line(hub: Integration, sandbox: Sandbox, inbox: Inbox) -> None:
    hub.name = "Trendyol\r\nBcc: victim@example.com"  # a name written by a crafted request
    configure(hub, notify_new_orders=True)
    sandbox.order()
    cycle(hub)
    send_all()
    [mail] = inbox.mails()
    assert mail["Subject"] == "1 new order on Trendyol Bcc: victim@example.com"
    assert mail["Bcc"] is None


# -- Who gets mails, and how many ------------------------------------------------------------------------


def error_notice(integration: Integration, number: int, reason: str) -> OrderNotice:
    """An order in error with its notice waiting, as a failed action leaves it."""
    order = make_order(integration, number, transfer_state=TransferState.ERROR, error_reason=reason)
    notice = OrderNotice(
        order=order, integration_id=integration.id, kind=NoticeKind.ERROR_ORDERS, key="k", reason=reason
    )
    db.session.add(notice)
    db.session.commit()
    return notice


@pytest.fixture
def errors_on(account: Account) -> Integration:
    integration = make_integration(account)
    integration.settings.notify_error_orders = True
    db.session.commit()
    return integration


def test_a_stranger_gets_no_notification_until_the_address_is_confirmed(
    app: Flask, account: Account, errors_on: Integration, inbox: Inbox, seller: Client
) -> None:
    account.notification_email, account.notification_email_confirmed_at = "stranger@elsewhere.example", None
    db.session.commit()
    error_notice(errors_on, 1, "the shop refused it")
    start = utcnow()
    assert send_all(start) == []
    error_notice(errors_on, 2, "the shop refused it")
    assert send_all(start + timedelta(seconds=10)) == []  # within the window: not even a second log line
    assert inbox.mails() == []
    [notification] = db.session.scalars(sa.select(Notification)).all()
    assert (
        notification.state == MailState.UNCONFIRMED and notification.recipient == "stranger@elsewhere.example"
    )
    assert notification.last_error == "the address is not confirmed"
    page = seller.get("/notifications").get_data(as_text=True)
    assert "Address not confirmed" in page and 'id="unconfirmed-address"' in page

    # The stranger opens the link mailed to the address and confirms: the next mail goes.
    assert seller.post(f"/confirm/{account.confirmation_token()}").status_code == 200
    error_notice(errors_on, 3, "the shop refused it")
    send_all(start + 2 * WINDOW)
    [mail] = inbox.mails()
    assert mail["To"] == "stranger@elsewhere.example" and "10400000003" in text(mail, "plain")


def test_the_daily_cap_holds_mails_back_until_there_is_room(
    app: Flask, account: Account, errors_on: Integration, inbox: Inbox, seller: Client
) -> None:
    app.config["MAIL_DAILY_CAP"] = 2
    start = utcnow()
    for _ in range(2):  # what the account sent today
        db.session.add(
            Notification(
                account_id=account.id,
                integration_id=errors_on.id,
                kind="error_orders",
                state=MailState.SENT,
                claimed_at=start - timedelta(hours=1),
                sent_at=start - timedelta(hours=1),
                created_at=start - timedelta(hours=1),
            )
        )
    db.session.commit()
    error_notice(errors_on, 1, "refused")
    assert send_all(start) == []
    held = db.session.scalars(sa.select(Notification).where(Notification.state == MailState.HELD)).one()
    assert held.order_count == 1 and "daily" in seller.get("/notifications").get_data(as_text=True)
    # More errors meanwhile join the held mail: one mail waits, not one per window.
    error_notice(errors_on, 2, "refused")
    assert send_all(start + 2 * WINDOW) == []
    db.session.refresh(held)
    assert held.order_count == 2 and held.state == MailState.HELD
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 3
    assert inbox.mails() == []

    # A day after the earlier mails there is room: the held mail goes, with everything in it.
    [released] = send_all(start + timedelta(hours=23, minutes=1))
    assert released.id == held.id and released.state == MailState.SENT
    [mail] = inbox.mails()
    assert mail["Subject"] == f"2 orders in error on {errors_on.name}"


def test_a_line_longer_than_smtp_allows_still_reaches_the_server(
    app: Flask, errors_on: Integration, inbox: Inbox, smtp_port: int
) -> None:
    # The server really refuses such a line when it is sent as it is.
    raw = f"From: a@b.c\r\nTo: d@e.f\r\nSubject: raw\r\n\r\n{'x' * 2000}\r\n"
    with smtplib.SMTP("127.0.0.1", smtp_port) as smtp, pytest.raises(smtplib.SMTPDataError) as refused:
        smtp.sendmail("a@b.c", ["d@e.f"], raw)
    assert refused.value.smtp_code == 500

    app.config["MAIL_REASON_LENGTH"] = 10_000
    reason = "Ürün bulunamadı:" + "ZEYTINYAGI-1L," * 200  # one word of 2,800 characters, and Turkish
    error_notice(errors_on, 1, reason)
    send_all()
    [mail] = inbox.mails()
    assert reason in text(mail, "plain") and reason in text(mail, "html")
    notification = db.session.scalars(sa.select(Notification)).one()
    assert notification.state == MailState.SENT


def test_a_mail_quotes_a_reason_up_to_its_bound(app: Flask, errors_on: Integration, inbox: Inbox) -> None:
    assert app.config["MAIL_REASON_LENGTH"] == 300
    reason = "x" * 280 + "-kept-" + "y" * 5000
    error_notice(errors_on, 1, reason)
    send_all()
    [mail] = inbox.mails()
    for body in (text(mail, "plain"), text(mail, "html")):
        assert "x" * 280 + "-kept-" + "y" * 13 + "…" in body and "y" * 14 not in body


@dataclass
class Answering:
    """A real SMTP server (aiosmtpd) that answers every mail's DATA with `answer`."""

    answer: str

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return self.answer


def test_a_5xx_answer_to_the_mail_is_final(
    app: Flask, errors_on: Integration, smtp_port: int, seller: Client
) -> None:
    controller = Controller(
        Answering("554 5.7.1 Message refused as spam"), hostname="127.0.0.1", port=smtp_port
    )
    controller.start()
    try:
        error_notice(errors_on, 1, "refused")
        [notification] = notifications.gather(utcnow())
        assert notifications.send(notification.id) is None  # no retry
    finally:
        controller.stop()
    db.session.expire_all()
    assert notification.state == MailState.FAILED and notification.attempts == 1
    assert notification.last_error == "the mail server refused the mail: 554 5.7.1 Message refused as spam"
    assert notifications.stale_and_due(utcnow() + timedelta(days=1)) == []  # the sweeper leaves it
    page = seller.get("/notifications").get_data(as_text=True)
    assert "Failed" in page and "554 5.7.1 Message refused as spam" in page


def test_a_4xx_answer_is_tried_again(app: Flask, errors_on: Integration, smtp_port: int) -> None:
    controller = Controller(Answering("451 4.3.0 Try again later"), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        error_notice(errors_on, 1, "refused")
        [notification] = notifications.gather(utcnow())
        retry_at = notifications.send(notification.id)
    finally:
        controller.stop()
    db.session.expire_all()
    assert retry_at is not None and notification.state == MailState.PENDING
    assert "451" in (notification.last_error or "")
