"""The follow-up loop in a real browser (headless Chromium), against a real gateway on loopback.

A detractor's comment is posted to ``/v1/events``; within seconds the gateway's own workers
make it a follow-up item, which appears in the inbox page. A manager assigns it to themselves,
adds a note, starts the work and resolves it with a note, and the share followed up within the
SLA moves from no data to 100%. The same forms work with JavaScript off. On the webhooks page an
endpoint is added pointing at a receiver on 127.0.0.1; a delivery appears in its log, and
Redeliver makes a second attempt with the same message.

axe-core finds no serious or critical violation on any of the new pages, in English and in
Arabic (right to left), on a desktop and at 375 px; nothing is wider than a phone's screen.
Screenshots go to build/test-artifacts/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser import assert_accessible, screenshot, watch
from tests.integrations.receivers import LOOPBACK, Receiver

from .dashboard_world import browser_login
from .test_followups_pages import EMAILS, Loop, event, post, start_loop

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 800}
OWNER = EMAILS["owner"]


@dataclass
class Journey:
    loop: Loop
    receiver: Receiver

    @property
    def url(self) -> str:
        return self.loop.url


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    loop = start_loop(
        tmp_path_factory.mktemp("journey"), webhook_allow=LOOPBACK, webhook_timeout_s=2.0
    )
    receiver = Receiver().start()
    try:
        yield Journey(loop, receiver)
    finally:
        receiver.stop()
        loop.gateway.stop()
        loop.registry.close()


def reload_until(page: Page, locator: Locator, count: int, timeout: float = 15.0) -> None:
    """Reload ``page`` until ``locator`` finds ``count`` elements, for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while locator.count() != count:
        assert time.monotonic() < deadline, f"{locator} never found {count} in {timeout:.0f} s"
        time.sleep(0.3)
        page.reload()


def fits(page: Page) -> None:
    """Nothing on the page is wider than its viewport (no sideways scrolling)."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.evaluate("document.body.scrollWidth") <= width


def check_everywhere(page: Page, path: str, name: str) -> None:
    """``path`` in English on a desktop, then in English and Arabic at 375 px: axe on each,
    nothing wider than the phone, right to left in Arabic; screenshots of desktop English and
    phone Arabic."""
    page.set_viewport_size(DESKTOP)
    page.goto(path)
    assert_accessible(page, f"{name}, en, desktop")
    screenshot(page, f"{name}-en-desktop")
    page.set_viewport_size(PHONE)
    for language in ("en", "ar"):
        page.goto(f"{path}{'&' if '?' in path else '?'}lang={language}")
        expect(page.locator("html")).to_have_attribute("lang", language)
        if language == "ar":
            expect(page.locator("html")).to_have_attribute("dir", "rtl")
            assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
        fits(page)
        assert_accessible(page, f"{name}, {language}, 375 px")
    screenshot(page, f"{name}-ar-375px")
    page.set_viewport_size(DESKTOP)


def test_a_detractors_comment_is_followed_up_and_the_sla_figure_moves(
    journey: Journey, browser: Browser
) -> None:
    context = browser.new_context(locale="en-US", viewport=DESKTOP)
    page = context.new_page()
    watched = watch(page)
    inbox = f"{journey.url}/app/shop/followups"
    browser_login(page, journey.url, OWNER)

    # Nothing to follow up yet: the figure says so.
    page.goto(inbox)
    expect(page.get_by_role("heading", name="Follow-up inbox", level=1)).to_be_visible()
    expect(page.locator("#sla")).to_have_attribute("data-items", "0")
    expect(page.locator("#sla-share")).to_have_text("–")
    expect(page.locator("#sla-empty")).to_have_text("No follow-up items in this period yet.")
    expect(page.locator("#followups .empty")).to_have_text("No follow-ups here.")
    assert_accessible(page, "follow-up inbox, empty")

    # A detractor's comment arrives; the workers make it an item within seconds.
    comment = "The checkout kept failing on my phone, I gave up."
    post(journey.loop, event("web", "checkout", "nps", 3, comment, "j-1"))
    items = page.locator("#followups article.followup")
    reload_until(page, items, 1)
    item = items.first
    expect(item.locator(".comment")).to_have_text(comment)
    expect(item.locator(".status")).to_have_text("New")
    expect(item.locator(".clock")).to_have_text("Due in 1 d 23 h")
    expect(page.locator("#sla")).to_have_attribute("data-pending", "1")
    expect(page.locator("#sla-share")).to_have_text("–")  # nobody acted yet, none late
    assert_accessible(page, "follow-up inbox, one item")

    # The item: assigned to me, noted, started, resolved with a note.
    item.get_by_role("link", name="Open the item").click()
    expect(page.get_by_role("heading", name="Follow-up", level=1)).to_be_visible()
    expect(page.locator("article.response .comment")).to_have_text(comment)
    assert_accessible(page, "follow-up item, new")
    page.get_by_role("button", name="Assign to me").click()
    expect(page.locator("#notice")).to_have_text("Assigned to you.")
    expect(page.locator("#assignee")).to_have_text(OWNER)
    page.get_by_label("Internal note").fill("Called them: the card was declined twice.")
    page.get_by_role("button", name="Add the note").click()
    expect(page.locator("#notice")).to_have_text("The note was added.")
    expect(page.locator("#history")).to_contain_text("Called them: the card was declined twice.")
    page.get_by_label("New status").select_option("in_progress")
    page.get_by_role("button", name="Change the status").click()
    expect(page.locator("#item")).to_have_attribute("data-status", "in_progress")
    page.get_by_label("Resolved").check()
    page.get_by_label("Resolution note").fill("Refunded the second charge.")
    page.get_by_role("button", name="Save and finish").click()
    expect(page.locator("#notice")).to_have_text("The item was finished.")
    expect(page.locator("#item")).to_have_attribute("data-status", "resolved")
    expect(page.locator("#resolution")).to_have_text("Refunded the second charge.")
    history = page.locator("#history li")
    expect(history).to_have_count(6)  # made, assigned (and so assigned), noted, started, resolved
    expect(history.last).to_contain_text("Refunded the second charge.")
    item_path = page.url.split("?")[0]
    check_everywhere(page, item_path, "followup-item")

    # The figure moves: the one item, acted on in time, is 100% within the SLA.
    page.goto(inbox)
    expect(page.locator("#sla")).to_have_attribute("data-met", "1")
    expect(page.locator("#sla-share")).to_have_text("100.0%")
    expect(page.locator("#sla-teams tr[data-team='owner']")).to_have_attribute(
        "data-share", "100.0"
    )
    expect(page.locator("#followups .status").first).to_have_text("Resolved")
    check_everywhere(page, f"{journey.url}/app/shop/followups", "followups-inbox")
    page.goto(f"{inbox}?lang=ar")
    expect(page.locator("#sla-share")).to_have_text("١٠٠٫٠٪")
    watched.assert_clean()
    context.close()


def test_the_inbox_works_without_javascript(journey: Journey, browser: Browser) -> None:
    context = browser.new_context(locale="en-US", java_script_enabled=False, viewport=PHONE)
    page = context.new_page()
    browser_login(page, journey.url, OWNER)
    post(journey.loop, event("app", "support", "ces", 1, "Nobody called back.", "j-2"))
    page.goto(f"{journey.url}/app/shop/followups?view=unassigned")
    items = page.locator("#followups article.followup")
    reload_until(page, items, 1)
    items.first.get_by_role("checkbox").check()
    page.get_by_role("button", name="Assign to me").click()
    expect(page.locator("#notice")).to_have_text("Assigned to you.")
    expect(page).to_have_url(f"{journey.url}/app/shop/followups?view=unassigned&done=me")
    expect(items).to_have_count(0)  # no longer unassigned
    page.get_by_role("link", name="Mine").click()
    expect(items.first.locator(".assignee")).to_have_text(OWNER)
    expect(items.first.locator(".status")).to_have_text("Assigned")
    fits(page)
    context.close()


def test_a_webhook_delivery_is_logged_and_redelivered(journey: Journey, browser: Browser) -> None:
    context = browser.new_context(locale="en-US", viewport=DESKTOP)
    page = context.new_page()
    watched = watch(page)
    hooks = f"{journey.url}/app/shop/webhooks"
    browser_login(page, journey.url, OWNER)
    page.goto(hooks)
    expect(page.locator(".empty")).to_have_text("No endpoints yet.")
    page.get_by_label("URL").fill(journey.receiver.url)
    page.get_by_label("alert.fired").uncheck()
    page.get_by_label("Description").fill("Helpdesk")
    page.get_by_role("button", name="Add the endpoint").click()
    secret = page.get_by_label("Signing secret")
    expect(secret).to_have_value(re.compile(r"^whsec_[A-Za-z0-9+/=]{20,}$"))
    assert_accessible(page, "webhooks, the secret shown once")
    endpoint = page.locator("article.endpoint")
    expect(endpoint).to_have_count(1)
    expect(endpoint.locator(".state")).to_have_text("Active")

    post(journey.loop, event("web", "checkout", "nps", 1, "Broken again.", "j-3"))
    rows = endpoint.locator("table.log tbody tr")
    page.goto(hooks)
    reload_until(page, rows, 2)  # response.created, followup.created
    expect(rows.filter(has_text="followup.created").locator(".delivery")).to_have_text("Delivered")
    message = rows.filter(has_text="followup.created").get_attribute("data-message")
    assert message and journey.receiver.ids().count(message) == 1
    rows.filter(has_text="followup.created").get_by_role("button", name="Redeliver").click()
    expect(page.locator("#notice")).to_contain_text("The message is sent again")
    again = endpoint.locator(f"table.log tbody tr[data-message='{message}']")
    reload_until(page, again, 2)
    expect(again.first.locator(".answer")).to_have_text("200")
    assert journey.receiver.ids().count(message) == 2
    check_everywhere(page, hooks, "webhooks")
    watched.assert_clean()
    context.close()
