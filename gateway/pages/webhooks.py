"""``/app/{project}/webhooks``: a project's webhook endpoints and their delivery log, as a page.

Each endpoint shows its URL, the events it takes and its state (active, failing since when, or
disabled and why), then its delivery log: the latest attempts, newest first, each with its
time, event type, the answer (an HTTP status or the error) and the state of its delivery now,
and a button that sends its message again (with the same ``webhook-id``). A form adds an
endpoint and shows its signing secret once; an endpoint's secret can be rotated (the new one
shown once), a disabled endpoint enabled again, and an endpoint removed with its log.

The page belongs to the "Alerts & webhooks" section (``alerts``): ``view`` to see it. Changing
needs ``edit`` over the whole project, as ``/v1/webhooks`` asks, because an endpoint is sent the
events of every channel and form. Every change is a POST of one of the page's forms, carrying
the session's CSRF token, to the functions behind ``/v1/webhooks``
(:mod:`..integrations.webhooks`). A success redirects back to the page (POST-redirect-GET), but
a new secret is shown in the answer itself, once, and kept nowhere for a later page. A change
that is refused (a URL the SSRF guard refuses, no event type) shows the page again, saying why.
A change done is recorded in the audit log, as the API's are.
"""

from __future__ import annotations

import time
from typing import Final, NamedTuple

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..control.access import Access, Denied
from ..control.registry import Project
from ..errors import ApiError
from ..http.auth import CSRF_FIELD
from ..integrations import webhooks as hooks
from ..integrations.outbox import EVENT_TYPES
from ..privacy import audit
from ..reading.formats import rfc3339
from ..reading.params import check_known, single
from ..routes.audit import record_request
from ..service import Service
from .app_auth import SignedIn, check_csrf, form_fields, project_of, signed_in
from .app_i18n import Locale, locale_of
from .app_layout import APP_HEADERS, app_page, link, section_path

__all__ = ["LOG_SHOWN", "AttemptLine", "EndpointLog", "routes"]

#: The attempts each endpoint's log shows at a time.
LOG_SHOWN: Final = 20
PARAMS: Final = ("endpoint", "before", "done", "lang")
ACTIONS: Final = ("add", "rotate", "enable", "remove", "redeliver")
#: The add form names a checkbox per event type.
TYPE_FIELDS: Final = {f"type.{event_type}": event_type for event_type in EVENT_TYPES}
FIELDS: Final = (CSRF_FIELD, "action", "endpoint", "message", "url", "description", *TYPE_FIELDS)
#: A page that shows a secret is never kept by the browser or a proxy.
NO_STORE: Final = {"Cache-Control": "no-store"}


class AttemptLine(NamedTuple):
    """One attempt as the log lists it; ``first``: the newest attempt of its message on the
    page, which carries the message's Redeliver button."""

    attempt: hooks.Attempt
    at: str
    iso: str
    result: str
    ok: bool
    state: str
    first: bool


class EndpointLog(NamedTuple):
    """An endpoint with what the page says of it, and a page of its delivery log."""

    endpoint: hooks.Endpoint
    state: str
    notes: list[str]
    attempts: list[AttemptLine]
    older: str | None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def may_change(access: Access, project: Project) -> bool:
    """Whether the person may change the project's webhooks: ``edit`` on the section over the
    whole project, every channel and form (the rule of ``/v1/webhooks``)."""
    if not access.can("alerts", "edit", project.id):
        return False
    visible = access.visible("alerts", project.id, project.channels)
    return set(visible) == set(project.channels) and all(f is None for f in visible.values())


def _before(params: QueryParams) -> int | None:
    text = single(params, "before")
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 2**62:
        raise ApiError(400, f"before must be an integer 1..{2**62}, got {text!r}")
    return int(text)


async def _log(
    service: Service, locale: Locale, here: str, endpoint: hooks.Endpoint, before: int | None
) -> EndpointLog:
    words = locale.words
    page, following = await hooks.attempts(
        service.registry.db, endpoint.id, before=before, limit=LOG_SHOWN
    )
    seen: set[str] = set()
    lines = []
    for attempt in page:
        ok = attempt.status is not None and 200 <= attempt.status < 300
        result = str(attempt.status) if attempt.status is not None else ""
        if attempt.error and not ok:
            result = f"{result} {attempt.error}".strip()
        lines.append(
            AttemptLine(
                attempt=attempt,
                at=locale.datetime(attempt.at_ms),
                iso=rfc3339(attempt.at_ms),
                result=result,
                ok=ok,
                state=words.delivery_states.get(attempt.state, attempt.state),
                first=attempt.message not in seen,
            )
        )
        seen.add(attempt.message)
    notes = []
    if endpoint.disabled_reason is not None:
        notes.append(words.disabled_because.format(endpoint.disabled_reason))
    elif endpoint.failing_since_ms is not None:
        notes.append(words.failing_since.format(locale.datetime(endpoint.failing_since_ms)))
    overlap = endpoint.previous_until_ms
    if overlap is not None and overlap > _now_ms():
        notes.append(words.previous_until.format(locale.datetime(overlap)))
    older = None
    if following is not None:
        older = link(locale, here, {"endpoint": endpoint.id, "before": following})
    return EndpointLog(
        endpoint=endpoint,
        state=words.endpoint_states.get(endpoint.state, endpoint.state),
        notes=notes,
        attempts=lines,
        older=older,
    )


async def webhooks_page(request: Request) -> Response:
    """``GET /app/{project}/webhooks``: the endpoints, each with its latest deliveries; only
    ``endpoint``'s, from ``before`` on, when they are given (its older attempts)."""
    service: Service = request.app.state.service
    who = await signed_in(request)
    project = project_of(service, who.session.access, request.path_params["project"], "alerts")
    return await _page(request, who, project, request.query_params)


async def _page(
    request: Request,
    who: SignedIn,
    project: Project,
    params: QueryParams,
    *,
    error: str | None = None,
    status: int = 200,
    secret: tuple[str, str] | None = None,
    kept: dict[str, str] | None = None,
) -> Response:
    service: Service = request.app.state.service
    locale = locale_of(request)
    words = locale.words
    check_known(params, PARAMS)
    only = single(params, "endpoint")
    before = _before(params)
    here = section_path(project.id, "alerts")
    endpoints = await hooks.list_endpoints(service.registry.db, project.id)
    if only is not None:
        endpoints = [e for e in endpoints if e.id == only]
        if not endpoints:
            raise ApiError(404, f"no webhook endpoint {only!r} in project {project.id!r}")
    logs = [await _log(service, locale, here, e, before if only else None) for e in endpoints]
    done = single(params, "done")
    chosen = [t for field, t in TYPE_FIELDS.items() if kept is None or kept.get(field)]
    context = {
        "here": link(locale, here),
        "logs": logs,
        "only": only,
        "all_url": link(locale, here) if only else None,
        "can_change": may_change(who.session.access, project),
        "event_types": [(field, t, t in chosen) for field, t in TYPE_FIELDS.items()],
        "values": {name: (kept or {}).get(name, "") for name in ("url", "description")},
        "secret": secret,
        "notice": words.webhook_done.get(done or "", "") if done in ACTIONS else "",
        "error": error,
    }
    return app_page(
        request,
        locale,
        "app/webhooks.html",
        context,
        session=who.session,
        project=project.id,
        section="alerts",
        title=f"{words.webhooks} · {project.id}",
        status=status,
        headers=NO_STORE if secret else None,
    )


async def change_webhooks(request: Request) -> Response:
    """``POST /app/{project}/webhooks``: ``action`` ``add`` (``url``, a ``type.<event type>``
    box per event, ``description``), or ``rotate``, ``enable``, ``remove`` the ``endpoint``,
    or ``redeliver`` its ``message``."""
    service: Service = request.app.state.service
    locale = locale_of(request)
    who = await signed_in(request)
    access = who.session.access
    project = project_of(service, access, request.path_params["project"], "alerts")
    fields = await form_fields(request, FIELDS)
    check_csrf(who.session.csrf, fields[CSRF_FIELD])
    if not may_change(access, project):
        raise Denied(
            "changing webhooks needs Alerts & webhooks edit access to all of the project:"
            " a webhook is sent events of every channel and form"
        )
    db, action, endpoint = service.registry.db, fields["action"], fields["endpoint"]
    now = _now_ms()

    async def record(done: str, target: str, detail: dict[str, object] | None = None) -> None:
        await record_request(
            request, actor=access.who, action=done, project=project.id, target=target, detail=detail
        )

    try:
        if action == "add":
            types = [t for field, t in TYPE_FIELDS.items() if fields[field]]
            allow = service.settings.webhook_allow
            url, description = fields["url"].strip(), fields["description"]
            made, secret = await hooks.add(db, allow, project.id, url, types, description, now)
            detail = audit.webhook_detail(made.url, made.event_types)
            await record("webhook.create", made.id, detail)
            return await _page(request, who, project, QueryParams(), secret=(made.url, secret))
        if action == "rotate":
            rotated, secret = await hooks.rotate_secret(db, project.id, endpoint, now)
            await record("webhook.rotate", endpoint)
            return await _page(request, who, project, QueryParams(), secret=(rotated.url, secret))
        if action == "enable":
            await hooks.enable(db, project.id, endpoint)
            await record("webhook.enable", endpoint)
        elif action == "remove":
            await hooks.remove(db, project.id, endpoint)
            await record("webhook.remove", endpoint)
        elif action == "redeliver":
            await hooks.get(db, project.id, endpoint)
            await hooks.redeliver(db, fields["message"], endpoint, now)
        else:
            raise ApiError(400, f"action must be one of {', '.join(ACTIONS)}; got {action!r}")
    except ApiError as refused:
        if refused.status in (401, 403):
            raise
        return await _page(
            request,
            who,
            project,
            QueryParams(),
            error=refused.message,
            status=refused.status,
            kept=fields if action == "add" else None,
        )
    anchor = "" if action == "remove" else f"#endpoint-{endpoint}"
    target = link(locale, section_path(project.id, "alerts"), {"done": action}) + anchor
    return RedirectResponse(target, 303, APP_HEADERS)


def routes() -> list[Route]:
    """The webhooks page and its forms, for the application's table."""
    path = "/app/{project}/webhooks"
    return [
        Route(path, webhooks_page, methods=["GET"], name="app.webhooks"),
        Route(path, change_webhooks, methods=["POST"], name="app.webhooks"),
    ]
