"""One HTTP call, with the platform's failures turned into the hub's three kinds of error."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from connectors.base import Permanent, RateLimited, Retryable

log = logging.getLogger(__name__)

# When a 429 names no Retry-After, wait this long.
DEFAULT_RETRY_AFTER = 10.0


# Query parameters that may carry a credential (WooCommerce accepts its keys in the query string).
SECRET_PARAMS = frozenset(
    {"consumer_key", "consumer_secret", "api_key", "api_secret", "token", "access_token"}
)
_exchanges: ContextVar[list[dict[str, Any]] | None] = ContextVar("exchanges", default=None)


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
    if exchanges is None:
        return
    address = httpx.URL(str(url))
    masked = [
        (key, "•••" if key.lower() in SECRET_PARAMS else value) for key, value in address.params.multi_items()
    ]
    exchanges.append(
        {
            "method": method,
            "url": str(address.copy_with(params=masked or None)),
            "body": body,
            "status": status,
        }
    )


def request(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send one request; 2xx comes back, everything else raises Retryable, RateLimited or Permanent.

    Bodies of errors are kept for the order history; credentials travel in headers and never in them.
    """
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TimeoutException as error:
        _keep(method, url, kwargs.get("json"), "timeout")
        raise Retryable(f"{method} {url}: no answer in time ({type(error).__name__})") from error
    except httpx.TransportError as error:
        _keep(method, url, kwargs.get("json"), type(error).__name__)
        raise Retryable(f"{method} {url}: {type(error).__name__}: {error}") from error
    _keep(method, response.request.url, kwargs.get("json"), response.status_code)
    if response.is_success:
        return response
    body = response.text[:2000]
    message = f"{method} {url} answered {response.status_code}: {_reason(response)}"
    if response.status_code == 429:
        raise RateLimited(message, retry_after=_retry_after(response), body=body)
    if response.status_code >= 500 or response.status_code in (408, 425):
        raise Retryable(message, status=response.status_code, body=body)
    raise Permanent(message, status=response.status_code, body=body)


def _reason(response: httpx.Response) -> str:
    """The platform's own words: Trendyol's `errors[].message` / `exception`, WooCommerce's `message`."""
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.reason_phrase or "error"
    if isinstance(payload, dict):
        errors = payload.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict) and errors[0].get("message"):
            return str(errors[0]["message"])
        for key in ("message", "exception", "error"):
            if payload.get(key):
                return str(payload[key])
    return response.reason_phrase or "error"


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
