"""Every read enforces the asker's scope (OWASP API1): a read key or a person scoped to channel
``app`` gets nothing of ``web``, by page, by guessed ref, by respondent, by export and through
the stats' filters; a key narrowed to a form sees only that form; a person in two groups that
scope one project differently sees each channel's own forms only; a read key never writes.
On SQLite files and on PostgreSQL, over real HTTP."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from typing import Any

import httpx
import pytest

from voxloop import new_id
from voxloop_core import METRIC_RANGES
from voxloop_gateway.control.access import Access, Denied, Grant, Level, Scope, Section
from voxloop_gateway.control.people import People
from voxloop_gateway.control.registry import Registry

from .conftest import ORIGIN
from .readers import PASSWORD, Reading, reading, sqlite_reading

__all__ = ["reading", "sqlite_reading"]  # fixtures

WHO = ["read-key", "person"]


def scoped(reading: Reading, who: str) -> dict[str, str]:
    """How the reader of channel ``app`` asks: its read key, or its session."""
    return {"key": reading.app_key} if who == "read-key" else {"session": reading.app_person}


@pytest.mark.parametrize("who", WHO)
def test_pages_hold_only_the_scoped_channel(reading: Reading, who: str) -> None:
    mine = scoped(reading, who)
    found = reading.walk(limit=50, **mine)
    assert found and {item["channel"] for item in found} == {"app"}
    assert found == reading.walk(limit=500, channel="app")
    assert reading.walk(**mine, channel="app", q="cepat") == reading.walk(channel="app", q="cepat")
    for channels in ("web", ["app", "web"], "email", "fax"):
        answer = reading.get("/v1/responses", **mine, channel=channels)
        assert answer.status_code == 403, answer.text
        assert "outside your access" in answer.json()["error"]
    assert "'web'" in reading.get("/v1/responses", **mine, channel="web").json()["error"]


@pytest.mark.parametrize("who", WHO)
def test_a_guessed_ref_of_another_channel_is_404_like_nothing(reading: Reading, who: str) -> None:
    mine = scoped(reading, who)
    everything = reading.walk(limit=500)
    nothing = reading.get("/v1/responses/web." + "0" * 32, **mine)
    assert nothing.status_code == 404
    for item in [i for i in everything if i["channel"] != "app"][:20]:
        answer = reading.get(f"/v1/responses/{item['ref']}", **mine)
        assert (answer.status_code, answer.json()) == (404, nothing.json()), item["ref"]
        # The same ref with the channel swapped names nothing either.
        swapped = "app." + item["ref"].split(".")[1]
        if swapped not in {i["ref"] for i in everything}:
            assert reading.get(f"/v1/responses/{swapped}", **mine).status_code == 404
    ours = next(i for i in everything if i["channel"] == "app" and i["respondent"])
    detail = reading.get(f"/v1/responses/{ours['ref']}", **mine).json()
    assert detail["response"] == ours
    full = reading.get(f"/v1/responses/{ours['ref']}").json()
    assert {i["channel"] for i in full["others"]} > {"app"}  # the respondent said more
    assert detail["others"] == [i for i in full["others"] if i["channel"] == "app"]


@pytest.mark.parametrize("who", WHO)
def test_the_respondent_view_holds_only_the_scoped_channel(reading: Reading, who: str) -> None:
    path = "/v1/respondents/user-1/responses"
    theirs = reading.walk(path, limit=500)
    assert {i["channel"] for i in theirs} == {"web", "app", "email", "kiosk"}
    assert reading.walk(path, **scoped(reading, who)) == [
        i for i in theirs if i["channel"] == "app"
    ]
    refused = reading.get(path, **scoped(reading, who), channel="web")
    assert refused.status_code == 403


@pytest.mark.parametrize("who", WHO)
def test_exports_hold_only_the_scoped_channel(reading: Reading, who: str) -> None:
    mine = scoped(reading, who)
    for kind in ("csv", "ndjson"):
        path = f"/v1/exports/responses.{kind}"
        full_app = reading.get(path, channel="app")
        answer = reading.get(path, **mine)
        assert answer.status_code == 200, answer.text
        assert answer.content == full_app.content
        assert b"web." not in answer.content and b"app." in answer.content
        assert reading.get(path, **mine, channel="web").status_code == 403


def test_a_person_without_the_exports_section_can_read_but_not_export(reading: Reading) -> None:
    person = {"session": reading.no_export_person}
    assert reading.get("/v1/responses", **person).status_code == 200
    refused = reading.get("/v1/exports/responses.csv", **person)
    assert (refused.status_code, refused.json()) == (403, {"error": "Exports needs view access"})
    named = reading.get("/v1/exports/responses.ndjson", **person, project="shop")
    assert named.status_code == 403
    assert named.json()["error"] == "Exports of project 'shop' needs view access"


@pytest.mark.parametrize("who", WHO)
def test_stats_count_only_the_scoped_channel(reading: Reading, who: str) -> None:
    mine = scoped(reading, who)
    for metric in METRIC_RANGES:
        if metric == "likert":
            continue
        answer = reading.get("/v1/stats", **mine, metric=metric, interval="hour")
        assert answer.status_code == 200, answer.text
        everything = reading.get("/v1/stats", metric=metric).json()
        assert (
            answer.json()
            == reading.get("/v1/stats", metric=metric, channel="app", interval="hour").json()
        )
        assert 0 < answer.json()["total"]["count"] < everything["total"]["count"]
    refused = reading.get("/v1/stats", **mine, metric="nps", channel="web")
    assert refused.status_code == 403 and "'web'" in refused.json()["error"]


def test_a_key_narrowed_to_a_form_sees_only_that_form(reading: Reading) -> None:
    key = {"key": reading.checkout_key}
    found = reading.walk(**key)
    assert found == reading.walk(form="checkout")
    assert {i["channel"] for i in found} == {"web", "app", "email", "kiosk"}
    assert reading.get("/v1/responses", **key, form="search").status_code == 403
    search = next(i for i in reading.walk() if i["form"] == "search")
    assert reading.get(f"/v1/responses/{search['ref']}", **key).status_code == 404
    mine = reading.get("/v1/stats", **key, metric="nps").json()
    assert mine == reading.get("/v1/stats", metric="nps", form="checkout").json()


@pytest.mark.parametrize("who", WHO)
def test_a_cursor_of_a_wider_reader_does_not_carry_over(reading: Reading, who: str) -> None:
    wide = reading.get("/v1/responses", limit=5).json()["next"]
    answer = reading.get("/v1/responses", **scoped(reading, who), limit=5, cursor=wide)
    assert answer.status_code == 400
    assert "cursor is not valid" in answer.json()["error"]


def test_a_read_key_cannot_write_and_nothing_is_stored(reading: Reading) -> None:
    form = f"written-{new_id()[:8]}"
    event = {"id": new_id(), "channel": "app", "form": form, "metric": "nps", "score": 9}
    for key in (reading.app_key, reading.checkout_key):
        with httpx.Client(base_url=reading.gateway.url, timeout=30) as client:
            answer = client.post(
                "/v1/events", json={"events": [event]}, headers={"Authorization": f"Bearer {key}"}
            )
            in_url = client.post(f"/v1/events?key={key}", json={"events": [event]})
        assert answer.status_code == 403
        assert answer.json()["error"] == (
            "a read key (rk_…) only reads; use a site or server key to write"
        )
        assert in_url.status_code == 401
    assert reading.walk(form=form) == []


def test_who_may_read_at_all(sqlite_reading: Reading) -> None:
    reading = sqlite_reading
    gateway = reading.gateway
    registry = Registry(gateway.data_dir)
    try:
        revoked, _ = registry.create_key("shop", "read")
        registry.revoke_key(revoked[:11])
        people = People(registry.db)
        fresh, _ = asyncio.run(people.login("ana@example.com", PASSWORD, "127.0.0.1"))
        asyncio.run(people.logout(fresh))
    finally:
        registry.close()
    path = "/v1/responses"
    cases: list[tuple[str, dict[str, str], dict[str, Any], int, str]] = [
        ("nothing", {}, {}, 401, "missing credentials"),
        ("site-key", {"Authorization": f"Bearer {gateway.site_key}"}, {}, 403, "site key"),
        ("unknown-key", {"Authorization": "Bearer rk_" + "x" * 40}, {}, 401, "unknown"),
        ("revoked-key", {"Authorization": f"Bearer {revoked}"}, {}, 401, "revoked"),
        ("basic", {"Authorization": f"Basic {reading.app_key}"}, {}, 401, "Bearer"),
        ("read-key-in-url", {}, {"key": reading.app_key}, 401, "never sent in the URL"),
        ("server-key-in-url", {}, {"key": reading.server}, 401, "never sent in the URL"),
        (
            "read-key-in-a-browser",
            {"Authorization": f"Bearer {reading.app_key}", "Origin": ORIGIN},
            {},
            403,
            "never be used from a browser",
        ),
        (
            "server-key-in-a-browser",
            {"Authorization": f"Bearer {reading.server}", "Origin": ORIGIN},
            {},
            403,
            "never be used from a browser",
        ),
        ("bad-session", {"Cookie": "voxloop_session=forged"}, {}, 401, "log in again"),
        ("closed-session", {"Cookie": f"voxloop_session={fresh}"}, {}, 401, "log in again"),
        (
            "owner-of-two-projects",
            {"Cookie": f"voxloop_session={reading.owner}"},
            {},
            400,
            "project is required: you can see other, shop",
        ),
        (
            "owner-of-no-such-project",
            {"Cookie": f"voxloop_session={reading.owner}"},
            {"project": "nope"},
            404,
            "no project 'nope'",
        ),
        (
            "person-elsewhere",
            {"Cookie": f"voxloop_session={reading.app_person}"},
            {"project": "other"},
            403,
            "of project 'other'",
        ),
        (
            "person-of-no-such-project",
            {"Cookie": f"voxloop_session={reading.app_person}"},
            {"project": "nope"},
            403,
            "of project 'nope'",
        ),
    ]
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        for name, headers, params, status, said in cases:
            answer = client.get(path, headers=headers, params=params)
            assert answer.status_code == status, (name, answer.text)
            assert said in answer.json()["error"], (name, answer.text)
            assert (
                reading.app_key[11:] not in answer.text and reading.server[11:] not in answer.text
            )
        owner = client.get(
            path,
            params={"project": "shop", "limit": 500},
            headers={"Cookie": f"voxloop_session={reading.owner}"},
        )
        assert owner.status_code == 200
        assert owner.json()["responses"] == reading.walk(limit=500)


# --- two groups that scope one project differently ----------------------------------------

READS: dict[Section, Level] = {"dashboard": "view", "responses": "view", "exports": "view"}
SHOP = frozenset({"web", "app", "email", "kiosk"})
#: Metrics the readers' responses are of (no likert).
SEEDED = [m for m in METRIC_RANGES if m != "likert"]


def grant(group: str, channels: set[str] | None, forms: set[str] | None = None) -> Grant:
    scope = Scope(
        "shop",
        None if channels is None else frozenset(channels),
        None if forms is None else frozenset(forms),
    )
    return Grant(group, READS, (scope,))


def test_visible_forms_are_per_channel_across_overlapping_grants() -> None:
    checkout = grant("app-checkout", {"app"}, {"checkout"})
    web = grant("web-team", {"web"})
    both = Access("user:ines@example.com", (checkout, web))
    assert both.visible("responses", "shop", SHOP) == {"app": {"checkout"}, "web": None}
    assert list(both.visible("responses", "shop", SHOP)) == ["app", "web"]

    search = grant("search-team", {"app", "kiosk"}, {"search"})
    three = Access("user:ines@example.com", (checkout, web, search))
    assert three.visible("dashboard", "shop", SHOP) == {
        "app": {"checkout", "search"},
        "kiosk": {"search"},
        "web": None,
    }
    every_app = Access("user:ines@example.com", (checkout, grant("app-team", {"app"})))
    assert every_app.visible("exports", "shop", SHOP) == {"app": None}
    whole = Access("user:ines@example.com", (checkout, grant("everyone", None, {"search"})))
    assert whole.visible("exports", "shop", SHOP) == {
        "app": {"checkout", "search"},
        "email": {"search"},
        "kiosk": {"search"},
        "web": {"search"},
    }
    # A grant without the section widens nothing there.
    viewer = Grant("web-viewers", {"dashboard": "view"}, (Scope("shop", frozenset({"web"})),))
    partial = Access("user:ines@example.com", (checkout, viewer))
    assert partial.visible("responses", "shop", SHOP) == {"app": {"checkout"}}
    assert partial.visible("dashboard", "shop", SHOP) == {"app": {"checkout"}, "web": None}
    with pytest.raises(Denied):
        partial.visible("responses", "cafe", SHOP)


def overlapping(reading: Reading) -> dict[str, str]:
    """How the person of ``app``'s checkout and all of ``web`` asks: their session."""
    return {"session": reading.overlap_person}


def theirs(item: dict[str, Any]) -> bool:
    """Whether that person may see ``item``: ``app``'s checkout answers, ``web``'s all."""
    return item["channel"] == "web" or (item["channel"] == "app" and item["form"] == "checkout")


def hidden(reading: Reading) -> list[dict[str, Any]]:
    """``app``'s answers of forms other than checkout: what the person must never see."""
    found = [i for i in reading.walk(limit=500, channel="app") if i["form"] != "checkout"]
    assert {i["form"] for i in found} == {"search", "support-ticket"}
    return found


def test_overlapping_groups_page_each_channel_with_its_own_forms(reading: Reading) -> None:
    mine = overlapping(reading)
    everything = reading.walk(limit=500)
    hidden(reading)
    found = reading.walk(limit=7, **mine)
    assert found == [i for i in everything if theirs(i)]
    assert {(i["channel"], i["form"]) for i in found} == {
        ("app", "checkout"),
        ("web", "checkout"),
        ("web", "search"),
        ("web", "support-ticket"),
    }
    assert reading.walk(**mine, form="search") == reading.walk(channel="web", form="search")
    assert reading.walk(**mine, form="checkout") == reading.walk(
        channel=["app", "web"], form="checkout"
    )
    assert reading.walk(**mine, channel="app") == reading.walk(channel="app", form="checkout")
    # A form reads in the channels that show it, and is refused where none of those read does.
    assert reading.walk(**mine, form=["checkout", "search"]) == [
        i for i in everything if theirs(i) and i["form"] in ("checkout", "search")
    ]
    for params, named in [
        ({"channel": "app", "form": "search"}, "'search'"),
        ({"channel": "app", "form": ["checkout", "search"]}, "'search'"),
        ({"channel": "email"}, "'email'"),
    ]:
        refused = reading.get("/v1/responses", **mine, **params)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"].endswith(f"{named} is outside your access")


def test_overlapping_groups_get_404_for_a_ref_of_another_form(reading: Reading) -> None:
    mine = overlapping(reading)
    everything = reading.walk(limit=500)
    nothing = reading.get("/v1/responses/app." + "0" * 32, **mine)
    assert nothing.status_code == 404
    for item in hidden(reading)[:10]:
        answer = reading.get(f"/v1/responses/{item['ref']}", **mine)
        assert (answer.status_code, answer.json()) == (404, nothing.json()), item["ref"]
    for item in [i for i in everything if theirs(i)][:10]:
        answer = reading.get(f"/v1/responses/{item['ref']}", **mine)
        assert answer.status_code == 200 and answer.json()["response"] == item
    ours = next(
        i
        for i in everything
        if i["channel"] == "app" and i["form"] == "checkout" and i["respondent"]
    )
    full = reading.get(f"/v1/responses/{ours['ref']}").json()
    assert any(i["channel"] == "app" and i["form"] != "checkout" for i in full["others"])
    detail = reading.get(f"/v1/responses/{ours['ref']}", **mine).json()
    assert detail["response"] == ours
    assert detail["others"] == [i for i in full["others"] if theirs(i)]


def test_overlapping_groups_see_a_respondent_in_each_channels_own_forms(reading: Reading) -> None:
    path = "/v1/respondents/user-1/responses"
    theirs_all = reading.walk(path, limit=500)
    assert any(i["channel"] == "app" and i["form"] != "checkout" for i in theirs_all)
    seen = reading.walk(path, limit=5, **overlapping(reading))
    assert seen == [i for i in theirs_all if theirs(i)]
    assert {i["channel"] for i in seen} == {"app", "web"}


def test_overlapping_groups_export_each_channels_own_forms(reading: Reading) -> None:
    mine = overlapping(reading)
    expected = [i for i in reading.walk(limit=500) if theirs(i)]
    ndjson = reading.get("/v1/exports/responses.ndjson", **mine)
    assert ndjson.status_code == 200, ndjson.text
    assert [json.loads(line) for line in ndjson.content.decode().splitlines()] == expected
    exported = reading.get("/v1/exports/responses.csv", **mine)
    assert exported.status_code == 200, exported.text
    rows = list(csv.DictReader(io.StringIO(exported.content.decode(), newline="")))
    assert [row["ref"] for row in rows] == [i["ref"] for i in expected]
    refused = reading.get("/v1/exports/responses.csv", **mine, channel="app", form="search")
    assert refused.status_code == 403


def added(*answers: dict[str, Any]) -> tuple[int, list[int]]:
    """The count and the histogram of several ``/v1/stats`` answers' totals, added up."""
    histograms = [a["total"]["histogram"] for a in answers]
    return sum(a["total"]["count"] for a in answers), [
        sum(n) for n in zip(*histograms, strict=True)
    ]


def test_overlapping_groups_count_each_channels_own_forms(reading: Reading) -> None:
    mine = overlapping(reading)
    left_out = 0
    for metric in SEEDED:
        answer = reading.get("/v1/stats", **mine, metric=metric)
        assert answer.status_code == 200, answer.text
        app = reading.get("/v1/stats", metric=metric, channel="app", form="checkout").json()
        web = reading.get("/v1/stats", metric=metric, channel="web").json()
        total = answer.json()["total"]
        assert (total["count"], total["histogram"]) == added(app, web)
        whole_app = reading.get("/v1/stats", metric=metric, channel="app").json()
        left_out += whole_app["total"]["count"] - app["total"]["count"]
        for asked, same in [
            ({"form": "search"}, {"channel": "web", "form": "search"}),
            ({"form": "checkout"}, {"channel": ["app", "web"], "form": "checkout"}),
            ({"channel": "app"}, {"channel": "app", "form": "checkout"}),
        ]:
            got = reading.get("/v1/stats", **mine, metric=metric, interval="hour", **asked)
            want = reading.get("/v1/stats", metric=metric, interval="hour", **same)
            assert got.json() == want.json(), asked
    assert left_out > 0  # app answers of other forms exist, and none was counted
    refused = reading.get("/v1/stats", **mine, metric="nps", channel="app", form="search")
    assert refused.status_code == 403 and "'search'" in refused.json()["error"]


def test_overlapping_groups_overview_counts_each_channels_own_forms(reading: Reading) -> None:
    page = reading.get("/app/shop/", **overlapping(reading), period="all", metric="nps")
    assert page.status_code == 200, page.text
    headlines = dict(re.findall(r'data-metric="(\w+)"[^>]*?data-count="(\d+)"', page.text))
    for metric in SEEDED:
        app = reading.get("/v1/stats", metric=metric, channel="app", form="checkout").json()
        web = reading.get("/v1/stats", metric=metric, channel="web").json()
        assert int(headlines[metric]) == added(app, web)[0], metric
    tables = {
        kind: dict(re.findall(r'<tr data-name="([^"]+)"[^>]*?data-count="(\d+)"', html))
        for kind, html in re.findall(r'data-kind="([^"]+)"(.*?)</table>', page.text, re.S)
    }
    app = reading.get("/v1/stats", metric="nps", channel="app", form="checkout").json()
    web = reading.get("/v1/stats", metric="nps", channel="web").json()
    assert tables["channel-nps"] == {
        "app": str(app["total"]["count"]),
        "web": str(web["total"]["count"]),
    }
    assert set(tables["form"]) == {"checkout", "search", "support-ticket"}
    for form, count in tables["form"].items():
        channels = ["app", "web"] if form == "checkout" else ["web"]
        parts = [reading.get("/v1/stats", metric="nps", channel=c, form=form) for c in channels]
        assert int(count) == added(*(part.json() for part in parts))[0], form
