"""The one door out: every call to a marketplace or a shop goes through `Outbound`.

The address a seller saves is the hub's to guard, not the seller's to aim: a base URL is checked when it is
saved (`check_base_url`) and again when a connection is opened. Only public addresses are called (the host is
resolved, every address vetted, and the socket opened to the vetted address, so a DNS answer that changes
between the check and the call cannot point inside); https only where the config says so; no userinfo,
query or fragment in a base URL; no redirects; every answer read as a stream up to a byte cap and a deadline.
Hosts on the allowlist (the local sandbox) skip the address and https checks, nothing else.

Failures come back as the hub's errors (`connectors.base`), each with a category and a short message the
seller may read: the status and the platform's error code, never a remote body verbatim. The body goes to
the log, cut short.

A process keeps one HTTP client per platform and guard (`shared_client`) and every connector sends through
it, its seller's credentials and headers on each request: building a client and opening a connection per
action cost more than the action's own work. Nothing of a seller lives on the shared client.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import math
import os
import re
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpcore
import httpx

from connectors.base import Blocked, InvalidAnswer, Permanent, RateLimited, Retryable

log = logging.getLogger(__name__)

# When a 429 names no Retry-After, wait this long; never longer than the cap, whatever it names.
DEFAULT_RETRY_AFTER = 10.0
MAX_RETRY_AFTER = 3600.0
# How much of a platform's own error text the seller may read, and how much of a body the log keeps.
MESSAGE_LENGTH = 120
LOGGED_BODY = 500
# Query parameters that may carry a credential (WooCommerce accepts its keys in the query string).
SECRET_PARAMS = frozenset(
    {
        "consumer_key",
        "consumer_secret",
        "api_key",
        "api_secret",
        "token",
        "access_token",
        # A pre-signed storage address (Amazon's feed upload) carries its credentials in the query.
        "x-amz-security-token",
        "x-amz-signature",
        "x-amz-credential",
        "signature",
    }
)
# Names that never lead to the public internet (cloud metadata services live under .internal).
LOCAL_NAMES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".intranet", ".lan")
# IPv6 ranges that carry an IPv4 address inside: the IPv4 address is what would be reached.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Shared clients a process keeps (one per platform and guard; a process normally has one guard, the tests
# build many); the least recently used one is closed beyond this.
MAX_CLIENTS = 8
_exchanges: ContextVar[list[dict[str, Any]] | None] = ContextVar("exchanges", default=None)
T = TypeVar("T")


@dataclass(frozen=True)
class Guard:
    """What the hub may call: built from the config (`OUTBOUND_*`), handed to every connector."""

    https_only: bool = True
    # "host" (any port) or "host:port" entries that may be plain http and private (the local sandbox).
    allowlist: frozenset[str] = frozenset()
    max_bytes: int = 16 * 1024 * 1024
    # Seconds one call may take in all, and any one step of it (connect, a read).
    deadline: float = 60.0
    timeout: float = 15.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Guard:
        return cls(
            https_only=config["OUTBOUND_HTTPS_ONLY"],
            allowlist=allowlist(config["OUTBOUND_ALLOWLIST"]),
            max_bytes=config["OUTBOUND_MAX_BYTES"],
            deadline=config["OUTBOUND_DEADLINE"],
            timeout=config["CONNECTOR_TIMEOUT"],
        )

    def allowed(self, host: str, port: int) -> bool:
        host = host.lower().strip("[]")
        return host in self.allowlist or f"{host}:{port}" in self.allowlist

    def check_url(self, url: str, *, base: bool = False, pinned: Iterable[str] = ()) -> tuple[str, int]:
        """The host and port a URL names, if the hub may call it as far as its text says; else Blocked.

        A base URL (`base=True`) also may not carry a query or a fragment; `pinned` names the only hosts a
        kind may use (the allowlist aside).
        """
        if any(ord(char) < 33 or ord(char) == 127 for char in url):
            raise Blocked("the address contains spaces or control characters", reason="syntax")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise Blocked("the address cannot be read", reason="syntax") from None
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        if scheme not in ("http", "https") or not host:
            raise Blocked("the address must start with https://", reason="scheme")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise Blocked("the address may not carry a user name or password", reason="userinfo")
        if base and (parts.query or parts.fragment or url.rstrip().endswith(("?", "#"))):
            raise Blocked("the address may not carry a query (?…) or a fragment (#…)", reason="query")
        port = port or (443 if scheme == "https" else 80)
        if self.allowed(host, port):
            return host, port
        if scheme != "https" and self.https_only:
            raise Blocked("the address must start with https://", reason="https")
        pins = tuple(pinned)
        if pins and host not in pins:
            raise Blocked(f"this platform is reached at {', '.join(pins)} only", reason="pinned")
        literal = _literal(host)
        if f".{host.rstrip('.')}".endswith(LOCAL_NAMES) or (literal is not None and not public(literal)):
            raise Blocked("the address is not a public internet address", reason="private")
        return host, port

    def resolve(self, host: str, port: int) -> list[str]:
        """The host's addresses, every one of them public; Blocked if any is not, or none is found."""
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise Blocked(f"the host {host} could not be found", reason="unresolvable") from None
        addresses = list(dict.fromkeys(str(entry[4][0]) for entry in found))
        if not addresses or not all(public(ipaddress.ip_address(a.split("%")[0])) for a in addresses):
            raise Blocked("the address is not a public internet address", reason="private")
        return addresses


def allowlist(value: str | Iterable[str]) -> frozenset[str]:
    entries = value.split(",") if isinstance(value, str) else value
    return frozenset(entry.strip().lower() for entry in entries if entry.strip())


def public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable unicast; an IPv6 address that wraps an IPv4 one is judged by the IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if inner is None and address in NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return public(inner)
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return False  # fec0::/10: deprecated, but Python 3.11 still calls it global
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_unspecified)


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address written as the host, in any form the resolver accepts (2130706433, 0x7f.1, [::1])."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fx.]+", host):
        try:
            return ipaddress.ip_address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def check_base_url(url: str, guard: Guard, *, pinned: Iterable[str] = ()) -> None:
    """At save time: the text of the address, and, where the host resolves now, where it leads.

    A host that does not resolve yet passes (a shop may go live later); the connection checks it again.
    """
    host, port = guard.check_url(url, base=True, pinned=pinned)
    if guard.allowed(host, port) or _literal(host) is not None:
        return
    try:
        guard.resolve(host, port)
    except Blocked as error:
        if error.reason != "unresolvable":
            raise


class _GuardedBackend(httpcore.NetworkBackend):
    """Opens sockets only to vetted addresses: the check and the connection use the same answer."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if self.guard.allowed(host, port):
            return self.backend.connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            addresses = self.guard.resolve(host, port)
        except Blocked as refused:
            if refused.reason != "unresolvable":
                raise
            # DNS may answer again in a minute: a connection that failed, not an address refused.
            raise httpcore.ConnectError(f"{host} could not be resolved") from None
        error: Exception | None = None
        for address in addresses:
            try:
                return self.backend.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as failed:
                error = failed
        raise error or httpcore.ConnectError(f"could not connect to {host}")

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not for connectors")

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One for the process: loading the certificate store is the slow part of a new client."""
    return httpx.create_ssl_context(trust_env=False)


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, guard: Guard) -> None:
        # No proxy from the environment (it would connect past the guard); the process's one SSL context.
        super().__init__(verify=_ssl_context(), trust_env=False)
        # One pool serves every seller of the platform: room to keep a few shops' connections open.
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=20,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(guard),
        )


def _client(guard: Guard, transport: httpx.BaseTransport) -> httpx.Client:
    return httpx.Client(
        timeout=guard.timeout,
        follow_redirects=False,
        trust_env=False,
        # Sellers share the client, and every Trendyol seller calls the same host: a cookie set in answer
        # to one seller must never ride on another's request, so none is kept.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        transport=transport,
    )


@dataclass
class _Clients:
    """The shared clients of one process, least recently used first."""

    pid: int = field(default_factory=os.getpid)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clients: OrderedDict[tuple[str, Guard], httpx.Client] = field(default_factory=OrderedDict)


_clients = _Clients()


def shared_client(platform: str, guard: Guard) -> httpx.Client:
    """This process's client for the platform behind this guard, built on first use.

    Keyed by the guard as well: an app with other OUTBOUND_* settings never reuses a connection vetted
    under these. A process forked from the one that built it (RQ's work horse) builds its own: the
    parent's sockets are left to the parent, neither used nor closed.
    """
    global _clients
    if _clients.pid != os.getpid():
        _clients = _Clients()
    state = _clients
    key = (platform, guard)
    with state.lock:
        client = state.clients.get(key)
        if client is None:
            client = state.clients[key] = _client(guard, _GuardedTransport(guard))
            if len(state.clients) > MAX_CLIENTS:
                state.clients.popitem(last=False)[1].close()
        state.clients.move_to_end(key)
        return client


def close_clients() -> None:
    """Close this process's shared clients; the next connector builds new ones."""
    global _clients
    state, _clients = _clients, _Clients()
    if state.pid == os.getpid():
        with state.lock:
            for client in state.clients.values():
                client.close()


class Outbound:
    """One connector's way out: the process's client for its platform, with this seller's credentials and
    headers on every request. `transport` is a seam for tests only: it gets a client of its own."""

    def __init__(
        self,
        guard: Guard,
        *,
        platform: str,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.guard = guard
        self.platform = platform
        try:
            self.headers = httpx.Headers(dict(headers or {}))
            self.auth = httpx.BasicAuth(*auth) if auth else None
        except (UnicodeError, ValueError) as error:
            # A header httpx cannot send (a credential with characters outside ASCII): the keys are wrong.
            log.warning("%s credentials cannot be sent: %s", platform, error)
            raise Permanent(
                f"the {platform} credentials contain characters that cannot be sent", category="auth"
            ) from None
        self._own = transport is not None
        self.client = _client(guard, transport) if transport is not None else shared_client(platform, guard)

    def close(self) -> None:
        """Close a client of its own; the shared one stays open for the next connector."""
        if self._own:
            self.client.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request; 2xx comes back (read in full, within the byte cap); everything else raises."""
        self.guard.check_url(url)
        body = kwargs.get("json")
        try:
            response = self._read(method, url, **kwargs)
        except Blocked as error:
            _keep(method, url, body, "blocked")
            raise error from None
        except httpx.DecodingError:
            _keep(method, url, body, "unreadable")
            raise InvalidAnswer(f"{self.platform} answered with a body that cannot be decoded") from None
        except (httpx.TransportError, httpx.InvalidURL, UnicodeError) as error:
            # One text for a refused connection, a dropped one and a timeout: the seller's next step is
            # the same, and the difference would make the hub a port scanner. The log tells them apart.
            _keep(method, url, body, "no answer")
            log.info("%s %s: %s: %s", method, _masked(url), type(error).__name__, error)
            raise Retryable(f"{self.platform} did not answer") from None
        _keep(method, response.request.url, body, response.status_code)
        if response.is_success:
            return response
        self._refused(method, url, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The whole answer, streamed: past the byte cap or the deadline the call stops."""
        started = time.monotonic()
        with self.client.stream(method, url, auth=self.auth, headers=self.headers, **kwargs) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isascii() and declared.isdigit() and int(declared) > self.guard.max_bytes:
                raise self._too_large(method, url)
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.guard.max_bytes:
                    raise self._too_large(method, url)
                if time.monotonic() - started > self.guard.deadline:
                    raise httpx.ReadTimeout("the answer took longer than the deadline")
                chunks.append(chunk)
        # The bytes are decoded already (gzip and the like): the copy must not claim otherwise.
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx.Response(
            response.status_code, headers=headers, content=b"".join(chunks), request=response.request
        )

    def _too_large(self, method: str, url: str) -> InvalidAnswer:
        log.warning("%s %s: answer over %d bytes, not read", method, _masked(url), self.guard.max_bytes)
        megabytes = self.guard.max_bytes / 1024 / 1024
        return InvalidAnswer(f"{self.platform} answered with more than {megabytes:g} MB")

    def _refused(self, method: str, url: str, response: httpx.Response) -> None:
        status = response.status_code
        code = platform_code(response)
        message = f"{self.platform} answered {status}" + (f": {code}" if code else "")
        log.info("%s %s answered %s: %s", method, _masked(url), status, response.text[:LOGGED_BODY])
        if status == 429:
            raise RateLimited(message, retry_after=retry_after(response), code=code)
        if status >= 500 or status in (408, 425):
            raise Retryable(message, status=status, code=code)
        if 300 <= status < 400:
            raise Permanent(f"{self.platform} answered {status} (redirects are not followed)", status=status)
        category = "auth" if status in (401, 403) else "refused"
        raise Permanent(message, status=status, code=code, category=category)


def json_body(response: httpx.Response, shape: type[T], platform: str) -> T:
    """The answer's JSON, if it is the shape asked for (a dict or a list); else InvalidAnswer."""
    try:
        payload = loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidAnswer(f"{platform} answered with something that is not JSON") from None
    if not isinstance(payload, shape):
        expected = "an object" if shape is dict else "a list"
        raise InvalidAnswer(f"{platform} answered with JSON that is not {expected}")
    return payload


def loads(content: bytes) -> Any:
    """JSON as the platforms write it, minus what Python's parser lets through that JSON has not: NaN,
    Infinity and numbers too large for a float stay text, so a check of the field refuses them by name."""
    return json.loads(content, parse_constant=str, parse_float=_finite)


def _finite(text: str) -> float | str:
    value = float(text)
    return value if math.isfinite(value) else text


def platform_code(response: httpx.Response) -> str:
    """The platform's own words for the error (Trendyol's first message, WooCommerce's code and message),
    cut short and stripped of anything but printable text: evidence for the seller, not a page of HTML."""
    try:
        payload = loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return ""
    if not isinstance(payload, dict):
        return ""
    errors = payload.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    words = [first.get("message"), payload.get("code"), payload.get("message") or payload.get("exception")]
    texts = [word for word in words if isinstance(word, str) and word]
    return sanitised(": ".join(dict.fromkeys(texts)))


def sanitised(text: str, length: int = MESSAGE_LENGTH) -> str:
    """One line of printable text, at most `length` characters."""
    clean = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return clean if len(clean) <= length else clean[: length - 1] + "…"


def retry_after(response: httpx.Response) -> float:
    """Retry-After in seconds or as a date; absurd or unreadable values fall back, none exceeds the cap."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError, IndexError, OverflowError):
            seconds = DEFAULT_RETRY_AFTER
    if not math.isfinite(seconds):
        seconds = DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@contextmanager
def recording() -> Iterator[list[dict[str, Any]]]:
    """Keep every call made inside the block (method, address, body sent, status) for the order history;
    credentials travel in headers and are never kept, secret query parameters are masked."""
    exchanges: list[dict[str, Any]] = []
    token = _exchanges.set(exchanges)
    try:
        yield exchanges
    finally:
        _exchanges.reset(token)


def _keep(method: str, url: httpx.URL | str, body: Any, status: int | str) -> None:
    exchanges = _exchanges.get()
    if exchanges is not None:
        exchanges.append({"method": method, "url": _masked(url), "body": body, "status": status})


def _masked(url: httpx.URL | str) -> str:
    try:
        address = httpx.URL(str(url))
    except (httpx.InvalidURL, UnicodeError):
        return "(an unreadable address)"
    masked = [
        (key, "•••" if key.lower() in SECRET_PARAMS else value) for key, value in address.params.multi_items()
    ]
    return str(address.copy_with(params=masked or None))
