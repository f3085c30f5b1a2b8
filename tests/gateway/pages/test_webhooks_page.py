"""The webhooks page over real HTTP: endpoints added, delivered to, redelivered, disabled, enabled.

A real gateway on loopback (its SSRF guard lets loopback through, as the tests' setting says)
delivers to a real receiver on 127.0.0.1. The page's forms are posted as a browser posts them:
an endpoint added shows its secret once (the deliveries verify with it, through the official
``standardwebhooks`` package), its delivery log shows each attempt newest first, a Redeliver
sends the message again with its id, a receiver answering 410 disables the endpoint with the
reason shown, and Enable, Rotate and Remove do what they say. Refused input gets the page again
naming the field; looking needs the Alerts & webhooks section, changing needs edit over the
whole project.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.integrations.receivers import LOOPBACK, Receiver, always
from voxloop_gateway.control.access import Scope
from voxloop_gateway.control.people import People

from .dashboard_world import PASSWORD, form_token, login
from .test_followups_pages import EMAILS, Loop, event, eventually, post, start_loop

PAGE = "/app/shop/webhooks"
VIEWER = "wanda@shop.example"
APP_EDITOR = "arne@shop.example"


@dataclass
class Hooks:
    """A gateway whose webhooks reach loopback, and a receiver answering 200."""

    loop: Loop
    receiver: Receiver

    @property
    def url(self) -> str:
        return self.loop.url


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hooks]:
    loop = start_loop(
        tmp_path_factory.mktemp("webhooks"), webhook_allow=LOOPBACK, webhook_timeout_s=2.0
    )
    people = People(loop.registry.db)
    people.create_group("alerts-viewers", {"alerts": "view"}, [Scope("shop")])
    people.create_group("app-alerts", {"alerts": "edit"}, [Scope("shop", frozenset({"app"}))])
    people.create_user(VIEWER, ["alerts-viewers"], PASSWORD)
    people.create_user(APP_EDITOR, ["app-alerts"], PASSWORD)
    receiver = Receiver().start()
    try:
        yield Hooks(loop, receiver)
    finally:
        receiver.stop()
        loop.gateway.stop()
        loop.registry.close()


def page_of(client: httpx.Client, path: str = PAGE) -> str:
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    return answer.text


def endpoint_ids(text: str) -> list[str]:
    return re.findall(r'<article class="card endpoint" id="endpoint-(ep_\w+)"', text)


def log_of(text: str, endpoint: str) -> list[dict[str, Any]]:
    """The delivery log an endpoint's card shows: each row's message, status, state, result."""
    card = text.split(f'id="endpoint-{endpoint}"')[1].split("</article>")[0]
    rows = re.findall(
        r'<tr data-attempt="(\d+)" data-message="(msg_\w+)" data-status="(\d*)"'
        r' data-state="(\w+)">(.*?)</tr>',
        card,
        flags=re.S,
    )
    return [
        {"id": a, "message": m, "status": s, "state": st, "redeliver": "Redeliver" in body}
        for a, m, s, st, body in rows
    ]


def add(client: httpx.Client, url: str, *types: str, **fields: str) -> httpx.Response:
    text = page_of(client)
    boxes = {f"type.{t}": "on" for t in types}
    data = {"csrf": form_token(text), "action": "add", "url": url, **boxes, **fields}
    return client.post(PAGE, data=data)


def add_one(client: httpx.Client, url: str, *types: str, **fields: str) -> tuple[str, str]:
    """Add an endpoint through the form: its id, and the secret the answer shows."""
    before = endpoint_ids(page_of(client))
    added = add(client, url, *types, **fields)
    assert added.status_code == 200, added.text
    assert added.headers["cache-control"] == "no-store"
    assert f"The signing secret of {url}. Copy it now" in added.text
    (endpoint,) = [e for e in endpoint_ids(added.text) if e not in before]
    return endpoint, secret_of(added)


def log_with(client: httpx.Client, endpoint: str, attempts: int) -> list[dict[str, Any]]:
    """The endpoint's log once it holds ``attempts`` attempts."""

    def check() -> list[dict[str, Any]] | None:
        found = log_of(page_of(client), endpoint)
        return found if len(found) == attempts else None

    return eventually(check, f"{attempts} attempts in the log")


def act(client: httpx.Client, action: str, endpoint: str, **fields: str) -> httpx.Response:
    data = {"csrf": form_token(page_of(client)), "action": action, "endpoint": endpoint}
    return client.post(PAGE, data={**data, **fields})


def secret_of(answer: httpx.Response) -> str:
    found = re.search(r'id="secret-value" class="code" value="(whsec_[^"]+)"', answer.text)
    assert found, answer.text
    return html.unescape(found[1])


def test_an_endpoint_is_added_delivered_to_and_redelivered(hooks: Hooks) -> None:
    with login(hooks.url, EMAILS["owner"]) as client:
        first = page_of(client)
        nav = first.split('class="sections"')[1].split("</nav>")[0]
        assert 'href="/app/shop/webhooks" aria-current="page">Webhooks<' in nav
        url = hooks.receiver.url
        endpoint, secret = add_one(
            client, url, "response.created", "followup.created", description="The CRM"
        )
        again = page_of(client)
        assert secret not in again and 'id="secret"' not in again  # shown once
        card = again.split(f'id="endpoint-{endpoint}"')[1].split("</article>")[0]
        assert f'dir="ltr">{hooks.receiver.url}</h3>' in card
        assert 'data-state="active">Active<' in card and ">The CRM<" in card
        assert '>response.created</span> <span class="tag code" dir="ltr">followup.created<' in card
        assert "No deliveries yet." in card

        post(hooks.loop, event("web", "checkout", "nps", 2, "Never again.", "w-1"))
        got = eventually(lambda: hooks.receiver.received() or None, "the deliveries")
        types = eventually(
            lambda: (
                {
                    Webhook(secret).verify(r.body, r.headers)["type"]: r.id
                    for r in hooks.receiver.received()
                }
                if len(hooks.receiver.received()) >= 2
                else None
            ),
            "both deliveries",
        )
        assert set(types) == {"response.created", "followup.created"} and got
        log = log_with(client, endpoint, 2)
        assert {row["message"] for row in log} == set(types.values())
        assert all(row["status"] == "200" and row["state"] == "delivered" for row in log)
        assert all(row["redeliver"] for row in log)  # one button per message

        message = types["followup.created"]
        sent = act(client, "redeliver", endpoint, message=message)
        assert sent.status_code == 303, sent.text
        assert sent.headers["location"] == f"{PAGE}?done=redeliver#endpoint-{endpoint}"
        eventually(lambda: hooks.receiver.ids().count(message) == 2 or None, "the redelivery")
        log = log_with(client, endpoint, 3)
        assert log[0]["message"] == message and log[0]["state"] == "delivered"  # newest first
        assert [row["message"] for row in log].count(message) == 2
        assert [row["redeliver"] for row in log].count(True) == 2  # one per message
        older = page_of(client, f"{PAGE}?endpoint={endpoint}&before={log[0]['id']}")
        assert endpoint_ids(older) == [endpoint] and 'id="add-form"' not in older
        assert log_of(older, endpoint) == [{**row, "redeliver": True} for row in log[1:]]
        assert client.get(PAGE, params={"endpoint": "ep_gone"}).status_code == 404
        notice = page_of(client, f"{PAGE}?done=redeliver")
        assert "The message is sent again: the log shows the new attempt." in notice
        bodies = [r.body for r in hooks.receiver.received() if r.id == message]
        assert len(set(bodies)) == 1  # the same message, the same id
    assert act_removed(hooks, endpoint)


def act_removed(hooks: Hooks, endpoint: str) -> bool:
    """Remove ``endpoint`` through the page; whether it is gone from it."""
    with login(hooks.url, EMAILS["owner"]) as client:
        done = act(client, "remove", endpoint)
        assert done.status_code == 303 and done.headers["location"] == f"{PAGE}?done=remove"
        text = page_of(client, done.headers["location"])
        assert "The endpoint was removed." in text
        return endpoint not in endpoint_ids(text)


def test_a_gone_receiver_disables_the_endpoint_until_it_is_enabled(hooks: Hooks) -> None:
    gone = Receiver(answer=always(410)).start()
    try:
        with login(hooks.url, EMAILS["owner"]) as client:
            endpoint, first_secret = add_one(client, gone.url, "response.created")
            post(hooks.loop, event("app", "onboarding", "csat", 1, "Bad.", "g-1"))

            def disabled() -> str | None:
                text = page_of(client)
                card = text.split(f'id="endpoint-{endpoint}"')[1].split("</article>")[0]
                return card if 'data-state="disabled"' in card else None

            card = eventually(disabled, "the 410 to disable it")
            assert ">Disabled<" in card and "Disabled: the endpoint answered 410 Gone" in card
            assert 'value="enable"' in card
            assert [row["status"] for row in log_of(page_of(client), endpoint)] == ["410"]
            message = log_of(page_of(client), endpoint)[0]["message"]
            refused = act(client, "redeliver", endpoint, message=message)
            assert refused.status_code == 409 and "is disabled: enable it first" in refused.text

            enabled = act(client, "enable", endpoint)
            assert enabled.status_code == 303
            text = page_of(client, enabled.headers["location"].split("#")[0])
            assert "The endpoint was enabled." in text
            card = text.split(f'id="endpoint-{endpoint}"')[1].split("</article>")[0]
            assert 'data-state="active"' in card and 'value="enable"' not in card

            rotated = act(client, "rotate", endpoint)
            assert rotated.status_code == 200
            assert secret_of(rotated) != first_secret
            assert "The previous secret signs too until " in rotated.text
    finally:
        gone.stop()
    assert act_removed(hooks, endpoint)


def test_refused_forms_name_the_field_and_keep_what_was_typed(hooks: Hooks) -> None:
    with login(hooks.url, EMAILS["owner"]) as client:
        cases = [
            (("ftp://example.com/hook", "alert.fired"), 422, "url must be http or https"),
            (("http://10.1.2.3/hook", "alert.fired"), 422, "url is refused: 10.1.2.3"),
            ((hooks.receiver.url,), 422, "event_types must name at least one event type"),
        ]
        for (url, *types), status, said in cases:
            answer = add(client, url, *types, description="Kept")
            assert answer.status_code == status, answer.text
            assert said in html.unescape(answer.text), answer.text
            assert 'role="alert"' in answer.text and 'id="secret"' not in answer.text
            assert f'value="{url}"' in answer.text and 'value="Kept"' in answer.text
        assert endpoint_ids(page_of(client)) == []
        unknown = act(client, "rotate", "ep_nothing")
        assert unknown.status_code == 404 and "no webhook endpoint" in html.unescape(unknown.text)
        odd = act(client, "launch", "ep_nothing")
        assert odd.status_code == 400 and "action must be one of add, rotate" in odd.text
        no_token = client.post(PAGE, data={"action": "add", "url": hooks.receiver.url})
        assert no_token.status_code == 403 and "CSRF token" in no_token.text
        bad_query = client.get(PAGE, params={"before": "x"})
        assert bad_query.status_code == 400 and "before must be an integer" in bad_query.text


def test_looking_needs_the_section_and_changing_needs_all_of_the_project(hooks: Hooks) -> None:
    with login(hooks.url, EMAILS["owner"]) as client:
        endpoint, _ = add_one(client, hooks.receiver.url, "alert.fired")
    for email in (VIEWER, APP_EDITOR):
        with login(hooks.url, email) as client:
            text = page_of(client)
            assert endpoint in endpoint_ids(text)
            assert "You can look at this, but not change it." in text
            assert 'value="rotate"' not in text and 'id="add-form"' not in text
            refused = client.post(
                PAGE, data={"csrf": form_token(text), "action": "remove", "endpoint": endpoint}
            )
            assert refused.status_code == 403, refused.text
    with login(hooks.url, EMAILS["nils"]) as client:
        assert client.get(PAGE).status_code == 403
    with login(hooks.url, EMAILS["owner"]) as client:
        assert endpoint in endpoint_ids(page_of(client))  # nothing was removed
        arabic = page_of(client, f"{PAGE}?lang=ar")
        assert '<html lang="ar" dir="rtl">' in arabic and "خطافات الويب" in arabic
        assert f'dir="ltr">{hooks.receiver.url}</h3>' in arabic
    assert act_removed(hooks, endpoint)
