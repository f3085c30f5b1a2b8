"""``GET /v1/audit``, ``/v1/audit.csv`` and ``/v1/audit.ndjson``: the audit log, for owners.

The log (:mod:`..privacy.audit`) is read by people signed in to the dashboard whose groups give
``view`` on the Audit log section over every project: the built-in ``owner`` group. A key never
reads it, nor an admin (the log records what admins did), nor a group scoped to some projects
(the log holds what belongs to none: logins, users, groups): 403 for each. The filters are
``actor``, ``action`` (``key`` keeps ``key.create``, ``key.revoke``...), ``project``, ``from``
and ``to``; the JSON answer is a page, newest first, with the ``before`` of the next; the exports
stream every record the filters keep, a thousand at a time, as CSV (RFC 4180, cells a
spreadsheet would run neutralised) or NDJSON. Reading an export is itself recorded.

:func:`record_request` is how a route or a page records what a request did: the actor is the
key or the person behind the request, the address the client's.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..control.access import Access, Denied
from ..control.registry import NAME_RULE
from ..errors import ApiError
from ..http.auth import SESSION_COOKIE, check_limit, quiet_key, request_address
from ..http.responses import json_response
from ..privacy import audit
from ..reading.formats import BOM, neutralised, rfc3339
from ..reading.params import Params, boolean, check_known, instant, single
from ..service import Service

__all__ = [
    "FILTER_PARAMS",
    "NOT_OWNER",
    "AuditAnswer",
    "AuditItem",
    "audit_filter",
    "audit_reader",
    "record_request",
    "routes",
]

FILTER_PARAMS: Final = ("actor", "action", "project", "from", "to")
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 500
MAX_ACTOR_CHARS: Final = 320
#: ``login``, ``key.create``, ``response.read``: dotted lower-case words.
ACTION_RULE: Final = re.compile(r"[a-z][a-z_]{0,30}(\.[a-z][a-z_]{0,30}){0,3}")
#: The columns of a CSV export, in order.
COLUMNS: Final = ("id", "at", "actor", "action", "project", "target", "detail", "address")
NOT_OWNER: Final = "the audit log is read by owners only: view on Audit log over every project"


class AuditItem(msgspec.Struct, kw_only=True):
    """One record as the API gives it: ``at`` in RFC 3339 (UTC, to the millisecond)."""

    id: int
    at: str
    actor: str
    action: str
    project: str | None
    target: str | None
    detail: dict[str, Any]
    address: str | None


class AuditAnswer(msgspec.Struct, kw_only=True):
    """A page of the log, newest first; ``next``: the ``before`` of the next page, or null."""

    entries: list[AuditItem]
    next: int | None


def item(entry: audit.Entry) -> AuditItem:
    """What a reader sees of ``entry``."""
    return AuditItem(
        id=entry.id,
        at=rfc3339(entry.at_ms),
        actor=entry.actor,
        action=entry.action,
        project=entry.project,
        target=entry.target,
        detail=entry.detail,
        address=entry.address,
    )


def audit_filter(params: Params) -> audit.AuditFilter:
    """The filter ``params`` ask for; ApiError 400 naming the parameter and its rule."""
    actor = single(params, "actor") or None
    if actor is not None and len(actor) > MAX_ACTOR_CHARS:
        raise ApiError(400, f"actor must be at most {MAX_ACTOR_CHARS} characters")
    action = single(params, "action") or None
    if action is not None and not ACTION_RULE.fullmatch(action):
        raise ApiError(
            400, f"action must be dotted lower-case words (key, key.create), got {action!r}"
        )
    project = single(params, "project") or None
    if project is not None and not NAME_RULE.fullmatch(project):
        raise ApiError(400, f"project must be a project's name, got {project!r}")
    start = instant(single(params, "from") or None, "from")
    end = instant(single(params, "to") or None, "to")
    if start is not None and end is not None and end <= start:
        raise ApiError(400, "to must be after from")
    return audit.AuditFilter(
        actor=actor, action=action, project=project, start_ms=start, end_ms=end
    )


def page_params(params: Params) -> tuple[int | None, int]:
    """``before`` (an id, None for the newest page) and ``limit`` (1..:data:`MAX_LIMIT`)."""
    before = _positive(single(params, "before"), "before", 2**62)
    limit = _positive(single(params, "limit"), "limit", MAX_LIMIT)
    return before, DEFAULT_LIMIT if limit is None else limit


def _positive(text: str | None, name: str, high: int) -> int | None:
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= high:
        raise ApiError(400, f"{name} must be an integer 1..{high}, got {text!r}")
    return int(text)


async def audit_reader(request: Request) -> Access:
    """The owner reading the log: a session whose access :func:`audit.may_read`.

    Raises:
        ApiError: 401 without a session or with one that ended, 429 past the limits.
        Denied: 403 for a key (keys never read the log) and for anyone not an owner.
    """
    service: Service = request.app.state.service
    now = time.monotonic()
    check_limit(service, "address", request_address(request, service), now)
    if "authorization" in request.headers or "key" in request.query_params:
        raise Denied(f"{NOT_OWNER}, logged in to the dashboard; a key never reads it")
    token = request.cookies.get(SESSION_COOKIE, "")
    session = await service.people.session(token) if token else None
    if session is None:
        raise ApiError(401, "the audit log is read by an owner logged in at /app/login")
    check_limit(service, "key", session.access.who, now)
    if session.user.must_change_password:
        raise Denied("choose your own password first, at /app/password")
    if not audit.may_read(session.access):
        raise Denied(NOT_OWNER)
    return session.access


async def actor_of(request: Request, service: Service) -> str:
    """Who made ``request``: ``key:ID`` for a key, ``user:EMAIL`` for a session. Only what
    was done is recorded, so there is always one; 401 otherwise, never a record of nobody."""
    raw, _ = quiet_key(request)
    if raw:
        found = service.registry.authenticate(raw)
        if found is not None:
            return audit.key_actor(found[0].id)
    token = request.cookies.get(SESSION_COOKIE, "")
    session = await service.people.session(token) if token else None
    if session is not None:
        return session.access.who
    raise ApiError(401, "who made this request is not known")


async def record_request(
    request: Request,
    *,
    action: str,
    actor: str | None = None,
    project: str | None = None,
    target: str | None = None,
    detail: Mapping[str, object] | None = None,
) -> None:
    """Record what ``request`` did: by ``actor`` (found from the request when not given), from
    the client's address, in a transaction of its own."""
    service: Service = request.app.state.service
    await audit.record(
        service.registry.db,
        actor=actor or await actor_of(request, service),
        action=action,
        project=project,
        target=target,
        detail=detail,
        address=request_address(request, service),
    )


def query_detail(params: Params, skip: Iterable[str] = ()) -> dict[str, object]:
    """A request's query parameters as an audit detail (``filters``): each name with its
    value, or its values when repeated; ``skip`` left out (``project``, already its own)."""
    found: dict[str, object] = {}
    for name in sorted(set(params.keys()) - set(skip)):
        values = params.getlist(name)
        found[name] = values[0] if len(values) == 1 else values
    return found


async def list_audit(request: Request) -> Response:
    """``GET /v1/audit``: a page of the log, newest first."""
    service: Service = request.app.state.service
    await audit_reader(request)
    params = request.query_params
    check_known(params, (*FILTER_PARAMS, "before", "limit"))
    kept = audit_filter(params)
    before, limit = page_params(params)
    rows, following = await audit.read_page(service.registry.db, kept, before=before, limit=limit)
    service.metrics.request("audit", 200)
    return json_response(200, AuditAnswer(entries=[item(e) for e in rows], next=following), {})


def _csv_line(cells: Iterable[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([neutralised(c) for c in cells])
    return out.getvalue().encode()


_encode = msgspec.json.Encoder(order="sorted").encode


def csv_rows(rows: list[audit.Entry]) -> bytes:
    """``rows`` as CSV lines: ``detail`` as JSON, empty cells for nulls."""
    return b"".join(
        _csv_line(
            [
                str(e.id),
                rfc3339(e.at_ms),
                e.actor,
                e.action,
                e.project or "",
                e.target or "",
                _encode(e.detail).decode(),
                e.address or "",
            ]
        )
        for e in rows
    )


def ndjson_rows(rows: list[audit.Entry]) -> bytes:
    """``rows`` as NDJSON: one :class:`AuditItem` a line."""
    return b"".join(_encode(item(e)) + b"\n" for e in rows)


async def export_csv(request: Request) -> Response:
    """``GET /v1/audit.csv`` (``bom=true``: a byte order mark for Excel)."""
    return await _export(request, "csv")


async def export_ndjson(request: Request) -> Response:
    """``GET /v1/audit.ndjson``."""
    return await _export(request, "ndjson")


async def _export(request: Request, name: str) -> Response:
    service: Service = request.app.state.service
    access = await audit_reader(request)
    params = request.query_params
    check_known(params, (*FILTER_PARAMS, *(("bom",) if name == "csv" else ())))
    kept = audit_filter(params)
    bom = bool(boolean(single(params, "bom"), "bom"))
    db = service.registry.db
    batches = audit.read_all(db, kept)
    first = await anext(batches, None)  # a database that can't be read: an error, not a cut file
    await record_request(
        request,
        actor=access.who,
        action="audit.export",
        detail={"format": name, **query_detail(params)},
    )

    async def body() -> AsyncIterator[bytes]:
        if name == "csv":
            yield (BOM if bom else "").encode() + _csv_line(COLUMNS)
        write = csv_rows if name == "csv" else ndjson_rows
        if first is not None:
            yield write(first)
            async for rows in batches:
                yield write(rows)

    stamp = datetime.fromtimestamp(time.time(), UTC).strftime("%Y%m%dT%H%M%SZ")
    media = "text/csv; charset=utf-8" if name == "csv" else "application/x-ndjson"
    service.metrics.request("audit", 200)
    return StreamingResponse(
        body(),
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="audit-{stamp}.{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def routes() -> list[Route]:
    """The audit log's API, for the application's table."""
    return [
        Route("/v1/audit", list_audit, methods=["GET"], name="audit"),
        Route("/v1/audit.csv", export_csv, methods=["GET"], name="audit"),
        Route("/v1/audit.ndjson", export_ndjson, methods=["GET"], name="audit"),
    ]
