"""``make run``'s demo page in a real browser: the widgets and the sample email, end to end."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser import assert_accessible, screenshot, watch

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
        expect(page.get_by_role("button", name="Feedback")).to_be_visible()
        assert_accessible(page, "demo page")

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
        # Answered: the thank-you and the comment box shown, the stats filled in.
        assert_accessible(page, "demo page, a widget answered")
        watched.assert_clean()
    finally:
        context.close()
        stop(process)


def test_the_demo_page_fits_a_phone_and_its_floating_card_says_where_the_form_is(
    tmp_path: Path, spawn: Spawn, browser: Browser
) -> None:
    process, _, told = run_demo(spawn, tmp_path)
    context = browser.new_context(locale="en-US", viewport={"width": 375, "height": 740})
    try:
        page = context.new_page()
        watched = watch(page)
        page.goto(f"{told['url']}/demo")
        floating = page.get_by_role("button", name="Feedback")
        expect(floating).to_be_visible()  # every widget has drawn itself
        expect(page.locator("#w-checkout").get_by_role("radio")).to_have_count(11)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert page.evaluate("document.body.scrollWidth") <= 375

        card = page.locator("section.widget.floating")
        expect(card).to_have_count(1)
        expect(card.locator("h3")).to_have_text("nps · site (floating)")
        expect(card.locator("p")).to_be_visible()
        expect(card.locator("p")).to_contain_text("Feedback button in the bottom corner")
        expect(card.locator("pre")).to_contain_text('data-form="site" data-metric="nps"')
        assert told["site"] not in (card.locator("pre").text_content() or "")
        box = card.bounding_box()
        assert box is not None and box["height"] > 150 and box["x"] + box["width"] <= 375
        screenshot(page, "demo-page-375px")
        assert_accessible(page, "demo page at 375 px")

        floating.click()  # what the card describes: the button opens the form
        expect(page.get_by_role("radiogroup", name="How likely")).to_have_count(2)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        screenshot(page, "demo-page-375px-floating-open")
        assert_accessible(page, "demo page at 375 px, the floating form open")
        watched.assert_clean()
    finally:
        context.close()
        stop(process)
