"""A misbehaving platform served over real HTTP from a thread: each test says what it answers.

`answer` is called with the request and returns a werkzeug Response (or raises to drop the connection);
every request is kept, so a test can prove that nothing reached it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

Answer = Callable[[Request], Response]


@dataclass
class FakePlatform:
    url: str
    answer: Answer
    requests: list[str] = field(default_factory=list)


@contextmanager
def serve_fake(answer: Answer) -> Iterator[FakePlatform]:
    fake = FakePlatform("", answer)

    @Request.application
    def application(request: Request) -> Response:
        fake.requests.append(request.full_path)
        return fake.answer(request)

    server = make_server("127.0.0.1", 0, application, threaded=True)
    fake.url = f"http://127.0.0.1:{server.port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        thread.join()
