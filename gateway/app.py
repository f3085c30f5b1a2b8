"""Assemble the Starlette application in one place: routes, lifespan, the service they share."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

import voxloop_core
from voxloop_widgets import WIDGETS_DIR

from . import __version__
from .auth import cors_headers, preflight_headers
from .demo import Demo, demo_page
from .errors import GatewayError, as_api_error
from .ingest import error_response, post_events
from .metrics import CONTENT_TYPE_LATEST
from .openapi import build_openapi
from .rating import RatingLinkEndpoint
from .rating import refusal as rating_refusal
from .service import Service
from .settings import Settings
from .stats import get_stats

#: The rating pages' stylesheet and script, served at ``/static/``.
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: A key as it may appear anywhere in a URL: its kind's prefix (``pk_``, ``sk_``; the underscore
#: maybe percent-encoded), the 8 characters of its public id, then the secret rest.
_KEY_IN_URL: Final = re.compile(rb"([a-z]k(?:_|%5[fF])[A-Za-z0-9_-]{8})[A-Za-z0-9_%-]+")
#: A rating link's path, however many slashes lead to it: the token names its recipient.
_TOKEN_PATH: Final = re.compile(r"/r/.*", re.DOTALL)


class KeepSecretsOutOfLogs:
    """Keeps keys sent in the URL and rating-link tokens out of the server's access log.

    A site key may come as ``?key=`` (``sendBeacon``), a server key sent in a URL by mistake is
    refused but was still sent, and a rating link's path carries a token that names its
    recipient. The server logs the request's path and query from the scope it handed the app
    once the answer is sent; the routes read a copy of that scope with everything as sent, and
    the server's own shows every key, wherever it stands in the path or query, by its public id
    only (``pk_AbCdEfGh...``), and no token.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        path: str = scope.get("path", "")
        shown_path = redacted_path(path)
        if not query and shown_path == path:
            await self.app(scope, receive, send)
            return
        as_sent = dict(scope)
        scope["query_string"] = redacted_query(query)
        scope["path"] = shown_path
        scope["raw_path"] = shown_path.encode()
        await self.app(as_sent, receive, send)


def redacted_query(query: bytes) -> bytes:
    """``query`` with every key in it cut to the key's public id."""
    return _KEY_IN_URL.sub(rb"\1...", query)


def redacted_path(path: str) -> str:
    """``path`` with a rating link's token left out and every key cut to its public id."""
    path = _TOKEN_PATH.sub("/r/...", path)
    if "k_" not in path and "k%" not in path:
        return path
    return _KEY_IN_URL.sub(rb"\1...", path.encode()).decode()


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
    headers = cors_headers(request, service) if route == "events" else {}
    return error_response(answer, headers)


async def healthz(request: Request) -> JSONResponse:
    """The process is up; says which core implementation serves."""
    return JSONResponse({"status": "ok", "core": voxloop_core.IMPLEMENTATION})


async def readyz(request: Request) -> JSONResponse:
    """200 when every store accepts writes, else 503 naming those that don't."""
    service: Service = request.app.state.service
    stores = await service.ready()
    ok = not service.draining and all(stores.values())
    body = {"ready": ok, "draining": service.draining, "stores": stores}
    return JSONResponse(body, 200 if ok else 503, {} if ok else {"Retry-After": "1"})


async def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    service: Service = request.app.state.service
    return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    """The API as OpenAPI 3.1, generated from the code's own Structs."""
    document: bytes = request.app.state.openapi
    return Response(document, media_type="application/json")


async def events_preflight(request: Request) -> Response:
    """CORS preflight for browsers posting events with a site key."""
    service: Service = request.app.state.service
    return Response(status_code=204, headers=preflight_headers(request, service))


def create_app(settings: Settings | None = None, demo: Demo | None = None) -> Starlette:
    """Build the gateway application for ``settings``; ``demo`` adds the ``/demo`` page."""
    service = Service(settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.open()
        try:
            yield
        finally:
            await service.close()

    app = Starlette(
        routes=[
            Route("/v1/events", post_events, methods=["POST"], name="events"),
            Route("/v1/events", events_preflight, methods=["OPTIONS"]),
            Route("/v1/stats", get_stats, methods=["GET"], name="stats"),
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
    app.state.service = service
    app.state.settings = service.settings
    app.state.openapi = msgspec.json.encode(build_openapi(__version__))
    return app
