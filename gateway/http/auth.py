"""Who is asking: the key (header, or ``?key=`` for site keys), its origin rules, its limits."""

from __future__ import annotations

import time

from starlette.requests import Request

from ..control.registry import Key, Project
from ..errors import ApiError, retry_after
from ..service import Service
from .limits import client_address

#: The cookie holding a person's session token (``HttpOnly``, ``SameSite=Lax``, ``Secure`` over
#: HTTPS); the session itself is a row of the control plane, shared by every replica.
SESSION_COOKIE = "voxloop_session"
#: The form field, and the header (``X-CSRF-Token``) of a script's request, carrying the session's
#: CSRF token on every state-changing request.
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

#: Why a server key with an ``Origin`` header is refused: browsers send that header, and a key
#: a browser holds is in a web page, where anyone can read it.
SERVER_KEY_IN_BROWSER = (
    "a server key must never be used from a browser: this request carries an Origin header;"
    " use a site key (pk_...) in web pages"
)


def bearer_or_query_key(request: Request) -> tuple[str | None, bool]:
    """The key sent with ``request`` and whether it came in the query string."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "Authorization must be `Bearer <key>`")
        return value.strip(), False
    query = request.query_params.get("key")
    return (query, True) if query else (None, False)


def request_address(request: Request, service: Service) -> str:
    """The client's address: the peer's, or ``X-Forwarded-For``'s behind a trusted proxy."""
    return client_address(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        service.settings.trusted_proxies,
    )


def authenticate(request: Request, service: Service) -> tuple[Key, Project]:
    """The key and project of ``request``; 401/403 per CONTRACT.md, 429 past the limits."""
    address = request_address(request, service)
    raw, from_query = bearer_or_query_key(request)
    now = time.monotonic()
    kind = service.registry.kind_of(raw) if raw else None
    if kind != "server":  # visitors and strangers are limited by address; backends by key only
        check_limit(service, "address", address, now)
    if raw is None:
        raise ApiError(401, "missing key: send `Authorization: Bearer <key>`")
    if from_query and kind == "server":
        raise ApiError(401, "a server key must never be sent in the URL; use the header")
    origin = request.headers.get("origin")
    if kind == "server" and origin is not None:
        raise ApiError(403, SERVER_KEY_IN_BROWSER)
    found = service.registry.authenticate(raw)
    if found is None:
        raise ApiError(401, "unknown or revoked key")
    key, project = found
    check_limit(service, "key", key.id, now)
    if key.kind == "site" and origin is not None and origin.lower() not in key.origins:
        allowed = ", ".join(sorted(key.origins)) or "none"
        raise ApiError(403, f"origin {origin} is not allowed for this site key; allowed: {allowed}")
    return key, project


def check_limit(service: Service, what: str, name: str, now: float) -> None:
    """Take one request from ``name``'s bucket (``key`` or ``address``); ApiError 429 if empty."""
    limiter = service.key_limiter if what == "key" else service.address_limiter
    wait = limiter.take(name, now)
    shared = service.shared_limits
    if shared is not None and not wait:
        if shared.over(what, name):
            wait = 1.0  # over the limit across the replicas, until the next sync says otherwise
        else:
            shared.count(what, name)
    if wait > 0:
        raise ApiError(429, f"rate limited per {what}: retry after {wait:.1f} s", retry_after(wait))


def quiet_key(request: Request) -> tuple[str | None, bool]:
    try:
        return bearer_or_query_key(request)
    except ApiError:
        return None, False
