"""A local mail catcher: an SMTP server (aiosmtpd) that keeps every message in a Maildir.

`make run` starts one for the reporting service (SMTP_URL points at it) and
prints where the mail goes: each message is a file under `<maildir>/new/`,
readable with any Maildir client (`mutt -f .run/mail`) or as plain text.
Nothing is relayed anywhere. `python -m devstack.mailcatcher` runs one alone.
"""

from __future__ import annotations

import argparse
import mailbox
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from devstack.processes import split_address


class _KeepInMaildir:
    def __init__(self, folder: Path) -> None:
        self.box = mailbox.Maildir(folder, create=True)
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = mailbox.MaildirMessage(envelope.content)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self.lock:
            self.box.add(message)
        return "250 Message accepted for delivery"


class MailCatcher:
    def __init__(self, maildir: Path, bind: str = "127.0.0.1:1025") -> None:
        self.maildir = maildir
        self.host, self.port = split_address(bind)
        self._controller = Controller(_KeepInMaildir(maildir), hostname=self.host, port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> MailCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[mailbox.MaildirMessage]:
        return list(mailbox.Maildir(self.maildir, create=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.mailcatcher")
    parser.add_argument("--bind", default="127.0.0.1:1025")
    parser.add_argument("--maildir", type=Path, default=Path(".run/mail"))
    args = parser.parse_args(argv)
    catcher = MailCatcher(args.maildir, args.bind).start()
    print(f"mail catcher on {catcher.url}, every message in {args.maildir}/new/", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    catcher.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
