"""Webhooks: a project's endpoints, their delivery log, and redelivery.

An endpoint is a URL (through the SSRF guard, :mod:`.ssrf`), the event types it takes
(:data:`.outbox.EVENT_TYPES`) and a ``whsec_`` secret that signs every delivery
(:mod:`.signing`). :func:`add`, :func:`rotate_secret`, :func:`remove`, :func:`enable`,
:func:`redeliver` and the reads serve the CLI (``voxloop-gateway webhooks``) and
``/v1/webhooks`` alike; bad input is an :class:`~..errors.ApiError` naming the field.

The worker that delivers the outbox to the endpoints is :mod:`.webhook_delivery`'s
:func:`deliver_due`, also exported here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

import msgspec
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..control import tables
from ..control.db import Database
from ..errors import ApiError
from ..settings import Network
from . import signing
from .outbox import EVENT_TYPES, new_id
from .ssrf import TargetRefused, check_url
from .webhook_delivery import deliver_due

#: The longest description an endpoint may have.
MAX_DESCRIPTION_CHARS: Final = 500
#: What the delivery log pages hold by default, and at most.
DEFAULT_LOG_LIMIT: Final = 50
MAX_LOG_LIMIT: Final = 500

_ENDPOINTS = tables.webhook_endpoints
_DELIVERIES = tables.webhook_deliveries
_ATTEMPTS = tables.webhook_attempts
_OUTBOX = tables.outbox


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    """An endpoint as stored, without its secrets.

    Attributes:
        previous_until_ms: while a rotated secret overlaps, when the previous one stops
            signing; None otherwise.
        failing_since_ms: the first failure of its current streak; None after a success.
        disabled_ms, disabled_reason: when and why it was disabled (a 410, or failing for
            :data:`.webhook_delivery.FAILING_LIMIT_MS`); None while it is enabled.
    """

    id: str
    project: str
    url: str
    event_types: tuple[str, ...]
    description: str
    created_ms: int
    previous_until_ms: int | None
    failing_since_ms: int | None
    disabled_ms: int | None
    disabled_reason: str | None

    @property
    def state(self) -> str:
        """``disabled``, ``failing`` (enabled, in a streak of failures) or ``active``."""
        if self.disabled_ms is not None:
            return "disabled"
        return "failing" if self.failing_since_ms is not None else "active"


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt of the delivery log, with the state of its delivery now.

    Attributes:
        status: the HTTP status answered; None when no answer came (see ``error``).
        error: why the attempt failed (the connection's error, the timeout, the guard's
            refusal, or the start of a failed answer's body); None on success.
        state: the delivery's state now: ``pending``, ``delivered`` or ``failed``.
    """

    id: int
    message: str
    event_type: str
    at_ms: int
    status: int | None
    error: str | None
    duration_ms: int
    state: str


# --- endpoints -----------------------------------------------------------------------------


def check_event_types(given: object) -> tuple[str, ...]:
    """The event types an endpoint takes, in :data:`EVENT_TYPES`'s order, each once.

    Raises:
        ApiError: 422 naming ``event_types``: not a list of strings, empty, or an unknown type.
    """
    known = ", ".join(EVENT_TYPES)
    if not isinstance(given, (list, tuple)) or not all(isinstance(t, str) for t in given):
        raise ApiError(422, f"event_types must be a list of event types, of: {known}")
    unknown = [t for t in given if t not in EVENT_TYPES]
    if unknown:
        raise ApiError(422, f"event_types has an unknown type {unknown[0]!r}; known: {known}")
    if not given:
        raise ApiError(422, f"event_types must name at least one event type, of: {known}")
    return tuple(t for t in EVENT_TYPES if t in given)


def check_description(given: object) -> str:
    """An endpoint's description; ApiError 422 naming ``description`` unless it is text of at
    most :data:`MAX_DESCRIPTION_CHARS` characters."""
    if not isinstance(given, str) or len(given) > MAX_DESCRIPTION_CHARS or "\x00" in given:
        raise ApiError(
            422, f"description must be text of at most {MAX_DESCRIPTION_CHARS} characters"
        )
    return given.strip()


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        id=row.id,
        project=row.project,
        url=row.url,
        event_types=tuple(json.loads(row.event_types)),
        description=row.description,
        created_ms=row.created_ms,
        previous_until_ms=row.previous_until_ms,
        failing_since_ms=row.failing_since_ms,
        disabled_ms=row.disabled_ms,
        disabled_reason=row.disabled_reason,
    )


_SHOWN = (
    _ENDPOINTS.c.id,
    _ENDPOINTS.c.project,
    _ENDPOINTS.c.url,
    _ENDPOINTS.c.event_types,
    _ENDPOINTS.c.description,
    _ENDPOINTS.c.created_ms,
    _ENDPOINTS.c.previous_until_ms,
    _ENDPOINTS.c.failing_since_ms,
    _ENDPOINTS.c.disabled_ms,
    _ENDPOINTS.c.disabled_reason,
)


async def _one(
    conn: AsyncConnection, project: str | None, endpoint_id: str, *, lock: bool = False
) -> Endpoint:
    """The endpoint ``endpoint_id`` (of ``project``, when given); ApiError 404 if none.

    ``lock`` takes its row until the transaction ends (PostgreSQL; SQLite's write transaction
    holds the whole database). Whatever writes an endpoint's deliveries as a whole locks the
    endpoint first, as every attempt's record does: one order, no deadlock.
    """
    query = select(*_SHOWN).where(_ENDPOINTS.c.id == endpoint_id)
    if project is not None:
        query = query.where(_ENDPOINTS.c.project == project)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        where = "" if project is None else f" in project {project!r}"
        raise ApiError(404, f"no webhook endpoint {endpoint_id!r}{where}")
    return _endpoint(row)


async def add(
    db: Database,
    allow: Iterable[Network],
    project: str,
    url: str,
    event_types: object,
    description: object,
    now_ms: int,
) -> tuple[Endpoint, str]:
    """Add an endpoint of ``project``; returns it and its ``whsec_`` secret (shown once).

    The URL goes through the SSRF guard now (and again at every delivery).

    Raises:
        ApiError: 422 naming ``url`` (not http(s), refused by the guard, not resolving),
            ``event_types`` or ``description``; 404 for a project that doesn't exist.
    """
    types = check_event_types(event_types)
    text = check_description(description)
    if not isinstance(url, str):
        raise TargetRefused("url must be an http or https URL")
    checked = await check_url(url, allow)
    secret = signing.new_secret()
    endpoint = Endpoint(
        id=new_id("ep_"),
        project=project,
        url=checked,
        event_types=types,
        description=text,
        created_ms=now_ms,
        previous_until_ms=None,
        failing_since_ms=None,
        disabled_ms=None,
        disabled_reason=None,
    )

    async def write(conn: AsyncConnection) -> None:
        found = await conn.execute(
            select(tables.projects.c.id).where(tables.projects.c.id == project)
        )
        if found.first() is None:
            raise ApiError(404, f"no project {project!r}")
        await conn.execute(
            insert(_ENDPOINTS).values(
                id=endpoint.id,
                project=project,
                url=checked,
                event_types=json.dumps(list(types)),
                secret=secret,
                description=text,
                created_ms=now_ms,
            )
        )

    await db.arun(write, write=True)
    return endpoint, secret


async def list_endpoints(db: Database, project: str | None = None) -> list[Endpoint]:
    """The endpoints of ``project`` (of every project when None), oldest first."""

    async def read(conn: AsyncConnection) -> list[Endpoint]:
        query = select(*_SHOWN).order_by(_ENDPOINTS.c.project, _ENDPOINTS.c.created_ms)
        if project is not None:
            query = query.where(_ENDPOINTS.c.project == project)
        return [_endpoint(row) for row in await conn.execute(query)]

    return await db.arun(read)


async def get(db: Database, project: str | None, endpoint_id: str) -> Endpoint:
    """The endpoint ``endpoint_id`` of ``project`` (None: any); ApiError 404 if there is none."""

    async def read(conn: AsyncConnection) -> Endpoint:
        return await _one(conn, project, endpoint_id)

    return await db.arun(read)


async def remove(db: Database, project: str | None, endpoint_id: str) -> Endpoint:
    """Remove an endpoint with its deliveries and their log; the outbox's messages stay.

    Raises:
        ApiError: 404 if there is no such endpoint (in ``project``, when given).
    """

    async def write(conn: AsyncConnection) -> Endpoint:
        found = await _one(conn, project, endpoint_id, lock=True)
        await conn.execute(delete(_ATTEMPTS).where(_ATTEMPTS.c.endpoint == found.id))
        await conn.execute(delete(_DELIVERIES).where(_DELIVERIES.c.endpoint == found.id))
        await conn.execute(delete(_ENDPOINTS).where(_ENDPOINTS.c.id == found.id))
        return found

    return await db.arun(write, write=True)


async def rotate_secret(
    db: Database, project: str | None, endpoint_id: str, now_ms: int
) -> tuple[Endpoint, str]:
    """Give an endpoint a new secret; returns it and the secret (shown once).

    The secret it had goes on signing beside the new one for
    :data:`~.signing.ROTATION_OVERLAP_MS` (a secret older than that, from an earlier rotation,
    stops at once): receivers switch without missing a message.
    """
    secret = signing.new_secret()

    async def write(conn: AsyncConnection) -> Endpoint:
        await _one(conn, project, endpoint_id)
        await conn.execute(
            update(_ENDPOINTS)
            .where(_ENDPOINTS.c.id == endpoint_id)
            .values(
                previous_secret=_ENDPOINTS.c.secret,
                previous_until_ms=now_ms + signing.ROTATION_OVERLAP_MS,
                secret=secret,
            )
        )
        return await _one(conn, project, endpoint_id)

    return await db.arun(write, write=True), secret


async def enable(db: Database, project: str | None, endpoint_id: str) -> Endpoint:
    """Enable a disabled endpoint again, with a clean record of failures.

    Messages from now on are delivered to it; deliveries failed while it was disabled stay
    failed (:func:`redeliver` sends one again).
    """

    async def write(conn: AsyncConnection) -> Endpoint:
        await _one(conn, project, endpoint_id)
        await conn.execute(
            update(_ENDPOINTS)
            .where(_ENDPOINTS.c.id == endpoint_id)
            .values(disabled_ms=None, disabled_reason=None, failing_since_ms=None)
        )
        return await _one(conn, project, endpoint_id)

    return await db.arun(write, write=True)


async def redeliver(db: Database, message: str, endpoint: str, now_ms: int) -> None:
    """Deliver ``message`` to ``endpoint`` again, from now: pending, with the same id.

    Its delivery starts afresh (attempts counted from 0, a new retry window). A message the
    endpoint never had is delivered to it if it takes the message's type. An attempt in flight
    (its lease not run out) is let finish first: a claim is known by its lease, which only a
    later claim replaces, so a result is never written over a round that began after it.

    Raises:
        ApiError: 404 naming ``endpoint`` or ``message`` when there is no such one (a message
            of another project is none); 409 when the endpoint is disabled (enable it first)
            or the message is being sent to it now; 422 naming ``message`` when the endpoint
            doesn't take its type.
    """

    async def write(conn: AsyncConnection) -> None:
        target = await _one(conn, None, endpoint)
        if target.disabled_ms is not None:
            raise ApiError(409, f"webhook endpoint {endpoint!r} is disabled: enable it first")
        found = await conn.execute(
            select(_OUTBOX.c.project, _OUTBOX.c.event_type).where(_OUTBOX.c.id == message)
        )
        row = found.first()
        if row is None or row.project != target.project:
            raise ApiError(404, f"no message {message!r} in project {target.project!r}")
        key = (_DELIVERIES.c.message == message, _DELIVERIES.c.endpoint == endpoint)
        held = select(_DELIVERIES.c.state, _DELIVERIES.c.lease_ms).where(*key)
        if db.dialect == "postgresql":
            held = held.with_for_update()
        current = (await conn.execute(held)).first()
        fresh = {"state": "pending", "attempts": 0, "next_ms": now_ms, "lease_ms": None}
        if current is not None:
            if current.state == "pending" and (current.lease_ms or 0) > now_ms:
                raise ApiError(
                    409,
                    f"message {message!r} is being sent to {endpoint!r} now: redeliver it once"
                    " this attempt has ended",
                )
            await conn.execute(update(_DELIVERIES).where(*key).values(**fresh, done_ms=None))
            return
        if row.event_type not in target.event_types:
            raise ApiError(
                422,
                f"message {message!r} is a {row.event_type} event, which the endpoint doesn't take",
            )
        await conn.execute(insert(_DELIVERIES).values(message=message, endpoint=endpoint, **fresh))

    await db.arun(write, write=True)


async def attempts(
    db: Database, endpoint: str, *, before: int | None = None, limit: int = DEFAULT_LOG_LIMIT
) -> tuple[list[Attempt], int | None]:
    """A page of the endpoint's delivery log, newest first, and where the next page starts.

    Args:
        before: only attempts with an id below this (the previous page's ``next``).
        limit: the most attempts in the page, 1 to :data:`MAX_LOG_LIMIT`.

    Returns:
        The attempts, and the ``before`` of the next page (None on the last page).
    """
    limit = max(1, min(limit, MAX_LOG_LIMIT))

    async def read(conn: AsyncConnection) -> list[Attempt]:
        query = (
            select(
                _ATTEMPTS.c.id,
                _ATTEMPTS.c.message,
                _OUTBOX.c.event_type,
                _ATTEMPTS.c.at_ms,
                _ATTEMPTS.c.status,
                _ATTEMPTS.c.error,
                _ATTEMPTS.c.duration_ms,
                _DELIVERIES.c.state,
            )
            .select_from(
                _ATTEMPTS.join(_OUTBOX, _OUTBOX.c.id == _ATTEMPTS.c.message).outerjoin(
                    _DELIVERIES,
                    (_DELIVERIES.c.message == _ATTEMPTS.c.message)
                    & (_DELIVERIES.c.endpoint == _ATTEMPTS.c.endpoint),
                )
            )
            .where(_ATTEMPTS.c.endpoint == endpoint)
            .order_by(_ATTEMPTS.c.id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(_ATTEMPTS.c.id < before)
        return [
            Attempt(
                id=row.id,
                message=row.message,
                event_type=row.event_type,
                at_ms=row.at_ms,
                status=row.status,
                error=row.error,
                duration_ms=row.duration_ms,
                state=row.state or "failed",
            )
            for row in await conn.execute(query)
        ]

    page = await db.arun(read)
    return page, (page[-1].id if len(page) == limit else None)


__all__ = [
    "DEFAULT_LOG_LIMIT",
    "MAX_DESCRIPTION_CHARS",
    "MAX_LOG_LIMIT",
    "Attempt",
    "Endpoint",
    "add",
    "attempts",
    "check_description",
    "check_event_types",
    "deliver_due",
    "enable",
    "get",
    "list_endpoints",
    "redeliver",
    "remove",
    "rotate_secret",
]
