"""Debian's headless Chromium, driven by Playwright, for the widget and email page tests.

Playwright's own browser download doesn't work everywhere, so the tests launch the system's
``chromium`` (``make test`` installs it). ``Page`` watchers collect what a test must see empty:
console errors, Content-Security-Policy violations and uncaught exceptions.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"


def chromium_path() -> str:
    """The system Chromium; fails (never skips) when it is missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed: `make test` installs Debian's package"
    return found


@dataclass
class Watched:
    """A page and what went wrong on it: console errors, CSP violations, page errors."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @property
    def csp_violations(self) -> list[str]:
        return [m for m in self.console_errors if "Content Security Policy" in m]

    def assert_clean(self) -> None:
        assert not self.page_errors, self.page_errors
        assert not self.console_errors, self.console_errors


def watch(page: Page, *, expected_errors: tuple[str, ...] = ()) -> Watched:
    """Record ``page``'s console errors (but those containing one of ``expected_errors``)."""
    watched = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not any(e in message.text for e in expected_errors):
            watched.console_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
    return watched


def screenshot(page: Page, name: str) -> Path:
    """Save a PNG of ``page`` under build/test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module.

    Not per session: while Playwright's sync API is started, its event loop counts as running
    in the main thread, and every asyncio test after it would fail to start its own loop.
    """
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (cookies, localStorage) for one test."""
    made = browser.new_context(locale="en-US")
    yield made
    made.close()
