"""Assemble the Starlette application in one place: routes, lifespan, the service they share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import voxloop_core
from voxloop_widgets import WIDGETS_DIR

from . import __version__
from .auth import preflight_headers
from .demo import Demo, demo_page
from .ingest import post_events
from .metrics import CONTENT_TYPE_LATEST
from .openapi import build_openapi
from .rating import confirm_vote, show_vote
from .service import Service
from .settings import Settings
from .stats import get_stats

#: The rating pages' stylesheet and script, served at ``/static/``.
STATIC_DIR = Path(__file__).resolve().parent / "static"


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
            Route("/v1/events", post_events, methods=["POST"]),
            Route("/v1/events", events_preflight, methods=["OPTIONS"]),
            Route("/v1/stats", get_stats, methods=["GET"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/openapi.json", openapi),
            Route("/r/{token}", show_vote, methods=["GET"]),
            Route("/r/{token}", confirm_vote, methods=["POST"]),
            Mount("/widgets/v1", StaticFiles(directory=WIDGETS_DIR / "v1"), name="widgets"),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        lifespan=lifespan,
    )
    if demo is not None:
        app.add_route("/demo", demo_page, methods=["GET"])
        app.state.demo = demo
    app.state.service = service
    app.state.settings = service.settings
    app.state.openapi = msgspec.json.encode(build_openapi(__version__))
    return app
