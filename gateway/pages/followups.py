"""The follow-up inbox as pages: the items to act on under their SLA figure, and one item.

``/app/{project}/followups`` lists a project's follow-up items, newest first, a page at a
time: ``view`` (all, mine, unassigned, overdue), ``channel`` and ``status``, as
``GET /v1/followups`` takes them. Each item shows its score, the start of its comment, where
it came from, its status and assignee, and the time left before it is due (or how long it has
been overdue); a person who may edit the inbox ticks items and assigns them together. Above the
list is the share of items followed up within their SLA over the last days or weeks
(``step``): overall, per team and per period, with the median time to a first action. It is
``GET /v1/followups/sla``'s answer for the same channels (:func:`..routes.followups_sla.report`).

``/app/{project}/followups/{id}`` is one item: its response and the respondent's other
feedback, its history (who, when, what), and forms to assign it, change its status (only to a
state allowed next), add a note, edit its tags, and resolve or close it with a note.

The forms are plain HTML forms carrying the session's CSRF token. Each is posted to the page's
own address, and a success redirects back to the page (POST-redirect-GET). They call the
functions behind ``/v1/followups`` (:mod:`..followups.items`) under the same access: ``view``
on the inbox section to see, ``edit`` to change, within the person's inbox scope (outside it,
an item is a 404, like one that doesn't exist). A change the rules refuse (an illegal status,
an unknown assignee, a missing resolution note) shows the page again, saying why.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple, TypeVar
from urllib.parse import parse_qsl, urlencode

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..control.registry import Project
from ..errors import ApiError
from ..followups import items
from ..followups.items import Change, Edit, FollowupItem, Status
from ..followups.sla import UNASSIGNED
from ..http.auth import CSRF_FIELD
from ..http.body import media_type, read_body
from ..reading import find
from ..reading.params import ChannelForms, check_known, scope, single
from ..routes import followups_sla
from ..routes.followups import decode_cursor, encode_cursor
from ..service import Service
from .app_auth import SignedIn, check_csrf, project_of, signed_in
from .app_i18n import NO_NUMBER, Locale, locale_of
from .app_layout import APP_HEADERS, app_page, link, section_path
from .inbox import _entries as response_entries
from .rating import score_label

__all__ = ["PAGE_SIZE", "HistoryLine", "Shown", "duration", "routes"]

#: Items a page of the list shows.
PAGE_SIZE: Final = 25
LIST_PARAMS: Final = ("view", "channel", "status", "cursor", "step", "done", "lang")
#: A posted form's most bytes: a note of 5,000 characters in any script, or a page of ids.
MAX_FORM_BYTES: Final = 64 * 1024
#: What the forms may ask for; each success leaves its notice (``Words.done_notes``).
BULK_ACTIONS: Final = ("assign", "me", "unassign")
ITEM_ACTIONS: Final = (*BULK_ACTIONS, "status", "end", "note", "tags")
NOT_FOUND: Final = "no such follow-up"
_FORM_TYPE: Final = "application/x-www-form-urlencoded"
#: Tags are typed separated by commas, Latin or Arabic.
_TAG_SEPARATORS: Final = re.compile("[,\u060c]")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_T = TypeVar("_T")


class Shown(NamedTuple):
    """One item as the list shows it.

    Attributes:
        clock: the time left before it is due, how long it is overdue, or when it ended.
        overdue: it is open and past its due time.
    """

    item: FollowupItem
    url: str
    score: str
    created: str
    status: str
    clock: str
    overdue: bool


class HistoryLine(NamedTuple):
    """One change of an item's history: when, who, what kind, and what: values from one to
    the next when ``moved`` (a status, an assignee, a score), else a list (tags, recipients);
    ``text`` is what a person wrote (a note, a resolution), shown as they wrote it."""

    at: str
    iso: str
    who: str
    kind: str
    what: tuple[str, ...]
    moved: bool
    text: str | None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _ms(moment: str) -> int:
    """An item's RFC 3339 time (UTC) as epoch milliseconds, exactly."""
    return (datetime.fromisoformat(moment.replace("Z", "+00:00")) - _EPOCH) // timedelta(
        milliseconds=1
    )


def duration(locale: Locale, ms: int) -> str:
    """``ms`` in the largest two units that say it (``1 d 4 h``, ``35 min``), in whole minutes."""
    words = locale.words
    minutes = max(0, ms) // 60_000
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        parts = [("d", days), ("h", hours)]
    elif hours:
        parts = [("h", hours), ("min", mins)]
    else:
        parts = [("min", mins)]
    kept = [(unit, n) for unit, n in parts if n] or [("min", 0)]
    return " ".join(words.durations[unit].format(locale.number(n)) for unit, n in kept)


def _percent(locale: Locale, share: float | None) -> str:
    return NO_NUMBER if share is None else locale.words.percent.format(locale.number(share, 1))


def _shown(locale: Locale, project: str, item: FollowupItem, now_ms: int) -> Shown:
    words = locale.words
    overdue = False
    if item.closed is not None and item.status in items.ENDED:
        clock = f"{words.finished}: {locale.datetime(_ms(item.closed))}"
    else:
        left = _ms(item.due) - now_ms
        overdue = left <= 0
        clock = (words.overdue_by if overdue else words.due_in).format(duration(locale, abs(left)))
    return Shown(
        item=item,
        url=link(locale, _item_path(project, item.id)),
        score=score_label(locale.language, item.metric, item.score),
        created=locale.datetime(_ms(item.created)),
        status=words.statuses[item.status],
        clock=clock,
        overdue=overdue,
    )


def _item_path(project: str, item_id: str) -> str:
    return f"{section_path(project, 'inbox')}/{item_id}"


def _choice(params: QueryParams, name: str, allowed: Sequence[_T], default: _T) -> _T:
    """The value of ``name`` among ``allowed`` (``default`` when not given or empty)."""
    value = single(params, name)
    if not value:
        return default
    for known in allowed:
        if value == known:
            return known
    raise ApiError(400, f"{name} must be one of {', '.join(map(str, allowed))}; got {value!r}")


async def _form(request: Request) -> dict[str, list[str]]:
    """The fields of a posted form, every value of each (the list's ticked ids)."""
    body = await read_body(request, limit=MAX_FORM_BYTES)
    if media_type(request) != _FORM_TYPE and (body or media_type(request)):
        raise ApiError(415, f"a form must be sent as {_FORM_TYPE}")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=PAGE_SIZE + 16
        )
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "the form is not UTF-8 form fields") from None
    found: dict[str, list[str]] = {}
    for name, value in pairs:
        found.setdefault(name, []).append(value)
    return found


def _one(fields: Mapping[str, list[str]], name: str) -> str:
    return fields.get(name, [""])[0]


async def _row(
    conn: AsyncConnection, project: str, channels: ChannelForms, item_id: str, *, lock: bool
) -> Any:
    """The item's row if the person may see it; 404 alike for one unknown and one outside."""
    row = await items.read_row(conn, item_id, lock=lock)
    if row is None or row.project != project or not items.visible(row, channels):
        raise ApiError(404, NOT_FOUND)
    return row


def _status(text: str) -> Status:
    for status in items.STATUSES:
        if text == status:
            return status
    raise ApiError(422, f"status must be one of {', '.join(items.STATUSES)}; got {text!r}")


def _edit(action: str, fields: Mapping[str, list[str]], me: str) -> Edit:
    """The change a form asks for; 422 naming the field it lacks, 400 for an unknown action."""
    if action == "assign":
        given = _one(fields, "assignee").strip()
        if not given:
            raise ApiError(422, "assignee: give the email address of the person to assign")
        return Edit(assignee=given)
    if action == "me":
        return Edit(assignee=me)
    if action == "unassign":
        return Edit(assignee=None)
    if action == "tags":
        return Edit(tags=[t for t in _TAG_SEPARATORS.split(_one(fields, "tags")) if t.strip()])
    if action == "status":
        return Edit(status=_status(_one(fields, "status")))
    if action == "end":
        status, note = _status(_one(fields, "status")), _one(fields, "resolution")
        if status not in items.ENDED:
            raise ApiError(422, f"status must be resolved or closed to finish; got {status!r}")
        return Edit(status=status, resolution=note) if note.strip() else Edit(status=status)
    raise ApiError(400, f"action must be one of {', '.join(ITEM_ACTIONS)}; got {action!r}")


# --- the list ---------------------------------------------------------------------------------


async def followups_page(request: Request) -> Response:
    """``GET /app/{project}/followups``: the items of ``view``, ``channel`` and ``status``,
    newest first, a page at a time (``cursor``), under the SLA figure by ``step``."""
    service: Service = request.app.state.service
    who = await signed_in(request)
    project = project_of(service, who.session.access, request.path_params["project"], "inbox")
    return await _list_page(request, who, project, request.query_params)


async def _list_page(
    request: Request,
    who: SignedIn,
    project: Project,
    params: QueryParams,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    service: Service = request.app.state.service
    locale = locale_of(request)
    words = locale.words
    access = who.session.access
    check_known(params, LIST_PARAMS)
    view = _choice(params, "view", items.VIEWS, "all")
    wanted = _choice(params, "status", items.STATUSES, None)
    step = followups_sla.step_of(single(params, "step") or None)
    channel = single(params, "channel") or None
    channels = scope(access, "inbox", project, None if channel is None else (channel,), None)
    cursor = single(params, "cursor")
    after = decode_cursor(cursor) if cursor else None
    now = _now_ms()

    async def read(conn: AsyncConnection) -> list[FollowupItem]:
        return await items.list_items(
            conn,
            project.id,
            channels,
            view=view,
            me=who.session.user.id,
            statuses=None if wanted is None else (wanted,),
            after=after,
            limit=PAGE_SIZE + 1,
            now_ms=now,
        )

    page = await service.registry.db.arun(read)
    sla = await followups_sla.report(service, project.id, channels, step, now_ms=now)
    here = section_path(project.id, "inbox")
    kept = {
        "view": None if view == "all" else view,
        "channel": channel,
        "status": wanted,
        "step": None if step == "day" else step,
    }
    older = None
    if len(page) > PAGE_SIZE:
        page = page[:PAGE_SIZE]
        older = link(locale, here, {**kept, "cursor": encode_cursor(page[-1])})
    visible = scope(access, "inbox", project, None, None)
    done = single(params, "done")
    context = {
        "here": here,
        "view": view,
        "views": [
            (v, words.followup_views[v], link(locale, here, {**kept, "view": v}))
            for v in items.VIEWS
        ],
        "values": {"channel": channel or "", "status": wanted or "", "step": step},
        "channel_options": [(c, locale.channel(c)) for c in visible],
        "status_options": [(s, words.statuses[s]) for s in items.STATUSES],
        "step_options": [(s, words.intervals[s]) for s in followups_sla.STEPS],
        "shown": [_shown(locale, project.id, item, now) for item in page],
        "older": older,
        "newest": link(locale, here, kept) if after is not None else None,
        "can_edit": access.can("inbox", "edit", project.id),
        "back": urlencode([(k, v) for k, v in {**kept, "cursor": cursor}.items() if v]),
        "notice": words.done_notes.get(done or "", "") if done in BULK_ACTIONS else "",
        "error": error,
        **_sla_context(locale, sla),
    }
    return app_page(
        request,
        locale,
        "app/followups.html",
        context,
        session=who.session,
        project=project.id,
        section="inbox",
        title=f"{words.followups} · {project.id}",
        status=status,
    )


def _sla_context(locale: Locale, sla: followups_sla.SlaAnswer) -> dict[str, object]:
    """What the SLA figure shows: the window's share and median, per team, per period."""
    words = locale.words

    def median(ms: int | None) -> str:
        return NO_NUMBER if ms is None else duration(locale, ms)

    overall = sla.overall
    teams = [
        (
            name,
            words.unassigned_team if name == UNASSIGNED else name,
            figures,
            _percent(locale, figures.share),
            locale.number(figures.items),
            median(figures.median_first_action_ms),
        )
        for name, figures in sla.teams.items()
    ]
    periods = [
        (
            p,
            locale.date(_ms(p.start)),
            _percent(locale, p.share),
            locale.number(p.items),
            median(p.median_first_action_ms),
        )
        for p in sla.periods
    ]
    counts = (locale.number(n) for n in (overall.met, overall.missed, overall.pending))
    return {
        "sla": sla,
        "sla_window": words.sla_windows[sla.step].format(locale.number(len(sla.periods))),
        "sla_share": _percent(locale, overall.share),
        "sla_counts": words.sla_counts.format(*counts),
        "sla_median": median(overall.median_first_action_ms),
        "sla_teams": teams,
        "sla_periods": periods,
        "sla_step": words.intervals[sla.step],
    }


async def assign_followups(request: Request) -> Response:
    """``POST /app/{project}/followups``: the ticked items (``id``) to one person, all or none:
    ``action`` ``assign`` (to ``assignee``, an email address), ``me`` or ``unassign``; then
    back to the list as it was (``back``)."""
    service: Service = request.app.state.service
    locale = locale_of(request)
    who = await signed_in(request)
    access = who.session.access
    project = project_of(service, access, request.path_params["project"], "inbox")
    fields = await _form(request)
    check_csrf(who.session.csrf, _one(fields, CSRF_FIELD))
    access.require("inbox", "edit", project.id)
    channels = scope(access, "inbox", project, None, None)
    back = QueryParams(_one(fields, "back"))
    back = QueryParams([(k, v) for k, v in back.multi_items() if k not in ("done", "lang")])
    action, me = _one(fields, "action"), who.session.user.id
    ids = list(dict.fromkeys(fields.get("id", [])))
    now = _now_ms()
    try:
        if action not in BULK_ACTIONS:
            raise ApiError(400, f"action must be one of {', '.join(BULK_ACTIONS)}; got {action!r}")
        if not ids:
            raise ApiError(422, "id: tick at least one item")
        edit = _edit(action, fields, me)

        async def write(conn: AsyncConnection) -> None:
            for item_id in ids:
                row = await _row(conn, project.id, channels, item_id, lock=True)
                await items.edit(conn, row, edit, me, now)

        await service.registry.db.arun(write, write=True)
    except ApiError as refused:
        if refused.status in (401, 403):
            raise
        return await _list_page(
            request, who, project, back, error=refused.message, status=refused.status
        )
    target = link(locale, section_path(project.id, "inbox"), {**dict(back), "done": action})
    return RedirectResponse(target, 303, APP_HEADERS)


# --- one item ---------------------------------------------------------------------------------


async def followup_page(request: Request) -> Response:
    """``GET /app/{project}/followups/{id}``: the item, its response, its history, its forms."""
    service: Service = request.app.state.service
    who = await signed_in(request)
    project = project_of(service, who.session.access, request.path_params["project"], "inbox")
    check_known(request.query_params, ("done", "lang"))
    done = single(request.query_params, "done")
    return await _item_page(request, who, project, request.path_params["id"], done=done)


async def _item_page(
    request: Request,
    who: SignedIn,
    project: Project,
    item_id: str,
    *,
    done: str | None = None,
    error: str | None = None,
    status: int = 200,
    kept: Mapping[str, list[str]] | None = None,
) -> Response:
    service: Service = request.app.state.service
    locale = locale_of(request)
    words = locale.words
    access = who.session.access
    channels = scope(access, "inbox", project, None, None)

    async def read(conn: AsyncConnection) -> tuple[FollowupItem, list[Change], dict[str, str]]:
        row = await _row(conn, project.id, channels, item_id, lock=False)
        changes = await items.changes(conn, row.id)
        named = [
            value
            for change in changes
            if change.kind == "assignee"
            for value in (change.detail.get("from"), change.detail.get("to"))
            if isinstance(value, str)
        ]
        return items.item_of(row), changes, await items.emails_of(conn, named)

    item, changes, emails = await service.registry.db.arun(read)
    detail = await find.detail(service, project.id, item.ref, channels)
    entry, others = None, []
    if detail is not None:
        entry, *_ = response_entries(locale, project.id, [detail.response])
        votes = {vote.position for vote in detail.history}
        mine = [row for row in detail.others if row.position not in votes]
        others = response_entries(locale, project.id, mine)
    now = _now_ms()
    moves = [
        s
        for s in items.NEXT[item.status]
        if s not in items.ENDED and not (s == "assigned" and item.assignee is None)
    ]
    context = {
        "shown": _shown(locale, project.id, item, now),
        "item": item,
        "entry": entry,
        "others": others,
        "respondent": detail is not None and detail.response.respondent is not None,
        "response_links": access.can("responses", "view", project.id),
        "steps": _history(locale, changes, emails),
        "arrow": "←" if locale.direction == "rtl" else "→",
        "can_edit": access.can("inbox", "edit", project.id),
        "here": link(locale, _item_path(project.id, item.id)),
        "back": link(locale, section_path(project.id, "inbox")),
        "due": locale.datetime(_ms(item.due)),
        "moves": [(s, words.statuses[s]) for s in moves],
        "endings": [(s, words.statuses[s]) for s in items.NEXT[item.status] if s in items.ENDED],
        "values": {
            "assignee": _one(kept or {}, "assignee"),
            "text": _one(kept or {}, "text"),
            "resolution": _one(kept or {}, "resolution"),
            "tags": _one(kept, "tags") if kept and "tags" in kept else ", ".join(item.tags),
        },
        "notice": words.done_notes.get(done or "", "") if done in ITEM_ACTIONS else "",
        "error": error,
    }
    return app_page(
        request,
        locale,
        "app/followup.html",
        context,
        session=who.session,
        project=project.id,
        section="inbox",
        title=f"{words.followup_title} · {project.id}",
        status=status,
    )


def _history(
    locale: Locale, changes: Sequence[Change], emails: Mapping[str, str]
) -> list[HistoryLine]:
    """An item's changes as the page lists them, oldest first."""
    words = locale.words

    def person(user_id: object) -> str:
        return emails.get(user_id, words.nobody) if isinstance(user_id, str) else words.nobody

    def status(name: object) -> str:
        return words.statuses.get(str(name), str(name))

    def score(metric: str, value: object) -> str:
        return score_label(locale.language, metric, value) if isinstance(value, int) else NO_NUMBER

    lines = []
    for change in changes:
        detail, moved, text = change.detail, False, None
        what: tuple[Any, ...] = ()
        if change.kind == "created":
            what = (str(detail.get("rule", "")),)
        elif change.kind == "status":
            what, moved = (status(detail.get("from")), status(detail.get("to"))), True
            text = detail.get("resolution")
        elif change.kind == "assignee":
            what, moved = (person(detail.get("from")), person(detail.get("to"))), True
        elif change.kind == "tags":
            what = tuple(detail.get("to") or ()) or (NO_NUMBER,)
        elif change.kind == "note":
            text = detail.get("text")
        elif change.kind == "resolution":
            text = detail.get("to")
        elif change.kind == "response":
            before = detail.get("from") or {}
            metric = str(detail.get("metric", before.get("metric", "")))
            what = (score(metric, before.get("score")), score(metric, detail.get("score")))
            moved = True
        elif change.kind == "breached":
            what = tuple(detail.get("escalated_to") or ())
        lines.append(
            HistoryLine(
                at=locale.datetime(_ms(change.at)),
                iso=change.at,
                who=words.the_gateway if change.actor is None else change.actor.email,
                kind=words.change_kinds.get(change.kind, change.kind),
                what=tuple(str(part) for part in what),
                moved=moved,
                text=text if isinstance(text, str) else None,
            )
        )
    return lines


async def change_followup(request: Request) -> Response:
    """``POST /app/{project}/followups/{id}``: one change of ``action`` (``assign``, ``me``,
    ``unassign``, ``status``, ``end`` with a ``resolution``, ``note`` with its ``text``,
    ``tags``), then back to the item; a change the rules refuse gets the page again with why."""
    service: Service = request.app.state.service
    locale = locale_of(request)
    who = await signed_in(request)
    access = who.session.access
    project = project_of(service, access, request.path_params["project"], "inbox")
    fields = await _form(request)
    check_csrf(who.session.csrf, _one(fields, CSRF_FIELD))
    access.require("inbox", "edit", project.id)
    channels = scope(access, "inbox", project, None, None)
    item_id, action, me = request.path_params["id"], _one(fields, "action"), who.session.user.id
    now = _now_ms()
    try:
        edit = None if action == "note" else _edit(action, fields, me)

        async def write(conn: AsyncConnection) -> FollowupItem:
            row = await _row(conn, project.id, channels, item_id, lock=True)
            if edit is None:
                return await items.add_note(conn, row, _one(fields, "text"), me, now)
            return await items.edit(conn, row, edit, me, now)

        await service.registry.db.arun(write, write=True)
    except ApiError as refused:
        if refused.status in (401, 403, 404):
            raise
        return await _item_page(
            request,
            who,
            project,
            item_id,
            error=refused.message,
            status=refused.status,
            kept=fields,
        )
    target = link(locale, _item_path(project.id, item_id), {"done": action})
    return RedirectResponse(target, 303, APP_HEADERS)


def routes() -> list[Route]:
    """The follow-up inbox's pages, for the application's table."""
    listed, one = "/app/{project}/followups", "/app/{project}/followups/{id}"
    return [
        Route(listed, followups_page, methods=["GET"], name="app.followups"),
        Route(listed, assign_followups, methods=["POST"], name="app.followups"),
        Route(one, followup_page, methods=["GET"], name="app.followup"),
        Route(one, change_followup, methods=["POST"], name="app.followup"),
    ]
