"""Contract checks: every request a connector sends and every answer the sandbox gives, over real HTTP,
validated with openapi-core against the platform's OpenAPI file (specs/), so neither drifts into a shape
of the project's own."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

Calls = list[tuple[httpx.Request, httpx.Response]]


class Recording(httpx.BaseTransport):
    """The real HTTP transport, keeping every request with its answer."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.calls: Calls = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        self.calls.append((request, response))
        return response

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class Contract:
    """A platform's spec, and where the sandbox serves it: `spec_path` turns a request's path into the
    spec's (the sandbox serves each platform under a prefix), under the spec's server: `host_url` and its
    base path `base`."""

    openapi: OpenAPI
    host_url: str
    spec_path: Callable[[httpx.Request], str]
    base: str = ""

    def operations(self, calls: Calls) -> set[tuple[str, int, str]]:
        """(method, status, path with ids as {id}) of every call."""
        return {
            (request.method, response.status_code, re.sub(r"/\d+", "/{id}", self.spec_path(request)))
            for request, response in calls
        }

    def violations(self, calls: Calls) -> list[str]:
        """What the spec finds wrong with each request and each answer, with the schema's own words."""
        found = []
        for request, response in calls:
            asked, answered = self._request(request), _SpecResponse(response)
            errors = [
                *(("request", error) for error in self.openapi.iter_request_errors(asked)),
                *(("answer", error) for error in self.openapi.iter_response_errors(asked, answered)),
            ]
            for side, error in errors:
                details = [
                    str(detail).split("\n")[0] for detail in getattr(error.__cause__, "schema_errors", ())
                ]
                call = f"{request.method} {self.spec_path(request)} {response.status_code}"
                found.append(f"{call} {side}: {error} {details}")
        return found

    def _request(self, request: httpx.Request) -> _SpecRequest:
        return _SpecRequest(request, self.host_url, self.base + self.spec_path(request))


class _SpecRequest:
    """An httpx request as openapi-core reads it, on the spec's server."""

    def __init__(self, request: httpx.Request, host_url: str, path: str) -> None:
        self.host_url = host_url
        self.path = path
        self.method = request.method.lower()
        self.body = request.content or None
        self.content_type = request.headers.get("Content-Type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(request.url.params.multi_items()),
            header=Headers(list(request.headers.items())),
        )


class _SpecResponse:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.headers = Headers(list(response.headers.items()))
        self.content_type = response.headers.get("Content-Type", "")
        self.data = response.content
