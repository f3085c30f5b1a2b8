"""``/v1/followups`` and ``/v1/rules`` over real HTTP, on SQLite files and on PostgreSQL.

Detractors are posted to a running gateway, the feed turns them into items, and people work
them: listed by view, channel and status; read with their history and the respondent's other
feedback; assigned (one by one and in bulk), noted, moved through the status machine (409 for
an illegal move), resolved with a note. A person scoped to one channel never sees or changes an
item of another: it is a 404 exactly like an item that doesn't exist. Rules are listed, made,
changed and deleted within the person's scope; a rule that can never match is a 422 naming the
field.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import Gateway, start_gateway
from voxloop_gateway import Settings, migrate
from voxloop_gateway.control.people import People
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.followups import feed
from voxloop_gateway.service import Service

from .conftest import PASSWORD, make_people

EMAILS = {
    "owner": "olga@example.com",
    "ana": "ana@example.com",
    "vera": "vera@example.com",
    "nils": "nils@example.com",
}


@dataclass
class Inbox:
    """A running gateway of project ``shop`` with its people's sessions (token, CSRF)."""

    gateway: Gateway
    settings: Settings
    users: dict[str, str]
    sessions: dict[str, tuple[str, str]]

    def client(self, who: str, csrf: bool = True) -> httpx.Client:
        token, token_csrf = self.sessions[who]
        headers = {"X-CSRF-Token": token_csrf} if csrf else {}
        return httpx.Client(
            base_url=self.gateway.url,
            cookies={"voxloop_session": token},
            headers=headers,
            timeout=30,
        )

    def get(self, who: str, path: str, **params: Any) -> httpx.Response:
        with self.client(who) as client:
            return client.get(path, params=params)

    def send(
        self, who: str, method: str, path: str, body: Any, csrf: bool = True
    ) -> httpx.Response:
        with self.client(who, csrf) as client:
            return client.request(method, path, json=body)

    def post_events(self, *events: dict[str, Any]) -> None:
        answer = self.gateway.post(list(events))
        assert answer.status_code == 202 and not answer.json()["rejected"], answer.text

    def run_feed(self) -> int:
        """What the gateway's workers do: read the stores into items, from the test's side."""

        async def go() -> int:
            service = Service(self.settings)
            await service.connect()
            try:
                return await feed.read_feed(service, int(time.time() * 1000), "test")
            finally:
                await service.close()

        return asyncio.run(go())

    def items(self, who: str = "owner", **params: Any) -> list[dict[str, Any]]:
        answer = self.get(who, "/v1/followups", limit=500, **params)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["followups"]
        return found

    def by_channel(self, channel: str) -> list[dict[str, Any]]:
        return [i for i in self.items() if i["channel"] == channel]


def detractor(channel: str, **fields: Any) -> dict[str, Any]:
    return {
        "channel": channel,
        "form": "checkout",
        "metric": "nps",
        "score": 2,
        "comment": f"Bad on {channel}",
        **fields,
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def inbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Inbox]:
    store = "sqlite" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    settings = Settings(data_dir=tmp_path, store=store)
    if store != "sqlite":
        migrate.migrate(settings)
    registry = Registry(tmp_path, store)
    try:
        registry.create_project("shop", ["kiosk"])
        site, _ = registry.create_key("shop", "site", ["web"], ["https://shop.example.com"])
        server, _ = registry.create_key("shop", "server")
        users = make_people(registry)
        people = People(registry.db)

        async def login() -> dict[str, tuple[str, str]]:
            made = {}
            for name, email in EMAILS.items():
                token, session = await people.login(email, PASSWORD, "127.0.0.1")
                made[name] = (token, session.csrf)
            return made

        sessions = asyncio.run(login())
    finally:
        registry.close()
    gateway = start_gateway(
        tmp_path,
        site,
        server,
        store=store,
        key_rate=1e6,
        key_burst=1e6,
        address_rate=1e6,
        address_burst=1e6,
    )
    made = Inbox(gateway, Settings(data_dir=tmp_path, store=store), users, sessions)
    made.post_events(
        detractor("web", respondent="user-1"),
        detractor("app", respondent="user-1"),
        detractor("app", score=0, form="search"),
        detractor("web", score=9, comment="Great", respondent="user-1"),
    )
    made.run_feed()
    yield made
    gateway.stop()


def test_the_inbox_lists_items_by_view_channel_and_status(inbox: Inbox) -> None:
    everything = inbox.items()
    assert sorted((i["channel"], i["form"]) for i in everything) == [
        ("app", "checkout"),
        ("app", "search"),
        ("web", "checkout"),
    ]
    assert [i["created"] for i in everything] == sorted(
        (i["created"] for i in everything), reverse=True
    )
    assert all(i["status"] == "new" and i["rule"] == "rule_default_shop" for i in everything)
    walked, cursor = [], None
    while True:
        page = inbox.get(
            "owner", "/v1/followups", limit=1, **({"cursor": cursor} if cursor else {})
        )
        assert page.status_code == 200, page.text
        walked += page.json()["followups"]
        cursor = page.json()["next"]
        if cursor is None:
            break
    assert walked == everything
    app_item = inbox.by_channel("app")[0]
    assigned = inbox.send(
        "owner", "PATCH", f"/v1/followups/{app_item['id']}", {"assignee": "ana@example.com"}
    )
    assert assigned.status_code == 200, assigned.text
    assert [i["id"] for i in inbox.items("ana", view="mine")] == [app_item["id"]]
    assert app_item["id"] not in [i["id"] for i in inbox.items(view="unassigned")]
    assert len(inbox.items(view="unassigned")) == 2
    assert inbox.items(view="overdue") == []  # due in 48 hours
    assert [i["id"] for i in inbox.items(status="assigned")] == [app_item["id"]]
    assert {i["channel"] for i in inbox.items(channel="app")} == {"app"}
    assert [i["form"] for i in inbox.items(channel="app", form="search")] == ["search"]
    for params, said in [
        ({"view": "later"}, "view must be one of all, mine, unassigned, overdue"),
        ({"status": "done"}, "status must be one of new, assigned"),
        ({"limit": "0"}, "limit must be an integer 1..500"),
        ({"cursor": "bogus!"}, "cursor is not valid"),
        ({"order": "asc"}, "unknown query parameter 'order'"),
        ({"channel": "fax"}, "channel 'fax' is not one of this project's"),
    ]:
        refused = inbox.get("owner", "/v1/followups", **params)
        assert refused.status_code == 400, (params, refused.text)
        assert said in refused.json()["error"], refused.text


def test_a_person_scoped_to_one_channel_never_sees_another(inbox: Inbox) -> None:
    web_item = inbox.by_channel("web")[0]
    app_items = inbox.by_channel("app")
    mine = inbox.items("ana")
    assert {i["channel"] for i in mine} == {"app"} and len(mine) == 2
    refused = inbox.get("ana", "/v1/followups", channel="web")
    assert refused.status_code == 403 and "'web' is outside your access" in refused.text
    nothing = inbox.get("ana", "/v1/followups/fu_" + "0" * 26)
    assert nothing.status_code == 404
    path = f"/v1/followups/{web_item['id']}"
    attempts = [
        inbox.get("ana", path),
        inbox.send("ana", "PATCH", path, {"status": "in_progress"}),
        inbox.send("ana", "POST", f"{path}/notes", {"text": "peek"}),
    ]
    for answer in attempts:
        assert (answer.status_code, answer.json()) == (404, nothing.json())
    bulk = inbox.send(
        "ana",
        "POST",
        "/v1/followups/assign",
        {"ids": [app_items[0]["id"], web_item["id"]], "assignee": "ana@example.com"},
    )
    assert bulk.status_code == 404 and web_item["id"] in bulk.json()["error"]
    assert all(i["assignee"] is None for i in inbox.items())  # all or nothing
    untouched = inbox.get("owner", path).json()
    assert untouched["followup"] == web_item and len(untouched["changes"]) == 1
    # Who may not: a viewer can't change, a person without the inbox can't see, keys can't.
    viewer = inbox.send("vera", "PATCH", path, {"status": "in_progress"})
    assert viewer.status_code == 403 and "needs edit access" in viewer.text
    assert inbox.get("vera", path).status_code == 200
    assert inbox.get("nils", "/v1/followups").status_code == 403
    with inbox.gateway.client(inbox.gateway.server_key) as client:
        keyed = client.get("/v1/followups")
    assert keyed.status_code == 403 and "Follow-up inbox" in keyed.text
    forged = inbox.send("owner", "PATCH", path, {"status": "in_progress"}, csrf=False)
    assert forged.status_code == 403 and "CSRF" in forged.text


def test_working_an_item_through_to_resolved(inbox: Inbox) -> None:
    item = next(i for i in inbox.by_channel("app") if i["form"] == "checkout")
    path = f"/v1/followups/{item['id']}"
    steps = [
        ("owner", "PATCH", path, {"assignee": inbox.users["ana"], "tags": ["billing"]}, 200),
        ("ana", "POST", f"{path}/notes", {"text": "Called, left a message"}, 201),
        ("ana", "PATCH", path, {"status": "resolved", "resolution": "x"}, 409),
        ("ana", "PATCH", path, {"status": "in_progress"}, 200),
        ("ana", "PATCH", path, {"status": "resolved"}, 422),
        ("ana", "PATCH", path, {"status": "resolved", "resolution": "Refunded the order"}, 200),
    ]
    answers = []
    for who, method, where, body, status in steps:
        answer = inbox.send(who, method, where, body)
        assert answer.status_code == status, (body, answer.text)
        answers.append(answer.json())
    assert answers[2]["error"] == (
        "status: an item 'assigned' can't become 'resolved'; allowed next: in_progress, closed"
    )
    assert answers[4]["error"].startswith("resolution is required")
    done = answers[-1]
    assert (done["status"], done["resolution"], done["tags"]) == (
        "resolved",
        "Refunded the order",
        ["billing"],
    )
    assert done["assignee"] == {"id": inbox.users["ana"], "email": "ana@example.com"}
    assert done["first_action"] is not None and done["closed"] is not None
    detail = inbox.get("ana", path).json()
    assert detail["followup"] == done
    who_what = [
        (None if c["actor"] is None else c["actor"]["email"], c["kind"]) for c in detail["changes"]
    ]
    assert who_what == [
        (None, "created"),
        ("olga@example.com", "assignee"),
        ("olga@example.com", "status"),
        ("olga@example.com", "tags"),
        ("ana@example.com", "note"),
        ("ana@example.com", "status"),
        ("ana@example.com", "status"),
    ]
    assert detail["changes"][4]["detail"] == {"text": "Called, left a message"}
    assert detail["response"]["ref"] == item["ref"]
    assert detail["response"]["comment"] == "Bad on app"
    # The respondent said more, on web too: ana sees only what her scope covers.
    assert detail["others"] == []
    full = inbox.get("owner", path).json()
    assert sorted(o["channel"] for o in full["others"]) == ["web", "web"]
    # Bad bodies name what is wrong.
    for body, status, said in [
        ({"status": "done"}, 422, "status"),
        ({"colour": "red"}, 422, "colour"),
        ({"tags": ["x" * 65]}, 422, "tags"),
        ({"assignee": "nils@example.com"}, 422, "assignee"),
    ]:
        answer = inbox.send("owner", "PATCH", path, body)
        assert answer.status_code == status and said in answer.json()["error"], answer.text
    with inbox.client("owner") as client:
        not_json = client.patch(path, content=b"{", headers={"Content-Type": "application/json"})
        form = client.patch(path, content=b"status=new")
    assert not_json.status_code == 400 and form.status_code == 415


def test_bulk_assignment(inbox: Inbox) -> None:
    app_ids = [i["id"] for i in inbox.by_channel("app")]
    done = inbox.send(
        "owner", "POST", "/v1/followups/assign", {"ids": app_ids, "assignee": "ana@example.com"}
    )
    assert done.status_code == 200, done.text
    assert [i["id"] for i in done.json()["followups"]] == app_ids
    assert all(i["status"] == "assigned" for i in done.json()["followups"])
    assert sorted(i["id"] for i in inbox.items("ana", view="mine")) == sorted(app_ids)
    back = inbox.send("owner", "POST", "/v1/followups/assign", {"ids": app_ids, "assignee": None})
    assert all(i["status"] == "new" and i["assignee"] is None for i in back.json()["followups"])
    for body, said in [
        ({"ids": [], "assignee": None}, "ids: give 1-500"),
        ({"ids": app_ids, "assignee": "nils@example.com"}, "assignee"),
        ({"ids": app_ids}, "assignee"),
    ]:
        refused = inbox.send("owner", "POST", "/v1/followups/assign", body)
        assert refused.status_code == 422 and said in refused.json()["error"], refused.text


def test_rules_over_http(inbox: Inbox) -> None:
    listed = inbox.get("owner", "/v1/rules").json()["rules"]
    assert [(r["id"], r["low"], r["has_comment"], r["sla_hours"]) for r in listed] == [
        ("rule_default_shop", True, True, 48)
    ]
    never = inbox.send(
        "owner", "POST", "/v1/rules", {"name": "x", "metrics": ["csat"], "score_min": 6}
    )
    assert never.status_code == 422 and never.json()["error"].startswith("score_min")
    for body, said in [
        ({"name": "x", "channels": []}, "channels"),
        ({"name": "x", "kind": "page"}, "kind"),
        ({"name": "x", "escalate_to": "0123456789abcdef"}, "escalate_to"),
        ({"name": "x", "id": "rule_mine"}, "id"),
    ]:
        refused = inbox.send("owner", "POST", "/v1/rules", body)
        assert refused.status_code == 422 and said in refused.json()["error"], refused.text
    made = inbox.send(
        "owner",
        "POST",
        "/v1/rules",
        {"name": "Refunds", "words": ["refund"], "sla_hours": 4, "escalate_to": inbox.users["ana"]},
    )
    assert made.status_code == 201, made.text
    rule = made.json()
    changed = inbox.send(
        "owner", "PATCH", f"/v1/rules/{rule['id']}", {"sla_hours": 8, "words": None}
    )
    assert changed.status_code == 200 and (
        changed.json()["sla_hours"],
        changed.json()["words"],
    ) == (8, None)
    broken = inbox.send(
        "owner", "PATCH", f"/v1/rules/{rule['id']}", {"has_comment": False, "words": ["x"]}
    )
    assert broken.status_code == 422 and broken.json()["error"].startswith("words")
    in_use = inbox.send("owner", "DELETE", "/v1/rules/rule_default_shop", None)
    assert in_use.status_code == 409 and "enabled: false" in in_use.json()["error"]
    off = inbox.send("owner", "PATCH", "/v1/rules/rule_default_shop", {"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert inbox.send("owner", "DELETE", f"/v1/rules/{rule['id']}", None).status_code == 204
    assert inbox.send("owner", "DELETE", f"/v1/rules/{rule['id']}", None).status_code == 404
    # Ana's scope is channel app: she sees and makes only rules of app.
    assert inbox.get("ana", "/v1/rules").json()["rules"] == []
    wide = inbox.send("ana", "POST", "/v1/rules", {"name": "All", "low": True})
    assert wide.status_code == 403 and "channels are required" in wide.json()["error"]
    elsewhere = inbox.send("ana", "POST", "/v1/rules", {"name": "Web", "channels": ["web"]})
    assert elsewhere.status_code == 403 and "'web' is outside your access" in elsewhere.text
    hers = inbox.send("ana", "POST", "/v1/rules", {"name": "App", "channels": ["app"], "low": True})
    assert hers.status_code == 201, hers.text
    assert [r["name"] for r in inbox.get("ana", "/v1/rules").json()["rules"]] == ["App"]
    hidden = inbox.send("ana", "PATCH", "/v1/rules/rule_default_shop", {"enabled": True})
    assert hidden.status_code == 404
    assert inbox.get("vera", "/v1/rules").status_code == 403  # no alerts section
