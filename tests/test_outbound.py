"""The door out: addresses the hub must not call, answers it must not trust, errors it must not repeat."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.wrappers import Request, Response

from connectors.base import Blocked, InvalidAnswer, Permanent, RateLimited, Retryable
from connectors.http import Guard, Outbound, check_base_url, shared_client
from connectors.registry import Side
from extensions import db
from models import Account, Integration
from models.base import utcnow
from sync import pull
from tests.conftest import Client, make_integration
from tests.fake_platform import FakePlatform, serve_fake
from tests.test_integrations import NEW

# Production's guard: https only, nothing allowlisted.
STRICT = Guard(https_only=True)
LOCAL = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), timeout=5)

INTERNAL = [
    "https://127.0.0.1/",
    "https://[::1]/",
    "https://2130706433/",
    "https://0x7f.1/",
    "https://017700000001/",
    "https://10.1.2.3/api",
    "https://192.168.1.1/",
    "https://172.16.0.5/",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::ffff:169.254.169.254]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://100.64.0.1/",
    "https://0.0.0.0/",
    "https://localhost:8080/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://printer.local/",
    "https://[fec0::1]/",
]


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(Blocked) as refused:
        check_base_url(url, STRICT)
    assert refused.value.reason == "private"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://shop.example.com", "https"),
        ("ftp://shop.example.com", "scheme"),
        ("https://user:pass@shop.example.com", "userinfo"),
        ("https://shop.example.com@127.0.0.1/", "userinfo"),
        ("https://shop.example.com/?", "query"),
        ("https://shop.example.com/#", "query"),
        ("https://shop.example.com/x?path=/admin", "query"),
        ("https://shop.example.com/ x", "syntax"),
        ("https://shop.example.com:99999/", "syntax"),
        ("https:///nohost", "scheme"),
    ],
)
def test_base_urls_are_plain_https_addresses(url: str, reason: str) -> None:
    with pytest.raises(Blocked) as refused:
        check_base_url(url, STRICT)
    assert refused.value.reason == reason


def test_a_host_that_resolves_inside_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS is outside the machine: the test plays it. Every address must be public, not just one."""
    answers = {"inside.example.com": ["10.0.0.7"], "mixed.example.com": ["93.184.216.34", "127.0.0.1"]}

    def resolver(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    for host in answers:
        with pytest.raises(Blocked, match="not a public"):
            check_base_url(f"https://{host}/", STRICT)


def test_a_host_that_does_not_resolve_yet_may_be_saved() -> None:
    check_base_url("https://shop.example.invalid/", STRICT)  # the connection checks it again


def test_trendyol_is_pinned_to_its_own_hosts() -> None:
    pinned = ("apigw.trendyol.com", "stageapigw.trendyol.com")
    check_base_url("https://apigw.trendyol.com/integration", STRICT, pinned=pinned)
    with pytest.raises(Blocked) as refused:
        check_base_url("https://apigw.trendyol.com.evil.example/integration", STRICT, pinned=pinned)
    assert refused.value.reason == "pinned"


def test_the_allowlist_lets_the_sandbox_through_and_nothing_else() -> None:
    guard = Guard(https_only=True, allowlist=frozenset({"127.0.0.1:5050"}))
    check_base_url("http://127.0.0.1:5050/trendyol/integration", guard)
    with pytest.raises(Blocked):
        check_base_url("http://127.0.0.1:5051/", guard)


@pytest.mark.parametrize("url", [*INTERNAL[:6], "https://shop.example.com/#", "http://shop.example.com"])
def test_the_form_refuses_them_and_saves_nothing(app: Flask, seller: Client, url: str) -> None:
    app.config.update(OUTBOUND_ALLOWLIST="", OUTBOUND_HTTPS_ONLY=True)
    response = seller.post("/integrations/new", data={**NEW, "shop_base_url": url})
    assert response.status_code == 422
    assert db.session.scalar(sa.select(sa.func.count(Integration.id))) == 0


def test_the_form_names_the_problem_in_plain_words(app: Flask, seller: Client) -> None:
    app.config.update(OUTBOUND_ALLOWLIST="", OUTBOUND_HTTPS_ONLY=True)
    cases = {
        "https://169.254.169.254/": "not on the public internet",
        "https://shop.example.com/?": "Leave “?” and “#” parts out",
        "https://a:b@shop.example.com/": "Leave the user name and password out",
        "http://shop.example.com/": "HTTPS only",
    }
    for url, message in cases.items():
        page = seller.post("/integrations/new", data={**NEW, "shop_base_url": url}).get_data(as_text=True)
        assert message in page, url
    page = seller.post(
        "/integrations/new", data={**NEW, "marketplace_base_url": "https://trendyol.evil.example/"}
    ).get_data(as_text=True)
    assert "apigw.trendyol.com" in page


def test_credentials_travel_in_headers_so_they_are_printable_ascii(seller: Client) -> None:
    for change in ({"marketplace_seller_id": "１２３"}, {"marketplace_api_key": "kéy"}):
        assert seller.post("/integrations/new", data={**NEW, **change}).status_code == 422
    assert db.session.scalar(sa.select(sa.func.count(Integration.id))) == 0


# -- At connect time ------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakePlatform]:
    with serve_fake(lambda request: Response('{"content": [], "totalPages": 1}')) as fake:
        yield fake


def stored(account: Account, marketplace_url: str) -> Integration:
    """An integration whose address was saved before the guard existed (or written around the form)."""
    integration = make_integration(account, marketplace_base_url=marketplace_url)
    integration.set_credentials(
        Side.MARKETPLACE,
        {"seller_id": "100200", "api_key": "k", "api_secret": "s"},
    )
    db.session.commit()
    return integration


def test_a_stored_internal_address_is_never_called(app: Flask, account: Account, fake: FakePlatform) -> None:
    app.config.update(OUTBOUND_ALLOWLIST="")
    integration = stored(account, f"{fake.url}/integration")
    outcome = pull.sync_integration(integration.id)
    db.session.expire_all()
    assert fake.requests == []
    assert integration.last_pull_error_category == "blocked"
    assert outcome.error and "127.0.0.1" not in outcome.error
    assert integration.next_pull_at is not None and integration.next_pull_at > utcnow() + timedelta(
        seconds=60
    )


def test_the_connection_goes_to_the_vetted_address(
    monkeypatch: pytest.MonkeyPatch, fake: FakePlatform
) -> None:
    """DNS rebinding: the name resolves to an inside address when the socket opens; nothing is sent."""
    port = int(fake.url.rsplit(":", 1)[1])
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *args, **kwargs: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))],
    )
    outbound = Outbound(Guard(https_only=False), platform="Trendyol")
    with pytest.raises(Blocked):
        outbound.request("GET", f"http://rebind.example.com:{port}/orders")
    assert fake.requests == []


def test_a_name_that_does_not_resolve_now_is_a_connection_to_try_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS down for a minute is no reason to put every order in error."""

    def no_answer(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_answer)
    with pytest.raises(Retryable) as failed:
        Outbound(Guard(https_only=False), platform="Shop").request("GET", "http://shop.example.com/x")
    assert not isinstance(failed.value, Permanent)


def test_a_body_that_cannot_be_decoded_is_an_unreadable_answer(fake: FakePlatform) -> None:
    fake.answer = lambda request: Response(b"not gzip at all", headers={"Content-Encoding": "gzip"})
    with pytest.raises(InvalidAnswer, match="cannot be decoded"):
        Outbound(LOCAL, platform="Shop").request("GET", f"{fake.url}/orders")


def test_redirects_are_not_followed(fake: FakePlatform) -> None:
    fake.answer = lambda request: Response("", 302, {"Location": "http://169.254.169.254/latest/"})
    with pytest.raises(Permanent, match="redirects are not followed"):
        Outbound(LOCAL, platform="Trendyol").request("GET", f"{fake.url}/orders")
    assert len(fake.requests) == 1


def test_an_answer_over_the_byte_cap_is_not_read(fake: FakePlatform) -> None:
    chunk = b"x" * 65536

    def endless(request: Request) -> Response:  # no Content-Length: the cap counts while reading
        return Response((chunk for _ in range(10_000)), mimetype="application/json")

    fake.answer = endless
    guard = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), max_bytes=1024 * 1024)
    with pytest.raises(InvalidAnswer, match="more than 1 MB"):
        Outbound(guard, platform="Trendyol").request("GET", f"{fake.url}/orders")
    fake.answer = lambda request: Response(b"x" * (2 * 1024 * 1024))
    with pytest.raises(InvalidAnswer, match="more than 1 MB"):
        Outbound(guard, platform="Trendyol").request("GET", f"{fake.url}/orders")


def test_a_remote_body_is_never_shown_and_errors_do_not_scan_ports(fake: FakePlatform) -> None:
    secret_page = "<html>" + "internal admin page " * 500 + "</html>"
    fake.answer = lambda request: Response(secret_page, 400, mimetype="text/html")
    with pytest.raises(Permanent) as refused:
        Outbound(LOCAL, platform="WooCommerce").request("GET", f"{fake.url}/orders")
    assert str(refused.value) == "WooCommerce answered 400"
    fake.answer = lambda request: Response('{"code": "x", "message": "' + "y" * 5000 + '"}', 403)
    with pytest.raises(Permanent) as refused:
        Outbound(LOCAL, platform="WooCommerce").request("GET", f"{fake.url}/orders")
    assert len(str(refused.value)) < 160 and refused.value.category == "auth"


def test_refused_dropped_and_silent_connections_read_the_same() -> None:
    """Otherwise the error texts work as a port scanner."""
    with socket.socket() as closed, socket.socket() as dropping, socket.socket() as silent:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: the connection is refused
        dropping.bind(("127.0.0.1", 0))
        dropping.listen()
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        hang_up = threading.Thread(target=lambda: dropping.accept()[0].close(), daemon=True)
        hang_up.start()
        messages = set()
        guard = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), timeout=0.5)
        for server in (closed, dropping, silent):
            with pytest.raises(Retryable) as failed:
                Outbound(guard, platform="Shop").request(
                    "GET", f"http://127.0.0.1:{server.getsockname()[1]}/"
                )
            messages.add(str(failed.value))
        hang_up.join()
    assert messages == {"Shop did not answer"}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1e12", 3600.0), ("7", 7.0), ("-5", 0.0), ("nan", 10.0), ("inf", 10.0), ("soon", 10.0), ("", 10.0)],
)
def test_retry_after_is_bounded(fake: FakePlatform, value: str, seconds: float) -> None:
    fake.answer = lambda request: Response("{}", 429, {"Retry-After": value})
    with pytest.raises(RateLimited) as limited:
        Outbound(LOCAL, platform="Trendyol").request("GET", f"{fake.url}/orders")
    assert limited.value.retry_after == seconds


# -- One client per process and platform, shared by every seller ----------------------------------


def test_sellers_share_the_client_not_their_credentials_or_cookies(fake: FakePlatform) -> None:
    """Every Trendyol seller calls the same host: what one sends or gets must not ride on another's call."""
    seen: list[tuple[str | None, str | None, str | None]] = []

    def answer(request: Request) -> Response:
        user = request.authorization.username if request.authorization else None
        seen.append((user, request.headers.get("User-Agent"), request.headers.get("Cookie")))
        return Response("{}", headers={"Set-Cookie": f"session=seller-{len(seen)}; Path=/"})

    fake.answer = answer
    first = Outbound(LOCAL, platform="Trendyol", auth=("key-1", "s1"), headers={"User-Agent": "1 - OrderHub"})
    second = Outbound(
        LOCAL, platform="Trendyol", auth=("key-2", "s2"), headers={"User-Agent": "2 - OrderHub"}
    )
    assert first.client is second.client
    first.request("GET", f"{fake.url}/orders")
    first.close()  # a connector done with its action leaves the shared client open for the next
    second.request("GET", f"{fake.url}/orders")
    Outbound(LOCAL, platform="Trendyol").request("GET", f"{fake.url}/orders")
    assert seen[:2] == [("key-1", "1 - OrderHub", None), ("key-2", "2 - OrderHub", None)]
    user, agent, cookie = seen[2]
    assert user is None and cookie is None and agent and agent.startswith("python-httpx")


def test_a_connection_vetted_under_one_guard_is_not_used_under_another(
    monkeypatch: pytest.MonkeyPatch, fake: FakePlatform
) -> None:
    """Apps (and tests) with other OUTBOUND_* settings get other clients: a connection the allowlist let
    through stays with the guard that allowed it."""
    port = int(fake.url.rsplit(":", 1)[1])
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *args, **kwargs: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))],
    )
    url = f"http://shop.example.com:{port}/orders"
    lenient = Guard(https_only=False, allowlist=frozenset({"shop.example.com"}))
    Outbound(lenient, platform="Shop").request("GET", url)  # its connection stays open in the pool
    with pytest.raises(Blocked):
        Outbound(Guard(https_only=False), platform="Shop").request("GET", url)
    assert len(fake.requests) == 1


def test_a_forked_work_horse_builds_its_own_client(fake: FakePlatform) -> None:
    """RQ's forking worker: the parent's client (and its open sockets) is not the child's to use."""
    parent = shared_client("Shop", LOCAL)
    Outbound(LOCAL, platform="Shop").request("GET", f"{fake.url}/orders")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        verdict = b"failed"
        try:
            child = Outbound(LOCAL, platform="Shop")
            child.request("GET", f"{fake.url}/orders")
            verdict = b"inherited" if child.client is parent else b"own"
        finally:
            os.write(write, verdict)
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as answer:
        assert answer.read() == b"own"
    assert shared_client("Shop", LOCAL) is parent and not parent.is_closed
    assert len(fake.requests) == 2


# -- Broken marketplace answers: a category and backoff, never a traceback --------------------------

BROKEN_ANSWERS: list[tuple[str, Response, str]] = [
    ("not JSON", Response("{oops", mimetype="application/json"), "not JSON"),
    ("a top-level array", Response("[1, 2]", mimetype="application/json"), "not an object"),
    ("HTML with 200", Response("<html>Maintenance</html>", mimetype="text/html"), "not JSON"),
    ("content as a string", Response('{"content": "none", "totalPages": 1}'), "no list of packages"),
    ("totalPages null", Response('{"content": [], "totalPages": null}'), "not a page count"),
    ("totalPages text", Response('{"content": [], "totalPages": "two"}'), "not a page count"),
    ("NaN everywhere", Response('{"content": [], "totalPages": NaN}'), "not a page count"),
]


@pytest.mark.parametrize(("name", "answer", "message"), BROKEN_ANSWERS, ids=[c[0] for c in BROKEN_ANSWERS])
def test_a_broken_answer_is_a_readable_error_with_backoff(
    account: Account, fake: FakePlatform, name: str, answer: Response, message: str
) -> None:
    fake.answer = lambda request: answer
    integration = stored(account, f"{fake.url}/integration")
    before = utcnow()
    outcome = pull.sync_integration(integration.id)  # returns: the job does not fail
    db.session.expire_all()
    assert outcome.ran and outcome.error and message in outcome.error
    assert integration.last_pull_error_category == "invalid_answer"
    assert integration.pull_failures == 1 and integration.pull_cursor is None
    assert integration.next_pull_at is not None and integration.next_pull_at > before


def test_a_non_ascii_seller_id_stored_before_is_a_readable_error(
    account: Account, fake: FakePlatform
) -> None:
    integration = stored(account, f"{fake.url}/integration")
    integration.set_credentials(
        Side.MARKETPLACE,
        {"seller_id": "٣٤٥", "api_key": "k", "api_secret": "s"},
    )
    db.session.commit()
    outcome = pull.sync_integration(integration.id)
    db.session.expire_all()
    assert outcome.error and "seller ID" in outcome.error
    assert integration.last_pull_error_category == "auth" and fake.requests == []


def test_an_unreadable_stored_address_is_a_readable_error(account: Account) -> None:
    integration = stored(account, "http://[::1/integration")
    outcome = pull.sync_integration(integration.id)
    db.session.expire_all()
    assert outcome.error and integration.last_pull_error_category == "blocked"
