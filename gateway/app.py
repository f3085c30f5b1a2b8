"""Assemble the Starlette application in one place: routes, middleware, the one exception
handler, and the lifespan that owns the service they share.

The layout of the package (docs/ARCHITECTURE.md): ``routes/`` answer, ``http/`` is how HTTP is
spoken, ``ingest/`` takes records into ``stores/``, ``control/`` is the control plane,
``pages/`` renders HTML, ``cli/`` is the command line, ``errors`` the one error tree.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

import voxloop_core
from voxloop_widgets import WIDGETS_DIR

from . import __version__
from .errors import GatewayError, as_api_error
from .http.access_log import KeepSecretsOutOfLogs
from .http.cors import cors_headers
from .http.responses import error_response
from .integrations.workers import Workers
from .pages import dashboard as dashboard_pages
from .pages import login as login_pages
from .pages.app_layout import refusal as app_refusal
from .routes import alert_rules, followups_sla
from .routes import audit as audit_routes
from .routes import erasures as erasure_routes
from .routes import followups as followup_routes
from .routes import privacy as privacy_routes
from .routes import rules as rule_routes
from .routes import webhooks as webhook_routes
from .routes.demo import Demo, demo_page
from .routes.email_links import RatingLinkEndpoint
from .routes.email_links import refusal as rating_refusal
from .routes.events import EVENTS_PATH, events_preflight, post_events
from .routes.exports import export_csv, export_ndjson
from .routes.openapi import build_openapi
from .routes.ops import healthz, metrics, openapi, readyz
from .routes.respondents import (
    RESPONDENT_PATH,
    RESPONDENTS_PATH,
    erase_respondent,
    get_respondent,
    respondent_responses,
)
from .routes.responses import get_response, list_responses
from .routes.stats import get_stats
from .service import Service
from .settings import Settings

#: The rating pages' stylesheet and script, served at ``/static/``.
STATIC_DIR = Path(__file__).resolve().parent / "static"


async def refused(request: Request, exc: Exception) -> Response:
    """The one answer to a refused request (``errors``): ``{"error": ...}`` with its status.

    Counted in ``/metrics`` under the route's name; the events route's refusals carry CORS
    headers, so a widget's script can read why it was refused; a rating link answers a browser
    with a page (``rating.refusal``).
    """
    answer = as_api_error(exc)
    service: Service = request.app.state.service
    route = getattr(request.scope.get("route"), "name", "")
    service.metrics.request(route, answer.status)
    if route == "rating":
        return rating_refusal(request, answer)
    if route.startswith("app."):
        return app_refusal(request, answer)
    headers = cors_headers(request, service) if route == "events" else {}
    return error_response(answer, headers)


class Gateway(Starlette):
    """The gateway's Starlette application, with ``POST /v1/events`` taken before its stack.

    Ingest is the hot path: most requests a gateway serves are batches of events, and each
    layer of the stack (the error and exception middleware, the access-log guard, the router's
    walk, the endpoint's wrapper) costs it time that is the same for every batch. A batch with
    a query string (``?key=``, which the access-log guard must hide) goes the whole way.
    """

    #: The route of ``POST /v1/events``: refusals and metrics name it as the router would.
    events_route: Route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == EVENTS_PATH
            and scope["method"] == "POST"
            and not scope.get("query_string")
        ):
            scope["app"] = self
            scope["route"] = self.events_route
            request = Request(scope, receive)
            try:
                response = await post_events(request)
            except (GatewayError, voxloop_core.CoreError) as exc:
                response = await refused(request, exc)
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, demo: Demo | None = None) -> Gateway:
    """Build the gateway application for ``settings``; ``demo`` adds the ``/demo`` page."""
    service = Service(settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.open()
        workers = Workers(service)
        workers.start()
        try:
            yield
        finally:
            await workers.stop()
            await service.close()

    events = Route(EVENTS_PATH, post_events, methods=["POST"], name="events")
    app = Gateway(
        routes=[
            events,
            Route(EVENTS_PATH, events_preflight, methods=["OPTIONS"]),
            Route("/v1/stats", get_stats, methods=["GET"], name="stats"),
            Route("/v1/responses", list_responses, methods=["GET"], name="responses"),
            Route("/v1/responses/{ref}", get_response, methods=["GET"], name="response"),
            Route(
                RESPONDENTS_PATH,
                respondent_responses,
                methods=["GET"],
                name="respondents",
            ),
            Route(RESPONDENT_PATH, get_respondent, methods=["GET"], name="respondents"),
            Route(RESPONDENT_PATH, erase_respondent, methods=["DELETE"], name="respondents"),
            *erasure_routes.routes(),
            *privacy_routes.routes(),
            Route("/v1/exports/responses.csv", export_csv, methods=["GET"], name="exports"),
            Route("/v1/exports/responses.ndjson", export_ndjson, methods=["GET"], name="exports"),
            *alert_rules.routes(),
            *followups_sla.routes(),
            *followup_routes.routes(),
            *rule_routes.routes(),
            *webhook_routes.routes(),
            *audit_routes.routes(),
            *login_pages.routes(),
            *dashboard_pages.routes(),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/openapi.json", openapi),
            Route("/r/{token}", RatingLinkEndpoint, name="rating"),
            Mount("/widgets/v1", StaticFiles(directory=WIDGETS_DIR / "v1"), name="widgets"),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        lifespan=lifespan,
        middleware=[Middleware(KeepSecretsOutOfLogs)],
        exception_handlers={GatewayError: refused, voxloop_core.CoreError: refused},
    )
    if demo is not None:
        app.add_route("/demo", demo_page, methods=["GET"])
        app.state.demo = demo
    app.events_route = events
    app.state.service = service
    app.state.settings = service.settings
    app.state.openapi = msgspec.json.encode(build_openapi(__version__))
    return app
