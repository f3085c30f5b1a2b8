"""The webhook worker: claims the deliveries that are due, sends them, records each attempt.

:func:`deliver_due` is run by every gateway's workers. Each call claims the deliveries that are
due, for a lease (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so replicas claim disjoint rows
without waiting on each other; SQLite: one write transaction), posts each message with the
Standard Webhooks headers (:mod:`.signing`) through the SSRF guard (:mod:`.ssrf`), and records
every attempt. A worker that dies mid-delivery leaves a lease that runs out; the delivery is
then due again and is sent again with the same ``webhook-id``: at least once, never lost. A
result is written only while its claim still holds (the lease it took is still the row's: a
later claim's lease is always later), so a worker that was only slow, and whose lease another
worker took over, can't overwrite what came after it.

What an attempt's answer does:

- a 2xx delivers the message, and ends the endpoint's failing streak;
- a 410 disables the endpoint (``disabled_ms``, ``disabled_reason``) and fails its pending
  deliveries: the receiver said it is gone for good;
- anything else (another status, a refused connection, a timeout, a refusal of the guard)
  schedules the next attempt with exponential backoff and full jitter
  (:func:`retry_delay_ms`), until the delivery has been tried for :data:`RETRY_WINDOW_MS`
  (24 h from its first attempt, so never less than 24 h from the message's creation; a
  redelivery starts a new window), when it is marked ``failed``;
- an endpoint whose deliveries have all failed for :data:`FAILING_LIMIT_MS` (24 h since the
  first failure of its streak) is disabled with a reason saying so, which ``webhooks list``,
  the API and the dashboard show.

An attempt is bounded by ``settings.webhook_timeout_s`` from the first byte of the name's
resolution to the last byte read, and reads at most :data:`MAX_RESPONSE_BYTES` of the answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from typing import Final

import httpx
import msgspec
from sqlalchemy import func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop_core import HOUR_MS

from .. import __version__
from ..control import tables
from ..control.db import Database
from ..reading.formats import rfc3339
from ..settings import Settings
from . import signing
from .ssrf import TargetRefused, guarded_client

#: The most of an answer's body an attempt reads; the rest is never received.
MAX_RESPONSE_BYTES: Final = 64 * 1024
#: How much of a failed answer's body the delivery log keeps, as its error.
ERROR_EXCERPT_CHARS: Final = 300
#: The first retry waits up to this; each further one twice as long, up to :data:`RETRY_CAP_MS`.
RETRY_BASE_MS: Final = 5_000
RETRY_CAP_MS: Final = HOUR_MS
#: The shortest wait before a retry, whatever the jitter drew.
RETRY_FLOOR_MS: Final = 1_000
#: How long a delivery is retried, from its first attempt, before it is given up.
RETRY_WINDOW_MS: Final = 24 * HOUR_MS
#: How long an endpoint may fail every delivery before it is disabled.
FAILING_LIMIT_MS: Final = 24 * HOUR_MS
#: Deliveries claimed by one call, all sent at once.
BATCH: Final = 100
#: A claim's lease beyond the attempt's own timeout: time to write the result.
LEASE_SLACK_MS: Final = 10_000
USER_AGENT: Final = f"voxloop-webhooks/{__version__}"

_log = logging.getLogger(__name__)
_ENDPOINTS = tables.webhook_endpoints
_DELIVERIES = tables.webhook_deliveries
_ATTEMPTS = tables.webhook_attempts
_OUTBOX = tables.outbox


class Outcome(msgspec.Struct, frozen=True):
    """What one attempt got: a status, or an error, and how long it took."""

    status: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _Due(msgspec.Struct, frozen=True, kw_only=True):
    """A claimed delivery: what to send, where, signed with what, under which lease."""

    message: str
    endpoint: str
    url: str
    payload: str
    created_ms: int
    secrets: tuple[str, ...]
    attempts: int
    lease_ms: int


def retry_delay_ms(failures: int, draw: float) -> int:
    """How long to wait after the ``failures``-th failure in a row (1 for the first).

    Exponential backoff with full jitter: ``draw`` (uniform in [0, 1)) times a ceiling that
    starts at :data:`RETRY_BASE_MS` and doubles with each failure, up to :data:`RETRY_CAP_MS`;
    never below :data:`RETRY_FLOOR_MS`. Full jitter spreads the retries of many deliveries
    that failed together (a receiver's outage) over the whole interval, so they don't all
    come back at once when it recovers.
    """
    ceiling = min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** min(max(failures, 1) - 1, 32))
    return max(RETRY_FLOOR_MS, int(draw * ceiling))


async def deliver_due(
    db: Database,
    settings: Settings,
    holder: str,
    now_ms: int,
    client: httpx.AsyncClient | None = None,
    *,
    budget_s: float = 0.0,
) -> int:
    """Deliver the webhook messages due at ``now_ms``; how many attempts were made.

    Claims up to :data:`BATCH` due deliveries for a lease of the timeout plus
    :data:`LEASE_SLACK_MS`, sends them at once, and records the attempts as they end; then
    claims another batch while the last came full and ``budget_s`` has not passed since the
    call began (0: one batch).

    Args:
        settings: ``webhook_timeout_s`` bounds each attempt; ``webhook_allow`` lets the guard
            through to private networks.
        holder: who delivers (this process), for the log.
        client: the client to send with; by default, one made for this call by
            :func:`.ssrf.guarded_client` (a client given should be one too, or the guard does
            not apply at delivery).
    """
    deadline = time.monotonic() + budget_s
    http = client or guarded_client(settings.webhook_allow, settings.webhook_timeout_s)
    attempts = 0
    try:
        while True:
            made = await _deliver_batch(db, settings, holder, now_ms, http)
            attempts += made
            if made < BATCH or time.monotonic() >= deadline:
                return attempts
    finally:
        if client is None:
            await http.aclose()


async def _deliver_batch(
    db: Database, settings: Settings, holder: str, now_ms: int, http: httpx.AsyncClient
) -> int:
    """Claim one batch, send it, record it: :func:`deliver_due`'s step; how many it sent."""
    lease_ms = now_ms + int(settings.webhook_timeout_s * 1000) + LEASE_SLACK_MS
    claimed = await _claim(db, now_ms, lease_ms)
    if not claimed:
        return 0
    _log.debug("%s delivers %d webhook messages", holder, len(claimed))
    ended: asyncio.Queue[tuple[_Due, Outcome]] = asyncio.Queue()

    async def attempt(due: _Due) -> None:
        try:
            outcome = await send(
                http, due.url, due.message, due.payload, due.secrets, now_ms, settings
            )
        except Exception as exc:  # a fault of ours, not the network's: a failed attempt too,
            outcome = Outcome(None, _one_line(exc), 0)  # rather than a writer left waiting
        ended.put_nowait((due, outcome))

    sending = asyncio.gather(*(attempt(due) for due in claimed))
    failure: Exception | None = None
    try:
        # The attempts are written as they end, those that end together in one transaction:
        # one each cost more than the attempt itself. One writer: SQLite takes one at a time.
        recorded = 0
        while recorded < len(claimed):
            together = [await ended.get()]
            while not ended.empty():
                together.append(ended.get_nowait())
            recorded += len(together)
            try:
                await _record(db, together, now_ms)
            except Exception as exc:  # not written: their leases run out, they go again
                failure = failure or exc
        await sending
    finally:
        sending.cancel()
    if failure is not None:
        raise failure
    return len(claimed)


async def _claim(db: Database, now_ms: int, lease_ms: int) -> list[_Due]:
    """Take the due deliveries of enabled endpoints until ``lease_ms``, oldest due first."""

    async def take(conn: AsyncConnection) -> list[_Due]:
        query = (
            select(
                _DELIVERIES.c.message,
                _DELIVERIES.c.endpoint,
                _DELIVERIES.c.attempts,
                _ENDPOINTS.c.url,
                _ENDPOINTS.c.secret,
                _ENDPOINTS.c.previous_secret,
                _ENDPOINTS.c.previous_until_ms,
                _OUTBOX.c.payload,
                _OUTBOX.c.created_ms,
            )
            .select_from(
                _DELIVERIES.join(_ENDPOINTS, _ENDPOINTS.c.id == _DELIVERIES.c.endpoint).join(
                    _OUTBOX, _OUTBOX.c.id == _DELIVERIES.c.message
                )
            )
            .where(
                _DELIVERIES.c.state == "pending",
                _DELIVERIES.c.next_ms <= now_ms,
                or_(_DELIVERIES.c.lease_ms.is_(None), _DELIVERIES.c.lease_ms <= now_ms),
                _ENDPOINTS.c.disabled_ms.is_(None),
            )
            .order_by(_DELIVERIES.c.next_ms)
            .limit(BATCH)
        )
        if db.dialect == "postgresql":
            # Rows another replica is claiming are skipped, not waited for; it has them.
            query = query.with_for_update(skip_locked=True, of=_DELIVERIES)
        rows = (await conn.execute(query)).all()
        if not rows:
            return []
        await conn.execute(
            update(_DELIVERIES)
            .where(
                tuple_(_DELIVERIES.c.message, _DELIVERIES.c.endpoint).in_(
                    [(row.message, row.endpoint) for row in rows]
                )
            )
            .values(lease_ms=lease_ms)
        )
        return [
            _Due(
                message=row.message,
                endpoint=row.endpoint,
                url=row.url,
                payload=row.payload,
                created_ms=row.created_ms,
                secrets=signing.signing_secrets(
                    row.secret, row.previous_secret, row.previous_until_ms, now_ms
                ),
                attempts=row.attempts,
                lease_ms=lease_ms,
            )
            for row in rows
        ]

    return await db.arun(take, write=True)


async def send(
    http: httpx.AsyncClient,
    url: str,
    message: str,
    payload: str,
    secrets: Sequence[str],
    now_ms: int,
    settings: Settings,
) -> Outcome:
    """Post one message to ``url``, signed with each of ``secrets``; what came of it.

    Never raises for what the receiver, the network or the guard did: that is the outcome.
    """
    body = payload.encode("utf-8")
    headers = {
        **signing.headers(message, now_ms // 1000, body, tuple(secrets)),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(settings.webhook_timeout_s):
            async with http.stream("POST", url, content=body, headers=headers) as response:
                start = await read_capped(response, MAX_RESPONSE_BYTES)
            status = response.status_code
            if not 200 <= status < 300:
                error = _excerpt(start) or None
    except TimeoutError:
        error = f"no answer within {settings.webhook_timeout_s:g} s"
    except TargetRefused as exc:
        error = exc.message
    except httpx.TimeoutException:
        error = f"no answer within {settings.webhook_timeout_s:g} s"
    except Exception as exc:  # the network's and the receiver's failures are the outcome
        error = _one_line(exc)
    return Outcome(status, error, int((time.monotonic() - started) * 1000))


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """The first ``cap`` bytes of ``response``'s body as sent (not decompressed); the rest is
    left unread, and the connection is closed rather than drained."""
    got = bytearray()
    async for chunk in response.aiter_raw():
        got += chunk[: cap - len(got)]
        if len(got) >= cap:
            break
    return bytes(got)


def _excerpt(body: bytes) -> str:
    text = " ".join(body[: ERROR_EXCERPT_CHARS * 4].decode("utf-8", "replace").split())
    return text[:ERROR_EXCERPT_CHARS]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _describe(outcome: Outcome) -> str:
    if outcome.status is not None:
        return f"HTTP {outcome.status}"
    return outcome.error or "no answer"


async def _record(db: Database, ended: Sequence[tuple[_Due, Outcome]], now_ms: int) -> None:
    """Write the attempts that ended, in one transaction: each, and what it means for its
    delivery and its endpoint. PostgreSQL locks their endpoints in one order (by id), so two
    replicas writing at once never wait on each other in a cycle."""

    async def write(conn: AsyncConnection) -> None:
        for due, outcome in sorted(ended, key=lambda one: (one[0].endpoint, one[0].message)):
            await _write_attempt(conn, db.dialect, due, outcome, now_ms)

    await db.arun(write, write=True)


async def _write_attempt(
    conn: AsyncConnection, dialect: str, due: _Due, outcome: Outcome, now_ms: int
) -> None:
    """Write one attempt, and what it means for its delivery and its endpoint."""
    if dialect == "postgresql":
        # The endpoint first, as everything that locks both; FOR NO KEY UPDATE, so the
        # outbox's new deliveries (their foreign key's KEY SHARE) never wait for it.
        endpoint = select(_ENDPOINTS.c.id).where(_ENDPOINTS.c.id == due.endpoint)
        await conn.execute(endpoint.with_for_update(key_share=True))
    await conn.execute(
        insert(_ATTEMPTS).values(
            message=due.message,
            endpoint=due.endpoint,
            at_ms=now_ms,
            status=outcome.status,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    key = (_DELIVERIES.c.message == due.message, _DELIVERIES.c.endpoint == due.endpoint)
    held = select(_DELIVERIES.c.attempts).where(
        *key, _DELIVERIES.c.state == "pending", _DELIVERIES.c.lease_ms == due.lease_ms
    )
    if dialect == "postgresql":
        held = held.with_for_update()
    if (await conn.execute(held)).first() is None:
        return  # the lease ran out and another claim took over: its result decides
    tried = {"attempts": due.attempts + 1, "lease_ms": None}
    if outcome.delivered:
        await conn.execute(
            update(_DELIVERIES).where(*key).values(**tried, state="delivered", done_ms=now_ms)
        )
        await conn.execute(
            update(_ENDPOINTS).where(_ENDPOINTS.c.id == due.endpoint).values(failing_since_ms=None)
        )
        return
    await conn.execute(update(_DELIVERIES).where(*key).values(**tried))
    if outcome.status == 410:
        await _disable(
            conn,
            due.endpoint,
            now_ms,
            f"the endpoint answered 410 Gone on {rfc3339(now_ms)}: it takes no more"
            " webhooks; enable it again once it does",
        )
        return
    await conn.execute(
        update(_ENDPOINTS)
        .where(_ENDPOINTS.c.id == due.endpoint)
        .values(failing_since_ms=func.coalesce(_ENDPOINTS.c.failing_since_ms, now_ms))
    )
    since = (
        await conn.execute(
            select(_ENDPOINTS.c.failing_since_ms).where(_ENDPOINTS.c.id == due.endpoint)
        )
    ).scalar_one()
    if now_ms - since >= FAILING_LIMIT_MS:
        await _disable(
            conn,
            due.endpoint,
            now_ms,
            f"every delivery failed from {rfc3339(since)} to {rfc3339(now_ms)}"
            f" (last: {_describe(outcome)}); enable it again once it takes webhooks",
        )
        return
    # The window counts from the first attempt of this round: the attempts made since
    # the delivery was (re)queued are its newest ``due.attempts + 1`` rows.
    first = (
        await conn.execute(
            select(_ATTEMPTS.c.at_ms)
            .where(_ATTEMPTS.c.message == due.message, _ATTEMPTS.c.endpoint == due.endpoint)
            .order_by(_ATTEMPTS.c.id.desc())
            .offset(due.attempts)
            .limit(1)
        )
    ).scalar()
    started = max(due.created_ms, now_ms if first is None else first)
    if now_ms - started >= RETRY_WINDOW_MS:
        await conn.execute(update(_DELIVERIES).where(*key).values(state="failed", done_ms=now_ms))
        return
    wait = retry_delay_ms(due.attempts + 1, random.random())
    await conn.execute(update(_DELIVERIES).where(*key).values(next_ms=now_ms + wait))


async def _disable(conn: AsyncConnection, endpoint: str, now_ms: int, reason: str) -> None:
    """Disable ``endpoint`` for ``reason`` and fail its pending deliveries."""
    changed = await conn.execute(
        update(_ENDPOINTS)
        .where(_ENDPOINTS.c.id == endpoint, _ENDPOINTS.c.disabled_ms.is_(None))
        .values(disabled_ms=now_ms, disabled_reason=reason)
    )
    await conn.execute(
        update(_DELIVERIES)
        .where(_DELIVERIES.c.endpoint == endpoint, _DELIVERIES.c.state == "pending")
        .values(state="failed", done_ms=now_ms, lease_ms=None)
    )
    if changed.rowcount:
        _log.warning("webhook endpoint %s disabled: %s", endpoint, reason)


__all__ = [
    "BATCH",
    "ERROR_EXCERPT_CHARS",
    "FAILING_LIMIT_MS",
    "LEASE_SLACK_MS",
    "MAX_RESPONSE_BYTES",
    "RETRY_BASE_MS",
    "RETRY_CAP_MS",
    "RETRY_FLOOR_MS",
    "RETRY_WINDOW_MS",
    "USER_AGENT",
    "Outcome",
    "deliver_due",
    "read_capped",
    "retry_delay_ms",
    "send",
]
