"""Alerts on aggregates, over events written through real stores (SQLite files, PostgreSQL) and
a clock the tests hold: a score drop beyond the previous period's interval fires once per
period, one within it never does, a volume spike fires at its factor and ``min_count``; and the
alert rules' checks and storage."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

import voxloop_core
from tests.gateway.pg import pg_url
from voxloop_core import DAY_MS, HOUR_MS, Policy
from voxloop_gateway import migrate
from voxloop_gateway.control import tables
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.errors import ApiError
from voxloop_gateway.followups.alerts import (
    AlertRule,
    check_aggregates,
    check_alert_rule,
    create_alert_rule,
    delete_alert_rule,
    get_alert_rule,
    list_alert_rules,
    period_bounds,
    score_dropped,
    update_alert_rule,
    volume_spiked,
)
from voxloop_gateway.reading.stats import bucket
from voxloop_gateway.service import Service
from voxloop_gateway.settings import Settings

__all__ = ["pg_url"]  # a fixture

#: 2026-11-23T00:00:00Z, a Monday.
MONDAY_MS = 1_795_392_000_000
_ids = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A data directory, or a fresh PostgreSQL database, migrated, with projects shop and
    cafe."""
    store = "sqlite" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    made = Settings(data_dir=tmp_path, store=store, public_url="https://cx.example.com")
    if made.postgres:
        migrate.migrate(made)
    registry = Registry(tmp_path, store)
    try:
        registry.create_project("shop", ["kiosk"])
        registry.create_project("cafe")
    finally:
        registry.close()
    yield made


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    opened = Service(settings)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def answers(
    service: Service,
    ts_ms: int,
    scores: list[int],
    *,
    channel: str = "web",
    form: str = "checkout",
    metric: str = "nps",
    project: str = "shop",
) -> None:
    """Store responses with ``scores``, made at ``ts_ms``, as the ingest route does."""
    events = [
        {
            "channel": channel,
            "form": form,
            "metric": metric,
            "score": score,
            "id": f"e{next(_ids)}",
            "ts": ts_ms,
        }
        for score in scores
    ]
    found = service.registry.project_of(project)
    assert found is not None
    decoded, rejected = voxloop_core.decode_batch(msgspec.json.encode({"events": events}))
    assert rejected == []
    records, refused = voxloop_core.validate(
        decoded, Policy(channels=found.channels), ts_ms, found.secret
    )
    assert refused == []
    written = await (await service.store(channel)).write(project, records)
    assert written.stored == len(scores)


async def rule(service: Service, now_ms: int = MONDAY_MS - 7 * DAY_MS, **fields: Any) -> AlertRule:
    base = {"name": "Checkout NPS", "kind": "score_drop", "metric": "nps"}
    checked = check_alert_rule({**base, **fields})
    return await create_alert_rule(service.registry.db, "shop", checked, now_ms)


async def rows(service: Service, table: Table, *order: str) -> list[dict[str, Any]]:
    async def read(conn: AsyncConnection) -> list[dict[str, Any]]:
        query = select(table).order_by(*(table.c[name] for name in order))
        return [dict(row._mapping) for row in await conn.execute(query)]

    return await service.registry.db.arun(read)


def nps(promoters: int, passives: int, detractors: int) -> list[int]:
    return [10] * promoters + [8] * passives + [3] * detractors


# --- the conditions, as plain functions -----------------------------------------------------


def test_periods_are_utc_hours_days_and_weeks_from_monday() -> None:
    wednesday = MONDAY_MS + 2 * DAY_MS + 13 * HOUR_MS + 1234
    assert period_bounds(wednesday, "hour") == (
        wednesday - 1234 - HOUR_MS,
        wednesday - 1234,
        wednesday - 1234 + HOUR_MS,
    )
    day = MONDAY_MS + 2 * DAY_MS
    assert period_bounds(wednesday, "day") == (day - DAY_MS, day, day + DAY_MS)
    assert period_bounds(wednesday, "week") == (
        MONDAY_MS - 7 * DAY_MS,
        MONDAY_MS,
        MONDAY_MS + 7 * DAY_MS,
    )
    assert period_bounds(MONDAY_MS, "week")[1] == MONDAY_MS
    assert period_bounds(MONDAY_MS - 1, "week")[1] == MONDAY_MS - 7 * DAY_MS


@pytest.mark.parametrize(
    ("previous", "current", "min_count", "expected"),
    [
        (nps(14, 4, 2), nps(5, 3, 12), 10, True),  # 60 [23.6, 80.8] -> -35
        (nps(14, 4, 2), nps(5, 3, 2), 10, False),  # 60 [23.6, 80.8] -> 30: within
        (nps(14, 4, 2), nps(5, 3, 12), 21, False),  # too few this period
        (nps(14, 4, 2), [], 1, False),  # nothing this period
        ([], nps(0, 0, 20), 1, False),  # nothing before: no interval to fall out of
    ],
    ids=["beyond", "within", "below-min-count", "empty-now", "empty-before"],
)
def test_score_dropped(
    previous: list[int], current: list[int], min_count: int, expected: bool
) -> None:
    def of(scores: list[int]) -> Any:
        histogram = [0] * 11
        for score in scores:
            histogram[score] += 1
        return bucket("nps", histogram)

    assert score_dropped(of(previous), of(current), min_count) is expected


@pytest.mark.parametrize(
    ("previous", "current", "factor", "min_count", "expected"),
    [
        (2, 6, 3.0, 6, True),
        (2, 5, 3.0, 5, False),
        (2, 6, 3.0, 7, False),
        (0, 6, 3.0, 6, True),
        (0, 5, 3.0, 6, False),
        (10, 15, 1.5, 1, True),
        (10, 14, 1.5, 1, False),
    ],
    ids=["at-factor", "below-factor", "below-min", "from-silence", "silence-few", "x1.5", "x1.4"],
)
def test_volume_spiked(
    previous: int, current: int, factor: float, min_count: int, expected: bool
) -> None:
    assert volume_spiked(previous, current, factor, min_count) is expected


# --- score drops through the stores ---------------------------------------------------------


async def test_a_score_drop_fires_once_per_period_and_not_within_the_interval(
    service: Service,
) -> None:
    watched = await rule(
        service, channel="web", form="checkout", recipients=["ops@example.com", "Lead@Example.com"]
    )
    await rule(service, name="Needs many", channel="web", form="checkout", min_count=50,
               recipients=["ops@example.com"])  # fmt: skip
    await rule(service, name="Off", enabled=False, recipients=["ops@example.com"])
    yesterday, today = MONDAY_MS - DAY_MS, MONDAY_MS
    await answers(service, yesterday + 10 * HOUR_MS, nps(14, 4, 2))  # 60 [23.6, 80.8]
    # not the watched form, channel or project: none of these counts
    await answers(service, today + HOUR_MS, [0] * 20, form="pricing")
    await answers(service, today + HOUR_MS, [0] * 20, channel="app")
    await answers(service, today + HOUR_MS, [0] * 20, project="cafe")
    await answers(service, today + HOUR_MS, nps(5, 3, 2))  # 30: within yesterday's interval
    assert await check_aggregates(service, today + 12 * HOUR_MS) == 0
    assert await rows(service, tables.alerts_fired, "period_ms") == []

    await answers(service, today + 2 * HOUR_MS, [0] * 10)  # now 5, 3, 12: -35
    now = today + 12 * HOUR_MS
    assert await check_aggregates(service, now) == 1
    assert await check_aggregates(service, now) == 0
    assert await check_aggregates(service, now + 11 * HOUR_MS) == 0  # still today

    (fired,) = await rows(service, tables.alerts_fired, "period_ms")
    assert (fired["condition"], fired["period_ms"], fired["project"], fired["at_ms"]) == (
        f"alert_rule:{watched.id}",
        today,
        "shop",
        now,
    )
    data = {
        "rule": watched.id,
        "name": "Checkout NPS",
        "kind": "score_drop",
        "project": "shop",
        "metric": "nps",
        "channel": "web",
        "form": "checkout",
        "period": "day",
        "period_start": "2026-11-23T00:00:00.000Z",
        "factor": None,
        "min_count": 10,
        "previous": {"count": 20, "score": 60.0, "low": 23.6, "high": 80.8},
        "current": {"count": 20, "score": -35.0, "low": -65.0, "high": 4.1},
    }
    assert json.loads(fired["detail"]) == data
    (message,) = await rows(service, tables.outbox, "created_ms")
    assert (message["project"], message["event_type"], message["created_ms"]) == (
        "shop",
        "alert.fired",
        now,
    )
    assert json.loads(message["payload"]) == {
        "type": "alert.fired",
        "timestamp": "2026-11-23T12:00:00.000Z",
        "data": data,
    }
    emails = await rows(service, tables.email_outbox, "recipient")
    assert [e["recipient"] for e in emails] == ["lead@example.com", "ops@example.com"]
    for email in emails:
        assert (email["project"], email["state"], email["next_ms"]) == ("shop", "pending", now)
        assert email["subject"] == "[shop] Alert “Checkout NPS”: NPS dropped to -35.0"
        for line in (
            "NPS dropped beyond its 95% interval against the previous day.\n",
            "Period starting: 23 Nov 2026, 00:00\nScore: -35.0\nResponses: 20\n",
            "Period starting: 22 Nov 2026, 00:00\nScore: 60.0\nResponses: 20\n",
            "Open the dashboard: https://cx.example.com/app/shop/?metric=nps&lang=en\n",
        ):
            assert line in email["text"]
        assert '<html lang="en" dir="ltr">' in email["html"]

    # the next day, all detractors: -100, below today's interval [-65.0, 4.1]: a new period
    tomorrow = today + DAY_MS
    await answers(service, tomorrow + HOUR_MS, [0] * 20)
    assert await check_aggregates(service, tomorrow + 2 * HOUR_MS) == 1
    fired_rows = await rows(service, tables.alerts_fired, "period_ms")
    assert [(f["condition"], f["period_ms"]) for f in fired_rows] == [
        (f"alert_rule:{watched.id}", today),
        (f"alert_rule:{watched.id}", tomorrow),
    ]
    assert len(await rows(service, tables.outbox, "id")) == 2
    assert len(await rows(service, tables.email_outbox, "id")) == 4


async def test_checks_racing_fire_one_alert(service: Service) -> None:
    await rule(service, recipients=["ops@example.com"])
    await answers(service, MONDAY_MS - 20 * HOUR_MS, nps(14, 4, 2))
    await answers(service, MONDAY_MS + HOUR_MS, [0] * 20)
    now = MONDAY_MS + 2 * HOUR_MS
    fired = await asyncio.gather(*(check_aggregates(service, now) for _ in range(4)))
    assert sum(fired) == 1
    assert len(await rows(service, tables.alerts_fired, "period_ms")) == 1
    assert len(await rows(service, tables.outbox, "id")) == 1
    assert len(await rows(service, tables.email_outbox, "id")) == 1


async def test_a_weekly_rule_compares_whole_weeks(service: Service) -> None:
    watched = await rule(service, period="week", min_count=5, recipients=["ops@example.com"])
    last_week = MONDAY_MS - 7 * DAY_MS
    # spread over last week's days and channels: the project's score, every form
    await answers(service, last_week + HOUR_MS, nps(7, 2, 1))
    await answers(service, last_week + 6 * DAY_MS + 23 * HOUR_MS, nps(7, 2, 1), channel="app")
    await answers(service, MONDAY_MS - 8 * DAY_MS, [0] * 50)  # the week before: not read
    await answers(service, MONDAY_MS + 3 * DAY_MS, [0] * 3, form="other")
    assert await check_aggregates(service, MONDAY_MS + 4 * DAY_MS) == 0  # 3 < min_count
    await answers(service, MONDAY_MS + 4 * DAY_MS, [0] * 2, channel="email")
    assert await check_aggregates(service, MONDAY_MS + 6 * DAY_MS) == 1
    (fired,) = await rows(service, tables.alerts_fired, "period_ms")
    assert fired["period_ms"] == MONDAY_MS
    detail = json.loads(fired["detail"])
    assert detail["previous"]["count"] == 20
    assert detail["previous"]["score"] == 60.0
    assert detail["current"] == {"count": 5, "score": -100.0, "low": -100.0, "high": -17.4}
    assert detail["rule"] == watched.id


# --- volume spikes through the stores -------------------------------------------------------


async def test_a_volume_spike_fires_at_its_factor_and_min_count(service: Service) -> None:
    spike = {"kind": "volume_spike", "metric": "csat", "period": "hour", "min_count": 6}
    to = {"recipients": ["ops@example.com"]}
    app = await rule(service, name="App", channel="app", factor=3, **spike, **to)
    everywhere = await rule(service, name="Everywhere", factor=3, **spike, **to)
    await rule(service, name="Four times", channel="app", factor=4, **spike, **to)
    hour = MONDAY_MS + 10 * HOUR_MS
    csat = {"metric": "csat", "form": "onboarding"}
    await answers(service, hour - HOUR_MS, [5, 4], channel="app", **csat)
    await answers(service, hour - 1, [1, 2], channel="web", **csat)
    await answers(service, hour - HOUR_MS, [1] * 9, channel="app", metric="nps")  # not csat
    await answers(service, hour, [3] * 5, channel="app", **csat)
    assert await check_aggregates(service, hour + 30 * 60_000) == 0  # 5 < min_count 6

    await answers(service, hour + 59 * 60_000, [3], channel="app", **csat)  # 6 = 3 x 2
    assert await check_aggregates(service, hour + HOUR_MS - 1) == 1
    fired = await rows(service, tables.alerts_fired, "condition")
    assert [(f["condition"], f["period_ms"]) for f in fired] == [(f"alert_rule:{app.id}", hour)]
    detail = json.loads(fired[0]["detail"])
    assert (detail["previous"]["count"], detail["current"]["count"]) == (2, 6)

    await answers(service, hour + 1, [5] * 6, channel="web", **csat)  # 12 = 3 x 4, everywhere
    assert await check_aggregates(service, hour + HOUR_MS - 1) == 1
    assert await check_aggregates(service, hour + HOUR_MS - 1) == 0
    fired = await rows(service, tables.alerts_fired, "at_ms")
    assert [f["condition"] for f in fired] == [
        f"alert_rule:{app.id}",
        f"alert_rule:{everywhere.id}",
    ]
    first, second = await rows(service, tables.email_outbox, "created_ms")
    assert first["subject"] == "[shop] Alert “App”: 6 responses"
    assert "Period starting: 23 Nov 2026, 10:00\nScore: 0.0\nResponses: 6\n" in first["text"]
    assert "Period starting: 23 Nov 2026, 09:00\nScore: 100.0\nResponses: 2\n" in first["text"]
    assert second["subject"] == "[shop] Alert “Everywhere”: 12 responses"
    # the next hour is quiet: nothing
    assert await check_aggregates(service, hour + HOUR_MS + 1) == 0


async def test_a_spike_from_silence_needs_min_count_only(service: Service) -> None:
    await rule(
        service,
        kind="volume_spike",
        channel="kiosk",
        factor=2.5,
        min_count=3,
        period="day",
        recipients=["ops@example.com"],
    )
    await answers(service, MONDAY_MS + HOUR_MS, [9, 9], channel="kiosk")
    assert await check_aggregates(service, MONDAY_MS + 2 * HOUR_MS) == 0
    await answers(service, MONDAY_MS + 2 * HOUR_MS, [9], channel="kiosk")
    assert await check_aggregates(service, MONDAY_MS + 3 * HOUR_MS) == 1


async def test_a_rule_on_a_channel_without_a_store_reads_nothing_and_makes_none(
    service: Service, settings: Settings
) -> None:
    fields = {"kind": "volume_spike", "channel": "nowhere", "factor": 2, "min_count": 1}
    checked = check_alert_rule({**GOOD, **fields})  # not checked against the project's channels
    await create_alert_rule(service.registry.db, "shop", checked, MONDAY_MS)
    assert await check_aggregates(service, MONDAY_MS) == 0
    assert not await service.has_store("nowhere")
    if not settings.postgres:
        assert not (settings.data_dir / "stores" / "nowhere.sqlite3").exists()


# --- the rules: checks and storage ----------------------------------------------------------

GOOD = {
    "name": "Spike",
    "kind": "volume_spike",
    "metric": "csat",
    "factor": 2,
    "recipients": ["ops@example.com"],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metric": "stars"}, "metric must be one of nps, csat, ces, likert, thumbs; got 'stars'"),
        ({"factor": 1}, "factor must be a number above 1 for a volume_spike; got 1.0"),
        ({"factor": 0.5}, "factor must be a number above 1"),
        ({"factor": None}, "factor must be a number above 1 for a volume_spike; got None"),
        ({"kind": "score_drop"}, "factor is for volume_spike rules only"),
        ({"kind": "storm"}, "kind must be one of score_drop, volume_spike; got 'storm'"),
        ({"period": "month"}, "period must be one of hour, day, week; got 'month'"),
        ({"min_count": 0}, "min_count must be at least 1; got 0"),
        ({"recipients": []}, "recipients must list at least one email address"),
        ({"recipients": ["ops"]}, "recipients: 'ops' is not an email address"),
        ({"recipients": ["a@b.c", "x y@b.c"]}, "recipients: 'x y@b.c' is not an email address"),
        (
            {"recipients": "ops@example.com"},
            "alert rule: Expected `array`, got `str` - at `$.recipients`",
        ),
        ({"min_count": "5"}, "alert rule: Expected `int`, got `str` - at `$.min_count`"),
        ({"colour": "red"}, "alert rule: Object contains unknown field `colour`"),
        ({"name": "  "}, "name must be 1-200 characters"),
        ({"channel": "Web!"}, "channel 'Web!' must be"),
        ({"channel": "pos"}, "channel 'pos' is not one of the project's: app, email, web"),
        ({"form": "a b"}, "form 'a b' must be"),
    ],
    ids=lambda value: None if isinstance(value, str) else "-".join(value),
)
def test_an_alert_rule_that_cant_work_is_a_422_naming_the_field(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiError) as refused:
        check_alert_rule({**GOOD, **change}, channels={"web", "app", "email"})
    assert refused.value.status == 422
    assert refused.value.message.startswith(message), refused.value.message


def test_a_missing_field_is_named() -> None:
    with pytest.raises(ApiError) as refused:
        check_alert_rule({"name": "x", "kind": "score_drop", "metric": "nps"})
    assert refused.value.message == ("alert rule: Object missing required field `recipients`")


def test_a_good_rule_is_tidied() -> None:
    checked = check_alert_rule(
        {**GOOD, "name": " Spike ", "recipients": ["B@x.io", "b@x.io", "a@x.io"]}
    )
    assert checked.name == "Spike"
    assert checked.recipients == ("b@x.io", "a@x.io")
    assert (checked.period, checked.min_count, checked.enabled) == ("day", 10, True)
    assert checked.factor == 2.0


async def test_alert_rules_are_stored_changed_and_deleted(service: Service) -> None:
    db = service.registry.db
    first = await rule(service, recipients=["ops@example.com"], now_ms=MONDAY_MS)
    second = await create_alert_rule(db, "shop", check_alert_rule(GOOD), MONDAY_MS + 1)
    await create_alert_rule(db, "cafe", check_alert_rule(GOOD), MONDAY_MS)
    assert [r.id for r in await list_alert_rules(db, "shop")] == [first.id, second.id]
    assert await get_alert_rule(db, "shop", second.id) == second
    assert await get_alert_rule(db, "cafe", second.id) is None
    changed = check_alert_rule({**GOOD, "factor": 4.5, "channel": "app", "enabled": False})
    updated = await update_alert_rule(db, "shop", second.id, changed)
    assert updated is not None
    assert (updated.factor, updated.channel, updated.enabled) == (4.5, "app", False)
    assert updated.created_ms == MONDAY_MS + 1
    assert await update_alert_rule(db, "cafe", second.id, changed) is None
    assert not await delete_alert_rule(db, "cafe", second.id)
    assert await delete_alert_rule(db, "shop", second.id)
    assert not await delete_alert_rule(db, "shop", second.id)
    assert [r.id for r in await list_alert_rules(db, "shop")] == [first.id]
