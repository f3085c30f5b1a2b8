"""Debian's headless Chromium, driven by Playwright, for the widget and email page tests.

Playwright's own browser download doesn't work everywhere, so the tests launch the system's
``chromium`` (``make test`` installs it). ``Page`` watchers collect what a test must see empty:
console errors, Content-Security-Policy violations and uncaught exceptions.
``assert_accessible`` runs axe-core (from the npm registry, pinned in package-lock.json and
installed by ``make test``) on a page and fails on any serious or critical violation.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "build" / "test-artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
#: The impacts that fail a page; moderate and minor ones are printed only.
FAILING_IMPACTS = ("serious", "critical")


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


@cache
def _axe_function() -> str:
    """axe-core's source as the body of a function that Playwright calls in the page.

    Not ``page.add_script_tag()``: it adds an inline script, which the pages' Content-Security-
    Policy (``script-src 'self'`` or the gateway's origin) blocks. A function called through the
    DevTools protocol is not subject to the page's CSP, so axe runs under the page's own policy,
    unchanged (no ``bypass_csp`` context, which would hide a CSP the page breaks).
    """
    assert AXE.is_file(), (
        "axe-core is missing from node_modules/: `make test` installs it, or run"
        " `npm ci --no-audit --no-fund`"
    )
    source = AXE.read_text(encoding="utf-8")
    return f"() => {{ if (!window.axe) {{ {source}\n }} return axe.version; }}"


# axe's default rules (WCAG 2 A and AA, best practices), on the whole document, open shadow roots
# included.
_RUN_AXE = """async (preload) => {
    const results = await axe.run(document, {resultTypes: ['violations'], preload});
    return results.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        targets: v.nodes.map((n) => n.target.map((t) => [].concat(t).join(' >> ')).join(' | ')),
    }));
}"""


def axe_violations(page: Page, *, preload: bool = True) -> list[dict[str, Any]]:
    """axe-core's violations on ``page`` as it is now: id, impact, help, the nodes' targets."""
    page.evaluate(_axe_function())
    found: list[dict[str, Any]] = page.evaluate(_RUN_AXE, preload)
    return found


def assert_accessible(page: Page, name: str, *, preload: bool = True) -> list[dict[str, Any]]:
    """Run axe-core on ``page``; fail listing every serious or critical violation.

    Moderate and minor violations are printed (pytest shows them with ``-s`` or on a failure),
    not failed on. Returns every violation found.

    ``preload=False``: axe doesn't gather the page's CSS first, which only its rules about
    orientation lock and autoplaying media use. Needed where a stylesheet of another origin sits
    in a shadow root (the widget's on a host page): axe fetches its text again, which CORS
    refuses, or adds it as a ``<style>``, which a strict CSP blocks, so those rules couldn't read
    it anyway and the console would fill with errors that aren't the page's.

    A context with JavaScript disabled can't run axe (Playwright evaluates nothing there): block
    the page's scripts with ``page.route()`` instead to see the page as it is without them.
    """
    found = axe_violations(page, preload=preload)
    lines = [f"{v['impact']}: {v['id']} ({v['help']}) at {', '.join(v['targets'])}" for v in found]
    for line, violation in zip(lines, found, strict=True):
        if violation["impact"] not in FAILING_IMPACTS:
            print(f"axe on {name}: {line}")
    failing = [line for line, v in zip(lines, found, strict=True) if v["impact"] in FAILING_IMPACTS]
    assert not failing, (
        f"axe-core on {name}: {len(failing)} serious or critical violation(s):\n"
        + ("\n".join(failing))
    )
    return found
