"""Who is asking: the key (header, or ``?key=`` for site keys), its origin rules, its limits.

Two principals, one for each side of the API. A writer (:func:`authenticate`) is a site or a
server key. A reader (:func:`reader`) is a server key (all of its project), a read key (its
channels and forms) or a person's session (their groups' grants), and what it may see is an
:class:`~..control.access.Access` that every read cuts its query with.
"""

from __future__ import annotations

import hmac
import time
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from ..control.access import SECTION_TITLES, Access, Denied, Scope, Section, read_key_access
from ..control.people import Session
from ..control.registry import NAME_RULE, Key, Project
from ..control.tables import projects
from ..errors import ApiError, retry_after
from ..service import Service
from .body import Head, head_of
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
#: Why a read key is refused on a write.
READ_KEY_WRITES: Final = "a read key (rk_…) only reads; use a site or server key to write"
#: Why a read key with an ``Origin`` header is refused: like a server key, it is a secret.
READ_KEY_IN_BROWSER: Final = (
    "a read key must never be used from a browser: this request carries an Origin header;"
    " log in to the dashboard instead"
)
#: Why a site key is refused on a read: it is public, in every web page that sends events.
SITE_KEY_READS: Final = (
    "a site key (pk_…) only writes events; read with a server key (sk_…) or a read key (rk_…)"
)
#: The keys that are secrets, and so are never taken from a URL.
SECRET_KINDS: Final = frozenset({"server", "read"})


def bearer_or_query_key(request: Request) -> tuple[str | None, bool]:
    """The key sent with ``request`` and whether it came in the query string."""
    return _key_sent(request, request.headers.get("authorization"))


def _key_sent(request: Request, header: str | None) -> tuple[str | None, bool]:
    """:func:`bearer_or_query_key` with the ``Authorization`` header already read."""
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "Authorization must be `Bearer <key>`")
        return value.strip(), False
    query = request.query_params.get("key")
    return (query, True) if query else (None, False)


def request_address(request: Request, service: Service) -> str:
    """The client's address: the peer's, or ``X-Forwarded-For``'s behind a trusted proxy."""
    return _address(request, request.headers.get("x-forwarded-for"), service)


def _address(request: Request, forwarded_for: str | None, service: Service) -> str:
    """:func:`request_address` with ``X-Forwarded-For`` already read."""
    peer = request.scope.get("client")
    return client_address(
        peer[0] if peer else None, forwarded_for, service.settings.trusted_proxies
    )


def authenticate(
    request: Request, service: Service, head: Head | None = None
) -> tuple[Key, Project]:
    """The writer of ``request``: its key and project; 401/403 per CONTRACT.md, 429 past the
    limits. A read key is refused (403): it never writes.

    ``head`` is the request's :func:`~.body.head_of`, when the caller already read it.
    """
    if head is None:
        head = head_of(request)
    address = _address(request, head.forwarded_for, service)
    raw, from_query = _key_sent(request, head.authorization)
    now = time.monotonic()
    kind = service.registry.kind_of(raw) if raw else None
    if kind != "server":  # visitors and strangers are limited by address; backends by key only
        check_limit(service, "address", address, now)
    if raw is None:
        raise ApiError(401, "missing key: send `Authorization: Bearer <key>`")
    if from_query and kind in SECRET_KINDS:
        raise ApiError(401, f"a {kind} key must never be sent in the URL; use the header")
    origin = head.origin
    if kind == "server" and origin is not None:
        raise ApiError(403, SERVER_KEY_IN_BROWSER)
    found = service.registry.authenticate(raw)
    if found is None:
        raise ApiError(401, "unknown or revoked key")
    key, project = found
    check_limit(service, "key", key.id, now)
    if key.kind == "read":
        raise ApiError(403, READ_KEY_WRITES)
    if key.kind == "site" and origin is not None and origin.lower() not in key.origins:
        allowed = ", ".join(sorted(key.origins)) or "none"
        raise ApiError(403, f"origin {origin} is not allowed for this site key; allowed: {allowed}")
    return key, project


async def reader(request: Request, service: Service, section: Section) -> tuple[Access, Project]:
    """The reader of ``request``: what it may see, and the project it reads ``section`` of.

    ``Authorization: Bearer sk_…`` reads everything of the server key's project; ``Bearer rk_…``
    the read key's channels and forms; without the header, the session cookie
    (:data:`SESSION_COOKIE`) reads what the person's groups grant, in the project named by
    ``?project=`` (needed when they see more than one). Keys are never taken from the URL here.

    Raises:
        ApiError: 401 without credentials, with an unknown or revoked key, or an expired
            session; 403 for a site key, a secret key sent from a browser, or a project the
            key doesn't belong to; 400 for a ``project`` missing or malformed; 404 for a
            project that doesn't exist (only to whom may see every project); 429 past the
            limits (per key or person, and per address for all but server and read keys).
        Denied: 403 when ``section`` of the project is not granted.
    """
    address = request_address(request, service)
    now = time.monotonic()
    if "key" in request.query_params:
        check_limit(service, "address", address, now)
        raise ApiError(401, "a key is never sent in the URL to read; use the Authorization header")
    if "authorization" in request.headers:
        access, project = _key_reader(request, service, address, now)
        wanted = _project_param(request)
        if wanted is not None and wanted != project.id:
            raise Denied(f"this key reads project {project.id!r} only")
    else:
        check_limit(service, "address", address, now)
        access, project = await _session_reader(request, service, section, now)
    access.require(section, "view", project.id)
    return access, project


def _project_param(request: Request) -> str | None:
    asked = request.query_params.getlist("project")
    if len(asked) > 1 or (asked and not NAME_RULE.fullmatch(asked[0])):
        raise ApiError(400, "project must be given once, as a project's name")
    return asked[0] if asked else None


def _key_reader(
    request: Request, service: Service, address: str, now: float
) -> tuple[Access, Project]:
    """A server or read key's reader; the header is there."""
    raw, _ = bearer_or_query_key(request)
    kind = service.registry.kind_of(raw or "")
    if kind not in SECRET_KINDS:  # a visitor's key, or a stranger's: limited by address first
        check_limit(service, "address", address, now)
    if kind in SECRET_KINDS and request.headers.get("origin") is not None:
        raise ApiError(403, SERVER_KEY_IN_BROWSER if kind == "server" else READ_KEY_IN_BROWSER)
    found = service.registry.authenticate(raw or "")
    if found is None:
        raise ApiError(401, "unknown or revoked key")
    key, project = found
    check_limit(service, "key", key.id, now)
    if key.kind == "site":
        raise ApiError(403, SITE_KEY_READS)
    # A server key reads all of its project, as a read key of the whole project would.
    scope = key.scope() if key.kind == "read" else Scope(project.id)
    return read_key_access(key.id, scope), project


async def _session_reader(
    request: Request, service: Service, section: Section, now: float
) -> tuple[Access, Project]:
    """A person's reader, from their session cookie; the project asked, or their only one."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise ApiError(
            401,
            "missing credentials: send `Authorization: Bearer <server or read key>`,"
            " or log in at /app/login",
        )
    session = await service.people.session(token)
    if session is None:
        raise ApiError(401, "the session has expired or was closed: log in again at /app/login")
    access = session.access
    check_limit(service, "key", access.who, now)
    wanted = _project_param(request)
    if wanted is None:
        seen = access.projects(await project_ids(service), section)
        if not seen:
            raise Denied(f"{SECTION_TITLES[section]} needs view access")
        if len(seen) != 1:
            raise ApiError(400, f"project is required: you can see {', '.join(seen)}")
        wanted = seen[0]
    access.require(section, "view", wanted)  # before the lookup: says nothing of what exists
    project = service.registry.project_of(wanted)
    if project is None:
        raise ApiError(404, f"no project {wanted!r}")
    return access, project


def check_csrf(expected: str, given: str | None) -> None:
    """Refuse a form whose CSRF token is missing or not ``expected`` (compared in constant time).

    Raises:
        Denied: 403, and nothing of the form is done.
    """
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Denied("the form's CSRF token is missing or wrong: reload the page and send it again")


async def person_changing(
    request: Request,
    service: Service,
    access: Access,
    section: Section,
    project: Project,
    what: str,
) -> Session:
    """The person logged in who changes ``what`` (follow-ups, rules, webhooks) in ``project``.

    A change of what people manage is a person's: made with a session (a key never changes
    them: 403), carrying that session's CSRF token in ``X-CSRF-Token`` (so another site can't
    make a logged-in browser send it), by someone with ``edit`` on ``section`` there.
    """
    token = request.cookies.get(SESSION_COOKIE, "")
    session = await service.people.session(token) if token else None
    if session is None:
        raise Denied(f"{what} changed by a person logged in to the dashboard")
    check_csrf(session.csrf, request.headers.get(CSRF_HEADER))
    access.require(section, "edit", project.id)
    return session


async def project_ids(service: Service) -> list[str]:
    """Every project's name, read without blocking the gateway's loop."""

    async def read(conn: AsyncConnection) -> list[str]:
        return list((await conn.execute(select(projects.c.id))).scalars())

    return await service.registry.db.arun(read)


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
