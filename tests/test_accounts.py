"""Sign-ins that end on the server, passwords (change and reset by mail), the notification address's
confirmation. Account mails go through RQ (a real Redis and worker) to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from redis import Redis
from rq import Queue, SimpleWorker

from extensions import db
from jobs import ACTIONS, redis_connection
from mailsink import serve
from models import Account, LoginSession
from models.account import CONFIRMATION_SALT, RESET_SALT
from models.base import utcnow
from tests.conftest import PASSWORD, Client, make_account, make_integration, make_order, running_app
from tests.pipeline import free_port

NEW_PASSWORD = "a brand new one"


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def app(redis_url: str, smtp_port: int) -> Iterator[Flask]:
    Redis.from_url(redis_url).flushdb()
    with running_app(REDIS_URL=redis_url, MAIL_PORT=smtp_port) as app:
        yield app


@pytest.fixture
def mailbox(tmp_path: Path, smtp_port: int) -> Iterator[Path]:
    controller: Controller = serve(tmp_path / "mail", smtp_port)
    yield tmp_path / "mail"
    controller.stop()


def other_client(app: Flask) -> Client:
    return app.test_client()  # type: ignore[return-value]


def run_jobs() -> None:
    """What a worker does: every queued job, in this process. Each job ends its database session, so
    the test's objects are detached afterwards: read them again (`again`)."""
    connection = redis_connection()
    SimpleWorker([Queue(ACTIONS, connection=connection)], connection=connection).work(burst=True)


def again(account: Account) -> Account:
    return db.session.get_one(Account, sa.inspect(account).identity[0])


def mails(directory: Path) -> list[EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(directory.glob("*.eml"))
    ]


def plain(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def link_in(message: EmailMessage) -> str:
    match = re.search(r"http://hub\.test(/\S+)", plain(message))
    assert match, plain(message)
    return match.group(1)


def signed_in(client: Client) -> bool:
    return client.get("/integrations").status_code == 200


# -- Sign-ins -------------------------------------------------------------------------------------------


def test_a_session_cookie_copied_before_sign_out_is_refused_after_it(
    app: Flask, seller: Client, account: Account
) -> None:
    thief = other_client(app)
    cookie = seller.get_cookie("session")
    assert cookie is not None
    thief.set_cookie("session", cookie.value)
    assert signed_in(thief)  # the copy works while the sign-in lives

    assert seller.post("/logout").status_code == 302
    assert not signed_in(thief)
    assert not signed_in(seller)
    row = db.session.scalars(sa.select(LoginSession)).one()
    assert row.revoked_at is not None


def test_a_remember_cookie_copied_before_sign_out_is_refused_after_it(
    app: Flask, client: Client, account: Account
) -> None:
    client.post("/login", data={"email": account.email, "password": PASSWORD, "remember": "y"})
    remember = client.get_cookie("remember_token")
    assert remember is not None
    thief = other_client(app)
    thief.set_cookie("remember_token", remember.value)
    assert signed_in(thief)  # a fresh browser, signed in by the remember cookie alone

    client.post("/logout")
    thief = other_client(app)
    thief.set_cookie("remember_token", remember.value)
    assert not signed_in(thief)


def test_the_remember_cookie_is_short_lived_same_site_and_http_only(client: Client, account: Account) -> None:
    response = client.post("/login", data={"email": account.email, "password": PASSWORD, "remember": "y"})
    [header] = [
        value for value in response.headers.getlist("Set-Cookie") if value.startswith("remember_token=")
    ]
    assert "SameSite=Lax" in header and "HttpOnly" in header
    cookie = client.get_cookie("remember_token")
    assert cookie is not None and cookie.expires is not None
    lasts = cookie.expires - utcnow()
    assert timedelta(days=13, hours=23) < lasts <= timedelta(days=14)


def test_a_sign_in_ends_on_the_server_when_its_time_is_up(seller: Client) -> None:
    row = db.session.scalars(sa.select(LoginSession)).one()
    assert signed_in(seller)
    row.created_at = utcnow() - timedelta(days=14, minutes=1)
    db.session.commit()
    assert not signed_in(seller)


def test_a_cookie_of_the_account_alone_signs_nobody_in(client: Client, account: Account) -> None:
    """The cookies of before sign-ins were kept named the account only: they count for nothing now."""
    with client.session_transaction() as session:
        session["_user_id"] = str(account.id)
        session["_fresh"] = True
    assert not signed_in(client)


def test_the_database_keeps_a_hash_of_the_sign_in_never_the_token(seller: Client, account: Account) -> None:
    with seller.session_transaction() as session:
        account_id, _, token = session["_user_id"].partition(":")
    assert account_id == str(account.id) and len(token) >= 40
    row = db.session.scalars(sa.select(LoginSession)).one()
    assert row.id == LoginSession.digest(token) != token
    assert row.user_agent.startswith("Werkzeug")


def test_sign_out_everywhere_ends_every_sign_in(app: Flask, seller: Client, account: Account) -> None:
    laptop = other_client(app)
    assert laptop.login(account.email).status_code == 302
    page = seller.get("/settings").get_data(as_text=True)
    assert "Sign out everywhere" in page and page.count("Werkzeug") == 2 and "this browser" in page

    response = seller.post("/settings/sessions/end", follow_redirects=True)
    assert "You are signed out everywhere" in response.get_data(as_text=True)
    assert not signed_in(seller) and not signed_in(laptop)
    assert all(row.revoked_at for row in db.session.scalars(sa.select(LoginSession)))
    assert seller.login(account.email).status_code == 302  # the password still works


def test_sign_out_everywhere_needs_the_csrf_token(app: Flask, seller: Client) -> None:
    assert seller.post("/settings/sessions/end", csrf=False).status_code == 400
    assert signed_in(seller)


def test_a_revoked_sign_in_gets_no_more_than_204_from_the_orders_poll(
    app: Flask, seller: Client, account: Account
) -> None:
    integration = make_integration(account)
    make_order(integration, 1)
    page = seller.get("/orders").get_data(as_text=True)
    version = re.search(r'id="live-version" name="v" value="(\d+)"', page)
    assert version
    thief = other_client(app)
    cookie = seller.get_cookie("session")
    assert cookie is not None
    thief.set_cookie("session", cookie.value)
    seller.post("/logout")

    poll = f"/orders/changes?v={version.group(1)}"
    assert thief.get(poll).status_code == 204  # "nothing changed", from Redis alone: tells nothing
    make_order(integration, 2)
    response = thief.get(poll, headers={"HX-Request": "true"})
    assert response.status_code == 401 and "HX-Redirect" in response.headers
    assert "Customer 2" not in response.get_data(as_text=True)


# -- Password change ------------------------------------------------------------------------------------


def test_changing_the_password_needs_the_current_one_and_ends_the_other_sign_ins(
    app: Flask, seller: Client, account: Account
) -> None:
    laptop = other_client(app)
    laptop.login(account.email)
    data = {"current_password": "not it", "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD}
    response = seller.post("/settings/password", data=data)
    assert response.status_code == 422
    assert "This is not your current password." in response.get_data(as_text=True)
    db.session.refresh(account)
    assert account.check_password(PASSWORD)
    assert signed_in(laptop)

    response = seller.post("/settings/password", data={**data, "current_password": PASSWORD})
    assert response.status_code == 302
    db.session.refresh(account)
    assert account.check_password(NEW_PASSWORD)
    assert signed_in(seller)  # this browser stays signed in
    assert not signed_in(laptop)  # every other one ends


def test_a_new_password_must_be_long_enough_and_repeated(seller: Client, account: Account) -> None:
    for new, repeat, message in (
        ("short", "short", "Use at least 8 characters."),
        (NEW_PASSWORD, "x", "match"),
    ):
        response = seller.post(
            "/settings/password",
            data={"current_password": PASSWORD, "new_password": new, "repeat_password": repeat},
        )
        assert response.status_code == 422 and message in response.get_data(as_text=True)
    db.session.refresh(account)
    assert account.check_password(PASSWORD)


def test_password_changes_are_rate_limited_per_account(app: Flask, seller: Client, account: Account) -> None:
    laptop = other_client(app)
    laptop.login(account.email)
    wrong = {"current_password": "guess", "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD}
    for _ in range(5):
        assert seller.post("/settings/password", data=wrong).status_code == 422
    # A second sign-in of the same account gets no more guesses, even with the right password.
    response = laptop.post("/settings/password", data={**wrong, "current_password": PASSWORD})
    assert response.status_code == 429
    assert "Too many attempts to change the password" in response.get_data(as_text=True)
    db.session.refresh(account)
    assert account.check_password(PASSWORD)


def test_password_change_needs_a_signed_in_seller(client: Client) -> None:
    response = client.post("/settings/password", data={"current_password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


# -- Password reset by mail -------------------------------------------------------------------------------


def test_a_reset_link_comes_by_mail_and_works_once(
    app: Flask, client: Client, account: Account, mailbox: Path
) -> None:
    phone = other_client(app)
    phone.login(account.email)
    response = client.post("/password/reset", data={"email": account.email.upper()}, follow_redirects=True)
    assert "a link to choose a new password is on its way" in response.get_data(as_text=True)
    run_jobs()
    account = again(account)
    [message] = mails(mailbox)
    assert message["To"] == account.email
    assert message["Subject"] == "Reset your Order Hub password"
    link = link_in(message)
    assert link.startswith("/password/reset/")

    assert client.get(link).status_code == 200
    response = client.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    db.session.refresh(account)
    assert account.check_password(NEW_PASSWORD)
    assert not signed_in(phone)  # whoever had the old password signed in is out

    # Used once: the link is worthless now, even with the right new password.
    response = client.post(link, data={"password": "third password", "confirm": "third password"})
    assert response.status_code == 302 and response.headers["Location"] == "/password/reset"
    db.session.refresh(account)
    assert account.check_password(NEW_PASSWORD)
    assert client.login(account.email, NEW_PASSWORD).status_code == 302


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client: Client, mailbox: Path) -> None:
    response = client.post("/password/reset", data={"email": "nobody@example.com"}, follow_redirects=True)
    assert "If an account uses nobody@example.com" in response.get_data(as_text=True)
    run_jobs()
    assert mails(mailbox) == []


def test_a_reset_link_expires(app: Flask, client: Client, account: Account) -> None:
    class AnHourAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - app.config["PASSWORD_RESET_MAX_AGE"] - 1

    payload = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=RESET_SALT).loads(account.reset_token())
    stale = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=RESET_SALT, signer=AnHourAgo).dumps(payload)
    assert Account.from_reset_token(account.reset_token()) == account  # a fresh one works
    response = client.get(f"/password/reset/{stale}", follow_redirects=True)
    assert "This link does not work any more" in response.get_data(as_text=True)
    response = client.post(
        f"/password/reset/{stale}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert response.headers["Location"] == "/password/reset"
    db.session.refresh(account)
    assert account.check_password(PASSWORD)


def test_a_reset_link_is_bound_to_its_account(app: Flask, client: Client, account: Account) -> None:
    other = make_account("other@example.com")
    payload = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=RESET_SALT).loads(account.reset_token())
    # Even signed with the right key, the account's id with another account's password fingerprint fails.
    swapped = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=RESET_SALT).dumps(
        {**payload, "account": other.id}
    )
    forged = URLSafeTimedSerializer("another key", salt=RESET_SALT).dumps(payload)
    confirmation = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=CONFIRMATION_SALT).dumps(payload)
    for token in (swapped, forged, confirmation, account.reset_token()[:-2] + "xx", "garbage"):
        response = client.post(
            f"/password/reset/{token}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        )
        assert response.headers["Location"] == "/password/reset", token
    for someone in (account, other):
        db.session.refresh(someone)
        assert someone.check_password(PASSWORD)


def test_reset_requests_are_rate_limited(client: Client, account: Account) -> None:
    for attempt in range(5):
        environ = {"REMOTE_ADDR": f"10.0.0.{attempt}"}
        assert (
            client.post("/password/reset", data={"email": account.email}, environ_base=environ).status_code
            == 302
        )
    # Per account, from however many addresses: its owner's mailbox is not flooded.
    response = client.post(
        "/password/reset", data={"email": account.email}, environ_base={"REMOTE_ADDR": "10.0.1.1"}
    )
    assert response.status_code == 429 and "Too many password reset requests" in response.get_data(
        as_text=True
    )
    # And per client address, whatever accounts it names.
    for attempt in range(5):
        data = {"email": f"someone{attempt}@example.com"}
        assert (
            client.post("/password/reset", data=data, environ_base={"REMOTE_ADDR": "10.0.2.1"}).status_code
            == 302
        )
    response = client.post(
        "/password/reset", data={"email": "x@example.com"}, environ_base={"REMOTE_ADDR": "10.0.2.1"}
    )
    assert response.status_code == 429


# -- The notification address's confirmation ---------------------------------------------------------------


def test_a_new_address_is_confirmed_by_the_link_mailed_to_it(
    app: Flask, seller: Client, account: Account, mailbox: Path
) -> None:
    response = seller.post(
        "/settings",
        data={"notification_email": "Stranger@Elsewhere.example", "language": "en"},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "We sent a confirmation link to Stranger@Elsewhere.example" in page
    assert "Not confirmed" in page and "Send the confirmation again" in page
    run_jobs()
    account = again(account)
    [message] = mails(mailbox)
    assert message["To"] == "Stranger@Elsewhere.example"
    assert message["Subject"] == "Confirm your address for Order Hub notifications"
    assert account.email not in message.as_string()  # fixed text and the link: nothing the seller wrote
    link = link_in(message)

    # Opening the link (a mail scanner does) confirms nothing; the button does.
    stranger = other_client(app)
    page = stranger.get(link).get_data(as_text=True)
    assert "Confirm this address" in page
    db.session.refresh(account)
    assert not account.notification_email_confirmed
    response = stranger.post(link)
    assert response.status_code == 200 and "is confirmed" in response.get_data(as_text=True)
    db.session.refresh(account)
    assert account.notification_email_confirmed
    assert "is confirmed: order notifications go there" in seller.get("/settings").get_data(as_text=True)


def test_the_confirmation_link_is_bound_to_the_address(
    app: Flask, seller: Client, account: Account, mailbox: Path
) -> None:
    seller.post("/settings", data={"notification_email": "first@example.com", "language": "en"})
    run_jobs()
    account = again(account)
    [first] = mails(mailbox)
    seller.post("/settings", data={"notification_email": "second@example.com", "language": "en"})
    response = seller.post(link_in(first))
    assert response.status_code == 404 and "does not work any more" in response.get_data(as_text=True)
    db.session.refresh(account)
    assert not account.notification_email_confirmed

    payload = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=CONFIRMATION_SALT).loads(
        account.confirmation_token()
    )
    for token in (
        URLSafeTimedSerializer("another key", salt=CONFIRMATION_SALT).dumps(payload),
        URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=RESET_SALT).dumps(payload),
    ):
        assert seller.post(f"/confirm/{token}").status_code == 404
    assert seller.post(f"/confirm/{account.confirmation_token()}").status_code == 200
    db.session.refresh(account)
    assert account.notification_email_confirmed


def test_a_changed_address_must_be_confirmed_again(seller: Client, account: Account, mailbox: Path) -> None:
    account.notification_email, account.notification_email_confirmed_at = "orders@example.com", utcnow()
    db.session.commit()
    seller.post("/settings", data={"notification_email": "orders@example.com", "language": "tr"})
    db.session.refresh(account)
    assert account.notification_email_confirmed  # the same address, another language: still confirmed
    run_jobs()
    account = again(account)
    assert mails(mailbox) == []
    seller.post("/settings", data={"notification_email": "new@example.com", "language": "en"})
    db.session.refresh(account)
    assert account.notification_email == "new@example.com" and not account.notification_email_confirmed


def test_confirmation_mails_are_rate_limited(
    app: Flask, seller: Client, account: Account, mailbox: Path
) -> None:
    seller.post("/settings", data={"notification_email": "one@example.com", "language": "en"})
    assert seller.post("/settings/confirmation").status_code == 302
    run_jobs()  # the first mail went; the second is the same mail again
    account = again(account)
    assert seller.post("/settings/confirmation").status_code == 302
    response = seller.post("/settings/confirmation")
    assert response.status_code == 429 and "Too many confirmation mails" in response.get_data(as_text=True)
    # A new address would mail again: held to the same limit.
    response = seller.post("/settings", data={"notification_email": "two@example.com", "language": "en"})
    assert response.status_code == 429
    db.session.refresh(account)
    assert account.notification_email == "one@example.com"
    # Saving without a new address mails nothing, and is not held up.
    assert (
        seller.post("/settings", data={"notification_email": "one@example.com", "language": "tr"}).status_code
        == 302
    )
    run_jobs()
    assert len(mails(mailbox)) == 2


def test_confirmation_mails_to_one_address_count_across_accounts(app: Flask, mailbox: Path) -> None:
    def account_naming(number: int, address: str) -> int:
        seller = other_client(app)
        make_account(f"seller{number}@example.com")
        seller.login(f"seller{number}@example.com")
        return seller.post("/settings", data={"notification_email": address, "language": "en"}).status_code

    assert [account_naming(number, "victim@example.com") for number in range(4)] == [302, 302, 302, 429]
    assert account_naming(9, "someone-else@example.com") == 302


def test_the_confirmation_pages_need_no_sign_in_but_settings_do(client: Client) -> None:
    assert client.get("/confirm/garbage").status_code == 404
    assert client.post("/settings/confirmation").status_code == 302
    assert client.post("/settings/sessions/end").status_code == 302
