"""A local SMTP server that keeps every mail it receives as a .eml file, for development and tests.

    python -m mailsink --port 8025 --dir instance/mail

The panel's mailbox (Notifications > Mailbox) reads the same directory. Addresses given with --refuse
are rejected at RCPT, the way a real server refuses an unknown mailbox.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from config import private_directory


class MailSink:
    """aiosmtpd handler: every mail becomes `<time>-<id>.eml`, written whole or not at all."""

    def __init__(self, directory: Path, refuse: Iterable[str] = ()) -> None:
        self.directory = directory
        self.refuse = {address.lower() for address in refuse}
        private_directory(directory)  # mails hold customers' orders; each file is 0600 (mkstemp)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        fd, temporary = tempfile.mkstemp(dir=self.directory, suffix=".part")
        with os.fdopen(fd, "wb") as file:
            file.write(content)
        os.replace(temporary, self.directory / name)
        return "250 Message accepted for delivery"

    def mails(self) -> list[Path]:
        return sorted(self.directory.glob("*.eml"))


def serve(directory: Path, port: int, host: str = "127.0.0.1", refuse: Iterable[str] = ()) -> Controller:
    """Start the sink in a thread; `controller.stop()` ends it."""
    controller = Controller(MailSink(directory, refuse), hostname=host, port=port)
    controller.start()
    return controller


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MAIL_PORT", "8025")))
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("MAIL_SINK_DIR", "instance/mail")))
    parser.add_argument("--refuse", action="append", default=[], help="an address to reject")
    arguments = parser.parse_args()
    controller = serve(arguments.dir, arguments.port, arguments.host, arguments.refuse)
    print(f"mail sink on {arguments.host}:{arguments.port}, keeping mails in {arguments.dir}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
