"""Who is signed in to the dashboard, and the checks every form they post goes through.

A person's session is the token in the :data:`~..http.auth.SESSION_COOKIE` cookie, a row of
the control plane (:class:`~..control.people.People`): ``HttpOnly`` (no script reads it),
``SameSite=Lax`` (no other site's form or fetch sends it), ``Secure`` when the request came over
HTTPS, on ``/`` so that the API's reads (``/v1/stats``, ``/v1/responses``, the exports) take it
as the pages do. A page without a session raises :class:`LoginNeeded` and a person who still
holds a one-time password :class:`PasswordChangeNeeded`; the dashboard's refusal turns them
into redirects (:func:`.app_layout.refusal`).

Every form that changes something carries the session's CSRF token, compared in constant time
(:func:`check_csrf`); the login form, before there is a session, carries one of its own kept in
a short-lived cookie (the double-submit pattern), so that no other site can log a browser in to
an account of its choosing.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Final, NamedTuple
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from ..control.access import Access, Section
from ..control.people import Session
from ..control.registry import Project
from ..errors import ApiError
from ..http.auth import SESSION_COOKIE, check_csrf
from ..http.body import media_type, read_body
from ..service import Service

__all__ = [
    "LOGIN_COOKIE",
    "LoginNeeded",
    "PasswordChangeNeeded",
    "SignedIn",
    "check_csrf",
    "clear_cookie",
    "form_fields",
    "is_https",
    "login_token",
    "project_of",
    "safe_next",
    "set_cookie",
    "signed_in",
]

#: The cookie holding the login form's own CSRF token, until the login succeeds.
LOGIN_COOKIE: Final = "voxloop_login"
#: The most a dashboard form's body may hold: a few fields, a password at most 128 characters.
MAX_FORM_BYTES: Final = 8192
_FORM_TYPE: Final = "application/x-www-form-urlencoded"


class LoginNeeded(ApiError):
    """No session, or it has ended: the page answers with the way to the login page (401)."""

    def __init__(self) -> None:
        super().__init__(401, "not logged in, or the session has ended: log in at /app/login")


class PasswordChangeNeeded(ApiError):
    """The person still holds a one-time password: every page leads to the password page."""

    def __init__(self) -> None:
        super().__init__(403, "choose your own password first, at /app/password")


class SignedIn(NamedTuple):
    """The session of a request, and its token (to log out or change the password with)."""

    token: str
    session: Session


async def signed_in(request: Request, *, password_page: bool = False) -> SignedIn:
    """The session of ``request``, read from the control plane (shared by every replica).

    Args:
        password_page: the request is for the password page itself, which a person with a
            one-time password may (must) see.

    Raises:
        LoginNeeded: no session cookie, or its session has ended.
        PasswordChangeNeeded: the person must choose a password before anything else.
    """
    service: Service = request.app.state.service
    token = request.cookies.get(SESSION_COOKIE, "")
    session = await service.people.session(token) if token else None
    if session is None:
        raise LoginNeeded()
    if session.user.must_change_password and not password_page:
        raise PasswordChangeNeeded()
    return SignedIn(token, session)


def project_of(service: Service, access: Access, name: str, section: Section) -> Project:
    """The project ``name`` of a page of ``section``: Denied (403) unless the person may see
    it there, before anything says whether it exists; then 404 for a project there isn't."""
    access.require(section, "view", name)
    project = service.registry.project_of(name)
    if project is None:
        raise ApiError(404, f"no project {name!r}")
    return project


async def form_fields(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The fields ``names`` of a posted form (``application/x-www-form-urlencoded``, UTF-8).

    A field missing is ``""``; one given twice keeps its first value; others are ignored. An
    empty body is a form without fields.

    Raises:
        ApiError: 415 for another media type, 413 past :data:`MAX_FORM_BYTES`, 400 for a body
            that isn't UTF-8 form fields.
    """
    body = await read_body(request, limit=MAX_FORM_BYTES)
    if media_type(request) != _FORM_TYPE and (body or media_type(request)):
        raise ApiError(415, f"a form must be sent as {_FORM_TYPE}")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "the form is not UTF-8 form fields") from None
    found: dict[str, str] = {}
    for name, value in pairs:
        if name in names:
            found.setdefault(name, value)
    return {name: found.get(name, "") for name in names}


def login_token(request: Request) -> str:
    """The login form's CSRF token: the one its cookie holds, or a new one."""
    held = request.cookies.get(LOGIN_COOKIE, "")
    return held if 32 <= len(held) <= 64 else secrets.token_urlsafe(32)


def is_https(request: Request, service: Service) -> bool:
    """Whether the browser reached the gateway over HTTPS: directly, or through a trusted proxy
    that says so in ``X-Forwarded-Proto`` (only a proxy of ``--trusted-proxies`` is believed)."""
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
    if forwarded != "https" or request.client is None:
        return False
    try:
        peer = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    return any(peer in network for network in service.settings.trusted_proxies)


def set_cookie(response: Response, name: str, value: str, *, secure: bool, path: str = "/") -> None:
    """Set a dashboard cookie: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` over HTTPS, for the
    browser's session only (the server ends idle sessions itself)."""
    response.set_cookie(name, value, path=path, secure=secure, httponly=True, samesite="lax")


def clear_cookie(response: Response, name: str, *, secure: bool, path: str = "/") -> None:
    """Make the browser forget a dashboard cookie."""
    response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite="lax")


def safe_next(path: str | None) -> str:
    """Where to go after logging in: a dashboard page of this site, else the project list.

    Only a path under ``/app/`` is taken, never a URL of another site (``//evil.example``, a
    backslash, a scheme): an open redirect would let a link send a person elsewhere, logged in.
    """
    if (
        path
        and path.startswith("/app/")
        and "//" not in path
        and "\\" not in path
        and path.isprintable()
        and len(path) <= 2000
    ):
        return path
    return "/app/"
