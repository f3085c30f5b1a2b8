"""``/app/audit``: the audit log, as a page for owners.

The records of :mod:`..privacy.audit`, newest first, a page at a time, each with when, who,
what, the project and the subject, the client's address and the rest of what was kept. Above
them, a plain GET form (it works without JavaScript) with the filters of ``/v1/audit``: who,
the action (``key`` keeps ``key.create`` and ``key.revoke``), the project, the days; below, the
buttons that download what the filters keep from ``/v1/audit.csv`` and ``.ndjson``.

The log belongs to no project, so the page has no project's navigation: owners reach it from
the header of every dashboard page. Only they see it (:func:`..privacy.audit.may_read`): anyone
else gets the dashboard's 403 page. The page reads what the API reads, through the same
filter (:func:`..routes.audit.audit_filter`), so it shows what ``/v1/audit`` gives.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..control.access import Denied
from ..privacy import audit
from ..reading.formats import rfc3339
from ..reading.params import check_known
from ..routes.audit import FILTER_PARAMS, NOT_OWNER, audit_filter, page_params
from ..service import Service
from .app_auth import signed_in
from .app_i18n import Locale, locale_of
from .app_layout import AUDIT_PATH, app_page, link
from .inbox import api_params

__all__ = ["PATH", "Line", "routes"]

PATH: Final = AUDIT_PATH
#: The records a page shows.
SHOWN: Final = 50
PARAMS: Final = (*FILTER_PARAMS, "before", "lang")


class Line(NamedTuple):
    """One record as the page lists it: when in the page's language and in RFC 3339, and its
    detail as (name, text) pairs."""

    entry: audit.Entry
    at: str
    iso: str
    detail: list[tuple[str, str]]


def _text(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in sorted(value.items()))
    return str(value)


def _line(locale: Locale, entry: audit.Entry) -> Line:
    return Line(
        entry=entry,
        at=locale.datetime(entry.at_ms),
        iso=rfc3339(entry.at_ms),
        detail=[(name, _text(value)) for name, value in sorted(entry.detail.items())],
    )


def _shown(params: QueryParams) -> dict[str, str]:
    """The filter form's values as the person gave them: a time shown as its day."""
    shown = {name: params.get(name, "") for name in FILTER_PARAMS}
    for name in ("from", "to"):
        shown[name] = shown[name][:10]
    return shown


async def audit_page(request: Request) -> Response:
    """``GET /app/audit``: a page of the log, newest first, with the filters and the exports."""
    service: Service = request.app.state.service
    locale = locale_of(request)
    who = await signed_in(request)
    if not audit.may_read(who.session.access):
        raise Denied(NOT_OWNER)
    params = request.query_params
    check_known(params, PARAMS)
    asked = api_params(params)
    kept = audit_filter(asked)
    before, _ = page_params(asked)
    rows, following = await audit.read_page(service.registry.db, kept, before=before, limit=SHOWN)
    filters = [(name, value) for name, value in asked.multi_items() if name != "before"]
    older = None
    if following is not None:
        older = link(locale, PATH, {**_form(params), "before": following})
    context = {
        "here": PATH,
        "lines": [_line(locale, e) for e in rows],
        "values": _shown(params),
        "older": older,
        "newest": link(locale, PATH, _form(params)) if before is not None else None,
        "hidden": filters,
        "days": locale.number(service.settings.audit_retention_days),
    }
    return app_page(
        request,
        locale,
        "app/audit.html",
        context,
        session=who.session,
        title=locale.words.audit_log,
    )


def _form(params: QueryParams) -> dict[str, str]:
    """The filters the person gave, for the links to other pages of the same records."""
    return {name: params[name] for name in FILTER_PARAMS if params.get(name)}


def routes() -> list[Route]:
    """The audit log's page, for the application's table."""
    return [Route(PATH, audit_page, methods=["GET"], name="app.audit")]
