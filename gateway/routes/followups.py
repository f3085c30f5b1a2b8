"""``/v1/followups``: the follow-up inbox, listed, read with its history, worked on, assigned.

- ``GET /v1/followups``: a project's items, newest first, a page at a time: ``view`` (``all``,
  ``mine``, ``unassigned``, ``overdue``), ``channel``, ``form``, ``status``, ``limit``,
  ``cursor``.
- ``GET /v1/followups/{id}``: one item, its changes (who, when, what), its response with the
  vote history and the respondent's other feedback.
- ``PATCH /v1/followups/{id}``: ``status``, ``assignee`` (a user's id or email, null to
  unassign), ``tags``, ``resolution`` (required to resolve or close).
- ``POST /v1/followups/{id}/notes``: an internal note.
- ``POST /v1/followups/assign``: ``ids`` and one ``assignee`` for all of them, all or nothing.

Everything is a person's, logged in, on the "Follow-up inbox" section (``inbox``): ``view`` to
read, ``edit`` to change, each change sent as JSON with the session's CSRF token in
``X-CSRF-Token``. A person sees and changes only the items of the channels and forms their inbox
scope covers (:meth:`~..control.access.Access.visible`); an item outside it is a 404, exactly as
one that doesn't exist. The rules of an item are :mod:`..followups.items`'s.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..control.access import Denied
from ..control.people import Session
from ..control.registry import Project
from ..errors import ApiError
from ..followups import items
from ..followups.items import Change, Edit, FollowupItem
from ..http.auth import SESSION_COOKIE, person_changing, reader
from ..http.body import json_body
from ..http.responses import json_response
from ..reading import find
from ..reading.formats import ResponseItem
from ..reading.formats import item as response_item
from ..reading.params import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ChannelForms,
    check_known,
    repeated,
    scope,
    single,
)
from ..service import Service

#: The most a change's body may hold: a note of 5,000 characters, or 500 ids.
#: Most items one bulk assignment takes.
MAX_BULK: Final = 500
LIST_PARAMS: Final = ("project", "view", "channel", "form", "status", "limit", "cursor")
NOT_FOUND: Final = "no such follow-up"
_ID: Final = re.compile(r"fu_[0-9a-z]{26}")
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class FollowupsAnswer(msgspec.Struct, kw_only=True):
    """A page of items, and the cursor of the next page (null on the last one)."""

    followups: list[FollowupItem]
    next: str | None


class FollowupDetail(msgspec.Struct, kw_only=True):
    """One item with its changes (oldest first), its response as it is now (null if it is
    gone), that response's vote history and the respondent's other feedback the asker may see
    (as ``GET /v1/responses/{ref}`` gives them)."""

    followup: FollowupItem
    changes: list[Change]
    response: ResponseItem | None
    history: list[ResponseItem]
    others: list[ResponseItem]


class Note(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /v1/followups/{id}/notes``."""

    text: str


class Bulk(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /v1/followups/assign``: these items, to this user (null: nobody)."""

    ids: list[str]
    assignee: str | None


class BulkAnswer(msgspec.Struct, kw_only=True):
    """The items as assigned, in the order asked."""

    followups: list[FollowupItem]


class Asker(msgspec.Struct, frozen=True):
    """Who asks (their session), on which project, and what of its inbox they see."""

    service: Service
    session: Session
    project: Project
    channels: ChannelForms


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def asker(
    request: Request,
    *,
    edit: bool,
    channels: tuple[str, ...] | None = None,
    forms: tuple[str, ...] | None = None,
) -> Asker:
    """Who asks and what of the project's inbox they see (the channels and forms asked, cut to
    their scope: 403 for one outside it); for a change, ``edit`` and the CSRF token too.

    Keys never reach the inbox (their access has no ``inbox`` section: 403).
    """
    service: Service = request.app.state.service
    access, project = await reader(request, service, "inbox")
    if edit:
        session = await person_changing(
            request, service, access, "inbox", project, "follow-ups are"
        )
    else:
        token = request.cookies.get(SESSION_COOKIE, "")
        found = await service.people.session(token) if token else None
        if found is None:
            raise Denied("the follow-up inbox is a person's: log in to the dashboard")
        session = found
    return Asker(service, session, project, scope(access, "inbox", project, channels, forms))


def encode_cursor(item: FollowupItem) -> str:
    """The cursor of the page after ``item``: its place in the order, ``(created, id)``."""
    moment = datetime.fromisoformat(item.created.replace("Z", "+00:00"))
    created_ms = (moment - EPOCH) // timedelta(milliseconds=1)  # exact, unlike a float
    return base64.urlsafe_b64encode(f"{created_ms}.{item.id}".encode()).rstrip(b"=").decode()


def decode_cursor(text: str) -> tuple[int, str]:
    """The place a cursor names; 400 naming ``cursor`` for anything this route didn't give."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        created, item_id = raw.split(".", 1)
        if not created.isdigit() or len(created) > 15 or not _ID.fullmatch(item_id):
            raise ValueError(raw)
        return int(created), item_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(400, "cursor is not valid: use the `next` of the page before") from None


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise ApiError(400, f"limit must be an integer 1..{MAX_LIMIT}, got {text!r}")
    return int(text)


def _view(text: str | None) -> items.View:
    if text is None:
        return "all"
    for view in items.VIEWS:
        if text == view:
            return view
    raise ApiError(400, f"view must be one of {', '.join(items.VIEWS)}; got {text!r}")


def _statuses(values: tuple[str, ...] | None) -> tuple[str, ...] | None:
    for value in values or ():
        if value not in items.STATUSES:
            known = ", ".join(items.STATUSES)
            raise ApiError(400, f"status must be one of {known}; got {value!r}")
    return values


async def list_followups(request: Request) -> Response:
    """Answer ``GET /v1/followups``."""
    params = request.query_params
    check_known(params, LIST_PARAMS)
    view = _view(single(params, "view"))
    statuses = _statuses(repeated(params, "status"))
    limit = _limit(single(params, "limit"))
    text = single(params, "cursor")
    after = None if text is None else decode_cursor(text)
    who = await asker(
        request, edit=False, channels=repeated(params, "channel"), forms=repeated(params, "form")
    )
    when = now_ms()

    async def read(conn: AsyncConnection) -> list[FollowupItem]:
        return await items.list_items(
            conn,
            who.project.id,
            who.channels,
            view=view,
            me=who.session.user.id,
            statuses=statuses,
            after=after,
            limit=limit + 1,
            now_ms=when,
        )

    page = await who.service.registry.db.arun(read)
    following = None
    if len(page) > limit:
        page = page[:limit]
        following = encode_cursor(page[-1])
    who.service.metrics.request("followups", 200)
    answer = FollowupsAnswer(followups=page, next=following)
    return json_response(200, answer, {})


async def _row_in_scope(conn: AsyncConnection, who: Asker, item_id: str, *, lock: bool) -> Any:
    """The item's row if the asker may see it; 404 alike for one unknown and one outside."""
    row = None if not _ID.fullmatch(item_id) else await items.read_row(conn, item_id, lock=lock)
    if row is None or row.project != who.project.id or not items.visible(row, who.channels):
        raise ApiError(404, NOT_FOUND)
    return row


async def get_followup(request: Request) -> Response:
    """Answer ``GET /v1/followups/{id}``."""
    check_known(request.query_params, ("project",))
    who = await asker(request, edit=False)
    item_id = request.path_params["id"]

    async def read(conn: AsyncConnection) -> tuple[FollowupItem, list[Change]]:
        row = await _row_in_scope(conn, who, item_id, lock=False)
        return items.item_of(row), await items.changes(conn, row.id)

    found, changes = await who.service.registry.db.arun(read)
    detail = await find.detail(who.service, who.project.id, found.ref, who.channels)
    answer = FollowupDetail(
        followup=found,
        changes=changes,
        response=None if detail is None else response_item(detail.response),
        history=[] if detail is None else [response_item(r) for r in detail.history],
        others=[] if detail is None else [response_item(r) for r in detail.others],
    )
    who.service.metrics.request("followup", 200)
    return json_response(200, answer, {})


async def change_followup(request: Request) -> Response:
    """Answer ``PATCH /v1/followups/{id}``: the item as changed."""
    check_known(request.query_params, ("project",))
    who = await asker(request, edit=True)
    asked = await json_body(request, Edit)
    item_id = request.path_params["id"]

    async def write(conn: AsyncConnection) -> FollowupItem:
        row = await _row_in_scope(conn, who, item_id, lock=True)
        return await items.edit(conn, row, asked, who.session.user.id, now_ms())

    changed = await who.service.registry.db.arun(write, write=True)
    who.service.metrics.request("followup", 200)
    return json_response(200, changed, {})


async def add_note(request: Request) -> Response:
    """Answer ``POST /v1/followups/{id}/notes``: 201 and the item."""
    check_known(request.query_params, ("project",))
    who = await asker(request, edit=True)
    note = await json_body(request, Note)
    item_id = request.path_params["id"]

    async def write(conn: AsyncConnection) -> FollowupItem:
        row = await _row_in_scope(conn, who, item_id, lock=True)
        return await items.add_note(conn, row, note.text, who.session.user.id, now_ms())

    changed = await who.service.registry.db.arun(write, write=True)
    who.service.metrics.request("followup", 201)
    return json_response(201, changed, {})


async def assign_many(request: Request) -> Response:
    """Answer ``POST /v1/followups/assign``: every item given to one person, or none (404
    naming the first id the asker can't see)."""
    check_known(request.query_params, ("project",))
    who = await asker(request, edit=True)
    bulk = await json_body(request, Bulk)
    ids = list(dict.fromkeys(bulk.ids))
    if not 1 <= len(ids) <= MAX_BULK:
        raise ApiError(422, f"ids: give 1-{MAX_BULK} follow-up ids, got {len(ids)}")
    edit = Edit(assignee=bulk.assignee)

    async def write(conn: AsyncConnection) -> list[FollowupItem]:
        done: list[FollowupItem] = []
        when = now_ms()
        for item_id in ids:
            try:
                row = await _row_in_scope(conn, who, item_id, lock=True)
            except ApiError:
                raise ApiError(404, f"{NOT_FOUND}: {item_id!r}") from None
            done.append(await items.edit(conn, row, edit, who.session.user.id, when))
        return done

    assigned = await who.service.registry.db.arun(write, write=True)
    who.service.metrics.request("followups", 200)
    return json_response(200, BulkAnswer(followups=assigned), {})


def routes() -> list[Route]:
    """The routes of ``/v1/followups``, for ``create_app``."""
    return [
        Route("/v1/followups", list_followups, methods=["GET"], name="followups"),
        Route("/v1/followups/assign", assign_many, methods=["POST"], name="followups"),
        Route("/v1/followups/{id}", get_followup, methods=["GET"], name="followup"),
        Route("/v1/followups/{id}", change_followup, methods=["PATCH"], name="followup"),
        Route("/v1/followups/{id}/notes", add_note, methods=["POST"], name="followup"),
    ]


__all__ = [
    "BulkAnswer",
    "FollowupDetail",
    "FollowupsAnswer",
    "routes",
]
