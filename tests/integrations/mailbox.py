"""A real SMTP server on loopback (aiosmtpd) that keeps what it is sent, parsed by ``email``.

It can be stopped and started again on its port (a server that is down, then back), refuse
the next messages at DATA with a 451 (a temporary failure after the message was seen), refuse
some recipients for good (550), and take logins (AUTH PLAIN, without TLS: loopback only).
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    """A TCP port nothing listens on now, on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def parse(content: bytes) -> EmailMessage:
    """A message as a reader's client reads it."""
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


class Mailbox:
    """An SMTP server on ``127.0.0.1:port`` and what it was sent.

    Attributes:
        messages: each message it accepted, parsed, in order.
        seen: the ``Message-ID`` of every message that reached DATA, accepted or not.
        envelopes: each accepted message's (MAIL FROM, RCPT TO list).
        logins: the user names that logged in.
        refuse_data: how many more messages to refuse at DATA with a 451.
        refuse_rcpt: recipients refused at RCPT with a 550.
    """

    def __init__(self, port: int | None = None, login: tuple[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.login = login
        self.messages: list[EmailMessage] = []
        self.seen: list[str] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []
        self.refuse_data = 0
        self.refuse_rcpt: set[str] = set()
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def message_ids(self) -> list[str]:
        return [str(message["Message-ID"]) for message in self.messages]

    def start(self) -> None:
        options: dict[str, Any] = {}
        if self.login is not None:
            options = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_exclude_mechanism": ["LOGIN"],
            }
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # --- aiosmtpd's handler hooks, on the server's thread ---------------------------------

    async def handle_RCPT(  # aiosmtpd's name for the hook
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse_rcpt:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # aiosmtpd's name for the hook
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        message = parse(content)
        with self._lock:
            self.seen.append(str(message["Message-ID"]))
            if self.refuse_data > 0:
                self.refuse_data -= 1
                return "451 4.3.0 try again later"
            self.messages.append(message)
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.login is not None and isinstance(data, LoginPassword)
        user, password = self.login
        ok = data.login == user.encode() and data.password == password.encode()
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)  # a refusal is answered with a 535


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A running SMTP server on a free loopback port, stopped after the test."""
    box = Mailbox()
    box.start()
    yield box
    box.stop()
