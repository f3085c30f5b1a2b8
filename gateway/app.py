"""Assemble the Starlette application in one place: routes, middleware, lifespan."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import voxloop_core

from .settings import Settings


async def healthz(request: Request) -> JSONResponse:
    """The process is up; says which core implementation serves."""
    return JSONResponse({"status": "ok", "core": voxloop_core.IMPLEMENTATION})


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the gateway application for ``settings``."""
    app = Starlette(routes=[Route("/healthz", healthz)])
    app.state.settings = settings or Settings()
    return app
