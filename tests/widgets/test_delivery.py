"""Delivery: offline and refused answers are kept and sent again with the same id, once.

The widget writes each event to a queue in localStorage before posting it and removes it only on
a final answer (202, or a 4xx other than 429); the queue is flushed on the next page load, on
``online``, on a timer, and when the page is hidden (with ``fetch(keepalive)``).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from playwright.sync_api import BrowserContext, Route

from tests.gateway.conftest import Gateway, free_port
from tests.widgets.conftest import (
    Host,
    Shop,
    count,
    embed,
    queued,
    radio,
    rows,
    shown,
    visit,
    wait_queue_empty,
)

THANKS = "Thank you for your feedback!"
RETRY = "Sorry, your answer could not be sent. We will try again later."


def test_offline_then_back_arrives_exactly_once(
    context: BrowserContext, shop: Shop, host: Host, form: str
) -> None:
    port = free_port()
    gateway = shop.start(port)
    try:
        url = host.serve(embed(gateway, data_form=form, data_target="#slot"))
        page, watched = visit(context, url, expected_errors=("ERR_CONNECTION_REFUSED",))
        gateway.stop()
        radio(page, 7).click()
        page.get_by_text(RETRY).wait_for()
        assert page.get_by_text(THANKS).count() == 0
        (item,) = queued(page)
        assert (item["e"]["score"], item["e"]["form"]) == (7, form)
        assert rows(gateway, form) == []
    finally:
        gateway.stop()

    gateway = shop.start(port)  # the same port and data dir: the page's gateway is back
    try:
        page.reload()
        page.wait_for_function("() => window.voxloop")
        wait_queue_empty(page)
        assert not shown(page), "answered (and queued): not asked again"
        (row,) = rows(gateway, form)
        assert row["id"] == item["e"]["id"]
        assert count(gateway, form) == 1

        # Had the 202 been lost, the widget would send the same event again: still counted once.
        page.evaluate("(q) => localStorage.setItem('voxloop:queue', q)", json.dumps([item]))
        with page.expect_response(f"{gateway.url}/v1/events") as answer:
            page.reload()
        assert answer.value.status == 202
        assert json.loads(answer.value.body()) == {"accepted": 0, "duplicates": 1, "rejected": []}
        wait_queue_empty(page)
        assert len(rows(gateway, form)) == 1
        assert count(gateway, form) == 1
        assert not watched.page_errors
    finally:
        gateway.stop()


def test_a_503_is_kept_and_sent_again_when_online(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    url = host.serve(embed(gateway, data_form=form, data_target="#slot"))
    page, watched = visit(context, url, expected_errors=("503",))
    refused: list[str] = []

    def busy(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        refused.append(json.loads(route.request.post_data or "")["events"][0]["id"])
        route.fulfill(
            status=503,
            headers={"Retry-After": "1", "Access-Control-Allow-Origin": host.origin},
            json={"error": "the web store is busy; retry"},
        )

    page.route(f"{gateway.url}/v1/events", busy)
    radio(page, 5).click()
    page.get_by_text(RETRY).wait_for()
    (item,) = queued(page)
    assert refused == [item["e"]["id"]]
    assert rows(gateway, form) == []

    page.unroute(f"{gateway.url}/v1/events")
    context.set_offline(True)
    context.set_offline(False)  # the page's `online` event sends the queue
    wait_queue_empty(page)
    (row,) = rows(gateway, form)
    assert (row["id"], row["score"]) == (item["e"]["id"], 5)
    watched.assert_clean()


def test_a_hidden_page_sends_its_queue(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    url = host.serve(embed(gateway, data_form=form, data_target="#slot", data_metric="thumbs"))
    page, watched = visit(context, url)
    event = {
        "id": str(uuid.uuid4()),
        "channel": "web",
        "form": form,
        "metric": "thumbs",
        "score": 1,
        "ts": datetime.now(UTC).isoformat(),
    }
    item = {"g": gateway.url, "k": gateway.site_key, "t": page.evaluate("Date.now()"), "e": event}
    page.evaluate("(q) => localStorage.setItem('voxloop:queue', q)", json.dumps([item]))
    assert rows(gateway, form) == []
    page.goto("about:blank")  # pagehide: fetch(keepalive) outlives the page
    for _ in range(250):
        if rows(gateway, form):
            break
        page.wait_for_timeout(20)
    assert [r["id"] for r in rows(gateway, form)] == [event["id"]]
    watched.assert_clean()


def test_send_beacon_cannot_post_json_to_the_gateway(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    """Why the widget uses fetch(keepalive) on page hide and not navigator.sendBeacon.

    The gateway takes only ``Content-Type: application/json`` (else 415); a beacon of that type
    to another origin needs a CORS preflight in credentials mode, which the gateway doesn't grant
    (no ``Access-Control-Allow-Credentials``), so the browser never sends it.
    """
    page, _ = visit(context, host.serve(embed(gateway, data_form=form, data_target="#slot")))
    event = {"id": str(uuid.uuid4()), "channel": "web", "form": form, "metric": "nps", "score": 3}
    queued_ok = page.evaluate(
        "([url, body]) => navigator.sendBeacon(url, new Blob([body], {type: 'application/json'}))",
        [f"{gateway.url}/v1/events?key={gateway.site_key}", json.dumps({"events": [event]})],
    )
    assert queued_ok is True
    page.wait_for_timeout(500)
    assert rows(gateway, form) == []


def test_a_queue_larger_than_a_keepalive_body_is_sent_in_batches(
    context: BrowserContext, shop: Shop, host: Host, form: str
) -> None:
    gateway = shop.start(free_port())
    try:
        url = host.serve(embed(gateway, data_form=form, data_target="#slot"))
        page, _ = visit(context, url)
        # Twelve answers with long comments in a script of three UTF-8 bytes a character:
        # about 140 KB queued, more than one keepalive request may carry (64 KiB).
        now = page.evaluate("Date.now()")
        queue = [
            {
                "g": gateway.url,
                "k": gateway.site_key,
                "t": now,
                "e": {
                    "id": str(uuid.uuid4()),
                    "channel": "web",
                    "form": form,
                    "metric": "nps",
                    "score": n % 11,
                    "comment": "服务很好" * 1000,
                },
            }
            for n in range(12)
        ]
        page.evaluate("(q) => localStorage.setItem('voxloop:queue', q)", json.dumps(queue))
        page.reload()
        page.wait_for_function("() => window.voxloop")
        wait_queue_empty(page)
        assert {row["id"] for row in rows(gateway, form)} == {item["e"]["id"] for item in queue}
    finally:
        gateway.stop()
