"""Sending the email outbox over SMTP: due emails claimed, sent, retried with backoff, given up.

An email (an alert, a breach's escalation, a digest) was written to ``email_outbox`` in the
transaction of its cause (:func:`~.outbox.enqueue_email`). :func:`send_due` sends those due
now, at least once each:

- **Claimed once across replicas.** A batch is taken for :data:`LEASE_MS` in one transaction
  (on PostgreSQL read ``FOR UPDATE SKIP LOCKED``, so replicas take different emails without
  waiting; on SQLite under the write lock). A replica that dies holding a batch loses it when
  the lease runs out, and another sends it.
- **Sent** with aiosmtplib over one connection per batch, as ``multipart/alternative`` plain
  text and HTML, each step bounded (:data:`SMTP_TIMEOUT_S`, :data:`MESSAGE_TIMEOUT_S`). The
  ``Message-ID`` is made of the email's id, so every attempt of one email carries the same
  one and a reader's client shows a repeat once.
- **Retried** after a failure with exponential backoff and jitter (:func:`retry_delay_ms`),
  the error kept on the row (never the SMTP password), until a day after it was written
  (:data:`GIVE_UP_MS`): then it is ``failed``. A recipient the server refuses for good (a 5xx
  reply to ``RCPT``) or an address no email can carry fails at once. When the server can't be
  reached, the rest of the batch is not tried: each email of it counts the failure.

Without ``smtp_host`` nothing is sent: the emails wait in the outbox until one is set, and the
gateway says so once (per control-plane database: once a process).

Every function takes the time as ``now_ms``: workers pass the clock's, tests their own.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import weakref
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Final, NamedTuple

import aiosmtplib
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop_core import DAY_MS, HOUR_MS

from ..control import tables
from ..control.db import Database, Work
from ..settings import Settings

__all__ = [
    "BATCH",
    "GIVE_UP_MS",
    "LEASE_MS",
    "MESSAGE_TIMEOUT_S",
    "SMTP_TIMEOUT_S",
    "MailError",
    "Outcome",
    "Sender",
    "compose",
    "message_id",
    "retry_delay_ms",
    "send_due",
    "send_now",
]

#: The longest the server may take to accept the connection, and to answer each command.
SMTP_TIMEOUT_S: Final = 20.0
#: The longest one email may take, connecting included: a hung server holds a batch no longer.
MESSAGE_TIMEOUT_S: Final = 60.0
#: Most emails one call of :func:`send_due` claims.
BATCH: Final = 10
#: How long a claimed batch is held: longer than its emails can take, each at its bound.
LEASE_MS: Final = int(BATCH * MESSAGE_TIMEOUT_S * 1000) + 60_000
#: The wait before the first retry; it doubles with each failure, up to :data:`MAX_RETRY_MS`.
FIRST_RETRY_MS: Final = 30_000
MAX_RETRY_MS: Final = HOUR_MS
#: How long after it was written an email is still tried: a failure later than this is final.
GIVE_UP_MS: Final = DAY_MS
#: The most of a server's error kept on the row.
MAX_ERROR_CHARS: Final = 500
#: What stands for a secret in a kept error.
_MASK: Final = "***"

_EMAILS = tables.email_outbox
_log = logging.getLogger(__name__)
#: The databases whose emails wait for an SMTP server, already said: one warning each.
_TOLD_UNCONFIGURED: Final[weakref.WeakSet[Database]] = weakref.WeakSet()


class MailError(Exception):
    """An email could not be sent (for ``voxloop-gateway mail test``): the server's words."""


class Outgoing(NamedTuple):
    """A claimed email of the outbox."""

    id: str
    recipient: str
    subject: str
    text: str
    html: str
    created_ms: int
    attempts: int


class Outcome(NamedTuple):
    """What became of one attempt: ``error`` None when the server took it; ``final`` when
    trying again can't help."""

    error: str | None
    final: bool = False


SENT: Final = Outcome(None)


def message_id(email_id: str, mail_from: str) -> str:
    """The ``Message-ID`` of the email ``email_id``: the same on every attempt."""
    domain = mail_from.rsplit("@", 1)[-1].strip() or "localhost"
    return f"<{email_id}@{domain}>"


def compose(
    settings: Settings,
    *,
    email_id: str,
    recipient: str,
    subject: str,
    text: str,
    html: str,
    created_ms: int,
) -> EmailMessage:
    """The message of one email: ``multipart/alternative``, plain text first, then HTML.

    Raises:
        ValueError: ``recipient`` or ``subject`` can't be a header (a line break in it).
    """
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.mail_from
    message["To"] = recipient
    message["Date"] = formatdate(created_ms / 1000, usegmt=True)
    message["Message-ID"] = message_id(email_id, settings.mail_from)
    # RFC 3834: written by a machine, so out-of-office replies stay away.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def retry_delay_ms(attempts: int) -> int:
    """How long to wait after the ``attempts``-th failure before the next try.

    :data:`FIRST_RETRY_MS` doubled per failure, at most :data:`MAX_RETRY_MS`, of which a random
    share of up to half is taken off (jitter), so that emails which failed together, when the
    server was down, don't all come back at once.
    """
    doublings = min(max(0, attempts - 1), 30)  # far past the cap already
    base = min(FIRST_RETRY_MS << doublings, MAX_RETRY_MS)
    return base - int(random.random() * (base // 2))


class Sender:
    """One SMTP connection of :class:`Settings`, opened on first use and again after it broke.

    Use it as an async context manager; :meth:`send` never raises for what the server or the
    network did, it says so in its :class:`Outcome`. Once the server can't be reached, the
    emails after are not tried: each gets the same failure.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._smtp: aiosmtplib.SMTP | None = None
        self._unreachable: str | None = None

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._drop(polite=True)

    @property
    def server(self) -> str:
        """``host:port``, as messages name the server."""
        return f"{self.settings.smtp_host}:{self.settings.smtp_port}"

    async def send(self, message: EmailMessage) -> Outcome:
        """Send ``message``; what became of it."""
        if self._unreachable is not None:
            return Outcome(self._unreachable)
        try:
            async with asyncio.timeout(MESSAGE_TIMEOUT_S):
                if self._smtp is None:
                    try:
                        self._smtp = await self._connect()
                    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                        self._unreachable = self._said(exc)
                        return Outcome(self._unreachable)
                await self._smtp.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            final = all(refused.code >= 500 for refused in exc.recipients)
            return Outcome(self._said(exc), final)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # The session's state is unknown after a failure mid-way: the next email starts
            # on a new connection.
            await self._drop(polite=False)
            return Outcome(self._said(exc))
        return SENT

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_user or None,
            password=settings.smtp_password or None,
            use_tls=settings.smtp_tls == "tls",
            # STARTTLS when asked for is required: never a silent fall back to plain text.
            start_tls=settings.smtp_tls == "starttls",
            timeout=SMTP_TIMEOUT_S,
        )
        await smtp.connect()  # EHLO, STARTTLS and AUTH as the settings say
        return smtp

    async def _drop(self, *, polite: bool) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        if polite and smtp.is_connected:
            try:
                async with asyncio.timeout(SMTP_TIMEOUT_S):
                    await smtp.quit()
                return
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                pass  # closed below: the emails were sent or recorded already
        smtp.close()

    def _said(self, exc: BaseException) -> str:
        """``exc`` in one line for the row and the log: its type and words, never a secret."""
        text = " ".join(str(exc).split())
        said = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        for secret in _secrets(self.settings):
            said = said.replace(secret, _MASK)
        if len(said) > MAX_ERROR_CHARS:
            said = said[: MAX_ERROR_CHARS - 1] + "…"
        return f"{self.server}: {said}"


def _secrets(settings: Settings) -> list[str]:
    """The password, and the forms AUTH sends it in, longest first: none may be kept."""
    password = settings.smtp_password
    if not password:
        return []
    plain = f"\0{settings.smtp_user}\0{password}".encode()
    forms = [password, base64.b64encode(password.encode()).decode()]
    forms.append(base64.b64encode(plain).decode())
    return sorted(forms, key=len, reverse=True)


async def send_due(
    db: Database, settings: Settings, holder: str, now_ms: int, *, limit: int = BATCH
) -> int:
    """Send the emails of the outbox that are due at ``now_ms``; how many were sent.

    Claims up to ``limit`` for :data:`LEASE_MS` (for ``holder``, as the log says), sends each,
    and records each outcome as soon as it is known: ``sent`` with ``done_ms``; else the error,
    one more attempt and the time of the next (:func:`retry_delay_ms`), or ``failed`` once
    :data:`GIVE_UP_MS` have passed since it was written (or at once when retrying can't help).
    Without ``settings.smtp_host`` nothing is claimed: the emails wait.
    """
    if not settings.smtp_host:
        if db not in _TOLD_UNCONFIGURED:
            _TOLD_UNCONFIGURED.add(db)
            _log.warning(
                "no SMTP server is set (smtp_host): alert, breach and digest emails wait in the"
                " outbox until one is"
            )
        return 0
    lease_ms = now_ms + LEASE_MS

    async def any_due(conn: AsyncConnection) -> bool:
        found = await conn.execute(select(_EMAILS.c.id).where(*_due(now_ms)).limit(1))
        return found.first() is not None

    async def claim(conn: AsyncConnection) -> list[Outgoing]:
        return await _claim(conn, db.dialect, now_ms, lease_ms, limit)

    # Looked for first without the write lock: most rounds find nothing, and on SQLite a
    # claim would take the registry's write lock twice a second for it.
    if not await db.arun(any_due):
        return 0
    claimed = await db.arun(claim, write=True)
    if not claimed:
        return 0
    _log.debug("%s claimed %d emails", holder, len(claimed))
    sent = 0
    async with Sender(settings) as sender:
        for email in claimed:
            try:
                message = compose(
                    settings,
                    email_id=email.id,
                    recipient=email.recipient,
                    subject=email.subject,
                    text=email.text,
                    html=email.html,
                    created_ms=email.created_ms,
                )
            except ValueError as exc:
                outcome = Outcome(f"the email can't be written: {exc}", final=True)
            else:
                outcome = await sender.send(message)
            if outcome.error is None:
                sent += 1
            else:
                _log.warning(
                    "email %s not sent (attempt %d): %s",
                    email.id,
                    email.attempts + 1,
                    outcome.error,
                )
            await db.arun(_recording(email, outcome, now_ms, lease_ms), write=True)
    return sent


def _due(now_ms: int) -> tuple[ColumnElement[bool], ...]:
    """What makes an email due at ``now_ms``: pending, its time come, held by nobody."""
    return (
        _EMAILS.c.state == "pending",
        _EMAILS.c.next_ms <= now_ms,
        or_(_EMAILS.c.lease_ms.is_(None), _EMAILS.c.lease_ms <= now_ms),
    )


async def _claim(
    conn: AsyncConnection, dialect: str, now_ms: int, lease_ms: int, limit: int
) -> list[Outgoing]:
    query = (
        select(
            _EMAILS.c.id,
            _EMAILS.c.recipient,
            _EMAILS.c.subject,
            _EMAILS.c.text,
            _EMAILS.c.html,
            _EMAILS.c.created_ms,
            _EMAILS.c.attempts,
        )
        .where(*_due(now_ms))
        .order_by(_EMAILS.c.next_ms, _EMAILS.c.id)
        .limit(limit)
    )
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    found = [Outgoing(*row) for row in await conn.execute(query)]
    if found:
        await conn.execute(
            update(_EMAILS)
            .where(_EMAILS.c.id.in_([email.id for email in found]))
            .values(lease_ms=lease_ms)
        )
    return found


def _recording(email: Outgoing, outcome: Outcome, now_ms: int, lease_ms: int) -> Work[None]:
    """The transaction that records ``outcome`` of ``email``'s attempt at ``now_ms``.

    A failure is recorded only while the batch's lease is still this one: a holder too slow
    for its lease must not undo what the next holder recorded. A success is recorded anyway:
    the email went.
    """
    attempts = email.attempts + 1
    row = (_EMAILS.c.id == email.id, _EMAILS.c.state == "pending")
    if outcome.error is None:
        statement = (
            update(_EMAILS)
            .where(*row)
            .values(state="sent", done_ms=now_ms, lease_ms=None, attempts=attempts, error=None)
        )
    elif outcome.final or now_ms - email.created_ms >= GIVE_UP_MS:
        statement = (
            update(_EMAILS)
            .where(*row, _EMAILS.c.lease_ms == lease_ms)
            .values(
                state="failed",
                done_ms=now_ms,
                lease_ms=None,
                attempts=attempts,
                error=outcome.error,
            )
        )
    else:
        statement = (
            update(_EMAILS)
            .where(*row, _EMAILS.c.lease_ms == lease_ms)
            .values(
                next_ms=now_ms + retry_delay_ms(attempts),
                lease_ms=None,
                attempts=attempts,
                error=outcome.error,
            )
        )

    async def record(conn: AsyncConnection) -> None:
        await conn.execute(statement)

    return record


async def send_now(settings: Settings, messages: Sequence[EmailMessage]) -> None:
    """Send ``messages`` at once, outside the outbox (``voxloop-gateway mail test``).

    Raises:
        MailError: one could not be sent; the message names the server and what it said.
    """
    if not settings.smtp_host:
        raise MailError("no SMTP server is set: --smtp-host or VOXLOOP_SMTP_HOST")
    async with Sender(settings) as sender:
        for message in messages:
            outcome = await sender.send(message)
            if outcome.error is not None:
                raise MailError(outcome.error)
