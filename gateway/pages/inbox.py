"""The feedback inbox: the comments stream, one response, and the exports, as pages.

``/app/{project}/responses`` is the stream of responses, newest first, with its filters and
search above it (a plain GET form: it works without JavaScript) and a link to the older ones;
``/app/{project}/responses/{ref}`` one response with its vote history and the same
respondent's other feedback; ``/app/{project}/exports`` the same filters, and buttons that
download them from ``/v1/exports`` as CSV, CSV for Excel or NDJSON.

The pages read what the API reads, through the same functions (:mod:`..reading`): the filter
form's fields are the API's parameters, checked and cut to the person's scope by
:func:`~..reading.params.read_query`, so the stream shows exactly what ``/v1/responses`` gives
for them and an export gets the same rows; a ref outside the scope is a 404, as one that
doesn't exist; a response opened is recorded in the audit log, as the API's read by ref is.
The page's own parameter (``lang``) is left out, as are the empty fields a form
sends; a day picked in a date field becomes the RFC 3339 time the API takes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Final, NamedTuple

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from voxloop_core import METRIC_RANGES

from ..errors import ApiError
from ..reading import cursor, find
from ..reading.formats import ref_of, rfc3339
from ..reading.params import HELD_VALUES, check_known, read_query, scope
from ..routes.audit import record_request
from ..service import Service
from ..stores.reads import StoredResponse
from .app_auth import project_of, signed_in
from .app_i18n import Locale, locale_of
from .app_layout import app_page, link, section_path
from .rating import score_label

__all__ = ["Entry", "api_params", "routes"]

#: The parameters of the pages that the API doesn't take.
PAGE_ONLY: Final = ("lang",)
#: The filter form's fields, in the order it shows them (the API's parameters).
FIELDS: Final = (
    "q",
    "channel",
    "form",
    "metric",
    "score_min",
    "score_max",
    "has_comment",
    "tag",
    "locale",
    "from",
    "to",
    "held",
)
_DAY: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Entry(NamedTuple):
    """One response as a page lists it.

    Attributes:
        row: the stored response.
        ref: its reference (``/v1/responses/{ref}``).
        url: its page.
        score: the score as the page's language writes it (a word for 👍 and 👎).
        answered: when it was given, in the page's language.
        iso: when it was given, RFC 3339 (UTC).
        marks: what sets it apart: held, not counted, changed.
    """

    row: StoredResponse
    ref: str
    url: str
    score: str
    answered: str
    iso: str
    marks: list[str]


def api_params(params: QueryParams, *, drop: Iterable[str] = ()) -> QueryParams:
    """A page's query string as the API reads it.

    The fields left empty and the page's own parameters (and ``drop``) are left out; a day
    (``2026-11-23``, from a date field) in ``from`` becomes that day's start and in ``to`` the
    next day's, in UTC, so that the day picked is included. Anything else is passed on as it is,
    for the API's rules to check.
    """
    left_out = {*PAGE_ONLY, *drop}
    kept: list[tuple[str, str]] = []
    for name, value in params.multi_items():
        if name in left_out or value == "":
            continue
        if name in ("from", "to") and _DAY.fullmatch(value):
            try:
                day = date.fromisoformat(value)
            except ValueError:
                raise ApiError(400, f"{name} must be a date, got {value!r}") from None
            if name == "to":
                day += timedelta(days=1)
            value = f"{day.isoformat()}T00:00:00Z"
        kept.append((name, value))
    return QueryParams(kept)


def _shown(params: QueryParams) -> dict[str, str]:
    """The filter form's values as the person gave them: a time shown as its day."""
    shown = {name: params.get(name, "") for name in FIELDS}
    for name in ("from", "to"):
        if shown[name] and not _DAY.fullmatch(shown[name]):
            shown[name] = shown[name][:10] if _DAY.fullmatch(shown[name][:10]) else ""
    return shown


def _entries(locale: Locale, project: str, rows: Sequence[StoredResponse]) -> list[Entry]:
    words = locale.words
    entries = []
    for row in rows:
        marks = []
        if row.held is not None:
            marks.append(words.held_options.get(row.held, row.held))
        elif not row.counted:
            marks.append(words.not_counted)
        if row.revised:
            marks.append(words.revised)
        ref = ref_of(row)
        entries.append(
            Entry(
                row=row,
                ref=ref,
                url=link(locale, f"{section_path(project, 'responses')}/{ref}"),
                score=score_label(locale.language, row.metric, row.score),
                answered=locale.datetime(row.ts_ms),
                iso=rfc3339(row.ts_ms),
                marks=marks,
            )
        )
    return entries


def _filter_context(
    locale: Locale, channels: Iterable[str], params: QueryParams
) -> dict[str, object]:
    """What the filter form shows: the person's values and each select's options."""
    words = locale.words
    return {
        "values": _shown(params),
        "channel_options": [(c, locale.channel(c)) for c in channels],
        "metric_options": [(m, locale.metric(m)) for m in METRIC_RANGES],
        "held_options": [(h, words.held_options[h]) for h in HELD_VALUES],
    }


async def responses_page(request: Request) -> Response:
    """``GET /app/{project}/responses``: the responses the filters keep, newest first, a page
    at a time (``cursor``: after the page that gave it)."""
    service: Service = request.app.state.service
    locale = locale_of(request)
    who = await signed_in(request)
    access = who.session.access
    project = project_of(service, access, request.path_params["project"], "responses")
    asked = api_params(request.query_params)
    query = read_query(asked, project, access, "responses", paged=True)
    rows, after = await find.page(service, query)  # StoreError: 503
    visible = scope(access, "responses", project, None, None)
    here = section_path(project.id, "responses")
    older = None
    if after is not None:
        following = cursor.encode(after, project.secret, query.context())
        older = link(locale, here, {**_pairs(asked, drop=("cursor",)), "cursor": following})
    exports = None
    if access.can("exports", "view", project.id):
        exports = link(
            locale, section_path(project.id, "exports"), _pairs(asked, drop=("cursor", "limit"))
        )
    context = {
        **_filter_context(locale, visible, request.query_params),
        "here": here,
        "entries": _entries(locale, project.id, rows),
        "older": older,
        "newest": link(locale, here, _pairs(asked, drop=("cursor",))) if query.after else None,
        "exports": exports,
    }
    return app_page(
        request,
        locale,
        "app/responses.html",
        context,
        session=who.session,
        project=project.id,
        section="responses",
        title=f"{locale.words.responses} · {project.id}",
    )


async def response_page(request: Request) -> Response:
    """``GET /app/{project}/responses/{ref}``: one response, its vote history, its respondent's
    other feedback; 404 alike for a ref that doesn't exist and one outside the scope."""
    service: Service = request.app.state.service
    locale = locale_of(request)
    who = await signed_in(request)
    access = who.session.access
    project = project_of(service, access, request.path_params["project"], "responses")
    check_known(request.query_params, PAGE_ONLY)
    channels = scope(access, "responses", project, None, None)
    ref = request.path_params["ref"]
    found = await find.detail(service, project.id, ref, channels)
    if found is None:
        raise ApiError(404, "no such response")
    await record_request(
        request, actor=access.who, action="response.read", project=project.id, target=ref
    )
    entry, *history = _entries(locale, project.id, [found.response, *found.history])
    # The votes of its own vote group are its history, not other feedback.
    shown = {vote.position for vote in found.history}
    others = [row for row in found.others if row.position not in shown]
    context = {
        "entry": entry,
        "history": history,
        "others": _entries(locale, project.id, others),
        "back": link(locale, section_path(project.id, "responses")),
        "received": locale.datetime(found.response.received_ms),
    }
    return app_page(
        request,
        locale,
        "app/response.html",
        context,
        session=who.session,
        project=project.id,
        section="responses",
        title=f"{locale.words.response_title} · {project.id}",
    )


async def exports_page(request: Request) -> Response:
    """``GET /app/{project}/exports``: the filters, and the downloads of what they keep."""
    service: Service = request.app.state.service
    locale = locale_of(request)
    who = await signed_in(request)
    access = who.session.access
    project = project_of(service, access, request.path_params["project"], "exports")
    asked = api_params(request.query_params, drop=("cursor", "limit"))
    read_query(asked, project, access, "exports", paged=False)  # the export's own checks
    visible = scope(access, "exports", project, None, None)
    context = {
        **_filter_context(locale, visible, request.query_params),
        "here": section_path(project.id, "exports"),
        "hidden": [("project", project.id), *asked.multi_items()],
    }
    return app_page(
        request,
        locale,
        "app/exports.html",
        context,
        session=who.session,
        project=project.id,
        section="exports",
        title=f"{locale.words.exports} · {project.id}",
    )


def _pairs(params: QueryParams, *, drop: Sequence[str]) -> dict[str, list[str]]:
    """``params`` by name (every value of each), but those named in ``drop``."""
    found: dict[str, list[str]] = {}
    for name, value in params.multi_items():
        if name not in drop:
            found.setdefault(name, []).append(value)
    return found


def routes() -> list[Route]:
    """The inbox's pages, for the application's table."""
    return [
        Route("/app/{project}/responses", responses_page, methods=["GET"], name="app.responses"),
        Route(
            "/app/{project}/responses/{ref}", response_page, methods=["GET"], name="app.response"
        ),
        Route("/app/{project}/exports", exports_page, methods=["GET"], name="app.exports"),
    ]
