"""What every dashboard page shares: its headers, its language, the navigation, the refusals.

Each page is a template under ``templates/app/`` extending ``app/layout.html``, rendered by
:func:`app_page` with the context every page prints: the locale (words, direction, numbers),
the person signed in and the CSRF token of their forms, and the sections of the project they
may see, each section shown only where the person's access gives at least ``view`` (the page
behind it checks again). The headers are the rating pages' (:data:`.rating.PAGE_HEADERS`): a
Content-Security-Policy that allows the gateway's own scripts, styles and requests only, so no
inline script, style or event handler could run even if one were printed.

A refused request (:func:`refusal`) gets a page in the same layout, with its status, but a
missing session, which leads to the login page, and a one-time password, to the password page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..control.access import Access, Section
from ..control.people import Session
from ..errors import ApiError
from ..privacy import audit
from . import render
from .app_auth import LoginNeeded, PasswordChangeNeeded
from .app_i18n import Locale, locale_of
from .app_words import LANGUAGE_NAMES
from .rating import PAGE_HEADERS

__all__ = ["APP_HEADERS", "NavItem", "app_page", "link", "refusal", "section_path"]

#: Every dashboard page's headers: the strict policy of the gateway's pages.
APP_HEADERS: Final = PAGE_HEADERS
#: The audit log's page: of no project, linked from the header of every page for owners.
AUDIT_PATH: Final = "/app/audit"
#: The sections that have pages, in the order the navigation shows them, and their paths.
_PAGES: Final[tuple[tuple[Section, str], ...]] = (
    ("dashboard", ""),
    ("responses", "responses"),
    ("inbox", "followups"),
    ("exports", "exports"),
    ("alerts", "webhooks"),
)


class NavItem(NamedTuple):
    """One entry of a project's navigation."""

    section: Section
    title: str
    url: str
    current: bool


def link(locale: Locale, path: str, params: Mapping[str, Any] | None = None) -> str:
    """A dashboard URL: ``path`` with ``params`` (empty values left out), and ``?lang=`` when the
    page's language was asked for in the URL, so that it stays as the person moves on."""
    pairs = [
        (name, value)
        for name, values in (params or {}).items()
        for value in (values if isinstance(values, list | tuple) else [values])
        if value not in (None, "")
    ]
    if locale.asked:
        pairs.append(("lang", locale.language))
    return f"{path}?{urlencode(pairs)}" if pairs else path


def section_path(project: str, section: Section) -> str:
    """The path of a project's page of ``section``."""
    return f"/app/{project}/" + dict(_PAGES)[section]


def _nav(locale: Locale, access: Access, project: str, current: Section) -> list[NavItem]:
    titles = {"dashboard": locale.words.dashboard, "responses": locale.words.responses}
    titles["exports"] = locale.words.exports
    titles["inbox"], titles["alerts"] = locale.words.followups, locale.words.webhooks
    return [
        NavItem(
            section,
            titles[section],
            link(locale, section_path(project, section)),
            section == current,
        )
        for section, _ in _PAGES
        if access.can(section, "view", project)
    ]


def audit_link(locale: Locale, session: Session | None) -> str | None:
    """The audit log's page, for the header of whoever may read it (owners); None otherwise."""
    if session is None or not audit.may_read(session.access):
        return None
    return link(locale, AUDIT_PATH)


def _languages(request: Request) -> list[tuple[str, str, str]]:
    """The language menu: each language's code, name, and this page in it (the project list
    after a form was posted: a form's address shows nothing by itself)."""
    path, kept = "/app/", []
    if request.method in ("GET", "HEAD"):
        path = request.url.path
        kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return [
        (code, name, f"{path}?{urlencode([*kept, ('lang', code)])}")
        for code, name in LANGUAGE_NAMES.items()
    ]


def app_page(
    request: Request,
    locale: Locale,
    template: str,
    context: Mapping[str, Any],
    *,
    session: Session | None = None,
    project: str | None = None,
    section: Section | None = None,
    title: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A dashboard page: ``template`` with ``context`` and what every page prints.

    Args:
        locale: the page's language.
        session: the person signed in (None on the login page and the refusals).
        project: the project the page is about, for its navigation.
        section: the section the page belongs to, marked current in the navigation.
        title: the page's title (before `` · voxloop``).
        status: the response's status.
        headers: headers besides :data:`APP_HEADERS`.
    """
    nav: list[NavItem] = []
    if session is not None and project is not None and section is not None:
        nav = _nav(locale, session.access, project, section)
    shared = {
        "language": locale.language,
        "direction": locale.direction,
        "locale": locale,
        "words": locale.words,
        "title": title,
        "session": session,
        "csrf": session.csrf if session is not None else "",
        "project": project,
        "nav": nav,
        "audit_url": audit_link(locale, session),
        "languages": _languages(request),
        "link": lambda path, params=None: link(locale, path, params),
    }
    return render(
        request, template, {**shared, **context}, status, {**APP_HEADERS, **(headers or {})}
    )


def refusal(request: Request, error: ApiError) -> Response:
    """The dashboard's answer to a refused request.

    No session: to the login page, which comes back here once logged in (303). A one-time
    password: to the password page. Anything else: a page in the person's language with the
    status, what was wrong (the refusal's own message) and the way back to their projects.
    """
    locale = locale_of(request)
    if isinstance(error, LoginNeeded):
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        params = {"next": back} if request.method == "GET" and back != "/app/" else {}
        return RedirectResponse(link(locale, "/app/login", params), 303, APP_HEADERS)
    if isinstance(error, PasswordChangeNeeded):
        return RedirectResponse(link(locale, "/app/password"), 303, APP_HEADERS)
    words = locale.words
    title = words.error_titles.get(error.status, words.error_other)
    context = {"status": error.status, "message": error.message}
    return app_page(
        request,
        locale,
        "app/error.html",
        context,
        title=title,
        status=error.status,
        headers=error.headers,
    )
