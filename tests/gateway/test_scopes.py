"""Every read enforces the asker's scope (OWASP API1): a read key or a person scoped to channel
``app`` gets nothing of ``web``, by page, by guessed ref, by respondent, by export and through
the stats' filters; a key narrowed to a form sees only that form; a read key never writes.
On SQLite files and on PostgreSQL, over real HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from voxloop import new_id
from voxloop_core import METRIC_RANGES
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
