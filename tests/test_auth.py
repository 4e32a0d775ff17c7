"""Sign up, sign in, sign out, the login rate limit and User Settings."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from config import _database_url
from extensions import db
from models import Account, Integration
from models.base import utcnow
from tests.conftest import PASSWORD, Client, make_account, make_integration, running_app


def test_sign_up_hashes_the_password_and_signs_in(client: Client) -> None:
    response = client.post(
        "/signup",
        data={
            "email": " New@Example.com ",
            "password": "s3cret-pass",
            "confirm": "s3cret-pass",
            "language": "tr",
        },
    )
    assert response.status_code == 302
    account = db.session.scalar(sa.select(Account))
    assert account is not None
    assert account.email == "new@example.com"
    assert account.language == "tr"
    assert "s3cret-pass" not in account.password_hash
    assert client.get("/integrations").status_code == 200


def test_sign_up_refuses_bad_input_and_creates_nothing(client: Client, account: Account) -> None:
    cases = [
        (
            {"email": "not-an-email", "password": "longenough", "confirm": "longenough"},
            "Invalid email address",
        ),
        ({"email": "x@example.com", "password": "short", "confirm": "short"}, "Use at least 8 characters."),
        (
            {"email": "x@example.com", "password": "longenough", "confirm": "different"},
            "The passwords do not match.",
        ),
        ({"email": account.email, "password": "longenough", "confirm": "longenough"}, "already exists"),
    ]
    for data, message in cases:
        response = client.post("/signup", data={**data, "language": "en"})
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 1


def test_wrong_password_gets_a_clear_message(client: Client, account: Account) -> None:
    response = client.login(account.email, "wrong password")
    assert response.status_code == 422
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert client.get("/integrations").status_code == 302


def test_unknown_email_gets_the_same_message(client: Client) -> None:
    response = client.login("nobody@example.com")
    assert response.status_code == 422
    assert "Wrong email or password." in response.get_data(as_text=True)


def test_login_is_rate_limited(client: Client, account: Account) -> None:
    for _ in range(10):
        assert client.login(account.email, "wrong password").status_code == 422
    response = client.login(account.email)  # even the right password waits now
    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.get_data(as_text=True)


def test_guesses_at_one_account_count_together_across_addresses(client: Client, account: Account) -> None:
    for attempt in range(10):
        environ = {"REMOTE_ADDR": f"10.0.0.{attempt}"}
        data = {"email": account.email.upper(), "password": "wrong"}
        assert client.post("/login", data=data, environ_base=environ).status_code == 422
    response = client.post(
        "/login",
        data={"email": account.email, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.1.1"},
    )
    assert response.status_code == 429
    # Another account from a fresh address is not held up.
    other = make_account("other@example.com")
    response = client.post(
        "/login", data={"email": other.email, "password": PASSWORD}, environ_base={"REMOTE_ADDR": "10.0.2.1"}
    )
    assert response.status_code == 302


def test_behind_a_proxy_the_limit_counts_the_real_client() -> None:
    with running_app(PROXY_FIX_HOPS=1) as app:
        client: Client = app.test_client()  # type: ignore[assignment]

        def attempt(client_address: str) -> int:
            headers = {"X-Forwarded-For": client_address}
            data = {"email": f"guess{uuid.uuid4().hex}@example.com", "password": "wrong"}
            return client.post("/login", data=data, headers=headers).status_code

        for _ in range(10):
            assert attempt("203.0.113.7") == 422
        assert attempt("203.0.113.7") == 429
        assert attempt("198.51.100.2") == 422


def test_login_follows_next_only_within_the_site(client: Client, account: Account) -> None:
    client.application.config["LOGIN_RATE_LIMIT"] = "100 per minute"  # many sign-ins in a row here
    for target in ("/settings", "/orders?status=Created&integration=1", "/orders/7"):
        response = client.post(
            "/login", query_string={"next": target}, data={"email": account.email, "password": PASSWORD}
        )
        assert response.headers["Location"] == target
        client.post("/logout")
    # What a browser reads as another site: it drops tabs and newlines, reads a backslash as a slash.
    off_site = [
        "https://evil.example/",
        "//evil.example/",
        "///evil.example/",
        "////evil.example/",
        "/\\evil.example",
        "\\/evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "\t//evil.example",
        " //evil.example",
        "https:evil.example",
        "https:/evil.example",
        "javascript:alert(1)",
        "evil.example",
    ]
    for target in off_site:
        response = client.post(
            "/login", query_string={"next": target}, data={"email": account.email, "password": PASSWORD}
        )
        assert response.headers["Location"] == "/", repr(target)
        client.post("/logout")
    # Escapes in the raw query string, decoded once by the server.
    for raw in ("%2F%2Fevil.example", "%2F%5Cevil.example", "/%09/evil.example", "%5C%5Cevil.example"):
        response = client.post(f"/login?next={raw}", data={"email": account.email, "password": PASSWORD})
        assert response.headers["Location"] == "/", raw
        client.post("/logout")


def test_sign_up_is_rate_limited_per_client_address(client: Client) -> None:
    def sign_up(number: int, address: str) -> int:
        data = {"email": f"new{number}@example.com", "password": "longenough", "confirm": "longenough"}
        status = client.post("/signup", data=data, environ_base={"REMOTE_ADDR": address}).status_code
        client.post("/logout")
        return status

    assert [sign_up(number, "203.0.113.9") for number in range(5)] == [302] * 5
    response = client.post(
        "/signup",
        data={"email": "new9@example.com", "password": "longenough", "confirm": "longenough"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert response.status_code == 429 and "Too many sign-ups" in response.get_data(as_text=True)
    assert sign_up(10, "198.51.100.4") == 302  # another address is not held up
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 6


def test_a_parallel_sign_up_of_the_same_address_is_answered_with_the_form(tmp_path: Path) -> None:
    """Two requests pass the "no such account" check at once; the second one's insert meets the first's
    committed row. It gets the form and its message, not a 500."""
    database = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'race.sqlite3'}"
    with running_app(SQLALCHEMY_DATABASE_URI=_database_url(database)) as app:
        client: Client = app.test_client()  # type: ignore[assignment]

        def the_other_request_commits_first(session: Session, *_: object) -> None:
            if any(isinstance(row, Account) for row in session.new):
                # Another connection, another transaction: the parallel request's sign-up.
                with db.engine.connect() as other:
                    other.execute(
                        sa.insert(Account).values(
                            email="twin@example.com", password_hash="x", language="en", created_at=utcnow()
                        )
                    )
                    other.commit()

        sa.event.listen(Session, "before_flush", the_other_request_commits_first, once=True)
        try:
            response = client.post(
                "/signup",
                data={"email": "twin@example.com", "password": "longenough", "confirm": "longenough"},
            )
        finally:
            sa.event.remove(Session, "before_flush", the_other_request_commits_first)
        assert response.status_code == 422
        assert "An account with this email already exists" in response.get_data(as_text=True)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 1
        assert client.get("/integrations").status_code == 302  # nobody signed in


def test_sign_out(seller: Client) -> None:
    assert seller.post("/logout").status_code == 302
    assert seller.get("/integrations").headers["Location"].startswith("/login")


def test_sign_out_needs_the_csrf_token(seller: Client) -> None:
    assert seller.post("/logout", csrf=False).status_code == 400
    assert seller.get("/integrations").status_code == 200


def test_user_settings_save_email_and_language(seller: Client, account: Account) -> None:
    response = seller.post("/settings", data={"notification_email": "orders@example.com", "language": "tr"})
    assert response.status_code == 302
    db.session.refresh(account)
    assert (account.notification_email, account.language) == ("orders@example.com", "tr")
    assert "Kullanıcı Ayarları" in seller.get("/settings").get_data(as_text=True)


def test_user_settings_refuse_an_invalid_email(seller: Client, account: Account) -> None:
    response = seller.post("/settings", data={"notification_email": "orders@", "language": "en"})
    assert response.status_code == 422
    assert "Invalid email address" in response.get_data(as_text=True)
    db.session.refresh(account)
    assert account.notification_email is None


def test_user_settings_refuse_an_unknown_language(seller: Client, account: Account) -> None:
    response = seller.post("/settings", data={"notification_email": "", "language": "xx"})
    assert response.status_code == 422
    db.session.refresh(account)
    assert account.language == "en"


def test_removing_the_notification_email_switches_notifications_off(seller: Client, account: Account) -> None:
    account.notification_email = "orders@example.com"
    integration = make_integration(account)
    integration.settings.notify_error_orders = True
    db.session.commit()
    response = seller.post(
        "/settings", data={"notification_email": "", "language": "en"}, follow_redirects=True
    )
    assert "Order notifications are switched off" in response.get_data(as_text=True)
    db.session.expire_all()
    refreshed = db.session.get(Integration, integration.id)
    assert refreshed is not None
    assert refreshed.settings.notify_error_orders is False
    assert refreshed.latest_changes(1)[0].field == "notify_error_orders"


def test_every_page_needs_login(client: Client, integration: Integration) -> None:
    pages = [
        "/",
        "/settings",
        "/integrations",
        "/integrations/new",
        f"/integrations/{integration.id}/edit",
        f"/integrations/{integration.id}/general",
        f"/integrations/{integration.id}/delete",
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 302, page
        assert response.headers["Location"].startswith("/login"), page
    posts = [
        f"/integrations/{integration.id}/general",
        f"/integrations/{integration.id}/general/activation",
        f"/integrations/{integration.id}/active",
        f"/integrations/{integration.id}/delete",
        "/settings",
    ]
    for page in posts:
        response = client.post(page, data={})
        assert response.status_code == 302, page
        assert response.headers["Location"].startswith("/login"), page
    assert db.session.get(Integration, integration.id) is not None
