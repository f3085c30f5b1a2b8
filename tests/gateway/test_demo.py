"""``make run``'s demo page in a real browser: the widgets and the sample email, end to end."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser import screenshot, watch

from .conftest import Spawn
from .test_cli import run_demo, stop


def test_the_demo_page_takes_a_widget_answer_and_an_email_click(
    tmp_path: Path, spawn: Spawn, browser: Browser
) -> None:
    process, text, told = run_demo(spawn, tmp_path)
    assert f"{told['url']}/demo" in text
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        watched = watch(page)
        page.goto(f"{told['url']}/demo")
        expect(page.locator("#stats tbody")).to_contain_text("No answers yet")

        # A score in the English sample email: its rating page records the vote.
        page.locator(".email").first.get_by_role("link", name=re.compile(r"^9$")).click()
        expect(page.locator("#vl-status")).to_have_text("Thank you! Your rating has been recorded.")
        page.goto(f"{told['url']}/demo")
        email_row = page.locator("#stats tbody tr", has_text="email")
        expect(email_row.first).to_contain_text("nps")
        expect(email_row.first.locator("td").nth(2)).to_have_text("1")

        # The NPS widget of the checkout form, answered with the keyboard-free click.
        widget = page.locator("#w-checkout")
        widget.get_by_role("radio", name=re.compile(r"^10\b")).click()
        expect(widget.get_by_role("status")).to_contain_text("Thank")
        page.reload()
        web_row = page.locator("#stats tbody tr", has_text="web")
        expect(web_row.first.locator("td").nth(2)).to_have_text("1")
        screenshot(page, "demo-page")
        watched.assert_clean()
    finally:
        context.close()
        stop(process)
