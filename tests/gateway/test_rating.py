"""Email rating links on a real gateway: the page, the vote, the comment, the bad links.

Over plain HTTP (what a link scanner or a script sends) and in headless Chromium (what a person
does); the votes are read back from the ``email`` store's file and the stats API.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Route, expect

from tests.browser import screenshot, watch
from tests.gateway.conftest import Gateway, make_project, start_gateway
from voxloop.email import RatingLink, rating_links
from voxloop_gateway.control.registry import Registry

CAMPAIGN = "2026-11-nps"


class Mailing:
    """A gateway with project ``shop`` and an email signing secret; makes rating links."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.secret = Registry(gateway.data_dir).create_email_secret("shop").secret

    def links(
        self, recipient: str = "c-1", metric: str = "nps", **options: Any
    ) -> list[RatingLink]:
        return rating_links(
            self.gateway.url,
            self.secret,
            project="shop",
            campaign=CAMPAIGN,
            form="checkout",
            metric=metric,
            recipient=recipient,
            **options,
        )

    def path(self, link: RatingLink) -> str:
        return link.url.removeprefix(self.gateway.url)

    def confirm(self, link: RatingLink, **fields: Any) -> httpx.Response:
        """What the page's script does: GET the page, POST its view id back."""
        with httpx.Client(base_url=self.gateway.url, timeout=30) as client:
            page = client.get(self.path(link))
            assert page.status_code == 200, page.text
            view = page.text.split('data-view="', 1)[1].split('"', 1)[0]
            return client.post(self.path(link), json={"view": view, **fields})

    def rows(self) -> list[tuple[Any, ...]]:
        """(score, counted, held, comment) of every stored email event, oldest first."""
        path = self.gateway.data_dir / "stores" / "email.sqlite3"
        with sqlite3.connect(path) as db:
            return db.execute(
                "SELECT score, counted, held, body ->> '$.comment' FROM events ORDER BY seq"
            ).fetchall()

    def stats(self) -> dict[str, Any]:
        return self.gateway.stats(metric="nps", channel="email")


@pytest.fixture
def mailing(gateway: Gateway) -> Mailing:
    return Mailing(gateway)


def _score(stats: dict[str, Any]) -> tuple[int, list[int]]:
    return stats["total"]["count"], stats["total"]["histogram"]


# --- what records nothing ----------------------------------------------------------------


def test_head_and_a_plain_get_record_nothing(mailing: Mailing) -> None:
    link = mailing.links()[9]
    with httpx.Client(base_url=mailing.gateway.url) as client:
        head = client.head(mailing.path(link))
        page = client.get(mailing.path(link))
    assert head.status_code == 200 and page.status_code == 200
    assert head.headers["cache-control"] == "no-store"
    assert head.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'data-state="pending"' in page.text and ">9</strong>" in page.text
    assert mailing.rows() == []
    assert mailing.stats()["total"]["count"] == 0


def test_a_confirmed_vote_counts_once_and_a_repeat_is_a_duplicate(mailing: Mailing) -> None:
    link = mailing.links()[9]
    with httpx.Client(base_url=mailing.gateway.url) as client:
        page = client.get(mailing.path(link)).text
        view = page.split('data-view="', 1)[1].split('"', 1)[0]
        first = client.post(mailing.path(link), json={"view": view})
        again = client.post(mailing.path(link), json={"view": view})
    assert first.status_code == again.status_code == 200
    assert first.json() == {"recorded": True, "commented": False}
    assert mailing.rows() == [(9, 1, None, None)]
    count, histogram = _score(mailing.stats())
    assert count == 1 and histogram[9] == 1


def test_another_link_of_the_same_email_changes_the_vote(mailing: Mailing) -> None:
    links = mailing.links()
    assert mailing.confirm(links[9]).status_code == 200
    time.sleep(0.01)  # a later click has a later ts
    assert mailing.confirm(links[3]).status_code == 200
    assert mailing.rows() == [(9, 0, None, None), (3, 1, None, None)]
    count, histogram = _score(mailing.stats())
    assert count == 1 and histogram[3] == 1 and histogram[9] == 0
    # Another recipient's vote is theirs.
    assert mailing.confirm(mailing.links("c-2")[10]).status_code == 200
    count, histogram = _score(mailing.stats())
    assert count == 2 and histogram[10] == 1


def test_a_comment_attaches_to_the_same_vote(mailing: Mailing) -> None:
    link = mailing.links()[6]
    with httpx.Client(base_url=mailing.gateway.url) as client:
        page = client.get(mailing.path(link)).text
        view = page.split('data-view="', 1)[1].split('"', 1)[0]
        assert client.post(mailing.path(link), json={"view": view}).status_code == 200
        answer = client.post(
            mailing.path(link), json={"view": view, "comment": "Delivery was late\x00 again"}
        )
    assert answer.json() == {"recorded": True, "commented": True}
    # The comment is cleaned by the contract's rules; still one vote, and the stats unchanged.
    assert mailing.rows() == [(6, 1, None, "Delivery was late again")]
    assert _score(mailing.stats())[0] == 1


def test_a_form_post_without_javascript_records_and_takes_a_comment(mailing: Mailing) -> None:
    link = mailing.links()[2]
    with httpx.Client(base_url=mailing.gateway.url) as client:
        page = client.get(mailing.path(link)).text
        view = page.split('data-view="', 1)[1].split('"', 1)[0]
        recorded = client.post(mailing.path(link), data={"view": view})
        commented = client.post(mailing.path(link), data={"view": view, "comment": "ok"})
    assert recorded.status_code == 200 and 'data-state="recorded"' in recorded.text
    assert commented.status_code == 200 and 'data-state="commented"' in commented.text
    assert mailing.rows() == [(2, 1, None, "ok")]


def test_options_and_other_methods_name_every_method_served(mailing: Mailing) -> None:
    link = mailing.links()[9]
    with httpx.Client(base_url=mailing.gateway.url) as client:
        options = client.options(mailing.path(link))
        put = client.put(mailing.path(link), json={"view": "v-1"})
    assert options.status_code == 204
    assert options.headers["allow"] == "GET, HEAD, POST, OPTIONS"
    assert put.status_code == 405
    assert put.headers["allow"] == "GET, HEAD, POST, OPTIONS"
    assert mailing.rows() == []


# --- bad links ---------------------------------------------------------------------------


def _tampered(token: str) -> str:
    version, payload, mac = token.split(".")
    flipped = "A" if payload[5] != "A" else "B"
    return f"{version}.{payload[:5]}{flipped}{payload[6:]}.{mac}"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_tampered_token_gets_403_and_changes_nothing(mailing: Mailing, method: str) -> None:
    link = mailing.links()[10]
    with httpx.Client(base_url=mailing.gateway.url) as client:
        answer = client.request(
            method, f"/r/{_tampered(link.token)}", data={"view": "a-b"}, params={"lang": "en"}
        )
    assert answer.status_code == 403
    assert "This link isn't valid" in unescape(answer.text)  # however the ' is spelt
    assert mailing.rows() == []


def test_an_expired_token_gets_410_and_a_foreign_one_403(mailing: Mailing) -> None:
    past = datetime.now(UTC) - timedelta(days=60)
    expired = mailing.links(now=past, expires_in=timedelta(days=1))[9]
    foreign = rating_links(
        mailing.gateway.url, b"x" * 32, project="shop", campaign=CAMPAIGN, form="checkout",
        metric="nps", recipient="c-1",
    )[9]  # fmt: skip
    with httpx.Client(base_url=mailing.gateway.url) as client:
        gone = client.get(mailing.path(expired))
        posted = client.post(mailing.path(expired), json={"view": "v-1"})
        forged = client.get(mailing.path(foreign))
    assert gone.status_code == posted.status_code == 410
    assert "This link has expired" in gone.text
    assert forged.status_code == 403
    assert mailing.rows() == []


def test_a_revoked_secret_makes_its_links_invalid(mailing: Mailing) -> None:
    link = mailing.links()[9]
    registry = Registry(mailing.gateway.data_dir)
    registry.revoke_email_secret(registry.email_secrets("shop")[0].id)
    with httpx.Client(base_url=mailing.gateway.url) as client:
        assert client.get(mailing.path(link)).status_code == 403


def test_the_pages_escape_what_they_are_given(mailing: Mailing) -> None:
    with httpx.Client(base_url=mailing.gateway.url) as client:
        answer = client.get("/r/v1.<script>alert(1)<script>.x", params={"lang": '"><b>'})
    assert answer.status_code == 403
    assert "<script>alert" not in answer.text and "<b>" not in answer.text


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b"not json", {"content-type": "application/json"}, 400, "not JSON"),
        (b'{"view": "v", "extra": 1}', {"content-type": "application/json"}, 400, "extra"),
        (b'{"view": "<b>"}', {"content-type": "application/json"}, 400, "view must be"),
        (b'{"view": 5}', {"content-type": "application/json"}, 400, "view"),
        (b'{"view": "v"}', {"content-type": "text/plain"}, 415, "application/json"),
        (b'{"view": "v", "comment": "' + b"x" * 5000 + b'"}', {}, 400, "comment"),
    ],
)
def test_a_bad_confirmation_gets_a_clear_error_and_records_nothing(
    mailing: Mailing, body: bytes, headers: dict[str, str], status: int, says: str
) -> None:
    link = mailing.links()[9]
    headers = headers or {"content-type": "application/json"}
    with httpx.Client(base_url=mailing.gateway.url) as client:
        answer = client.post(mailing.path(link), content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]
    assert mailing.rows() == []


# --- scanners and the edit window ----------------------------------------------------------


def test_a_burst_of_every_option_is_quarantined_and_shown_in_stats(mailing: Mailing) -> None:
    for link in mailing.links("scanned"):
        assert mailing.confirm(link).status_code == 200
    stats = mailing.stats()
    assert stats["quarantined"] == 11
    assert stats["total"]["count"] == 0
    assert {(held, counted) for _, counted, held, _ in mailing.rows()} == {("quarantined", 0)}
    # A person's change of mind (two scores) is not a burst.
    links = mailing.links("person")
    mailing.confirm(links[4])
    mailing.confirm(links[8])
    stats = mailing.stats()
    assert stats["quarantined"] == 11
    count, histogram = _score(stats)
    assert count == 1 and histogram[8] == 1


def test_a_vote_after_the_burst_window_counts(tmp_path: Path) -> None:
    site, server = make_project(tmp_path)
    running = start_gateway(tmp_path, site, server, email_burst_seconds=0.5)
    try:
        mailing = Mailing(running)
        links = mailing.links()
        for score in (0, 5, 10):
            mailing.confirm(links[score])
        assert mailing.stats()["quarantined"] == 3
        time.sleep(0.6)
        mailing.confirm(links[7])
        stats = mailing.stats()
        assert stats["quarantined"] == 3 and _score(stats)[1][7] == 1
    finally:
        running.stop()


def test_a_click_after_the_edit_window_is_kept_as_history(tmp_path: Path) -> None:
    site, server = make_project(tmp_path)
    running = start_gateway(tmp_path, site, server, email_edit_days=0)
    try:
        mailing = Mailing(running)
        links = mailing.links()
        mailing.confirm(links[9])
        time.sleep(0.01)
        mailing.confirm(links[1])
        assert mailing.rows() == [(9, 1, None, None), (1, 0, "late", None)]
        count, histogram = _score(mailing.stats())
        assert count == 1 and histogram[9] == 1
    finally:
        running.stop()


# --- in a real browser -------------------------------------------------------------------


@pytest.fixture
def person(browser: Browser) -> Iterator[Any]:
    context = browser.new_context(locale="en-US")
    yield context
    context.close()


def test_a_browser_visit_records_the_vote_and_takes_a_comment(
    mailing: Mailing, person: Any
) -> None:
    page = person.new_page()
    watched = watch(page)
    links = mailing.links()
    page.goto(links[9].url)
    expect(page.locator("#vl-status")).to_have_text("Thank you! Your rating has been recorded.")
    assert mailing.rows() == [(9, 1, None, None)]
    page.get_by_label("Anything you'd like to add? (optional)").fill("Great support, thanks")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#vl-status")).to_have_text("Thanks, we've received your comment.")
    assert mailing.rows() == [(9, 1, None, "Great support, thanks")]
    screenshot(page, "email-page-en")

    # The second link of the same email changes the vote; the aggregates move with it.
    page.goto(links[2].url)
    expect(page.locator("#vl-status")).to_have_text("Thank you! Your rating has been recorded.")
    count, histogram = _score(mailing.stats())
    assert count == 1 and histogram[2] == 1 and histogram[9] == 0
    watched.assert_clean()


def test_without_javascript_the_page_records_only_on_confirm(
    mailing: Mailing, browser: Browser
) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(mailing.links()[7].url)
        page.wait_for_timeout(300)
        assert mailing.rows() == []
        page.get_by_role("button", name="Confirm my rating").click()
        expect(page.locator("#vl-status")).to_contain_text("Your rating has been recorded")
        assert mailing.rows() == [(7, 1, None, None)]
    finally:
        context.close()


@pytest.mark.parametrize(
    ("locale", "to_confirm", "confirm", "recording", "recorded"),
    [
        (
            "en",
            "Please confirm your rating.",
            "Confirm my rating",
            "Recording your rating…",
            "Thank you! Your rating has been recorded.",
        ),
        (
            "ar",
            "يُرجى تأكيد تقييمك.",
            "تأكيد تقييمي",
            "جارٍ تسجيل تقييمك…",
            "شكرًا لك! تم تسجيل تقييمك.",
        ),
    ],
)
def test_the_page_says_recording_only_while_it_records(
    mailing: Mailing,
    browser: Browser,
    locale: str,
    to_confirm: str,
    confirm: str,
    recording: str,
    recorded: str,
) -> None:
    link = mailing.links(f"q-{locale}", locale=locale)[7]
    # Without JavaScript nothing is recorded until the button: the page asks for it.
    context = browser.new_context(java_script_enabled=False, locale="en-US")
    try:
        page = context.new_page()
        page.goto(link.url)
        expect(page.locator("#vl-status")).to_have_text(to_confirm)
        expect(page.get_by_role("button", name=confirm)).to_be_visible()
        assert recording not in page.locator("body").inner_text()
        screenshot(page, f"email-page-nojs-{locale}")
        assert mailing.rows() == []
        page.get_by_role("button", name=confirm).click()
        expect(page.locator("#vl-status")).to_have_text(recorded)
        assert mailing.rows() == [(7, 1, None, None)]
    finally:
        context.close()
    # With JavaScript the page says "recording" while its POST is on the way, then "recorded".
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        watched = watch(page)
        held: list[Route] = []

        def hold_the_post(route: Route) -> None:
            if route.request.method == "POST":
                held.append(route)
            else:
                route.continue_()

        page.route(lambda url: url.startswith(link.url.split("?")[0]), hold_the_post)
        page.goto(link.url)
        page.wait_for_function("() => document.documentElement.classList.contains('js')")
        expect(page.locator("#vl-status")).to_have_text(recording)
        expect(page.get_by_role("button", name=confirm)).to_be_hidden()
        assert held and held[0].request.method == "POST"
        held[0].continue_()
        expect(page.locator("#vl-status")).to_have_text(recorded)
        watched.assert_clean()
    finally:
        context.close()


@pytest.mark.parametrize(
    ("locale", "recorded", "digit"),
    [
        ("ar", "شكرًا لك! تم تسجيل تقييمك.", "٩"),
        ("fa", "سپاس! امتیاز شما ثبت شد.", "۹"),
        ("id", "Terima kasih! Penilaian Anda telah dicatat.", "9"),
    ],
)
def test_the_page_speaks_the_email_language(
    mailing: Mailing, person: Any, locale: str, recorded: str, digit: str
) -> None:
    page = person.new_page()
    watched = watch(page)
    page.goto(mailing.links(f"r-{locale}", locale=locale)[9].url)
    expect(page.locator("#vl-status")).to_have_text(recorded)
    html = page.locator("html")
    expect(html).to_have_attribute("dir", "ltr" if locale == "id" else "rtl")
    expect(html).to_have_attribute("lang", locale)
    expect(page.locator("#vl-score")).to_have_text(digit)
    screenshot(page, f"email-page-{locale}")
    watched.assert_clean()
    rows = mailing.rows()
    assert rows == [(9, 1, None, None)]


def test_reopening_the_email_and_clicking_the_same_score_keeps_the_comment(
    mailing: Mailing, person: Any
) -> None:
    page = person.new_page()
    watched = watch(page)
    links = mailing.links()
    thanks = "Thank you! Your rating has been recorded."
    page.goto(links[8].url)
    expect(page.locator("#vl-status")).to_have_text(thanks)
    page.get_by_label("Anything you'd like to add? (optional)").fill("Quick and friendly")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#vl-status")).to_have_text("Thanks, we've received your comment.")

    # Days later the email is opened again and the same 8 clicked: the answer stays what it
    # was, comment included; the new click is the counted one, the first stays as history.
    page.goto(links[8].url)
    expect(page.locator("#vl-status")).to_have_text(thanks)
    assert mailing.rows() == [
        (8, 0, None, "Quick and friendly"),
        (8, 1, None, "Quick and friendly"),
    ]
    count, histogram = _score(mailing.stats())
    assert count == 1 and histogram[8] == 1

    # A 6 is another answer: it counts, without the comment written for the 8.
    page.goto(links[6].url)
    expect(page.locator("#vl-status")).to_have_text(thanks)
    assert mailing.rows()[-1] == (6, 1, None, None)
    assert [row[1] for row in mailing.rows()] == [0, 0, 1]
    count, histogram = _score(mailing.stats())
    assert count == 1 and histogram[6] == 1 and histogram[8] == 0
    # Its own comment goes with it.
    page.get_by_label("Anything you'd like to add? (optional)").fill("Actually, slow delivery")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#vl-status")).to_have_text("Thanks, we've received your comment.")
    assert mailing.rows()[-1] == (6, 1, None, "Actually, slow delivery")
    watched.assert_clean()


def test_a_bad_link_page_in_the_browser(mailing: Mailing, person: Any) -> None:
    page = person.new_page()
    watched = watch(page, expected_errors=("403",))
    link = mailing.links(locale="fa")[9]
    answer = page.goto(link.url.replace(link.token, _tampered(link.token)))
    assert answer is not None and answer.status == 403
    expect(page.locator("h1")).to_have_text("این پیوند معتبر نیست")
    screenshot(page, "email-page-forged-fa")
    watched.assert_clean()
    assert mailing.rows() == []
