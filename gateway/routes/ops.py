"""What operators and tools read: health, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import voxloop_core

from ..http.metrics import CONTENT_TYPE_LATEST
from ..service import Service


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
