"""Logging in and out of the dashboard over real HTTP: cookies, CSRF, session fixation.

A real gateway on loopback (``dashboard_world``); the forms are posted as a browser posts them.
Every refused form must change nothing: the session still works, the password is still the
old one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from voxloop_gateway.http.auth import SESSION_COOKIE

from ..conftest import make_project, start_gateway
from .dashboard_world import PASSWORD, World, form_token, login, running_world

NEW_PASSWORD = "a much longer secret phrase"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from running_world(tmp_path_factory)


def _cookie(answer: httpx.Response, name: str) -> str:
    """The ``Set-Cookie`` header of ``answer`` for ``name``."""
    found = [c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{name}=")]
    assert len(found) == 1, answer.headers.get_list("set-cookie")
    return found[0]


def _login_status(world: World, email: str, password: str) -> int:
    """The status of a login through the form with ``password``."""
    with httpx.Client(base_url=world.url, timeout=30) as client:
        page = client.get("/app/login")
        fields = {"email": email, "password": password, "csrf": form_token(page.text)}
        return client.post("/app/login", data=fields).status_code


def _works(world: World, token: str) -> bool:
    """Whether ``token`` is a live session: a page answers, and so does the API."""
    cookies = {SESSION_COOKIE: token}
    with httpx.Client(base_url=world.url, cookies=cookies, timeout=30) as client:
        page = client.get("/app/shop/")
        api = client.get("/v1/stats", params={"project": "shop", "metric": "nps"})
    assert (page.status_code == 200) == (api.status_code == 200), (page, api.text)
    if page.status_code != 200:
        assert page.status_code == 303 and page.headers["location"].startswith("/app/login")
        assert api.status_code == 401
    return page.status_code == 200


def test_a_login_sets_an_httponly_lax_cookie_for_the_whole_site(world: World) -> None:
    email = world.user()
    with httpx.Client(base_url=world.url, timeout=30) as client:
        page = client.get("/app/login")
        assert "Secure" not in page.headers["set-cookie"]  # plain HTTP here
        fields = {"email": email, "password": PASSWORD, "csrf": form_token(page.text)}
        done = client.post("/app/login", data=fields)
        token = client.cookies[SESSION_COOKIE]
    assert done.status_code == 303 and done.headers["location"] == "/app/"
    cookie = _cookie(done, SESSION_COOKIE)
    assert "HttpOnly" in cookie and "Path=/;" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie and "Max-Age" not in cookie
    assert _works(world, token)
    assert done.headers["content-security-policy"].startswith("default-src 'none'")


def test_behind_a_trusted_https_proxy_the_cookies_are_secure(tmp_path: Path) -> None:
    site, server = make_project(tmp_path)
    gateway = start_gateway(tmp_path, site, server, trusted_proxies="127.0.0.1")
    try:
        with httpx.Client(base_url=gateway.url, headers={"X-Forwarded-Proto": "https"}) as c:
            page = c.get("/app/login")
            assert "Secure" in _cookie(page, "voxloop_login")
    finally:
        gateway.stop()


def test_the_login_form_without_its_token_is_refused_and_logs_no_one_in(world: World) -> None:
    email = world.user()
    for token in (None, "forged-token-of-the-right-length-aaaaaaaaaaaa"):
        with httpx.Client(base_url=world.url, timeout=30) as client:
            client.get("/app/login")
            fields = {"email": email, "password": PASSWORD}
            done = client.post("/app/login", data=fields | ({"csrf": token} if token else {}))
            assert done.status_code == 403, done.text
            assert "CSRF" in done.text
            assert SESSION_COOKIE not in done.headers.get("set-cookie", "")


def test_a_wrong_password_says_so_and_sets_no_session(world: World) -> None:
    email = world.user()
    with httpx.Client(base_url=world.url, timeout=30) as client:
        page = client.get("/app/login")
        done = client.post(
            "/app/login",
            data={"email": email, "password": "not the password", "csrf": form_token(page.text)},
        )
    assert done.status_code == 401
    assert "Wrong email or password." in done.text
    assert SESSION_COOKIE not in done.headers.get("set-cookie", "")
    assert f'value="{email}"' in done.text  # the email is kept, the password is not


def test_failed_logins_are_throttled_and_the_page_says_when_to_retry(world: World) -> None:
    email = world.user()
    with httpx.Client(base_url=world.url, timeout=30) as client:
        token = form_token(client.get("/app/login").text)
        statuses = []
        for _ in range(6):
            done = client.post(
                "/app/login", data={"email": email, "password": "wrong", "csrf": token}
            )
            statuses.append(done.status_code)
        assert statuses == [401] * 5 + [429]
        assert int(done.headers["retry-after"]) > 0
        assert "Too many attempts. Try again in" in done.text
        right = client.post(
            "/app/login", data={"email": email, "password": PASSWORD, "csrf": token}
        )
        assert right.status_code == 429  # even the right password waits


def test_session_fixation_a_planted_cookie_is_not_the_session_after_login(world: World) -> None:
    email = world.user()
    planted = "attacker-chosen-session-token"
    with httpx.Client(base_url=world.url, timeout=30, cookies={SESSION_COOKIE: planted}) as c:
        page = c.get("/app/login")
        done = c.post(
            "/app/login", data={"email": email, "password": PASSWORD, "csrf": form_token(page.text)}
        )
        assert done.status_code == 303
        token = done.cookies[SESSION_COOKIE]
    assert token != planted
    assert _works(world, token)
    assert not _works(world, planted)


def test_a_session_the_browser_held_ends_when_another_login_begins(world: World) -> None:
    with login(world.url, world.user()) as first:
        held = first.cookies[SESSION_COOKIE]
        assert _works(world, held)
        page = first.get("/app/login")
        done = first.post(
            "/app/login",
            data={"email": world.user(), "password": PASSWORD, "csrf": form_token(page.text)},
        )
        assert done.status_code == 303
        now = first.cookies[SESSION_COOKIE]
    assert now != held
    assert not _works(world, held)
    assert _works(world, now)


def test_logout_ends_the_session_and_the_old_token_is_refused_everywhere(world: World) -> None:
    with login(world.url, world.user()) as client:
        token = client.cookies[SESSION_COOKIE]
        csrf = form_token(client.get("/app/shop/").text)
        done = client.post("/app/logout", data={"csrf": csrf})
        assert done.status_code == 303 and done.headers["location"] == "/app/login?bye=1"
        assert 'voxloop_session=""' in _cookie(done, SESSION_COOKIE)
        assert not _works(world, token)
        bye = client.get("/app/login?bye=1")
        assert "You have logged out." in bye.text


@pytest.mark.parametrize("token", [None, "wrong"], ids=["without-token", "wrong-token"])
def test_logout_without_the_csrf_token_is_refused_and_changes_nothing(
    world: World, token: str | None
) -> None:
    with login(world.url, world.user()) as client:
        done = client.post("/app/logout", data={"csrf": token} if token else {})
        held = client.cookies[SESSION_COOKIE]
    assert done.status_code == 403, done.text
    assert "CSRF token is missing or wrong" in done.text
    assert _works(world, held)


@pytest.mark.parametrize("token", [None, "wrong"], ids=["without-token", "wrong-token"])
def test_a_password_change_without_the_csrf_token_is_refused_and_changes_nothing(
    world: World, token: str | None
) -> None:
    email = world.user()
    with login(world.url, email) as client:
        fields = {"current": PASSWORD, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD}
        done = client.post("/app/password", data=fields | ({"csrf": token} if token else {}))
        held = client.cookies[SESSION_COOKIE]
    assert done.status_code == 403, done.text
    assert _works(world, held)
    assert _login_status(world, email, NEW_PASSWORD) == 401
    assert _login_status(world, email, PASSWORD) == 303  # the old password still works


def test_a_one_time_password_leads_to_the_password_page_which_rotates_the_session(
    world: World,
) -> None:
    email = world.user(one_time=True)
    one_time = world.made[-1]
    with httpx.Client(base_url=world.url, timeout=30) as client:
        page = client.get("/app/login?next=/app/shop/responses")
        done = client.post(
            "/app/login",
            data={
                "email": email,
                "password": one_time,
                "csrf": form_token(page.text),
                "next": form_token(page.text, "next"),
            },
        )
        assert done.headers["location"] == "/app/password"
        first = client.cookies[SESSION_COOKIE]
        blocked = client.get("/app/shop/")
        assert blocked.status_code == 303 and blocked.headers["location"] == "/app/password"
        form = client.get("/app/password")
        assert "given for one use only" in form.text
        csrf = form_token(form.text)
        differ = {"current": one_time, "new": NEW_PASSWORD, "repeat": "other", "csrf": csrf}
        assert "The two new passwords differ." in client.post("/app/password", data=differ).text
        short = {"current": one_time, "new": "short", "repeat": "short", "csrf": csrf}
        answer = client.post("/app/password", data=short)
        assert answer.status_code == 400 and "at least 12 characters" in answer.text
        wrong = {"current": "nope", "new": NEW_PASSWORD, "repeat": NEW_PASSWORD, "csrf": csrf}
        assert "The current password is wrong." in client.post("/app/password", data=wrong).text
        right = {"current": one_time, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD, "csrf": csrf}
        changed = client.post("/app/password", data=right)
        assert changed.status_code == 303 and changed.headers["location"] == "/app/"
        assert client.cookies[SESSION_COOKIE] != first
        assert not _works(world, first)
        assert _works(world, client.cookies[SESSION_COOKIE])
        assert _login_status(world, email, NEW_PASSWORD) == 303


@pytest.mark.parametrize(
    "asked",
    ["//evil.example/app/", "https://evil.example/", "/app/\\\\evil.example", "/elsewhere"],
    ids=["scheme-relative", "absolute", "backslash", "outside-app"],
)
def test_the_page_after_login_is_always_a_dashboard_page(world: World, asked: str) -> None:
    email = world.user()
    with httpx.Client(base_url=world.url, timeout=30) as client:
        page = client.get("/app/login", params={"next": asked})
        done = client.post(
            "/app/login",
            data={
                "email": email,
                "password": PASSWORD,
                "csrf": form_token(page.text),
                "next": asked,
            },
        )
    assert done.headers["location"] == "/app/"


def test_without_a_session_a_page_leads_to_the_login_and_back(world: World) -> None:
    with httpx.Client(base_url=world.url, timeout=30) as client:
        answer = client.get("/app/shop/responses?q=delivery")
        assert answer.status_code == 303
        back = "/app/login?next=%2Fapp%2Fshop%2Fresponses%3Fq%3Ddelivery"
        assert answer.headers["location"] == back
        page = client.get(answer.headers["location"])
        assert "Please log in to continue." in page.text
        assert form_token(page.text, "next") == "/app/shop/responses?q=delivery"
        email = world.user()
        done = client.post(
            "/app/login",
            data={
                "email": email,
                "password": PASSWORD,
                "csrf": form_token(page.text),
                "next": form_token(page.text, "next"),
            },
        )
        assert done.headers["location"] == "/app/shop/responses?q=delivery"


def test_a_form_that_is_not_form_fields_is_refused(world: World) -> None:
    with httpx.Client(base_url=world.url, timeout=30) as client:
        client.get("/app/login")
        answer = client.post("/app/login", json={"email": "x"})
        assert answer.status_code == 415
        big = client.post(
            "/app/login",
            content=b"a=" + b"x" * 10_000,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert big.status_code == 413
