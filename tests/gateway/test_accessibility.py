"""axe-core on every email rating page and every dashboard page: 0 serious or critical
violations.

Each language's vote page in its three states with JavaScript (recording, recorded with the
comment box, commented) and the pages of a forged (403) and an expired (410) link, on a desktop
and at 375 px; the pages without JavaScript (to confirm, recorded, commented) in English and
Arabic. Every page of the dashboard (login, password change, projects, overview with its chart,
feedback inbox, a response, exports, the refusals) on a desktop and at 375 px, in English and in
Arabic, none wider than the screen, each saved as a screenshot (``dashboard-*.png``). One test
shows the check failing on a page with serious violations.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, ViewportSize, expect

from tests.browser import assert_accessible, screenshot, watch
from tests.gateway.conftest import Gateway
from tests.gateway.pages.dashboard_world import World, running_world
from tests.gateway.test_rating import Mailing, _tampered
from voxloop_gateway.control.registry import Registry

LANGUAGES = ("en", "ar", "fa", "id")
VIEWPORTS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 800},
    "375px": {"width": 375, "height": 740},
}


@pytest.fixture
def mailing(gateway: Gateway) -> Mailing:
    return Mailing(gateway)


@pytest.fixture(params=list(VIEWPORTS))
def person(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    """A browser profile at a desktop's width, then at a phone's (375 px)."""
    made = browser.new_context(locale="en-US", viewport=VIEWPORTS[request.param])
    yield made
    made.close()


def _width(page: Page) -> int:
    viewport = page.viewport_size
    assert viewport is not None
    return viewport["width"]


def _fits(page: Page) -> None:
    """Nothing wider than the viewport: no sideways scrolling, even at 375 px."""
    assert page.evaluate("document.documentElement.scrollWidth") <= _width(page)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_vote_page_with_javascript(
    mailing: Mailing, person: BrowserContext, language: str
) -> None:
    page = person.new_page()
    watched = watch(page)
    link = mailing.links(f"a11y-{language}", locale=language)[9]
    held: list[Route] = []

    def hold_the_vote(route: Route) -> None:
        if route.request.method == "POST" and not held:
            held.append(route)
        else:
            route.continue_()

    page.route(lambda url: url.startswith(link.url.split("?")[0]), hold_the_vote)
    page.goto(link.url)
    expect(page.locator("#vl-page")).to_have_attribute("data-state", "pending")
    expect(page.locator("html")).to_have_attribute(
        "dir", "rtl" if language in ("ar", "fa") else "ltr"
    )
    width = _width(page)
    assert_accessible(page, f"rating page {language} {width}px, recording")

    held[0].continue_()
    expect(page.locator("#vl-page")).to_have_attribute("data-state", "recorded")
    expect(page.locator("#vl-text")).to_be_visible()
    _fits(page)
    assert_accessible(page, f"rating page {language} {width}px, recorded")
    screenshot(page, f"a11y-email-page-{language}-{width}px")

    page.locator("#vl-text").fill("Fast delivery")
    page.locator("#vl-comment button").click()
    expect(page.locator("#vl-page")).to_have_attribute("data-state", "commented")
    assert_accessible(page, f"rating page {language} {width}px, commented")
    watched.assert_clean()


@pytest.mark.parametrize("language", ["en", "ar"])
def test_the_pages_without_javascript(mailing: Mailing, browser: Browser, language: str) -> None:
    # axe needs JavaScript, and Playwright can't evaluate anything in a context without it: the
    # page's own script is blocked instead, so the browser shows what it shows without
    # JavaScript (the confirm button, forms posted as forms).
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        page.route("**/static/rating.js", lambda route: route.abort())
        page.goto(mailing.links(f"nojs-{language}", locale=language)[4].url)
        expect(page.locator("#vl-confirm button").first).to_be_visible()
        assert page.evaluate("() => document.documentElement.className") == ""
        assert_accessible(page, f"rating page {language} without JavaScript, to confirm")
        assert mailing.rows() == []
        page.locator("#vl-confirm button").first.click()
        expect(page.locator("#vl-page")).to_have_attribute("data-state", "recorded")
        assert_accessible(page, f"rating page {language} without JavaScript, recorded")
        page.locator("#vl-text").fill("ok")
        page.locator("#vl-comment button").click()
        expect(page.locator("#vl-page")).to_have_attribute("data-state", "commented")
        assert_accessible(page, f"rating page {language} without JavaScript, commented")
        screenshot(page, f"a11y-email-page-nojs-commented-{language}")
    finally:
        context.close()
    assert mailing.rows() == [(4, 1, None, "ok")]


@pytest.mark.parametrize("language", ["en", "fa"])
def test_the_forged_and_expired_link_pages(
    mailing: Mailing, person: BrowserContext, language: str
) -> None:
    page = person.new_page()
    width = _width(page)
    link = mailing.links(locale=language)[9]
    answer = page.goto(link.url.replace(link.token, _tampered(link.token)))
    assert answer is not None and answer.status == 403
    expect(page.locator("html")).to_have_attribute("lang", language)
    assert_accessible(page, f"forged link page {language} {width}px")
    screenshot(page, f"a11y-email-page-forged-{language}-{width}px")

    past = datetime.now(UTC) - timedelta(days=60)
    expired = mailing.links(locale=language, now=past, expires_in=timedelta(days=1))[9]
    answer = page.goto(expired.url)
    assert answer is not None and answer.status == 410
    _fits(page)
    assert_accessible(page, f"expired link page {language} {width}px")
    assert mailing.rows() == []


def test_the_check_fails_on_a_serious_violation(mailing: Mailing, browser: Browser) -> None:
    """A page with an image without alt text and an unnamed button fails, both listed."""
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        page.goto(mailing.links("broken")[9].url)
        expect(page.locator("#vl-page")).to_have_attribute("data-state", "recorded")
        page.evaluate(
            """() => {
                const main = document.getElementById('vl-page');
                main.append(Object.assign(document.createElement('img'), {id: 'no-alt'}));
                main.append(Object.assign(document.createElement('button'), {id: 'no-name'}));
            }"""
        )
        with pytest.raises(AssertionError) as failed:
            assert_accessible(page, "rating page with broken markup")
        message = str(failed.value)
        assert "critical: image-alt" in message and "#no-alt" in message
        assert "critical: button-name" in message and "#no-name" in message
    finally:
        context.close()


# --- the dashboard ---------------------------------------------------------------------------


class Look(NamedTuple):
    """How a person sees the dashboard: the browser's language and the screen's width."""

    locale: str
    viewport: ViewportSize


LOOKS: dict[str, Look] = {
    "desktop": Look("en-US", VIEWPORTS["desktop"]),
    "375px": Look("en-US", VIEWPORTS["375px"]),
    "arabic": Look("ar-EG", VIEWPORTS["desktop"]),
    "arabic-375px": Look("ar-EG", VIEWPORTS["375px"]),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The dashboard's gateway, with a second project so that the project list shows."""
    for found in running_world(tmp_path_factory):
        registry = Registry(found.gateway.data_dir)
        try:
            registry.create_project("outlet")
        finally:
            registry.close()
        yield found


def _checked(page: Page, name: str, look: str) -> None:
    """The page as it is: no sideways scrolling, axe-core's check, a screenshot."""
    _fits(page)
    assert_accessible(page, f"dashboard {name}, {look}")
    screenshot(page, f"dashboard-{name}-{look}")


@pytest.mark.parametrize("look", list(LOOKS))
def test_every_dashboard_page(world: World, browser: Browser, look: str) -> None:
    locale, viewport = LOOKS[look]
    email = world.user(one_time=True)
    one_time = world.made[-1]
    context = browser.new_context(locale=locale, viewport=viewport, accept_downloads=True)
    try:
        page = context.new_page()
        # The refusals' statuses (a failed login's among them) are told in the console;
        # nothing else may be.
        refusals = ("status of 400", "status of 401", "status of 404")
        watched = watch(page, expected_errors=refusals)
        rtl = locale.startswith("ar")
        page.goto(f"{world.url}/app/")
        expect(page.locator("html")).to_have_attribute("dir", "rtl" if rtl else "ltr")
        _checked(page, "login", look)
        page.locator("#email").fill(email)
        page.locator("#password").fill("not the password")
        page.locator("main form button").click()
        expect(page.locator("#form-error")).to_be_visible()
        _checked(page, "login-failed", look)

        page.locator("#password").fill(one_time)
        page.locator("main form button").click()
        expect(page).to_have_url(f"{world.url}/app/password")
        _checked(page, "password", look)
        page.locator("#current").fill(one_time)
        page.locator("#new").fill("a passphrase of my own")
        page.locator("#repeat").fill("a passphrase of my own")
        page.locator("main form button").click()
        expect(page).to_have_url(f"{world.url}/app/")
        _checked(page, "projects", look)

        page.goto(f"{world.url}/app/shop/")
        expect(page.locator("#trend")).to_have_attribute("data-state", "drawn")
        page.locator("#trend-numbers summary").click()
        _checked(page, "overview", look)

        page.goto(f"{world.url}/app/shop/responses?q=%D8%A8%D8%B7%D9%8A%D8%A1")  # بطيء
        expect(page.locator("#stream article.response")).to_have_count(1)
        page.goto(f"{world.url}/app/shop/responses")
        _checked(page, "responses", look)
        changed = world.responses(channel="email", q="second thought")[0]["ref"]
        page.goto(f"{world.url}/app/shop/responses/{changed}")
        expect(page.locator("#history li")).to_have_count(2)
        _checked(page, "response", look)
        page.goto(f"{world.url}/app/shop/exports?channel=app")
        _checked(page, "exports", look)

        for name, path, status in (
            ("not-found", "/app/shop/responses/web.nothing", 404),
            ("bad-request", "/app/shop/?period=forever", 400),
        ):
            answer = page.goto(f"{world.url}{path}")
            assert answer is not None and answer.status == status
            _checked(page, name, look)
        page.goto(f"{world.url}/app/shop/")
        page.locator("header form.inline button").click()
        expect(page.locator("#main .notice")).to_be_visible()
        watched.assert_clean()
    finally:
        context.close()
