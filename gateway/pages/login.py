"""``/app/login``, ``/app/logout`` and ``/app/password``: how a person gets in and out.

Logging in makes a new session (:meth:`~..control.people.People.login`) and puts its token in
the session cookie, replacing whatever the browser held: a token planted before the login is
never the session after it (session fixation), and a session the browser held is ended. A
person given a one-time password is sent to the password page first; changing the password
ends every session of theirs and gives this browser a new one. Logging out ends the session on
every replica at once and clears the cookie.

Every POST checks a CSRF token before anything else (:func:`.app_auth.check_csrf`): the
session's on logout and the password change, the login form's own on the login. Failed logins
are throttled per account and per address by :class:`~..control.people.People`; the page says
when to try again. Every login, refused or not, and every password change is recorded in the
audit log, from the client's address; a refused one names the account only if it is a user's.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..control.passwords import MIN_PASSWORD_CHARS
from ..control.people import MAX_EMAIL_CHARS
from ..control.tables import users
from ..errors import ApiError
from ..http.auth import CSRF_FIELD, SESSION_COOKIE, request_address
from ..privacy import audit
from ..service import Service
from .app_auth import (
    LOGIN_COOKIE,
    SignedIn,
    check_csrf,
    clear_cookie,
    form_fields,
    is_https,
    login_token,
    safe_next,
    set_cookie,
    signed_in,
)
from .app_i18n import Locale, locale_of
from .app_layout import APP_HEADERS, app_page, link

__all__ = ["routes"]

#: The login form's cookie lives on the login page only, and not longer than a form is open.
_LOGIN_PATH: Final = "/app/login"
_WRONG_CURRENT: Final = "current password is wrong"


def _login_page(
    request: Request,
    locale: Locale,
    *,
    next_path: str,
    email: str = "",
    error: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    service: Service = request.app.state.service
    token = login_token(request)
    notice = ""
    if request.query_params.get("bye") == "1":
        notice = locale.words.logged_out
    elif "next" in request.query_params and not error:
        notice = locale.words.please_log_in
    context = {
        "csrf": token,
        "csrf_field": CSRF_FIELD,
        "next_path": next_path,
        "email": email,
        "error": error,
        "notice": notice,
    }
    page = app_page(
        request,
        locale,
        "app/login.html",
        context,
        title=locale.words.login_title,
        status=status,
        headers=headers,
    )
    set_cookie(page, LOGIN_COOKIE, token, secure=is_https(request, service), path=_LOGIN_PATH)
    return page


async def login_form(request: Request) -> Response:
    """``GET /app/login``: the form, with a CSRF token of its own in a cookie and a field."""
    locale = locale_of(request)
    return _login_page(request, locale, next_path=safe_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    """``POST /app/login``: a new session for a right email and password, then onwards.

    A wrong one, or a throttled account or address, gets the form again with why (401, 429
    with ``Retry-After``); a form without its CSRF token is refused (403) before any check.
    """
    service: Service = request.app.state.service
    locale = locale_of(request)
    fields = await form_fields(request, ("email", "password", CSRF_FIELD, "next"))
    check_csrf(request.cookies.get(LOGIN_COOKIE, ""), fields[CSRF_FIELD])
    next_path = safe_next(fields["next"])
    address = request_address(request, service)
    try:
        token, session = await service.people.login(
            fields["email"],
            fields["password"],
            address,
            user_agent=request.headers.get("user-agent", "")[:256] or None,
        )
    except ApiError as refused:
        await _failed_login(service, fields["email"], refused.status, address)
        words = locale.words
        if refused.status == 429:
            wait = refused.headers.get("Retry-After", "60")
            error = words.login_throttled.format(locale.number(int(wait)))
        else:
            error = words.login_failed
        return _login_page(
            request,
            locale,
            next_path=next_path,
            email=fields["email"][:254],
            error=error,
            status=refused.status,
            headers=refused.headers,
        )
    await audit.record(
        service.registry.db, actor=session.access.who, action="login", address=address
    )
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # whatever the browser held (planted or its own) is not the new session
        await service.people.logout(old)
    where = "/app/password" if session.user.must_change_password else next_path
    answer = RedirectResponse(link(locale, where), 303, APP_HEADERS)
    secure = is_https(request, service)
    set_cookie(answer, SESSION_COOKIE, token, secure=secure)
    clear_cookie(answer, LOGIN_COOKIE, secure=secure, path=_LOGIN_PATH)
    return answer


async def logout(request: Request) -> Response:
    """``POST /app/logout``: end the session everywhere and forget the cookie."""
    service: Service = request.app.state.service
    locale = locale_of(request)
    who = await signed_in(request, password_page=True)
    fields = await form_fields(request, (CSRF_FIELD,))
    check_csrf(who.session.csrf, fields[CSRF_FIELD])
    await service.people.logout(who.token)
    answer = RedirectResponse(link(locale, _LOGIN_PATH, {"bye": "1"}), 303, APP_HEADERS)
    clear_cookie(answer, SESSION_COOKIE, secure=is_https(request, service))
    return answer


def _password_page(
    request: Request, locale: Locale, who: SignedIn, error: str = "", status: int = 200
) -> Response:
    words = locale.words
    context = {
        "csrf_field": CSRF_FIELD,
        "must": who.session.user.must_change_password,
        "error": error,
        "rules": words.password_rules.format(locale.number(MIN_PASSWORD_CHARS)),
        "min_chars": MIN_PASSWORD_CHARS,
    }
    return app_page(
        request,
        locale,
        "app/password.html",
        context,
        session=who.session,
        title=words.password_title,
        status=status,
    )


async def password_form(request: Request) -> Response:
    """``GET /app/password``: the form to choose a new password (first, after a one-time one)."""
    locale = locale_of(request)
    who = await signed_in(request, password_page=True)
    return _password_page(request, locale, who)


async def change_password(request: Request) -> Response:
    """``POST /app/password``: change it, then go on with a new session (the old ones end).

    A wrong current password or a new one that breaks a rule gets the form again (400), saying
    which; a form without the session's CSRF token is refused (403) and changes nothing.
    """
    service: Service = request.app.state.service
    locale = locale_of(request)
    who = await signed_in(request, password_page=True)
    names = ("current", "new", "repeat", CSRF_FIELD)
    fields = await form_fields(request, names)
    check_csrf(who.session.csrf, fields[CSRF_FIELD])
    words = locale.words
    if fields["new"] != fields["repeat"]:
        return _password_page(request, locale, who, words.passwords_differ, 400)
    try:
        token = await service.people.change_password(who.token, fields["current"], fields["new"])
    except ApiError as refused:
        if refused.status == 401:
            raise
        if refused.message == _WRONG_CURRENT:
            error = words.wrong_password
        elif refused.status == 429:
            wait = refused.headers.get("Retry-After", "60")
            error = words.login_throttled.format(locale.number(int(wait)))
        elif locale.language == "en":  # the rule broken, in the rule's own words
            error = refused.message[0].upper() + refused.message[1:] + "."
        else:
            error = words.password_rules.format(locale.number(MIN_PASSWORD_CHARS))
        return _password_page(request, locale, who, error, refused.status)
    await audit.record(
        service.registry.db,
        actor=who.session.access.who,
        action="password.change",
        address=request_address(request, service),
    )
    answer = RedirectResponse(link(locale, "/app/"), 303, APP_HEADERS)
    set_cookie(answer, SESSION_COOKIE, token, secure=is_https(request, service))
    return answer


async def _failed_login(service: Service, email: str, status: int, address: str) -> None:
    """Record a refused login: as the account's when it is a user's, else as ``user:unknown``.

    What was typed is never kept unless it names a user: a password typed in the email field
    by mistake must not reach the log.
    """
    account = email.strip().lower()[:MAX_EMAIL_CHARS]

    async def known(conn: AsyncConnection) -> bool:
        found = await conn.execute(select(users.c.id).where(users.c.email == account))
        return found.first() is not None

    is_user = bool(account) and await service.registry.db.arun(known)
    who = account if is_user else "unknown"
    reason = "throttled" if status == 429 else "wrong email or password"
    await audit.record(
        service.registry.db,
        actor=f"user:{who}",
        action="login.failed",
        detail={"reason": reason},
        address=address,
    )


def routes() -> list[Route]:
    """The routes of this module, for the application's table."""
    return [
        Route("/app/login", login_form, methods=["GET"], name="app.login"),
        Route("/app/login", login, methods=["POST"], name="app.login"),
        Route("/app/logout", logout, methods=["POST"], name="app.logout"),
        Route("/app/password", password_form, methods=["GET"], name="app.password"),
        Route("/app/password", change_password, methods=["POST"], name="app.password"),
    ]
