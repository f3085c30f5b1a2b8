"""The follow-up inbox pages and ``/v1/followups/sla`` over real HTTP, against a real gateway.

Detractors are posted to a gateway on loopback; its own workers turn them into follow-up
items. The pages then list what ``/v1/followups`` lists, with each item's clock, and show the
SLA figure ``/v1/followups/sla`` gives. The forms are posted as a browser posts them, with the
CSRF token: bulk assignment, and an item taken through assignment, a note, tags, the status
machine and a resolution. A change the rules refuse gets the page again with why (a 4xx,
never a 5xx). A person sees only the items of their inbox scope, changes them only with
``edit``, and an item outside the scope is a 404.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop_core import DAY_MS, HOUR_MS
from voxloop_gateway.control import tables
from voxloop_gateway.control.access import Level, Scope, Section
from voxloop_gateway.control.people import People
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.pages.followups import PAGE_SIZE

from ..conftest import Gateway, make_project, start_gateway
from .conftest import HOSTILE, parse
from .dashboard_world import PASSWORD, form_token, login

T = TypeVar("T")
#: The people of the project, by name: their email and groups.
EMAILS = {
    "owner": "olga@shop.example",
    "ana": "ana@shop.example",
    "vera": "vera@shop.example",
    "nils": "nils@shop.example",
}
GROUPS: dict[str, tuple[dict[Section, Level], Scope]] = {
    "app-inbox": ({"inbox": "edit", "responses": "view"}, Scope("shop", frozenset({"app"}))),
    "inbox-viewers": ({"inbox": "view"}, Scope("shop")),
    "dashboard-only": ({"dashboard": "view"}, Scope("shop")),
}
MEMBERSHIP = {
    "owner": "owner",
    "ana": "app-inbox",
    "vera": "inbox-viewers",
    "nils": "dashboard-only",
}
#: Each detractor's (channel, form, metric, score, comment, respondent); kiosk's make two pages.
DETRACTORS = [
    ("web", "checkout", "nps", 3, "Checkout failed twice on my phone.", "r-1"),
    ("app", "onboarding", "csat", 1, "التطبيق بطيء جدا عند الدفع.", "r-1"),
    ("app", "support", "ces", 2, "Nobody answered my question.", "r-2"),
    ("email", "newsletter", "nps", 0, HOSTILE, "r-3"),
    *[("kiosk", "lobby", "nps", 5, f"The queue was too long ({n}).", None) for n in range(27)],
]


@dataclass
class Loop:
    """A gateway with ``shop``'s detractors followed up, its people, its control plane."""

    gateway: Gateway
    registry: Registry

    @property
    def url(self) -> str:
        return self.gateway.url

    def items(self, who: str = "owner", **params: Any) -> list[dict[str, Any]]:
        """What ``/v1/followups`` lists for ``who`` (every page)."""
        with login(self.url, EMAILS[who]) as client:
            answer = client.get("/v1/followups", params={"project": "shop", "limit": 500, **params})
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["followups"]
        return found

    def sla(self, who: str = "owner", **params: Any) -> dict[str, Any]:
        with login(self.url, EMAILS[who]) as client:
            answer = client.get("/v1/followups/sla", params={"project": "shop", **params})
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def row(self, item_id: str) -> Any:
        async def read(conn: AsyncConnection) -> Any:
            found = await conn.execute(
                select(tables.followups).where(tables.followups.c.id == item_id)
            )
            return found.one()

        return self.registry.db.run(read)

    def make_overdue(self, item_id: str, by_ms: int) -> None:
        """Move an item's due time into the past, as if its SLA had run out ``by_ms`` ago."""

        async def write(conn: AsyncConnection) -> None:
            due = int(time.time() * 1000) - by_ms
            item = tables.followups.c.id == item_id
            await conn.execute(update(tables.followups).where(item).values(due_ms=due))

        self.registry.db.run(write, write=True)


def eventually(check: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    """``check()``'s first answer that isn't None, asked until ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.2)


def event(
    channel: str, form: str, metric: str, score: int, comment: str, who: str | None
) -> dict[str, Any]:
    made: dict[str, Any] = {"channel": channel, "form": form, "metric": metric, "score": score}
    made["comment"] = comment
    if who is not None:
        made["respondent"] = who
    return made


def make_people(registry: Registry) -> None:
    people = People(registry.db)
    for name, (levels, where) in GROUPS.items():
        people.create_group(name, levels, [where])
    for name, email in EMAILS.items():
        people.create_user(email, [MEMBERSHIP[name]], PASSWORD)


def start_loop(data: Path, **settings: Any) -> Loop:
    """A gateway of project ``shop`` with its people, before any feedback."""
    site, server = make_project(data)
    registry = Registry(data)
    make_people(registry)
    gateway = start_gateway(
        data,
        site,
        server,
        key_rate=1e6,
        key_burst=1e6,
        address_rate=1e6,
        address_burst=1e6,
        **settings,
    )
    return Loop(gateway, registry)


def post(loop: Loop, *events: dict[str, Any]) -> None:
    answer = loop.gateway.post(list(events))
    assert answer.status_code == 202 and answer.json()["rejected"] == [], answer.text


def count_items(loop: Loop) -> int:
    async def read(conn: AsyncConnection) -> int:
        return len((await conn.execute(select(tables.followups.c.id))).all())

    return loop.registry.db.run(read)


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    made = start_loop(tmp_path_factory.mktemp("followups"))
    try:
        post(made, *(event(*d) for d in DETRACTORS))
        post(made, event("web", "checkout", "nps", 9, "Great in the end.", "r-1"))
        eventually(lambda: count_items(made) == len(DETRACTORS) or None, "the items")
        yield made
    finally:
        made.gateway.stop()
        made.registry.close()


def ids_shown(page: str) -> list[str]:
    return re.findall(r'<article class="followup[^"]*" data-id="(fu_\w+)"', page)


def sla_shown(page: str) -> dict[str, str]:
    """The SLA figure's numbers, as the page's ``#sla`` carries them."""
    found = re.search(r'<section aria-labelledby="sla-title" id="sla"([^>]*)>', page)
    assert found, "no SLA figure"
    return dict(re.findall(r'data-(\w+)="([^"]*)"', found[1]))


def page_of(client: httpx.Client, path: str, **params: Any) -> str:
    """A page that must answer 200; ``params`` join the query ``path`` may have."""
    answer = client.get(path, params=params or None)  # an empty dict would drop path's query
    assert answer.status_code == 200, answer.text
    return answer.text


def _ms(moment: str) -> int:
    return int(datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp() * 1000)


# --- the list ---------------------------------------------------------------------------------


def test_the_list_shows_what_the_api_lists_a_page_at_a_time(loop: Loop) -> None:
    listed = loop.items()
    assert len(listed) == len(DETRACTORS)
    with login(loop.url, EMAILS["owner"]) as client:
        seen: list[str] = []
        texts: list[str] = []
        url: str | None = "/app/shop/followups"
        pages = 0
        while url and pages < 5:
            text = page_of(client, url)
            texts.append(text)
            shown = ids_shown(text)
            assert 0 < len(shown) <= PAGE_SIZE
            seen += shown
            pages += 1
            older = re.search(r'<a href="([^"]+)" id="older"', text)
            url = html.unescape(older[1]) if older else None
        assert pages == 2 and seen == [item["id"] for item in listed]

        web = next(i for i in listed if i["channel"] == "web")
        # On the page that lists it: the feed reads the channels in turns, so which items are
        # newest depends on how the rounds fell.
        holding = next(t for t in texts if f'data-id="{web["id"]}"' in t)
        card = holding.split(f'data-id="{web["id"]}"')[1].split("</article>")[0]
        assert 'class="score" title="NPS">3<' in card
        assert "Checkout failed twice on my phone." in card
        assert ">Web<" in card and ">checkout<" in card and ">New<" in card
        assert 'Assignee: <span class="assignee">Nobody</span>' in card
        assert "Due in 1 d 23 h" in card  # made moments ago, due in 48 h
        assert f'href="/app/shop/followups/{web["id"]}"' in card
        assert 'name="id" value="' + web["id"] in card


def test_views_channels_and_statuses_narrow_the_list_as_the_api_does(loop: Loop) -> None:
    with login(loop.url, EMAILS["owner"]) as client:
        for params in (
            {"channel": "app"},
            {"view": "unassigned", "channel": "kiosk"},
            {"view": "overdue"},
            {"status": "new", "channel": "web"},
        ):
            text = page_of(client, "/app/shop/followups", **params)
            expected = [i["id"] for i in loop.items(**params)][:PAGE_SIZE]
            assert ids_shown(text) == expected, params
        mine = page_of(client, "/app/shop/followups", view="mine")
        assert ids_shown(mine) == [] and "No follow-ups here." in mine
        assert 'aria-current="page">Mine<' in mine


def test_bad_parameters_get_a_page_naming_the_parameter(loop: Loop) -> None:
    with login(loop.url, EMAILS["owner"]) as client:
        cases = {
            "/app/shop/followups?view=later": "view must be one of all, mine, unassigned, overdue",
            "/app/shop/followups?status=done": "status must be one of new, assigned",
            "/app/shop/followups?step=month": "step must be one of day, week",
            "/app/shop/followups?channel=fax": "channel &#39;fax&#39; is not one of this project",
            "/app/shop/followups?cursor=bogus!": "cursor is not valid",
            "/app/shop/followups?colour=red": "unknown query parameter &#39;colour&#39;",
        }
        for path, said in cases.items():
            answer = client.get(path)
            assert answer.status_code == 400, (path, answer.text)
            assert said in answer.text, (path, answer.text)
            assert answer.headers["content-type"].startswith("text/html")
        missing = client.get("/app/shop/followups/fu_00000000000000000000000000")
        assert missing.status_code == 404 and "Nothing here" in missing.text


def test_the_sla_figure_is_the_apis_answer(loop: Loop) -> None:
    with login(loop.url, EMAILS["owner"]) as client:
        for step in ("day", "week"):
            text = page_of(client, "/app/shop/followups", step=step)
            api = loop.sla(step=step)
            shown = sla_shown(text)
            overall = api["overall"]
            assert int(shown["items"]) == overall["items"] == len(DETRACTORS)
            assert [int(shown[k]) for k in ("met", "missed", "pending")] == [
                overall["met"],
                overall["missed"],
                overall["pending"],
            ]
            expected = "" if overall["share"] is None else str(overall["share"])
            assert shown["share"] == expected
            rows = re.findall(r'<tr data-start="([^"]+)" data-items="(\d+)"', text)
            assert rows == [(p["start"], str(p["items"])) for p in api["periods"]]
            assert len(rows) == (7 if step == "day" else 8)
            teams = re.findall(r'<tr data-team="([^"]+)" data-items="(\d+)"', text)
            assert teams == [(name, str(f["items"])) for name, f in api["teams"].items()]


def test_items_are_assigned_together_all_or_none(loop: Loop) -> None:
    kiosk = [i["id"] for i in loop.items(channel="kiosk")][:3]
    with login(loop.url, EMAILS["owner"]) as client:
        text = page_of(client, "/app/shop/followups", channel="kiosk")
        back = html.unescape(form_token(text, "back"))
        fields: dict[str, Any] = {"csrf": form_token(text), "back": back, "id": kiosk[:2]}

        done = client.post("/app/shop/followups?channel=kiosk", data={**fields, "action": "me"})
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/app/shop/followups?channel=kiosk&done=me"
        after = page_of(client, done.headers["location"])
        assert 'role="status" id="notice">Assigned to you.' in after
        mine = {i["id"]: i for i in loop.items(view="mine")}
        assert set(kiosk[:2]) <= set(mine)
        assert all(mine[i]["status"] == "assigned" for i in kiosk[:2])

        # One item the person can't see spoils the lot: nothing changes.
        forged = {**fields, "id": [kiosk[2], "fu_00000000000000000000000000"], "action": "me"}
        refused = client.post("/app/shop/followups", data=forged)
        assert refused.status_code == 404 and "no such follow-up" in refused.text
        assert kiosk[2] not in {i["id"] for i in loop.items(view="mine")}

        to_ana = {**fields, "id": [kiosk[2]], "action": "assign", "assignee": EMAILS["ana"]}
        refused = client.post("/app/shop/followups", data=to_ana)  # ana's scope is the app
        assert refused.status_code == 422, refused.text
        assert "can&#39;t see the follow-up inbox" in refused.text
        assert 'role="alert"' in refused.text and ids_shown(refused.text)  # the list, again

        nothing = client.post("/app/shop/followups", data={**fields, "id": [], "action": "me"})
        assert nothing.status_code == 422 and "tick at least one item" in nothing.text
        no_token = client.post("/app/shop/followups", data={**fields, "csrf": "", "action": "me"})
        assert no_token.status_code == 403 and "CSRF token" in no_token.text

        back_to_nobody = {**fields, "action": "unassign"}
        assert client.post("/app/shop/followups", data=back_to_nobody).status_code == 303
        again = {i["id"]: i for i in loop.items(channel="kiosk")}
        assert all(again[i]["assignee"] is None for i in kiosk[:2])
        assert all(again[i]["status"] == "new" for i in kiosk[:2])


# --- one item ---------------------------------------------------------------------------------


def test_an_item_is_worked_through_to_its_resolution(loop: Loop) -> None:
    (web,) = loop.items(channel="web")
    path = f"/app/shop/followups/{web['id']}"
    with login(loop.url, EMAILS["owner"]) as client:
        text = page_of(client, path)
        assert 'id="item"' in text and "Checkout failed twice on my phone." in text
        assert "Great in the end." in text  # the respondent's other feedback
        assert "التطبيق بطيء جدا" in text  # ... on another channel too
        csrf = form_token(text)

        def send(action: str, **fields: str) -> httpx.Response:
            return client.post(path, data={"csrf": csrf, "action": action, **fields})

        assigned = send("assign", assignee=EMAILS["owner"].upper())
        assert assigned.status_code == 303 and assigned.headers["location"] == f"{path}?done=assign"
        text = page_of(client, assigned.headers["location"])
        assert 'id="notice">Assigned.' in text and f'id="assignee">{EMAILS["owner"]}<' in text
        assert '<option value="in_progress">In progress</option>' in text
        assert "Resolved" not in text.split('id="end-form"')[1].split("</form>")[0]

        early = send("end", status="resolved", resolution="Called them back.")
        assert early.status_code == 409, early.text
        assert "an item &#39;assigned&#39; can&#39;t become &#39;resolved&#39;" in early.text
        assert "Called them back.</textarea>" in early.text  # kept for the next try

        assert send("note", text="Rang twice, no answer yet.").status_code == 303
        assert send("tags", tags="phone, checkout،  phone ").status_code == 303
        assert send("status", status="in_progress").status_code == 303
        bare = send("end", status="resolved", resolution="  ")
        assert bare.status_code == 422 and "resolution is required" in bare.text
        done = send("end", status="resolved", resolution="Refunded the second charge.")
        assert done.status_code == 303, done.text

        text = page_of(client, done.headers["location"])
        assert 'id="notice">The item was finished.' in text
        assert 'data-status="resolved"' in text and "Finished: " in text
        assert 'id="resolution" dir="auto">Refunded the second charge.<' in text
        assert '<option value="in_progress">In progress</option>' in text  # it may be reopened
        assert 'id="end-form"' not in text
        history = text.split('id="history"')[1].split("</ol>")[0]
        kinds = re.findall(r"<strong>([^<]+)</strong>", history)
        assert kinds == [
            "Created by a rule",
            "Assignee changed",
            "Status changed",  # new → assigned, with the assignment
            "Note",
            "Tags changed",
            "Status changed",
            "Status changed",
        ]
        assert history.count(f'<span class="actor">{EMAILS["owner"]}</span>') == 6
        assert "<bdi>Nobody</bdi> → <bdi>" + EMAILS["owner"] in history
        assert "<bdi>In progress</bdi> → <bdi>Resolved</bdi>" in history
        assert "Rang twice, no answer yet." in history
        assert "<bdi>phone</bdi>, <bdi>checkout</bdi>" in history

    item = next(i for i in loop.items() if i["id"] == web["id"])
    assert item["status"] == "resolved" and item["tags"] == ["phone", "checkout"]
    assert item["resolution"] == "Refunded the second charge."
    assert item["first_action"] is not None


def test_refused_forms_get_a_4xx_page_never_a_5xx(loop: Loop) -> None:
    item = loop.items(channel="kiosk")[5]
    assert item["status"] == "new"
    path = f"/app/shop/followups/{item['id']}"
    with login(loop.url, EMAILS["owner"]) as client:
        csrf = form_token(page_of(client, path))
        cases = [
            ({"action": "launch"}, 400, "action must be one of"),
            ({"action": "status", "status": "done"}, 422, "status must be one of"),
            ({"action": "status", "status": "resolved"}, 409, "an item &#39;new&#39; can&#39;t"),
            ({"action": "assign", "assignee": ""}, 422, "assignee: give the email address"),
            ({"action": "assign", "assignee": "who@nowhere"}, 422, "is not an active user"),
            ({"action": "note", "text": " "}, 422, "text must be 1-5000 characters"),
            ({"action": "tags", "tags": "x" * 65}, 422, "tags: each must be 1-64"),
        ]
        for fields, status, said in cases:
            answer = client.post(path, data={"csrf": csrf, **fields})
            assert answer.status_code == status, (fields, answer.text)
            assert said in answer.text and 'role="alert"' in answer.text, (fields, answer.text)
        as_json = client.post(path, json={"csrf": csrf, "action": "me"})
        assert as_json.status_code == 415
        huge = client.post(path, data={"csrf": csrf, "action": "note", "text": "x" * 70_000})
        assert huge.status_code == 413
        assert client.post(path, data={"action": "me"}).status_code == 403  # no CSRF token
    assert next(i for i in loop.items() if i["id"] == item["id"]) == item  # nothing changed


def test_an_overdue_item_shows_how_late_it_is_and_its_breach(loop: Loop) -> None:
    item = loop.items(channel="kiosk")[-1]
    loop.make_overdue(item["id"], 2 * HOUR_MS + 5 * 60_000)
    eventually(lambda: loop.row(item["id"]).breached_ms, "the breach scan")
    with login(loop.url, EMAILS["owner"]) as client:
        overdue = page_of(client, "/app/shop/followups", view="overdue")
        assert ids_shown(overdue) == [item["id"]]
        card = overdue.split(f'data-id="{item["id"]}"')[1].split("</article>")[0]
        assert re.search(r'class="clock overdue">Overdue by 2 h [56] min<', card), card
        assert 'class="mark breached">SLA breached<' in card
        text = page_of(client, f"/app/shop/followups/{item['id']}")
        assert "<strong>Past due, escalated</strong>" in text
        assert f"<bdi>{EMAILS['owner']}</bdi>" in text  # escalated to the owners
    figures = loop.sla()["overall"]
    assert figures["missed"] >= 1


# --- access and scope -------------------------------------------------------------------------


def test_a_person_scoped_to_the_app_sees_and_changes_only_its_items(loop: Loop) -> None:
    app_ids = [i["id"] for i in loop.items(channel="app")]
    web_id = loop.items(channel="web")[0]["id"]
    with login(loop.url, EMAILS["ana"]) as client:
        text = page_of(client, "/app/shop/followups")
        assert ids_shown(text) == app_ids
        assert '<option value="web"' not in text and '<option value="app"' in text
        assert int(sla_shown(text)["items"]) == len(app_ids) == loop.sla("ana")["overall"]["items"]
        assert client.get("/app/shop/followups", params={"channel": "web"}).status_code == 403
        hidden = client.get(f"/app/shop/followups/{web_id}")
        assert hidden.status_code == 404 and "Nothing here" in hidden.text
        csrf = form_token(text)
        posted = client.post(f"/app/shop/followups/{web_id}", data={"csrf": csrf, "action": "me"})
        assert posted.status_code == 404
        bulk = client.post(
            "/app/shop/followups",
            data={"csrf": csrf, "action": "me", "id": [app_ids[0], web_id], "back": ""},
        )
        assert bulk.status_code == 404
        assert all(i["assignee"] is None for i in loop.items("ana"))
        mine = client.post(f"/app/shop/followups/{app_ids[0]}", data={"csrf": csrf, "action": "me"})
        assert mine.status_code == 303
    assert [i["id"] for i in loop.items("ana", view="mine")] == [app_ids[0]]


def test_viewing_needs_the_inbox_and_changing_needs_edit(loop: Loop) -> None:
    item = loop.items(channel="email")[0]
    with login(loop.url, EMAILS["vera"]) as client:
        text = page_of(client, "/app/shop/followups")
        assert ids_shown(text) and 'id="bulk"' not in text and 'name="id"' not in text
        one = page_of(client, f"/app/shop/followups/{item['id']}")
        assert '<form method="post" action="/app/shop/followups/' not in one
        assert "You can look at this, but not change it." in one
        nav = one.split('class="sections"')[1].split("</nav>")[0]
        assert 'href="/app/shop/followups" aria-current="page">Follow-up inbox<' in nav
        refused = client.post(
            f"/app/shop/followups/{item['id']}", data={"csrf": form_token(text), "action": "me"}
        )
        assert refused.status_code == 403 and "Follow-up inbox of project" in refused.text
    with login(loop.url, EMAILS["nils"]) as client:
        overview = page_of(client, "/app/shop/")
        assert "Follow-up inbox" not in overview.split('class="sections"')[1].split("</nav>")[0]
        for path in ("/app/shop/followups", f"/app/shop/followups/{item['id']}"):
            assert client.get(path).status_code == 403
    with httpx.Client(base_url=loop.url, timeout=30) as anonymous:
        away = anonymous.get("/app/shop/followups")
        assert away.status_code == 303
        assert away.headers["location"] == "/app/login?next=%2Fapp%2Fshop%2Ffollowups"


def test_the_pages_speak_arabic_right_to_left(loop: Loop) -> None:
    item = loop.items(channel="app")[-1]
    with login(loop.url, EMAILS["owner"]) as client:
        text = page_of(client, "/app/shop/followups", lang="ar")
        assert '<html lang="ar" dir="rtl">' in text
        assert "صندوق المتابعة" in text and "المتابعة ضمن المهلة" in text
        assert "يستحق خلال ١ يوم ٢٣ ساعة" in text  # Arabic digits
        assert 'href="/app/shop/followups?view=mine&amp;lang=ar"' in text
        one = page_of(client, f"/app/shop/followups/{item['id']}", lang="ar")
        assert 'action="/app/shop/followups/' + item["id"] + '?lang=ar"' in one
        assert "أنشأتها قاعدة" in one
        moved = client.post(
            f"/app/shop/followups/{item['id']}?lang=ar",
            data={"csrf": form_token(one), "action": "status", "status": "in_progress"},
        )
        assert moved.headers["location"].endswith("?done=status&lang=ar")
        after = page_of(client, moved.headers["location"])
        assert "<bdi>جديد</bdi> ← <bdi>قيد المعالجة</bdi>" in after


def test_what_respondents_and_people_wrote_is_shown_as_text(loop: Loop) -> None:
    item = loop.items(channel="email")[0]
    path = f"/app/shop/followups/{item['id']}"
    with login(loop.url, EMAILS["owner"]) as client:
        csrf = form_token(page_of(client, path))
        assert (
            client.post(path, data={"csrf": csrf, "action": "note", "text": HOSTILE}).status_code
            == 303
        )
        for raw in (page_of(client, "/app/shop/followups", channel="email"), page_of(client, path)):
            assert "<script>alert" not in raw and "</script> &" not in raw
            shown = sum(text.count(HOSTILE) for text in parse(raw).values)
            assert shown >= 1 and raw.count("\u202e") == shown


# --- the API of the SLA figure -----------------------------------------------------------------


def test_the_sla_route_counts_a_fresh_projects_items_exactly(tmp_path: Path) -> None:
    loop = start_loop(tmp_path)
    try:
        post(
            loop,
            event("web", "checkout", "nps", 2, "Slow.", "a"),
            event("app", "x", "nps", 1, "Bad.", "b"),
        )
        eventually(lambda: count_items(loop) == 2 or None, "the items")
        web, app = (loop.items(channel=c)[0] for c in ("web", "app"))
        with login(loop.url, EMAILS["owner"]) as client:
            path = f"/app/shop/followups/{web['id']}"
            csrf = form_token(page_of(client, path))
            assert client.post(path, data={"csrf": csrf, "action": "me"}).status_code == 303
            answer = client.get("/v1/followups/sla", params={"project": "shop"})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            weekly = client.get("/v1/followups/sla", params={"project": "shop", "step": "week"})
            start = datetime.fromtimestamp(_ms(web["created"]) // 1000 - 3600, UTC)
            given = {"project": "shop", "from": start.isoformat(), "to": body["to"]}
            windowed = client.get("/v1/followups/sla", params=given).json()
        acted = loop.row(web["id"])
        wait = acted.first_action_ms - acted.created_ms
        now = _ms(body["as_of"])
        today = now - now % DAY_MS
        assert body["project"] == "shop" and body["step"] == "day"
        assert _ms(body["to"]) == today + DAY_MS and _ms(body["from"]) == today - 6 * DAY_MS
        assert body["overall"] == {
            "items": 2,
            "met": 1,
            "missed": 0,
            "pending": 1,
            "share": 100.0,
            "acted": 1,
            "median_first_action_ms": wait,
        }
        assert body["teams"] == {
            "owner": {**body["overall"], "items": 1, "pending": 0},
            "unassigned": {
                "items": 1,
                "met": 0,
                "missed": 0,
                "pending": 1,
                "share": None,
                "acted": 0,
                "median_first_action_ms": None,
            },
        }
        assert len(body["periods"]) == 7
        assert [p["items"] for p in body["periods"]] == [0] * 6 + [2]
        assert body["periods"][-1]["start"] == body["periods"][-1]["start"][:10] + "T00:00:00.000Z"
        week = weekly.json()
        assert len(week["periods"]) == 8 and week["overall"] == body["overall"]
        monday = _ms(week["periods"][0]["start"])
        assert datetime.fromtimestamp(monday / 1000, UTC).weekday() == 0 and monday % DAY_MS == 0
        assert windowed["overall"] == body["overall"]
        assert _ms(windowed["from"]) == int(start.timestamp() * 1000)
        assert len(windowed["periods"]) == -(
            -(_ms(body["to"]) - int(start.timestamp() * 1000)) // DAY_MS
        )
        assert loop.sla("ana")["overall"]["items"] == 1  # ana sees the app's item only
        assert [i["id"] for i in loop.items("ana")] == [app["id"]]
    finally:
        loop.gateway.stop()
        loop.registry.close()


def test_the_sla_route_refuses_bad_parameters_and_keys(loop: Loop) -> None:
    with login(loop.url, EMAILS["owner"]) as client:
        cases = [
            ({"step": "month"}, 400, "step must be one of day, week"),
            ({"from": "2026-11-23"}, 400, "from must carry a time zone"),
            ({"to": "yesterday"}, 400, "to must be an RFC 3339 time"),
            (
                {"from": "2026-11-23T00:00:00Z", "to": "2026-11-22T00:00:00Z"},
                400,
                "to must be after from",
            ),
            ({"from": "2000-01-01T00:00:00Z"}, 400, "step cuts the window into"),
            ({"colour": "red"}, 400, "unknown query parameter 'colour'"),
            ({"channel": "app"}, 400, "unknown query parameter 'channel'"),
        ]
        for params, status, said in cases:
            answer = client.get("/v1/followups/sla", params={"project": "shop", **params})
            assert answer.status_code == status, (params, answer.text)
            assert said in answer.json()["error"], (params, answer.text)
    with loop.gateway.client(loop.gateway.server_key) as keyed:
        assert keyed.get("/v1/followups/sla", params={"project": "shop"}).status_code == 403
    with loop.gateway.client() as anonymous:
        assert anonymous.get("/v1/followups/sla", params={"project": "shop"}).status_code == 401
    with login(loop.url, EMAILS["nils"]) as client:
        assert client.get("/v1/followups/sla", params={"project": "shop"}).status_code == 403
