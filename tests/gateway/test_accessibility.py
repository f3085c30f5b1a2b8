"""axe-core on every email rating page: 0 serious or critical violations.

Each language's vote page in its three states with JavaScript (recording, recorded with the
comment box, commented) and the pages of a forged (403) and an expired (410) link, on a desktop
and at 375 px; the pages without JavaScript (to confirm, recorded, commented) in English and
Arabic. One test shows the check failing on a page with serious violations.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, ViewportSize, expect

from tests.browser import assert_accessible, screenshot, watch
from tests.gateway.conftest import Gateway
from tests.gateway.test_rating import Mailing, _tampered

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
