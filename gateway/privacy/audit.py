"""The audit log: who did what to whose data, and when, append-only and free of secrets.

Every audited action (a login, a response read by id, an export, an erasure, a change of keys,
users, groups, webhooks, rules or a privacy policy) writes one row of ``audit_log`` through
:func:`record` (a transaction of its own) or :func:`record_in` (inside the caller's, so the
record and the change commit together or not at all). Nothing updates or deletes a row except
:func:`expire_audit`, which drops rows older than ``audit_retention_days``: the log is kept
apart from the events, for its own time.

``actor`` is who did it: ``user:EMAIL`` or ``key:ID`` (:attr:`Access.who`), ``cli:operator``
for the command line, ``system:JOB`` for background jobs. ``detail`` holds the rest (filters,
counts, names), never a secret: it is the one door every record passes, so the rule is kept
here, once. A value that is or holds a key, a webhook secret or a password-like field is cut
to what messages may show (:func:`..control.registry.shown`'s public id), whoever the caller.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec
from sqlalchemy import ColumnElement, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop_core import DAY_MS

from ..control.access import Access
from ..control.db import Database
from ..control.registry import ID_LENGTH
from ..control.tables import audit_log

#: ``key:ID``, ``user:EMAIL``, ``cli:operator``, ``system:JOB``.
ACTOR_KINDS: Final = ("user", "key", "cli", "system")
#: The operator at the command line: the CLI has no login of its own.
CLI_ACTOR: Final = "cli:operator"
#: A secret of this codebase: a key (``pk_``/``sk_``/``rk_`` and 43 characters) or a webhook
#: signing secret (``whsec_``), wherever it appears in a text; cut to its public id.
_SECRET: Final = re.compile(r"\b((?:pk|sk|rk)_|whsec_)[A-Za-z0-9_\-+/=]{9,}")
#: Names of detail fields whose values are never kept, whatever they hold.
_SECRET_FIELDS: Final = re.compile(r"pass|secret|token|hash|cookie|authorization", re.I)
_HIDDEN: Final = "[hidden]"
#: Longest text kept of one value: an audit record says what, not the whole of it.
MAX_VALUE_CHARS: Final = 500
#: How many rows one call of :func:`expire_audit` deletes at most: bounded transactions.
EXPIRE_BATCH: Final = 5_000


def system_actor(job: str) -> str:
    """The actor of a background job: ``system:retention``."""
    return f"system:{job}"


def key_actor(key_id: str) -> str:
    """The actor of a request signed with a key: ``key:sk_AbCdEfGh`` (its public id)."""
    return f"key:{key_id[:ID_LENGTH]}"


def url_host(url: str) -> str:
    """What the log keeps of a URL: its host. The path and query of a webhook's URL often hold
    a token (a chat tool's incoming-webhook URL is itself the secret)."""
    return urlsplit(url).hostname or ""


def webhook_detail(url: str, event_types: Iterable[str]) -> dict[str, object]:
    """What the log keeps of a webhook endpoint: the host it posts to and the events it takes."""
    return {"host": url_host(url), "event_types": sorted(event_types)}


def unsecret(text: str) -> str:
    """``text`` with every key or webhook secret in it cut to its public id (``sk_AbCdEfGh…``)."""

    def cut(found: re.Match[str]) -> str:
        whole = found.group(0)
        if found.group(1) == "whsec_":
            return "whsec_…"
        return whole[:ID_LENGTH] + "…" if len(whole) > ID_LENGTH else whole

    return _SECRET.sub(cut, text)[:MAX_VALUE_CHARS]


def clean(value: object) -> object:
    """``value`` (a detail) as the log keeps it: JSON types, secrets cut, secret fields hidden."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return unsecret(value)
    if isinstance(value, Mapping):
        return {
            str(k): (_HIDDEN if _SECRET_FIELDS.search(str(k)) else clean(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [clean(v) for v in items]
    return unsecret(str(value))


def _row(
    actor: str,
    action: str,
    project: str | None,
    target: str | None,
    detail: Mapping[str, object] | None,
    address: str | None,
    now_ms: int | None,
) -> dict[str, object]:
    kind = actor.partition(":")[0]
    if kind not in ACTOR_KINDS:
        raise ValueError(f"audit actor {actor!r} must start with one of {ACTOR_KINDS}")
    return {
        "at_ms": _now_ms() if now_ms is None else now_ms,
        "actor": unsecret(actor),
        "action": action,
        "project": project,
        "target": None if target is None else unsecret(target),
        "detail": msgspec.json.encode(clean(dict(detail or {})), order="sorted").decode(),
        "address": address,
    }


async def record_in(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    project: str | None = None,
    target: str | None = None,
    detail: Mapping[str, object] | None = None,
    address: str | None = None,
    now_ms: int | None = None,
) -> None:
    """Append one record inside the caller's transaction: it commits with the change or not."""
    await _writer(_row(actor, action, project, target, detail, address, now_ms))(conn)


def _writer(row: dict[str, object]) -> Callable[[AsyncConnection], Awaitable[None]]:
    """The work that appends ``row``, for a transaction of the caller's or of its own."""

    async def write(conn: AsyncConnection) -> None:
        await conn.execute(insert(audit_log).values(**row))

    return write


async def record(
    db: Database,
    *,
    actor: str,
    action: str,
    project: str | None = None,
    target: str | None = None,
    detail: Mapping[str, object] | None = None,
    address: str | None = None,
    now_ms: int | None = None,
) -> None:
    """Append one record in a transaction of its own, from code on the gateway's event loop."""
    await db.arun(
        _writer(_row(actor, action, project, target, detail, address, now_ms)), write=True
    )


def record_sync(
    db: Database,
    *,
    actor: str = CLI_ACTOR,
    action: str,
    project: str | None = None,
    target: str | None = None,
    detail: Mapping[str, object] | None = None,
    now_ms: int | None = None,
) -> None:
    """:func:`record` for synchronous code (the CLI): waits for the row to be written."""
    db.run(_writer(_row(actor, action, project, target, detail, None, now_ms)), write=True)


async def expire_audit(db: Database, now_ms: int, days: int, batch: int = EXPIRE_BATCH) -> int:
    """Delete the records older than ``days`` (the setting ``audit_retention_days``); how many
    went.

    In bounded batches (``batch`` rows a transaction), oldest first, so a first run over years
    of records never holds the database's write lock for long.
    """
    before = now_ms - days * DAY_MS

    async def oldest(conn: AsyncConnection) -> int:
        ids = select(audit_log.c.id).where(audit_log.c.at_ms < before).order_by(audit_log.c.id)
        done = await conn.execute(delete(audit_log).where(audit_log.c.id.in_(ids.limit(batch))))
        return int(done.rowcount or 0)

    removed = 0
    while True:
        count = await db.arun(oldest, write=True)
        removed += count
        if count < batch:
            return removed


def may_read(access: Access) -> bool:
    """Whether ``access`` reads the audit log: ``view`` on ``audit`` over every project.

    The log spans projects and what belongs to none (logins, users, groups), and records what
    admins did too, so only a grant without a scope reads it: the built-in ``owner`` group (a
    group made by ``voxloop-gateway groups`` is always scoped to its projects).
    """
    return any(
        grant.scopes is None and grant.level("audit") in ("view", "edit") for grant in access.grants
    )


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One record as the API, the exports and the page show it; ``at`` in epoch ms."""

    id: int
    at_ms: int
    actor: str
    action: str
    project: str | None
    target: str | None
    detail: dict[str, Any]
    address: str | None


class AuditFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What a reader of the log keeps; every field given must hold.

    Attributes:
        actor: exactly this actor (``user:ana@example.com``, ``key:sk_AbCdEfGh``).
        action: this action, or every action under it: ``key`` keeps ``key.create`` and
            ``key.revoke``.
        project: records about this project.
        start_ms, end_ms: recorded at or after ``start_ms`` and before ``end_ms``.
    """

    actor: str | None = None
    action: str | None = None
    project: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None


_DETAIL: Final = msgspec.json.Decoder(dict[str, Any])


def _conditions(kept: AuditFilter) -> list[ColumnElement[bool]]:
    c = audit_log.c
    found: list[ColumnElement[bool]] = []
    if kept.actor is not None:
        found.append(c.actor == kept.actor)
    if kept.action is not None:
        under = kept.action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        found.append(or_(c.action == kept.action, c.action.like(under + ".%", escape="\\")))
    if kept.project is not None:
        found.append(c.project == kept.project)
    if kept.start_ms is not None:
        found.append(c.at_ms >= kept.start_ms)
    if kept.end_ms is not None:
        found.append(c.at_ms < kept.end_ms)
    return found


async def read_page(
    db: Database, kept: AuditFilter, *, before: int | None = None, limit: int = 100
) -> tuple[list[Entry], int | None]:
    """Newest first: up to ``limit`` records of ``kept`` with an id below ``before``, and the
    ``before`` of the next page (None on the last).

    Pages follow the id (a keyset, not an offset): records written meanwhile never shift a
    page, and the ids grow with time, so the order is the order of writing.
    """

    async def read(conn: AsyncConnection) -> list[Entry]:
        query = select(audit_log).where(*_conditions(kept))
        if before is not None:
            query = query.where(audit_log.c.id < before)
        found = await conn.execute(query.order_by(audit_log.c.id.desc()).limit(limit + 1))
        return [_entry(row) for row in found]

    rows = await db.arun(read)
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


async def read_all(
    db: Database, kept: AuditFilter, batch: int = 1_000
) -> AsyncIterator[list[Entry]]:
    """Every record of ``kept``, newest first, a batch at a time: an export's memory stays flat."""
    before: int | None = None
    while True:
        rows, before = await read_page(db, kept, before=before, limit=batch)
        if rows:
            yield rows
        if before is None:
            return


def _entry(row: Any) -> Entry:
    return Entry(
        id=row.id,
        at_ms=row.at_ms,
        actor=row.actor,
        action=row.action,
        project=row.project,
        target=row.target,
        detail=_DETAIL.decode(row.detail),
        address=row.address,
    )


def _now_ms() -> int:
    return int(time.time() * 1000)
