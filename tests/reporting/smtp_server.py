"""A real SMTP server for the tests (aiosmtpd on a free port) that keeps what it is sent.

`defer(address)` makes it answer 451 (try again later) for that recipient
until `accept(address)`, as a mail server that is briefly unavailable would.
"""

from __future__ import annotations

import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

from tests.support import free_port


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.server.deferred(address):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.server.keep(list(envelope.rcpt_tos), message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._messages: list[tuple[list[str], EmailMessage]] = []
        self._deferred: set[str] = set()
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def keep(self, recipients: list[str], message: EmailMessage) -> None:
        with self._lock:
            self._messages.append((recipients, message))

    def deferred(self, address: str) -> bool:
        with self._lock:
            return address in self._deferred

    def defer(self, address: str) -> None:
        with self._lock:
            self._deferred.add(address)

    def accept(self, address: str) -> None:
        with self._lock:
            self._deferred.discard(address)

    def messages_to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [message for rcpts, message in self._messages if address in rcpts]

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._controller.stop()
