"""``/v1/webhooks``: a project's webhook endpoints, their delivery log, and redelivery.

Reading needs ``view`` on the "Alerts & webhooks" section (``alerts``), changing ``edit``; both
are a person's, logged in (keys read the data, not its settings). A change is sent with the
session's CSRF token in ``X-CSRF-Token``, checked before anything is read or written, and, as
an endpoint is sent events of every channel and form of its project, it needs the section over
the whole project: a person scoped to some channels may look, not change. Bad input is a 4xx
naming the field; the rules are :mod:`..integrations.webhooks`'s and the SSRF guard's. Each
change is recorded in the audit log: the endpoint's id, host and event types, never its secret.

::

    GET    /v1/webhooks?project=P                      the endpoints, oldest first
    POST   /v1/webhooks?project=P                      add one: {"url", "event_types",
                                                       "description"}; 201 with its secret
    GET    /v1/webhooks/{id}                           one endpoint
    DELETE /v1/webhooks/{id}                           remove it and its log (204)
    POST   /v1/webhooks/{id}/rotate-secret             a new secret; the old one signs 24 h more
    POST   /v1/webhooks/{id}/enable                    enable it again after it was disabled
    GET    /v1/webhooks/{id}/attempts?before=&limit=   the delivery log, newest first
    POST   /v1/webhooks/{id}/redeliver                 {"message": id}: send it again (202)
"""

from __future__ import annotations

import time

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..control.access import Denied
from ..control.db import Database
from ..control.registry import Project
from ..errors import ApiError
from ..http.auth import person_changing, reader
from ..http.body import json_body
from ..http.responses import json_response
from ..integrations import webhooks as hooks
from ..privacy import audit
from ..reading.formats import rfc3339
from ..reading.params import check_known, single
from ..service import Service
from .audit import record_request

#: The most a request's body may hold: a URL, a few event types, a description.


class WebhookItem(msgspec.Struct, kw_only=True):
    """An endpoint as the API shows it (never its secret); times in RFC 3339.

    ``state`` is ``active``, ``failing`` (since ``failing_since``) or ``disabled`` (at
    ``disabled``, for ``disabled_reason``); ``previous_secret_until`` is when the secret it
    had before its last rotation stops signing, while it still does.
    """

    id: str
    url: str
    event_types: list[str]
    description: str
    state: str
    created: str
    failing_since: str | None
    disabled: str | None
    disabled_reason: str | None
    previous_secret_until: str | None


class WebhooksAnswer(msgspec.Struct, kw_only=True):
    """The body of ``GET /v1/webhooks``."""

    webhooks: list[WebhookItem]


class SecretAnswer(msgspec.Struct, kw_only=True):
    """An endpoint and its new ``whsec_`` secret: shown this once, never again."""

    webhook: WebhookItem
    secret: str


class AttemptItem(msgspec.Struct, kw_only=True):
    """One delivery attempt: the HTTP status, or the error when none came; ``state`` is its
    delivery's now (``pending``, ``delivered`` or ``failed``)."""

    id: int
    message: str
    event_type: str
    at: str
    status: int | None
    error: str | None
    duration_ms: int
    state: str


class AttemptsAnswer(msgspec.Struct, kw_only=True):
    """A page of the delivery log; ``next`` is the ``before`` of the next page (null: last)."""

    attempts: list[AttemptItem]
    next: int | None


class NewWebhook(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /v1/webhooks``."""

    url: str
    event_types: list[str]
    description: str = ""


class Redelivery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /v1/webhooks/{id}/redeliver``: the message to send again."""

    message: str


class Redelivered(msgspec.Struct, kw_only=True):
    """The answer to a redelivery: the message is pending again for the endpoint."""

    message: str
    webhook: str
    state: str


def item(endpoint: hooks.Endpoint, now_ms: int) -> WebhookItem:
    """What the API shows of ``endpoint`` at ``now_ms``."""
    overlap = endpoint.previous_until_ms
    return WebhookItem(
        id=endpoint.id,
        url=endpoint.url,
        event_types=list(endpoint.event_types),
        description=endpoint.description,
        state=endpoint.state,
        created=rfc3339(endpoint.created_ms),
        failing_since=_time(endpoint.failing_since_ms),
        disabled=_time(endpoint.disabled_ms),
        disabled_reason=endpoint.disabled_reason,
        previous_secret_until=_time(overlap if overlap is not None and overlap > now_ms else None),
    )


def _time(ms: int | None) -> str | None:
    return None if ms is None else rfc3339(ms)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _asker(request: Request, *, edit: bool, known: tuple[str, ...] = ()) -> Project:
    """The project asked about, once the asker may see (``edit``: change) its webhooks."""
    service: Service = request.app.state.service
    access, project = await reader(request, service, "alerts")
    check_known(request.query_params, ("project", *known))
    if edit:
        await person_changing(request, service, access, "alerts", project, "webhooks are")
        visible = access.visible("alerts", project.id, project.channels)
        if set(visible) != set(project.channels) or any(f is not None for f in visible.values()):
            raise Denied(
                "a webhook is sent events of every channel and form of the project: changing"
                " webhooks needs Alerts & webhooks access to all of it"
            )
    return project


def _db(request: Request) -> tuple[Service, Database]:
    service: Service = request.app.state.service
    return service, service.registry.db


async def list_webhooks(request: Request) -> Response:
    """``GET /v1/webhooks``: the project's endpoints, oldest first."""
    project = await _asker(request, edit=False)
    service, db = _db(request)
    now = _now_ms()
    found = [item(e, now) for e in await hooks.list_endpoints(db, project.id)]
    service.metrics.request("webhooks", 200)
    return json_response(200, WebhooksAnswer(webhooks=found), {})


async def add_webhook(request: Request) -> Response:
    """``POST /v1/webhooks``: a new endpoint (201) and its secret, shown once."""
    project = await _asker(request, edit=True)
    service, db = _db(request)
    asked = await json_body(request, NewWebhook)
    now = _now_ms()
    made, secret = await hooks.add(
        db,
        service.settings.webhook_allow,
        project.id,
        asked.url,
        asked.event_types,
        asked.description,
        now,
    )
    detail = audit.webhook_detail(made.url, made.event_types)
    await record_request(
        request, action="webhook.create", project=project.id, target=made.id, detail=detail
    )
    service.metrics.request("webhooks", 201)
    return json_response(201, SecretAnswer(webhook=item(made, now), secret=secret), {})


async def get_webhook(request: Request) -> Response:
    """``GET /v1/webhooks/{id}``: one endpoint of the project."""
    project = await _asker(request, edit=False)
    service, db = _db(request)
    found = await hooks.get(db, project.id, request.path_params["id"])
    service.metrics.request("webhooks", 200)
    return json_response(200, item(found, _now_ms()), {})


async def remove_webhook(request: Request) -> Response:
    """``DELETE /v1/webhooks/{id}``: 204; its deliveries and their log go with it."""
    project = await _asker(request, edit=True)
    service, db = _db(request)
    await hooks.remove(db, project.id, request.path_params["id"])
    target = request.path_params["id"]
    await record_request(request, action="webhook.remove", project=project.id, target=target)
    service.metrics.request("webhooks", 204)
    return Response(status_code=204)


async def rotate_secret(request: Request) -> Response:
    """``POST /v1/webhooks/{id}/rotate-secret``: the endpoint and its new secret, shown once."""
    project = await _asker(request, edit=True)
    service, db = _db(request)
    now = _now_ms()
    rotated, secret = await hooks.rotate_secret(db, project.id, request.path_params["id"], now)
    await record_request(request, action="webhook.rotate", project=project.id, target=rotated.id)
    service.metrics.request("webhooks", 200)
    return json_response(200, SecretAnswer(webhook=item(rotated, now), secret=secret), {})


async def enable_webhook(request: Request) -> Response:
    """``POST /v1/webhooks/{id}/enable``: the endpoint, enabled again."""
    project = await _asker(request, edit=True)
    service, db = _db(request)
    enabled = await hooks.enable(db, project.id, request.path_params["id"])
    await record_request(request, action="webhook.enable", project=project.id, target=enabled.id)
    service.metrics.request("webhooks", 200)
    return json_response(200, item(enabled, _now_ms()), {})


def _positive(request: Request, name: str, high: int) -> int | None:
    text = single(request.query_params, name)
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= high:
        raise ApiError(400, f"{name} must be an integer 1..{high}, got {text!r}")
    return int(text)


async def list_attempts(request: Request) -> Response:
    """``GET /v1/webhooks/{id}/attempts``: the delivery log, newest first, a page at a time."""
    project = await _asker(request, edit=False, known=("before", "limit"))
    before = _positive(request, "before", 2**62)
    limit = _positive(request, "limit", hooks.MAX_LOG_LIMIT) or hooks.DEFAULT_LOG_LIMIT
    service, db = _db(request)
    endpoint = await hooks.get(db, project.id, request.path_params["id"])
    page, following = await hooks.attempts(db, endpoint.id, before=before, limit=limit)
    answer = AttemptsAnswer(
        attempts=[
            AttemptItem(
                id=a.id,
                message=a.message,
                event_type=a.event_type,
                at=rfc3339(a.at_ms),
                status=a.status,
                error=a.error,
                duration_ms=a.duration_ms,
                state=a.state,
            )
            for a in page
        ],
        next=following,
    )
    service.metrics.request("webhooks", 200)
    return json_response(200, answer, {})


async def redeliver(request: Request) -> Response:
    """``POST /v1/webhooks/{id}/redeliver``: the message is pending again, same id (202)."""
    project = await _asker(request, edit=True)
    service, db = _db(request)
    endpoint = await hooks.get(db, project.id, request.path_params["id"])
    asked = await json_body(request, Redelivery)
    await hooks.redeliver(db, asked.message, endpoint.id, _now_ms())
    service.metrics.request("webhooks", 202)
    answer = Redelivered(message=asked.message, webhook=endpoint.id, state="pending")
    return json_response(202, answer, {})


def routes() -> list[Route]:
    """The routes of ``/v1/webhooks``, for ``create_app``."""
    one = "/v1/webhooks/{id}"
    return [
        Route("/v1/webhooks", list_webhooks, methods=["GET"], name="webhooks"),
        Route("/v1/webhooks", add_webhook, methods=["POST"], name="webhooks"),
        Route(one, get_webhook, methods=["GET"], name="webhooks"),
        Route(one, remove_webhook, methods=["DELETE"], name="webhooks"),
        Route(f"{one}/rotate-secret", rotate_secret, methods=["POST"], name="webhooks"),
        Route(f"{one}/enable", enable_webhook, methods=["POST"], name="webhooks"),
        Route(f"{one}/attempts", list_attempts, methods=["GET"], name="webhooks"),
        Route(f"{one}/redeliver", redeliver, methods=["POST"], name="webhooks"),
    ]


__all__ = [
    "AttemptItem",
    "AttemptsAnswer",
    "NewWebhook",
    "Redelivered",
    "Redelivery",
    "SecretAnswer",
    "WebhookItem",
    "WebhooksAnswer",
    "routes",
]
