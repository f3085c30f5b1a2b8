"""CORS for browsers posting events with a site key: the answer headers and the preflight.

Only the events route is cross-origin: a site key's origins are the ones allowed, and the
registry's origins are read as fresh as an authenticated request's keys.
"""

from __future__ import annotations

from starlette.requests import Request

from ..control.registry import Key
from ..service import Service
from .auth import quiet_key
from .body import Head

CORS_ALLOW_HEADERS = "authorization, content-type, content-encoding"


def cors_headers(
    request: Request, service: Service, key: Key | None = None, head: Head | None = None
) -> dict[str, str]:
    """CORS answer headers when the request's origin is allowed for some site key.

    ``key`` is the request's key when :func:`authenticate` already found it, which spares
    looking it up again; ``head``, the request's headers when they were already read.
    """
    origin = request.headers.get("origin") if head is None else head.origin
    if origin is None:
        return {}
    lowered = origin.lower()
    if key is None:
        raw, _ = quiet_key(request)
        found = service.registry.authenticate(raw) if raw else None
        key = None if found is None else found[0]
    if key is not None:
        allowed = key.kind == "site" and lowered in key.origins
    else:
        allowed = service.registry.site_origin_allowed(lowered)
    if not allowed:
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def preflight_headers(request: Request, service: Service) -> dict[str, str]:
    """The answer to ``OPTIONS`` from a browser about to post events."""
    headers = cors_headers(request, service)
    if "Access-Control-Allow-Origin" in headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                "Access-Control-Max-Age": "600",
            }
        )
    return headers
