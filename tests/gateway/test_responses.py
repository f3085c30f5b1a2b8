"""``GET /v1/responses``, ``/v1/responses/{ref}`` and ``/v1/respondents/{id}/responses`` on a
real gateway over HTTP, on SQLite files and on PostgreSQL: what was sent comes back, every filter
keeps what its rule says, cursors walk every row once while events arrive, and bad input is a 4xx
naming the parameter."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest

from voxloop import new_id

from .conftest import Gateway
from .readers import NOW_MS, Reading, meta_text

Item = dict[str, Any]


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def order(item: Item) -> tuple[int, str, str]:
    """The place of an item in the read order: its time, its key, its channel."""
    return ms(item["ts"]), item["ref"].split(".")[1], item["channel"]


def test_the_pages_hold_every_response_once_newest_first(reading: Reading) -> None:
    found = reading.walk(limit=7)
    assert found == sorted(found, key=order, reverse=True)
    assert len({item["ref"] for item in found}) == len(found)
    assert len(found) == len(reading.sent) + reading.extra["email_clicks"]
    by_id = {(item["channel"], item["id"]): item for item in found}
    for event in reading.sent:
        item = by_id[(event["channel"], event["id"])]
        comment = event.get("comment")
        assert item["comment"] == (
            None if comment is None else unicodedata.normalize("NFC", comment)
        )
        for name in ("form", "metric", "score", "locale", "tags", "meta"):
            assert item[name] == event.get(name), name
        assert ms(item["ts"]) == event["ts"]
        assert item["ts"].endswith("Z") and item["received"].endswith("Z")
        assert ms(item["received"]) >= NOW_MS - 60_000
        assert item["ref"] == f"{event['channel']}.{item['ref'].split('.')[1]}"
        assert (item["respondent"] is None) == ("respondent" not in event)
        assert item["held"] is None
    email = [item for item in found if item["meta"] and "campaign" in item["meta"]]
    assert sorted(item["held"] or "" for item in email) == [""] + ["late"] + ["quarantined"] * 11
    assert [item["counts"] for item in email if item["held"]] == [False] * 12
    # The same id on two channels is two responses, side by side in the order.
    twin = reading.sent[-5]
    pair = [item for item in found if item["id"] == twin["id"]]
    assert len(pair) == 2 and pair[0]["ts"] == pair[1]["ts"]
    assert abs(found.index(pair[0]) - found.index(pair[1])) == 1


def test_a_page_is_at_most_limit_long_and_says_where_the_next_starts(reading: Reading) -> None:
    first = reading.get("/v1/responses").json()
    assert len(first["responses"]) == 50 and isinstance(first["next"], str)
    last = reading.get("/v1/responses", limit=500).json()
    assert last["next"] is None and len(last["responses"]) == len(reading.walk())
    exact = reading.get("/v1/responses", limit=len(last["responses"])).json()
    assert exact["next"] is None  # no empty last page


def _has(value: Any, *wanted: Any) -> bool:
    return value in wanted


FILTERS: list[tuple[str, dict[str, Any], Callable[[Item], bool]]] = [
    ("channel", {"channel": "app"}, lambda r: r["channel"] == "app"),
    ("two-channels", {"channel": ["web", "kiosk"]}, lambda r: _has(r["channel"], "web", "kiosk")),
    ("form", {"form": "search"}, lambda r: r["form"] == "search"),
    ("two-metrics", {"metric": ["nps", "csat"]}, lambda r: _has(r["metric"], "nps", "csat")),
    (
        "score-range-of-one-metric",
        {"metric": "nps", "score_min": 7, "score_max": 9},
        lambda r: r["metric"] == "nps" and 7 <= r["score"] <= 9,
    ),
    ("score-min", {"score_min": 4}, lambda r: r["score"] >= 4),
    ("has-comment", {"has_comment": "true"}, lambda r: r["comment"] is not None),
    ("no-comment", {"has_comment": "false"}, lambda r: r["comment"] is None),
    ("search-case", {"q": "CHECKOUT"}, lambda r: "checkout" in (r["comment"] or "").lower()),
    ("search-arabic", {"q": "سريعاً"}, lambda r: "سريعاً" in (r["comment"] or "")),
    ("search-persian", {"q": "راحت"}, lambda r: "راحت" in (r["comment"] or "")),
    ("search-indonesian", {"q": "cepat"}, lambda r: "cepat" in (r["comment"] or "")),
    ("search-japanese", {"q": "速かった"}, lambda r: "速かった" in (r["comment"] or "")),
    ("search-chinese", {"q": "客服"}, lambda r: "客服" in (r["comment"] or "")),
    ("search-two-words", {"q": "ut, th"}, lambda r: "ut, th" in (r["comment"] or "")),
    ("tag", {"tag": "vip"}, lambda r: "vip" in (r["tags"] or [])),
    (
        "two-tags",
        {"tag": ["mobile", "beta"]},
        lambda r: {"mobile", "beta"} <= set(r["tags"] or []),
    ),
    ("meta-text", {"meta.plan": "pro"}, lambda r: (r["meta"] or {}).get("plan") == "pro"),
    (
        "meta-number",
        {"meta.seats": "3"},
        lambda r: "seats" in (r["meta"] or {}) and meta_text(r["meta"]["seats"]) == "3",
    ),
    (
        "meta-bool",
        {"meta.trial": "true"},
        lambda r: "trial" in (r["meta"] or {}) and meta_text(r["meta"]["trial"]) == "true",
    ),
    (
        "locale-range",
        {"locale": "fa"},
        lambda r: (r["locale"] or "").lower() in ("fa", "fa-ir"),
    ),
    ("locale-exact", {"locale": "zh-Hans"}, lambda r: r["locale"] == "zh-Hans"),
    ("quarantined", {"held": "quarantined"}, lambda r: r["held"] == "quarantined"),
    ("late", {"held": "late"}, lambda r: r["held"] == "late"),
    ("any-held", {"held": "any"}, lambda r: r["held"] is not None),
    ("none-held", {"held": "none"}, lambda r: r["held"] is None),
    (
        "combined",
        {"channel": "web", "metric": "nps", "has_comment": "true", "meta.plan": "free"},
        lambda r: (
            r["channel"] == "web"
            and r["metric"] == "nps"
            and r["comment"] is not None
            and (r["meta"] or {}).get("plan") == "free"
        ),
    ),
]


@pytest.mark.parametrize(("params", "rule"), [f[1:] for f in FILTERS], ids=[f[0] for f in FILTERS])
def test_each_filter_keeps_what_its_rule_says(
    reading: Reading, params: dict[str, Any], rule: Callable[[Item], bool]
) -> None:
    everything = reading.walk(limit=500)
    expected = [item for item in everything if rule(item)]
    assert 0 < len(expected) < len(everything)  # the case can tell a filter from none
    assert reading.walk(limit=9, **params) == expected


def test_a_window_of_time_keeps_from_inclusive_to_exclusive(reading: Reading) -> None:
    everything = reading.walk(limit=500)
    start, end = NOW_MS - 20 * 61_000, NOW_MS - 5 * 61_000
    expected = [item for item in everything if start <= ms(item["ts"]) < end]
    assert 0 < len(expected) < len(everything)
    assert reading.walk(**{"from": iso(start), "to": iso(end)}) == expected
    zoned = datetime.fromtimestamp(start / 1000, UTC).astimezone().isoformat()
    assert reading.walk(**{"from": zoned, "to": iso(end)}) == expected


def test_a_cursor_walk_neither_repeats_nor_skips_while_events_arrive(gateway: Gateway) -> None:
    base = int(datetime.now(UTC).timestamp() * 1000) - 120_000

    def event(ts: int, channel: str) -> dict[str, Any]:
        return {
            "id": new_id(),
            "channel": channel,
            "form": "f",
            "metric": "thumbs",
            "score": 1,
            "ts": ts,
        }

    first = [event(base - i * 1000 // 2, ("web", "app")[i % 2]) for i in range(30)]
    assert gateway.post(first).status_code == 202
    seen: list[str] = []
    cursor = None
    with gateway.client(gateway.server_key) as client:
        for step in range(20):
            params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
            page = client.get("/v1/responses", params=params).json()
            seen += [item["id"] for item in page["responses"]]
            # Between two pages, a newer answer arrives, and one older than every page so far.
            later = [event(base + 1000 + step, "web"), event(base - 14 * 1000, "kiosk")]
            assert gateway.post(later).status_code == 202
            cursor = page["next"]
            if cursor is None:
                break
    assert len(seen) == len(set(seen))  # nothing twice
    assert {e["id"] for e in first} <= set(seen)  # nothing stored before the walk skipped


def test_a_response_shows_its_vote_history_and_the_respondents_others(reading: Reading) -> None:
    everything = reading.walk(limit=500)
    later = next(item for item in everything if item["comment"] == "vote 1 of order 0")
    answer = reading.get(f"/v1/responses/{later['ref']}")
    assert answer.status_code == 200, answer.text
    detail = answer.json()
    assert detail["response"] == later
    assert later["revised"] and later["counts"]
    assert [(v["score"], v["counts"], v["revised"]) for v in detail["history"]] == [
        (2, False, True),
        (9, True, True),
    ]
    assert detail["history"][1] == later
    theirs = [i for i in everything if i["respondent"] == later["respondent"] and i != later]
    assert detail["others"] == theirs[:50]
    assert {item["channel"] for item in detail["others"]} == {"web", "app", "email", "kiosk"}
    alone = next(item for item in everything if item["respondent"] is None)
    plain = reading.get(f"/v1/responses/{alone['ref']}").json()
    assert plain == {"response": alone, "history": [], "others": []}


@pytest.mark.parametrize(
    "ref",
    [
        "web." + "0" * 32,
        "fax." + "1" * 32,
        "web.xyz",
        "web",
        "web." + "A" * 32,
    ],
    ids=["unknown-key", "unknown-channel", "short-key", "no-key", "upper-case"],
)
def test_a_ref_that_names_nothing_is_404(sqlite_reading: Reading, ref: str) -> None:
    answer = sqlite_reading.get(f"/v1/responses/{ref}")
    assert answer.status_code == 404
    assert answer.json() == {"error": "no such response"}


def test_a_respondent_is_looked_up_by_the_id_the_client_knows(reading: Reading) -> None:
    everything = reading.walk(limit=500)
    path = "/v1/respondents/user-1/responses"
    theirs = reading.walk(path, limit=6)
    assert theirs == sorted(theirs, key=order)  # oldest first
    sent = [e for e in reading.sent if e.get("respondent") == "user-1"]
    assert len(theirs) == len(sent) + 2  # and two email clicks
    assert {item["channel"] for item in theirs} == {"web", "app", "email", "kiosk"}
    pseudonym = theirs[0]["respondent"]
    assert pseudonym != "user-1" and len(pseudonym) == 32
    assert sorted(theirs, key=order) == sorted(
        [item for item in everything if item["respondent"] == pseudonym], key=order
    )
    assert reading.walk(path, channel="app") == [i for i in theirs if i["channel"] == "app"]
    assert reading.walk("/v1/respondents/nobody/responses") == []


BAD: list[tuple[str, Callable[[str], tuple[str, dict[str, Any]]], int, str]] = [
    ("unknown", lambda c: ("/v1/responses", {"colour": "red"}), 400, "'colour'"),
    ("bad-cursor", lambda c: ("/v1/responses", {"cursor": "not-a-cursor"}), 400, "cursor"),
    ("tampered-cursor", lambda c: ("/v1/responses", {"cursor": _flip(c)}), 400, "cursor"),
    (
        "cursor-of-another-query",
        lambda c: ("/v1/responses", {"cursor": c, "channel": "app"}),
        400,
        "cursor is not valid",
    ),
    ("huge-cursor", lambda c: ("/v1/responses", {"cursor": c * 9}), 400, "cursor"),
    ("huge-limit", lambda c: ("/v1/responses", {"limit": "100000"}), 400, "limit must be"),
    ("zero-limit", lambda c: ("/v1/responses", {"limit": "0"}), 400, "limit must be"),
    ("word-limit", lambda c: ("/v1/responses", {"limit": "ten"}), 400, "limit must be"),
    ("limit-twice", lambda c: ("/v1/responses", {"limit": ["5", "6"]}), 400, "limit may be"),
    ("from-yesterday", lambda c: ("/v1/responses", {"from": "yesterday"}), 400, "from must"),
    (
        "from-without-zone",
        lambda c: ("/v1/responses", {"from": "2026-01-01T10:00:00"}),
        400,
        "from must carry a time zone",
    ),
    (
        "to-before-from",
        lambda c: (
            "/v1/responses",
            {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        ),
        400,
        "to must be after from",
    ),
    ("score-min-99", lambda c: ("/v1/responses", {"score_min": "99"}), 400, "score_min must"),
    (
        "score-min-off-scale",
        lambda c: ("/v1/responses", {"metric": "csat", "score_min": "0"}),
        400,
        "score_min must be an integer 1..5 (the csat scale)",
    ),
    (
        "score-max-below-min",
        lambda c: ("/v1/responses", {"score_min": "5", "score_max": "3"}),
        400,
        "score_max must be at least score_min",
    ),
    ("empty-meta-key", lambda c: ("/v1/responses", {"meta.": "x"}), 400, "meta.: a meta key"),
    ("long-meta-key", lambda c: ("/v1/responses", {"meta." + "k" * 65: "x"}), 400, "meta key"),
    ("long-meta-value", lambda c: ("/v1/responses", {"meta.plan": "v" * 513}), 400, "meta.plan"),
    ("q-201-chars", lambda c: ("/v1/responses", {"q": "x" * 201}), 400, "q must be 1-200"),
    ("empty-q", lambda c: ("/v1/responses", {"q": ""}), 400, "q must be 1-200"),
    ("nul-in-q", lambda c: ("/v1/responses", {"q": "a\x00b"}), 400, "q must not hold a NUL"),
    ("has-comment-yes", lambda c: ("/v1/responses", {"has_comment": "yes"}), 400, "has_comment"),
    ("held-maybe", lambda c: ("/v1/responses", {"held": "maybe"}), 400, "held must be one of"),
    ("bad-locale", lambda c: ("/v1/responses", {"locale": "en_US"}), 400, "locale must be"),
    ("bad-metric", lambda c: ("/v1/responses", {"metric": "stars"}), 400, "metric must be"),
    ("bad-form", lambda c: ("/v1/responses", {"form": "a b"}), 400, "form 'a b' must be"),
    ("long-tag", lambda c: ("/v1/responses", {"tag": "t" * 65}), 400, "tag must be 1-64"),
    (
        "unknown-channel",
        lambda c: ("/v1/responses", {"channel": "fax"}),
        400,
        "channel 'fax' is not one of this project's",
    ),
    (
        "another-project",
        lambda c: ("/v1/responses", {"project": "other"}),
        403,
        "this key reads project 'shop' only",
    ),
    ("bad-project", lambda c: ("/v1/responses", {"project": "No Such"}), 400, "project must"),
    (
        "long-respondent",
        lambda c: ("/v1/respondents/" + "r" * 129 + "/responses", {}),
        400,
        "respondent must be 1-128 characters",
    ),
    (
        "empty-respondent",
        lambda c: ("/v1/respondents//responses", {}),
        400,
        "respondent must be 1-128 characters",
    ),
    (
        "respondent-unknown-filter",
        lambda c: ("/v1/respondents/user-1/responses", {"sort": "asc"}),
        400,
        "'sort'",
    ),
    ("detail-filter", lambda c: ("/v1/responses/web." + "0" * 32, {"limit": "5"}), 400, "'limit'"),
]


def _flip(cursor: str) -> str:
    """``cursor`` with one character changed."""
    middle = len(cursor) // 2
    return cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :]


@pytest.mark.parametrize(("make", "status", "said"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_a_4xx_naming_the_parameter(
    sqlite_reading: Reading,
    make: Callable[[str], tuple[str, dict[str, Any]]],
    status: int,
    said: str,
) -> None:
    cursor = sqlite_reading.get("/v1/responses", limit=3, channel="web").json()["next"]
    path, params = make(cursor)
    if "cursor" in params and params.get("channel") is None and "not-a" not in params["cursor"]:
        params["channel"] = "web"  # the cursor's own query, but for what the case changes
    answer = sqlite_reading.get(path, **params)
    assert answer.status_code == status, answer.text
    assert said in answer.json()["error"]


def test_a_respondent_id_may_hold_any_character(gateway: Gateway) -> None:
    ids = ["team/ana@example.com", "a b?c#d", "ünï/cødé", "x/../y", "%2F", "line\nbreak\r"]
    events = [
        {
            "id": new_id(),
            "channel": "web",
            "form": "f",
            "metric": "thumbs",
            "score": 1,
            "respondent": who,
        }
        for who in ids
    ]
    assert gateway.post(events).status_code == 202
    with gateway.client(gateway.server_key) as client:
        for who, event in zip(ids, events, strict=True):
            answer = client.get(f"/v1/respondents/{quote(who, safe='')}/responses")
            assert answer.status_code == 200, (who, answer.text)
            assert [item["id"] for item in answer.json()["responses"]] == [event["id"]]
