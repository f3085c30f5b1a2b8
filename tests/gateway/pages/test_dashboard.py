"""The dashboard in a real browser and over real HTTP, against a real gateway on loopback.

A manager's whole journey in Chromium: log in with a one-time password and choose their own,
see each headline equal ``/v1/stats``, change the trend's interval and see the chart redrawn,
filter and search the comments in English, Arabic and Persian, export the responses as CSV and
get the rows ``/v1/responses`` gives, log out and find the old cookie refused. Then a person
scoped to the app channel, who sees nothing of the web on any page.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import watch
from voxloop_core import METRIC_RANGES
from voxloop_gateway.control.access import Scope
from voxloop_gateway.http.auth import SESSION_COOKIE
from voxloop_gateway.routes.demo import DEMO_OWNER, SAMPLE_COMMENTS

from ..conftest import Spawn
from ..test_cli import run_demo, stop
from .conftest import HOSTILE, parse
from .dashboard_world import SEARCHES, World, browser_login, form_token, login, running_world

MY_PASSWORD = "my own long passphrase"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from running_world(tmp_path_factory)


def _number(text: str | None) -> float | None:
    return None if not text else float(text)


def _headlines(page: Page) -> dict[str, dict[str, Any]]:
    """Each headline card: its metric's numbers (from its data) and what it shows."""
    found: dict[str, dict[str, Any]] = page.eval_on_selector_all(
        "li.headline",
        """cards => Object.fromEntries(cards.map((card) => [card.dataset.metric, {
            score: card.dataset.score, low: card.dataset.low, high: card.dataset.high,
            count: card.dataset.count, quarantined: card.dataset.quarantined,
            shown: card.querySelector('.big').textContent,
        }]))""",
    )
    return found


def _stats_match(card: dict[str, Any], stats: dict[str, Any]) -> None:
    total = stats["total"]
    assert _number(card["score"]) == total["score"]
    assert _number(card["low"]) == total["low"]
    assert _number(card["high"]) == total["high"]
    assert int(card["count"]) == total["count"]
    assert int(card["quarantined"]) == stats["quarantined"]
    assert card["shown"] == ("–" if total["score"] is None else f"{total['score']:.1f}")


def _stream(page: Page) -> list[dict[str, str]]:
    """The responses the stream shows: ref, channel, comment, and the comment's direction."""
    found: list[dict[str, str]] = page.eval_on_selector_all(
        "#stream article.response",
        """items => items.map((item) => {
            const comment = item.querySelector('.comment');
            return {ref: item.dataset.ref, channel: item.dataset.channel,
                    comment: comment ? comment.textContent : '',
                    dir: comment ? getComputedStyle(comment).direction : '',
                    auto: comment ? comment.getAttribute('dir') : ''};
        })""",
    )
    return found


def _search(page: Page, text: str) -> None:
    page.get_by_label("Search the comments").fill(text)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()


def test_a_managers_journey(world: World, browser: Browser) -> None:
    email = world.user(one_time=True)
    one_time = world.made[-1]
    context = browser.new_context(locale="en-US", accept_downloads=True)
    page = context.new_page()
    watched = watch(page)

    # Log in with the one-time password; the dashboard asks for a password of one's own first.
    page.goto(f"{world.url}/app/")
    expect(page).to_have_url(f"{world.url}/app/login")
    browser_login(page, world.url, email, one_time)
    expect(page).to_have_url(f"{world.url}/app/password")
    page.get_by_label("Current password").fill(one_time)
    page.get_by_label("New password", exact=True).fill(MY_PASSWORD)
    page.get_by_label("New password, again").fill(MY_PASSWORD)
    page.get_by_role("button", name="Save the new password").click()
    expect(page).to_have_url(f"{world.url}/app/shop/")  # the only project opens

    # Each headline is what /v1/stats says for the same period.
    chart = page.locator("#trend")
    expect(chart).to_have_attribute("data-state", "drawn")
    since = chart.get_attribute("data-from")
    assert since
    cards = _headlines(page)
    assert set(cards) == {"nps", "csat", "ces"}
    for metric in METRIC_RANGES:
        stats = world.stats(metric=metric, **{"from": since})
        if metric in cards:
            _stats_match(cards[metric], stats)
        else:
            assert stats["total"]["count"] == 0 and stats["quarantined"] == 0
    expect(page.locator("#held-notice")).to_contain_text("3 email votes were held apart")
    for row in page.locator('table[data-kind="channel-nps"] tbody tr').all():
        channel = row.get_attribute("data-name")
        stats = world.stats(metric="nps", channel=channel, **{"from": since})
        assert int(row.get_attribute("data-count") or -1) == stats["total"]["count"]
        assert _number(row.get_attribute("data-score")) == stats["total"]["score"]

    # The trend by day, then by hour: the chart is drawn again with the hours' points.
    by_day = world.stats(metric="nps", interval="day", **{"from": since})["series"]
    expect(chart).to_have_attribute("data-points", str(len(by_day)))
    assert chart.get_attribute("data-first") == _epoch(by_day[0]["start"])
    page.get_by_label("Interval", exact=True).select_option("hour")
    expect(chart).to_have_attribute("data-interval", "hour")
    expect(chart).to_have_attribute("data-state", "drawn")
    by_hour = world.stats(metric="nps", interval="hour", **{"from": since})["series"]
    assert len(by_hour) != len(by_day)
    expect(chart).to_have_attribute("data-points", str(len(by_hour)))
    # the hours' first point, which is the day's when the first answer came in its first hour
    assert chart.get_attribute("data-first") == _epoch(by_hour[0]["start"])
    assert page.locator("#trend canvas").count() == 1  # uPlot's drawing, one chart
    assert "interval=hour" in page.url
    expect(chart).to_have_attribute("aria-label", "NPS by hour, with its 95% interval")
    expect(page.locator("#trend-rows tr")).to_have_count(min(60, len(by_hour)))

    # The inbox: search in each script finds exactly that language's sentences.
    page.get_by_role("link", name="Feedback inbox").click()
    expect(page.locator("#stream article.response").first).to_be_visible()
    for language, (word, expected) in SEARCHES.items():
        _search(page, word)
        shown = _stream(page)
        assert sorted(item["comment"] for item in shown) == sorted(expected), language
        api = world.responses(q=word)
        assert [item["ref"] for item in shown] == [r["ref"] for r in api]
        rtl = language in ("ar", "fa")
        assert all(item["auto"] == "auto" for item in shown)
        assert all(item["dir"] == ("rtl" if rtl else "ltr") for item in shown), shown
    # A filter with the search: the Arabic word on the web channel, then the app's comments.
    filters = page.locator("#filters details")
    expect(filters).not_to_have_attribute("open", "")  # a search alone leaves them folded
    page.get_by_text("Filters", exact=True).click()
    page.get_by_label("Search the comments").fill(SEARCHES["ar"][0])
    page.get_by_label("Channel").select_option("web")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#stream .empty")).to_have_text("No responses match.")
    expect(filters).to_have_attribute("open", "")  # open while a filter is set
    page.get_by_label("Search the comments").fill("")
    page.get_by_label("Channel").select_option("app")
    page.get_by_label("Comment", exact=True).select_option("true")
    page.get_by_role("button", name="Apply").click()
    shown = _stream(page)
    assert shown and all(item["channel"] == "app" and item["comment"] for item in shown)
    assert [i["ref"] for i in shown] == [
        r["ref"] for r in world.responses(channel="app", has_comment="true")
    ]

    # A response's page: its comment, its respondent's other feedback.
    first = page.locator("#stream article.response").first
    said = first.locator(".comment").text_content()
    first.get_by_role("link", name="Details").click()
    expect(page.locator("main article.response .comment").first).to_have_text(said or "")
    expect(page.get_by_role("heading", name="The same respondent's other feedback")).to_be_visible()

    # The export: the filters carried over, the CSV downloaded through the session.
    page.goto(f"{world.url}/app/shop/responses?channel=web&has_comment=true")
    page.get_by_role("link", name="Export these responses").click()
    expect(page.locator("#export input[name=channel]")).to_have_value("web")
    with page.expect_download() as download:
        page.get_by_role("button", name="CSV", exact=True).click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8"))))
    expected = world.responses(channel="web", has_comment="true")
    assert [row["ref"] for row in rows] == [r["ref"] for r in expected]
    assert [row["comment"] for row in rows] == [r["comment"] for r in expected]
    with page.expect_download() as excel:
        page.get_by_role("button", name="CSV for Excel").click()
    assert excel.value.path().read_bytes().startswith(b"\xef\xbb\xbf")

    # Logging out: the cookie the browser held is refused by the pages and the API.
    held = next(c["value"] for c in context.cookies() if c["name"] == SESSION_COOKIE)
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_have_text("You have logged out.")
    with httpx.Client(base_url=world.url, cookies={SESSION_COOKIE: held}, timeout=30) as old:
        assert old.get("/app/shop/").status_code == 303
        assert old.get("/v1/stats", params={"project": "shop", "metric": "nps"}).status_code == 401
    page.goto(f"{world.url}/app/shop/")
    expect(page).to_have_url(f"{world.url}/app/login?next=%2Fapp%2Fshop%2F")
    watched.assert_clean()
    context.close()


def test_the_older_link_pages_through_every_response(world: World) -> None:
    with login(world.url, world.user()) as client:
        seen: list[str] = []
        url: str | None = "/app/shop/responses?limit=7&metric=nps"
        while url:
            page = client.get(url)
            assert page.status_code == 200, page.text
            seen += re.findall(r'data-ref="([^"]+)"', page.text)
            older = re.search(r'<a href="([^"]+)" id="older"', page.text)
            url = html.unescape(older[1]) if older else None
    assert seen == [r["ref"] for r in world.responses(metric="nps")]
    assert len(seen) > 7


def test_held_votes_are_in_the_stream_and_a_response_shows_its_vote_history(world: World) -> None:
    with login(world.url, world.user()) as client:
        held = client.get("/app/shop/responses", params={"held": "quarantined"})
        assert held.text.count('class="response"') == 3
        assert held.text.count('class="mark">Held: a link scanner&#39;s') == 3
        changed = world.responses(channel="email", q="second thought")
        assert len(changed) == 1
        page = client.get(f"/app/shop/responses/{changed[0]['ref']}")
        assert page.status_code == 200
        assert page.text.count('class="response"') >= 3  # itself, and its history of two
        history = page.text.split('id="history"')[1].split("</ol>")[0]
        assert history.count("<li") == 2 and "Answer changed" in history


def test_a_user_scoped_to_the_app_channel_sees_nothing_of_the_web(world: World) -> None:
    email = world.scoped_user(frozenset({"app"}))
    web = world.responses(channel="web")
    with login(world.url, email) as client:
        overview = client.get("/app/shop/")
        assert overview.status_code == 200
        since = re.findall(r'data-from="([^"]+)"', overview.text)[0]
        for metric in METRIC_RANGES:
            app_only = world.stats(metric=metric, channel="app", **{"from": since})
            mine = client.get(
                "/v1/stats", params={"project": "shop", "metric": metric, "from": since}
            )
            assert mine.json() == app_only
            card = f'data-metric="{metric}"'
            if app_only["total"]["count"]:
                shown = overview.text.split(card)[1].split("</li>")[0]
                assert f'data-count="{app_only["total"]["count"]}"' in shown
            else:
                assert card not in overview.text.split('id="trend"')[0]
        assert 'data-name="web"' not in overview.text and 'data-name="email"' not in overview.text
        assert "Web" not in overview.text.split("<main")[1]

        stream = client.get("/app/shop/responses", params={"limit": "500"})
        channels = {part.split('"', 1)[0] for part in stream.text.split('data-channel="')[1:]}
        assert channels == {"app"}
        assert '<option value="web"' not in stream.text
        asked = client.get("/app/shop/responses", params={"channel": "web"})
        assert asked.status_code == 403 and "outside your access" in asked.text
        for response in web[:3]:
            detail = client.get(f"/app/shop/responses/{response['ref']}")
            assert detail.status_code == 404 and "Nothing here" in detail.text
            assert client.get(f"/v1/responses/{response['ref']}?project=shop").status_code == 404
        exported = client.get("/v1/exports/responses.csv", params={"project": "shop"})
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert rows and {row["channel"] for row in rows} == {"app"}
        assert client.get("/app/shop/exports", params={"channel": "web"}).status_code == 403


def test_sections_follow_the_access_given(world: World) -> None:
    name = "inbox-readers"
    world.people.create_group(name, {"responses": "view"}, [Scope("shop")])
    with login(world.url, world.user((name,))) as client:
        start = client.get("/app/")
        assert start.status_code == 303 and start.headers["location"] == "/app/shop/responses"
        inbox = client.get("/app/shop/responses")
        sections = inbox.text.split('class="sections"')[1].split("</nav>")[0]
        assert "Feedback inbox" in sections
        assert "Dashboard" not in sections and "Exports" not in sections
        assert 'href="/app/shop/exports' not in inbox.text
        refused = client.get("/app/shop/")
        assert refused.status_code == 403 and "Dashboard of project &#39;shop&#39;" in refused.text
        assert client.get("/app/shop/exports").status_code == 403
        assert client.get("/v1/exports/responses.csv?project=shop").status_code == 403


def test_bad_parameters_get_a_page_naming_the_parameter_and_its_rule(world: World) -> None:
    with login(world.url, world.user()) as client:
        cases = {
            "/app/shop/?period=2y": (400, "period must be one of 7d, 30d, 90d, 365d, all"),
            "/app/shop/?interval=year": (400, "interval must be one of hour, day, week, month"),
            "/app/shop/?metric=stars": (400, "metric must be one of nps"),
            "/app/shop/?colour=red": (400, "unknown query parameter &#39;colour&#39;"),
            "/app/shop/responses?score_min=99": (400, "score_min must be an integer"),
            "/app/shop/responses?from=2026-02-31": (400, "from must be a date"),
            "/app/shop/responses?cursor=forged": (400, "cursor is not valid"),
            "/app/shop/responses/web.nothing": (404, "no such response"),
            "/app/nowhere/": (404, "no project &#39;nowhere&#39;"),
        }
        for path, (status, message) in cases.items():
            answer = client.get(path)
            assert answer.status_code == status, (path, answer.text)
            assert message in answer.text, (path, answer.text)
            assert answer.headers["content-type"].startswith("text/html")
            assert "default-src 'none'" in answer.headers["content-security-policy"]


def test_the_pages_speak_the_language_asked_for_and_keep_it(world: World) -> None:
    with login(world.url, world.user()) as client:
        arabic = client.get("/app/shop/", params={"lang": "ar"})
        assert '<html lang="ar" dir="rtl">' in arabic.text
        assert 'href="/app/shop/responses?lang=ar"' in arabic.text
        assert "لوحة المعلومات" in arabic.text
        persian = client.get("/app/shop/responses", headers={"accept-language": "fa-IR,en;q=0.5"})
        assert '<html lang="fa" dir="rtl">' in persian.text and "صندوق بازخورد" in persian.text
        indonesian = client.get("/app/shop/", params={"lang": "id"})
        assert '<html lang="id" dir="ltr">' in indonesian.text and "Ringkasan" in indonesian.text


def test_the_demo_opens_the_dashboard_on_sample_feedback(tmp_path: Path, spawn: Spawn) -> None:
    """What `make run` does: a demo owner with a one-time password, the sample project."""
    process, text, told = run_demo(spawn, tmp_path)
    assert "created the sample project, with" in text
    assert f"the dashboard, on the sample project's feedback: {told['url']}/app/" in text
    found = re.search(rf"log in as {DEMO_OWNER} with the one-time password (\S+)", text)
    assert found
    with login(told["url"], DEMO_OWNER, found[1]) as client:
        form = client.get("/app/password")
        fields = {"current": found[1], "new": MY_PASSWORD, "repeat": MY_PASSWORD}
        changed = client.post("/app/password", data={**fields, "csrf": form_token(form.text)})
        assert changed.headers["location"] == "/app/"
        projects = client.get("/app/")
        assert 'href="/app/demo/"' in projects.text and 'href="/app/sample/"' in projects.text
        overview = client.get("/app/sample/")
        counts = dict(re.findall(r'data-metric="(\w+)"[^>]*?data-count="(\d+)"', overview.text))
        assert set(counts) == {"nps", "csat", "ces", "thumbs"}
        assert all(int(n) > 20 for n in counts.values()), counts
        assert "3 email votes were held apart" in overview.text
        for language in ("ar", "fa", "id", "en"):
            word = SAMPLE_COMMENTS[language][0][0].split()[1]
            stream = client.get("/app/sample/responses", params={"q": word, "limit": "500"})
            comments = re.findall(r'class="comment" dir="auto"[^>]*>([^<]+)<', stream.text)
            assert comments and all(word in html.unescape(c) for c in comments), language
        by_channel = client.get("/app/sample/responses", params={"limit": "500"})
        assert {"web", "app", "email"} <= set(re.findall(r'data-channel="(\w+)"', by_channel.text))
    stop(process)

    process, text, told = run_demo(spawn, tmp_path)  # again: the data kept, a new password
    assert "created the sample project" not in text
    again = re.search(rf"log in as {DEMO_OWNER} with the one-time password (\S+)", text)
    assert again and again[1] != found[1]
    with login(told["url"], DEMO_OWNER, again[1]) as client:
        assert client.get("/app/sample/").status_code == 303  # to the password page first
    stop(process)


def test_what_respondents_wrote_is_shown_as_text(world: World) -> None:
    event = {
        "id": "hostile-1",
        "channel": "web",
        "form": "checkout",
        "metric": "nps",
        "score": 4,
        "comment": HOSTILE,
        "tags": [HOSTILE],
        "meta": {"note": HOSTILE},
        "respondent": "hostile",
    }
    assert world.gateway.post([event]).status_code == 202
    (stored,) = world.responses(q="evil")
    with login(world.url, world.user()) as client:
        for path in ("/app/shop/responses?q=evil", f"/app/shop/responses/{stored['ref']}"):
            raw = client.get(path).text
            assert "<script>alert" not in raw and "</script> &" not in raw
            shown = sum(text.count(HOSTILE) for text in parse(raw).values)
            assert shown >= 2 and raw.count("\u202e") == shown, path


def _epoch(start: str) -> str:
    """A series bucket's start (RFC 3339, UTC) as the chart's epoch seconds."""
    return str(int(datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()))
