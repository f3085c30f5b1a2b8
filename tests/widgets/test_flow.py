"""The widget end to end: a score clicked or keyed in a real Chromium lands in the real store.

Each test embeds ``voxloop.js`` from a real gateway into a page of another origin and checks what
a visitor sees (the live region) and what the gateway stored (SQLite rows, stats).
"""

from __future__ import annotations

import json

from playwright.sync_api import BrowserContext, Page, Route

from tests.browser import screenshot, watch
from tests.gateway.conftest import Gateway
from tests.widgets.conftest import Host, count, embed, queued, radio, rows, status, visit

THANKS = "Thank you for your feedback!"
FAIL = "Sorry, your answer could not be sent."


def focused(page: Page) -> str:
    """The text of the element focused inside the widget's shadow root."""
    text: str = page.evaluate(
        "document.querySelector('[data-voxloop]').shadowRoot.activeElement?.textContent ?? ''"
    )
    return text


def test_a_clicked_score_is_stored_and_counted(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    page, watched = visit(context, host.serve(embed(gateway, data_form=form, data_target="#slot")))
    radio(page, 9).click()
    page.get_by_text(THANKS).wait_for()

    (row,) = rows(gateway, form)
    assert (row["metric"], row["score"], row["counted"]) == ("nps", 9, 1)
    assert row["id"][14] == "7", f"{row['id']} is not a UUIDv7"
    assert row["vote_key"]
    assert row["body"]["locale"] == "en"
    assert row["body"]["meta"] == {"page": page.evaluate("location.pathname")}
    total = gateway.stats(metric="nps", form=form)["total"]
    assert total["count"] == 1
    assert total["histogram"][9] == 1
    assert radio(page, 9).get_attribute("aria-checked") == "true"
    assert queued(page) == []
    watched.assert_clean()


def test_keyboard_only(context: BrowserContext, gateway: Gateway, host: Host, form: str) -> None:
    page, watched = visit(context, host.serve(embed(gateway, data_form=form, data_target="#slot")))
    page.keyboard.press("Tab")  # the close button comes first
    page.keyboard.press("Tab")
    assert focused(page) == "0"
    first = page.get_by_role("radio", name="0, Not at all likely", exact=True)
    outline = first.evaluate("(el) => getComputedStyle(el).outlineStyle")
    assert outline == "solid", "the focused radio must show a focus ring"
    for _ in range(8):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")
    assert focused(page) == "7"
    page.keyboard.press("End")
    page.keyboard.press("ArrowRight")  # wraps around
    page.keyboard.press("ArrowDown")
    assert focused(page) == "1"
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Home")
    for _ in range(8):
        page.keyboard.press("ArrowDown")
    assert rows(gateway, form) == [], "arrows only move; nothing is sent before Enter or Space"
    page.keyboard.press("Space")
    page.get_by_text(THANKS).wait_for()
    assert [r["score"] for r in rows(gateway, form)] == [8]

    page.keyboard.press("Tab")
    page.keyboard.type("Quick and easy")
    page.keyboard.press("Tab")
    assert focused(page) == "Send"
    page.keyboard.press("Enter")
    page.get_by_role("radiogroup").wait_for(state="hidden")
    counted = [r for r in rows(gateway, form) if r["counted"]]
    assert [(r["score"], r["body"]["comment"]) for r in counted] == [(8, "Quick and easy")]
    watched.assert_clean()


def test_the_comment_attaches_to_the_answer(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    page, watched = visit(context, host.serve(embed(gateway, data_form=form, data_target="#slot")))
    radio(page, 10).click()
    page.get_by_text(THANKS).wait_for()
    page.get_by_role("textbox").fill("تجربة رائعة — great")
    page.get_by_role("button", name="Send").click()
    page.get_by_role("radiogroup").wait_for(state="hidden")

    first, second = rows(gateway, form)
    assert first["vote_key"] == second["vote_key"]
    assert first["id"] != second["id"]
    assert second["ts_ms"] > first["ts_ms"]
    assert (first["counted"], second["counted"]) == (0, 1)
    assert second["score"] == 10
    assert second["body"]["comment"] == "تجربة رائعة — great"
    assert count(gateway, form) == 1
    assert status(page) == THANKS
    watched.assert_clean()


def test_a_changed_score_replaces_the_answer(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    page, watched = visit(context, host.serve(embed(gateway, data_form=form, data_target="#slot")))
    radio(page, 3).click()
    page.get_by_text(THANKS).wait_for()
    with page.expect_response(f"{gateway.url}/v1/events") as answer:
        radio(page, 8).click()
    assert answer.value.status == 202
    stored = rows(gateway, form)
    assert [(r["score"], r["counted"]) for r in stored] == [(3, 0), (8, 1)]
    histogram = gateway.stats(metric="nps", form=form)["total"]["histogram"]
    assert histogram[8] == 1 and sum(histogram) == 1
    watched.assert_clean()


def test_thank_you_only_after_202(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    page, watched = visit(context, host.serve(embed(gateway, data_form=form, data_target="#slot")))
    held: list[Route] = []

    def hold(route: Route) -> None:
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.route(f"{gateway.url}/v1/events", hold)
    radio(page, 6).click()
    for _ in range(500):
        if held:
            break
        page.wait_for_timeout(10)
    assert held, "the widget posted nothing"
    page.wait_for_timeout(300)
    assert status(page) == "Sending…"
    assert rows(gateway, form) == []
    assert len(queued(page)) == 1, "kept until the gateway has answered"
    held[0].continue_()
    page.get_by_text(THANKS).wait_for()
    assert [r["score"] for r in rows(gateway, form)] == [6]
    assert queued(page) == []
    watched.assert_clean()


def test_a_refused_key_shows_the_failure(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    page, watched = visit(
        context,
        host.serve(embed(gateway, key="pk_" + "x" * 43, data_form=form, data_target="#slot")),
        expected_errors=("401",),
    )
    with page.expect_response(f"{gateway.url}/v1/events") as answer:
        radio(page, 2).click()
    assert answer.value.status == 401
    page.get_by_text(FAIL).wait_for()
    assert status(page) == FAIL
    assert page.get_by_text(THANKS).count() == 0
    assert page.get_by_role("textbox").is_hidden(), "no comment step for a refused answer"
    assert queued(page) == [], "a 4xx is final: the event is dropped"
    assert rows(gateway, form) == []
    assert page.evaluate("localStorage.getItem('voxloop:seen')") in (None, "{}")
    watched.assert_clean()


def test_a_server_key_is_refused_with_a_reason_and_nothing_is_sent(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    assert gateway.server_key.startswith("sk_")
    page = context.new_page()
    page.set_default_timeout(10_000)
    watched = watch(page, expected_errors=("is a server key",))
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.startswith(gateway.url) else None)
    page.goto(
        host.serve(embed(gateway, key=gateway.server_key, data_form=form, data_target="#slot"))
    )
    page.wait_for_function("() => window.voxloop && window.voxloop.version")
    # The JavaScript API refuses it as well.
    shown = page.evaluate(
        "([key, form]) => voxloop.show({key, form, target: '#slot'})", [gateway.server_key, form]
    )
    page.wait_for_timeout(300)
    assert shown is None
    assert page.locator("[data-voxloop]").count() == 0
    assert len(errors) == 2, errors
    for text in errors:
        assert "server key" in text and "secret" in text and "pk_" in text, text
        assert gateway.server_key not in text, "the message doesn't repeat the secret"
    # Only the script itself was fetched: no stylesheet, no event; nothing kept either.
    assert sent == [f"{gateway.url}/widgets/v1/voxloop.js"]
    assert page.evaluate("Object.keys(localStorage)") == []
    assert rows(gateway, form) == []
    watched.assert_clean()


def test_the_js_api(context: BrowserContext, gateway: Gateway, host: Host, form: str) -> None:
    page_html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<script src="{gateway.url}/widgets/v1/voxloop.js"></script></head>'
        '<body><main id="here"></main></body></html>'
    )
    page, watched = visit(context, host.serve(page_html))
    assert page.locator("[data-voxloop]").count() == 0, "no data-key: only the API"
    page.evaluate(
        """([key, form]) => voxloop.show({key, form, metric: 'csat', target: '#here',
            question: 'How was checkout?', comment: false, meta: {plan: 'pro'}})""",
        [gateway.site_key, form],
    )
    page.get_by_text("How was checkout?").wait_for()
    radio(page, 4).click()
    page.get_by_text(THANKS).wait_for()
    assert page.get_by_role("textbox").is_hidden(), "comment: false skips the comment step"
    (row,) = rows(gateway, form)
    assert (row["metric"], row["score"]) == ("csat", 4)
    assert row["body"]["meta"]["plan"] == "pro"
    assert count(gateway, form, "csat") == 1
    watched.assert_clean()


def test_the_floating_button(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    page, watched = visit(context, host.serve(embed(gateway, data_form=form, data_metric="ces")))
    fab = page.get_by_role("button", name="Feedback")
    assert fab.get_attribute("aria-expanded") == "false"
    assert page.get_by_role("radiogroup").is_hidden()
    fab.click()
    assert fab.get_attribute("aria-expanded") == "true"
    assert focused(page) == "1", "opening moves the focus into the scale"
    page.keyboard.press("Escape")
    assert page.get_by_role("radiogroup").is_hidden()
    fab.click()
    radio(page, 5).click()
    page.get_by_text(THANKS).wait_for()
    screenshot(page, "widget-floating-en")
    assert count(gateway, form, "ces") == 1
    watched.assert_clean()


def test_data_gateway_overrides_where_answers_go(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    """E.g. a relay on the site's own domain (voxloop.web); the script comes from the gateway."""
    relay = f"{host.origin}/feedback"
    page_html = embed(gateway, data_form=form, data_target="#slot", data_gateway=relay + "/")
    page, watched = visit(context, host.serve(page_html))
    posted: list[tuple[dict[str, str], str]] = []

    def answer(route: Route) -> None:
        posted.append((route.request.headers, route.request.post_data or ""))
        route.fulfill(status=202, json={"accepted": 1, "duplicates": 0, "rejected": []})

    page.route(f"{relay}/v1/events", answer)
    radio(page, 9).click()
    page.get_by_text(THANKS).wait_for()
    ((headers, body),) = posted
    assert headers["authorization"] == f"Bearer {gateway.site_key}"
    assert headers["content-type"] == "application/json"
    (event,) = json.loads(body)["events"]
    assert set(event) == {
        "id",
        "channel",
        "form",
        "metric",
        "score",
        "ts",
        "locale",
        "vote_key",
        "meta",
    }
    assert (event["channel"], event["form"], event["score"]) == ("web", form, 9)
    assert rows(gateway, form) == []
    watched.assert_clean()
