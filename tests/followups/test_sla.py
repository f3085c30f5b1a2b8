"""The SLA clock on a real SQLite file and a real PostgreSQL, with a clock the tests hold: due
times, breaches marked at their due time and once only (two replicas racing on PostgreSQL),
escalation emails and outbox messages, and the within-SLA share with exact expected values over
items written straight into the ``followups`` table."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.gateway.pg import pg_schema_url
from voxloop_core import DAY_MS, HOUR_MS
from voxloop_gateway.control import schema, tables
from voxloop_gateway.control.access import Level, Scope, Section
from voxloop_gateway.control.db import Database
from voxloop_gateway.control.people import People
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.errors import ApiError, ConfigError
from voxloop_gateway.followups.sla import (
    BREACH_BATCH,
    SlaFigures,
    due_at,
    outcome,
    scan_breaches,
    sla_report,
)
from voxloop_gateway.integrations.messages import breach_email

__all__ = ["pg_schema_url"]  # a fixture

PASSWORD = "correct horse battery staple"
#: 2026-11-23T00:00:00Z, a Monday: the start of the report's window.
WINDOW_MS = 1_795_392_000_000
RULE = "rul_default"
MINUTE_MS = 60_000


class Control:
    """A control plane with projects ``shop`` and ``cafe``, teams and owners, and a rule."""

    def __init__(self, data_dir: Path, where: str) -> None:
        self.data_dir, self.where = data_dir, where
        self.registry = Registry(data_dir, where)
        if where != "sqlite":
            schema.migrate(self.registry.db)
        self.registry.create_project("shop", ["kiosk"])
        self.registry.create_project("cafe")
        self.db = self.registry.db
        people = People(self.db)
        inbox: dict[Section, Level] = {"inbox": "edit"}
        people.create_group("support", inbox, [Scope("shop")])
        people.create_group("sales", inbox, [Scope("shop")])
        self.ids = {
            name: people.create_user(f"{name}@example.com", groups, PASSWORD)[0].id
            for name, groups in {
                "alice": ["support"],
                "bob": ["support", "sales"],
                "carol": ["sales"],
                "olga": ["owner"],
                "omar": ["owner", "support"],
                "dora": ["owner"],
            }.items()
        }
        people.disable_user("dora@example.com")
        self.others: list[Database] = []

    def replica(self) -> Database:
        """Another connection to the same database, as another gateway process has."""
        db = Database(self.data_dir, self.where)
        self.others.append(db)
        return db

    def close(self) -> None:
        for db in self.others:
            db.close()
        self.registry.close()

    async def add(self, table: Table, *rows: dict[str, Any]) -> None:
        async def write(conn: AsyncConnection) -> None:
            await conn.execute(insert(table), list(rows))

        await self.db.arun(write, write=True)

    async def rows(self, table: Table, *order: str) -> list[dict[str, Any]]:
        async def read(conn: AsyncConnection) -> list[dict[str, Any]]:
            query = select(table).order_by(*(table.c[name] for name in order))
            return [dict(row._mapping) for row in await conn.execute(query)]

        return await self.db.arun(read)

    async def rule(self, rule_id: str = RULE, **fields: Any) -> None:
        row = {
            "id": rule_id,
            "project": "shop",
            "name": "Detractors with a comment",
            "kind": "followup",
            "low": True,
            "has_comment": True,
            "sla_hours": 48,
            "escalate_to": None,
            "enabled": True,
            "created_ms": WINDOW_MS - DAY_MS,
        }
        await self.add(tables.rules, {**row, **fields})


@pytest.fixture(params=["sqlite", "postgresql"])
def control(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Control]:
    where = "sqlite" if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    made = Control(tmp_path, where)
    yield made
    made.close()


def item(item_id: str, created_ms: int, due_ms: int | None = None, **fields: Any) -> dict[str, Any]:
    """A follow-up item's row, due 48 h after it was made unless said otherwise."""
    row = {
        "id": item_id,
        "project": "shop",
        "channel": "web",
        "form": "checkout",
        "subject": item_id,
        "ref": f"web.{item_id}",
        "metric": "nps",
        "score": 3,
        "excerpt": "Checkout failed twice.",
        "respondent": None,
        "rule": RULE,
        "status": "new",
        "assignee": None,
        "tags": "[]",
        "resolution": None,
        "created_ms": created_ms,
        "due_ms": due_at(created_ms, 48) if due_ms is None else due_ms,
        "first_action_ms": None,
        "closed_ms": None,
        "breached_ms": None,
        "updated_ms": created_ms,
    }
    return {**row, **fields}


# --- due times and outcomes -----------------------------------------------------------------


def test_due_time_is_the_rules_hours_later_to_the_millisecond() -> None:
    assert due_at(WINDOW_MS + 1, 48) == WINDOW_MS + 1 + 172_800_000
    assert due_at(WINDOW_MS, 1) == WINDOW_MS + 3_600_000
    assert due_at(WINDOW_MS, 0) == WINDOW_MS


DUE = WINDOW_MS + 48 * HOUR_MS


@pytest.mark.parametrize(
    ("first_action", "closed", "now", "expected"),
    [
        (DUE - 1, None, DUE + DAY_MS, "met"),
        (DUE, None, DUE + DAY_MS, "met"),
        (DUE + 1, None, DUE + DAY_MS, "missed"),
        (DUE + 1, DUE + 2, DUE + 2, "missed"),
        (None, None, DUE - 1, "pending"),
        (None, None, DUE, "pending"),
        (None, None, DUE + 1, "missed"),
        (None, DUE - 1, DUE + DAY_MS, "moot"),
        (None, DUE, DUE + DAY_MS, "moot"),
        (None, DUE + 1, DUE + DAY_MS, "missed"),
        (WINDOW_MS, WINDOW_MS + 1, DUE + DAY_MS, "met"),
    ],
    ids=[
        "acted-before-due",
        "acted-at-due",
        "acted-a-ms-late",
        "acted-late-then-closed",
        "not-yet-due",
        "due-this-ms",
        "a-ms-past-due",
        "closed-by-gateway-in-time",
        "closed-by-gateway-at-due",
        "closed-by-gateway-late",
        "acted-and-resolved",
    ],
)
def test_outcome(first_action: int | None, closed: int | None, now: int, expected: str) -> None:
    assert outcome(first_action, DUE, closed, now) == expected


# --- breaches -------------------------------------------------------------------------------


async def test_an_item_is_breached_at_exactly_its_due_time_and_once(control: Control) -> None:
    await control.rule(escalate_to="lead@example.com")
    created = WINDOW_MS + 5 * MINUTE_MS
    due = due_at(created, 48)
    await control.add(
        tables.followups,
        item("fu_open", created),
        item("fu_assigned", created + 1, status="assigned", assignee=control.ids["alice"]),
        item("fu_later", created + 2 * HOUR_MS),
        item("fu_resolved", created - HOUR_MS, status="resolved", closed_ms=created),
        item("fu_closed", created - HOUR_MS, status="closed", closed_ms=created),
        item("fu_marked", created - DAY_MS, status="in_progress", breached_ms=created),
    )
    assert await scan_breaches(control.db, due - 1) == 0
    assert await scan_breaches(control.db, due) == 1
    assert await scan_breaches(control.db, due) == 0
    assert await scan_breaches(control.db, due + 1) == 1  # fu_assigned, due a ms later
    assert await scan_breaches(control.db, due + 2 * HOUR_MS - 1) == 0
    assert await scan_breaches(control.db, due + 2 * HOUR_MS + DAY_MS) == 1
    assert await scan_breaches(control.db, due + 30 * DAY_MS) == 0

    breached = {r["id"]: r["breached_ms"] for r in await control.rows(tables.followups, "id")}
    assert breached == {
        "fu_open": due,
        "fu_assigned": due + 1,
        "fu_later": due + 2 * HOUR_MS + DAY_MS,
        "fu_resolved": None,
        "fu_closed": None,
        "fu_marked": created,  # marked before, never again
    }
    changes = await control.rows(tables.followup_changes, "id")
    assert [(c["followup"], c["at_ms"], c["actor"], c["kind"]) for c in changes] == [
        ("fu_open", due, None, "breached"),
        ("fu_assigned", due + 1, None, "breached"),
        ("fu_later", due + 2 * HOUR_MS + DAY_MS, None, "breached"),
    ]
    assert json.loads(changes[0]["detail"]) == {
        "due_ms": due,
        "escalated_to": ["lead@example.com"],
    }
    assert len(await control.rows(tables.outbox, "created_ms")) == 3
    assert len(await control.rows(tables.email_outbox, "created_ms")) == 3


async def test_the_breach_message_is_in_the_outbox_for_each_subscribed_endpoint(
    control: Control,
) -> None:
    await control.rule()
    await control.add(
        tables.webhook_endpoints,
        *[
            {
                "id": f"ep_{name}",
                "project": project,
                "url": f"https://hooks.example.com/{name}",
                "event_types": json.dumps(types),
                "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "description": name,
                "created_ms": WINDOW_MS,
                "disabled_ms": disabled,
            }
            for name, project, types, disabled in [
                ("breaches", "shop", ["followup.breached"], None),
                ("everything", "shop", ["followup.breached", "alert.fired"], None),
                ("alerts", "shop", ["alert.fired"], None),
                ("disabled", "shop", ["followup.breached"], WINDOW_MS),
                ("cafe", "cafe", ["followup.breached"], None),
            ]
        ],
    )
    created = WINDOW_MS + 90 * MINUTE_MS + 250
    bob = control.ids["bob"]
    await control.add(tables.followups, item("fu_1", created, status="assigned", assignee=bob))
    now = due_at(created, 48) + 7
    assert await scan_breaches(control.db, now) == 1

    (message,) = await control.rows(tables.outbox, "id")
    assert (message["project"], message["event_type"], message["created_ms"]) == (
        "shop",
        "followup.breached",
        now,
    )
    assert json.loads(message["payload"]) == {
        "type": "followup.breached",
        "timestamp": "2026-11-25T01:30:00.257Z",
        "data": {  # the item as /v1/followups shows it, breached
            "id": "fu_1",
            "project": "shop",
            "channel": "web",
            "form": "checkout",
            "subject": "fu_1",
            "ref": "web.fu_1",
            "metric": "nps",
            "score": 3,
            "excerpt": "Checkout failed twice.",
            "respondent": None,
            "rule": RULE,
            "status": "assigned",
            "assignee": {"id": bob, "email": "bob@example.com"},
            "tags": [],
            "resolution": None,
            "created": "2026-11-23T01:30:00.250Z",
            "due": "2026-11-25T01:30:00.250Z",
            "first_action": None,
            "closed": None,
            "breached": "2026-11-25T01:30:00.257Z",
            "updated": "2026-11-25T01:30:00.257Z",
        },
    }
    deliveries = await control.rows(tables.webhook_deliveries, "endpoint")
    assert [(d["message"], d["endpoint"], d["state"], d["next_ms"]) for d in deliveries] == [
        (message["id"], "ep_breaches", "pending", now),
        (message["id"], "ep_everything", "pending", now),
    ]


@pytest.mark.parametrize(
    ("escalate_to", "expected"),
    [
        ("Lead@Example.com", ["lead@example.com"]),
        ("alice", ["alice@example.com"]),
        (None, ["olga@example.com", "omar@example.com"]),
        ("nobody-of-that-id", ["olga@example.com", "omar@example.com"]),
        ("dora", ["olga@example.com", "omar@example.com"]),
    ],
    ids=["an-address", "a-user", "nobody-named", "a-user-gone", "a-user-disabled"],
)
async def test_the_escalation_email_goes_to_the_rules_target(
    control: Control, escalate_to: str | None, expected: list[str]
) -> None:
    target = control.ids.get(escalate_to or "", escalate_to)
    await control.rule(escalate_to=target)
    created = WINDOW_MS + 3 * HOUR_MS
    carol = control.ids["carol"]
    await control.add(
        tables.followups,
        item("fu_1", created, status="in_progress", assignee=carol, excerpt="Rude courier."),
    )
    now = due_at(created, 48) + MINUTE_MS
    assert await scan_breaches(control.db, now) == 1

    emails = await control.rows(tables.email_outbox, "recipient")
    assert [e["recipient"] for e in emails] == expected
    rendered = breach_email(
        "en",
        project="shop",
        item="fu_1",
        rule="Detractors with a comment",
        sla_hours=48,
        channel="web",
        form="checkout",
        metric="nps",
        score=3,
        excerpt="Rude courier.",
        status="in_progress",
        assignee="carol@example.com",
        created_ms=created,
        due_ms=due_at(created, 48),
    )
    for email in emails:
        assert (email["project"], email["state"], email["attempts"]) == ("shop", "pending", 0)
        assert (email["created_ms"], email["next_ms"]) == (now, now)
        assert (email["subject"], email["text"], email["html"]) == rendered
        assert email["subject"] == "[shop] Follow-up overdue: NPS 3 in Web"
        for line in (
            "Nobody acted on this follow-up within 48 hours (rule “Detractors with a comment”).",
            "Opened: 23 Nov 2026, 03:00\nDue: 25 Nov 2026, 03:00\nStatus: In progress\n",
            "Assignee: carol@example.com\n",
            "> Rude courier.\n",
        ):
            assert line in email["text"]
    (change,) = await control.rows(tables.followup_changes, "id")
    assert json.loads(change["detail"])["escalated_to"] == expected


async def test_the_escalation_email_is_in_the_recipients_language_and_links_the_item(
    control: Control,
) -> None:
    alice, bob = control.ids["alice"], control.ids["bob"]
    await control.add(
        tables.digests,
        {"user": alice, "project": "shop", "frequency": "daily", "lang": "fa"},
        {"user": bob, "project": "cafe", "frequency": "daily", "lang": "ar"},  # another project
    )
    await control.rule(escalate_to=alice)
    await control.rule("rul_bob", escalate_to="Bob@Example.com")
    await control.add(
        tables.followups,
        item("fu_1", WINDOW_MS, excerpt="<b>x</b> & y"),
        item("fu_2", WINDOW_MS, rule="rul_bob", form="pricing"),
    )
    now = WINDOW_MS + 48 * HOUR_MS
    assert await scan_breaches(control.db, now, base_url="https://cx.example.com") == 2
    persian, english = await control.rows(tables.email_outbox, "recipient")
    assert persian["recipient"] == "alice@example.com"
    assert '<html lang="fa" dir="rtl">' in persian["html"]
    assert "https://cx.example.com/app/shop/followups/fu_1?lang=fa" in persian["text"]
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in persian["html"]
    assert "<b>x" not in persian["html"]
    assert english["recipient"] == "bob@example.com"
    assert '<html lang="en" dir="ltr">' in english["html"]
    assert "https://cx.example.com/app/shop/followups/fu_2?lang=en" in english["text"]


async def test_a_scan_marks_more_items_than_a_batch(control: Control) -> None:
    await control.rule(escalate_to="lead@example.com")
    count = BREACH_BATCH * 2 + 3
    await control.add(tables.followups, *[item(f"fu_{i:04d}", WINDOW_MS + i) for i in range(count)])
    assert await scan_breaches(control.db, WINDOW_MS + 48 * HOUR_MS + count) == count
    assert len(await control.rows(tables.email_outbox, "id")) == count


async def rounds(db: Database, now: int) -> None:
    """A replica's scans as its workers run them: a round that found the database locked (on
    SQLite, another replica's batches held it past the busy timeout) is run again next round.
    The batches it committed before stay committed, so what each item got is read back from the
    database, not summed from the rounds' answers."""
    for _ in range(10):
        try:
            await scan_breaches(db, now)
            return
        except ConfigError as exc:
            if "locked" not in str(exc):
                raise
    raise AssertionError("ten rounds in a row found the database locked")


async def test_replicas_racing_breach_each_item_once(control: Control) -> None:
    """Three Database objects on one database (on PostgreSQL, three pools) scan at once."""
    await control.rule(escalate_to="lead@example.com")
    count = 3 * BREACH_BATCH + 50
    rows = [item(f"fu_{i:04d}", WINDOW_MS + i % 7) for i in range(count)]
    await control.add(tables.followups, *rows)
    replicas = [control.replica(), control.replica(), control.replica()]
    now = WINDOW_MS + 48 * HOUR_MS + 7
    await asyncio.gather(*(rounds(db, now) for db in replicas))
    again = await asyncio.gather(*(scan_breaches(db, now + 1) for db in replicas))
    assert again == [0, 0, 0]
    changes = await control.rows(tables.followup_changes, "followup")
    assert [c["followup"] for c in changes] == [r["id"] for r in rows]
    assert len(await control.rows(tables.outbox, "id")) == count
    assert len(await control.rows(tables.email_outbox, "id")) == count
    breached = await control.rows(tables.followups, "id")
    assert {r["breached_ms"] for r in breached} == {now}


# --- the within-SLA report ------------------------------------------------------------------


def figures(
    items: int,
    met: int,
    missed: int,
    pending: int,
    share: float | None,
    median: int | None,
    acted: int,
) -> SlaFigures:
    return SlaFigures(
        items=items,
        met=met,
        missed=missed,
        pending=pending,
        share=share,
        acted=acted,
        median_first_action_ms=median,
    )


async def report_items(control: Control) -> int:
    """The constructed items of a three-day window; returns the report's ``now``.

    Day 0: ``a`` (alice) acted on after 1 h, ``b`` (bob) at its due time to the ms, ``c``
    (nobody) a ms late, ``d`` (alice) never. Day 1: ``e`` closed by the gateway in time, ``f``
    (carol) acted on after 1 h, ``g`` closed by the gateway after its 4-hour due time. Day 2:
    ``h`` (bob) not yet due, ``i`` (alice, channel app) acted on after 30 min, ``m`` due at
    ``now`` to the ms. Besides: an item made before the window, one at its end, one of cafe.
    """
    await control.rule()
    await control.rule("rul_cafe", project="cafe")
    alice, bob, carol = control.ids["alice"], control.ids["bob"], control.ids["carol"]
    w, day = WINDOW_MS, DAY_MS
    now = w + 2 * day + 12 * HOUR_MS
    await control.add(
        tables.followups,
        item("a", w + HOUR_MS, assignee=alice, first_action_ms=w + 2 * HOUR_MS),
        item("b", w + 2 * HOUR_MS, assignee=bob, first_action_ms=w + 50 * HOUR_MS),
        item("c", w + 3 * HOUR_MS, first_action_ms=w + 51 * HOUR_MS + 1),
        item("d", w + 4 * HOUR_MS, assignee=alice),
        item(
            "e", w + day + HOUR_MS, form="pricing", status="closed", closed_ms=w + day + 2 * HOUR_MS
        ),
        item(
            "f",
            w + day + 5 * HOUR_MS,
            form="pricing",
            assignee=carol,
            first_action_ms=w + day + 6 * HOUR_MS,
        ),
        item(
            "g",
            w + day + 10 * HOUR_MS,
            w + day + 14 * HOUR_MS,
            form="pricing",
            status="closed",
            closed_ms=w + day + 20 * HOUR_MS,
        ),
        item("h", w + 2 * day + HOUR_MS, assignee=bob),
        item(
            "i",
            w + 2 * day + 2 * HOUR_MS,
            channel="app",
            assignee=alice,
            first_action_ms=w + 2 * day + 2 * HOUR_MS + 30 * MINUTE_MS,
        ),
        item("m", w + 2 * day + 4 * HOUR_MS, now),
        item("before", w - 1, first_action_ms=w),
        item("after", w + 3 * day, first_action_ms=w + 3 * day),
        item("cafe", w + HOUR_MS, project="cafe", rule="rul_cafe"),
    )
    return now


ALL = {"web": None, "app": None, "email": None, "kiosk": None}


async def test_the_within_sla_share_overall_per_team_and_per_day(control: Control) -> None:
    now = await report_items(control)
    report = await sla_report(
        control.db, "shop", WINDOW_MS, WINDOW_MS + 3 * DAY_MS, now, DAY_MS, ALL
    )

    # met a b f i, missed c d g, pending h m, e moot; first actions after 1 h, 48 h, 48 h + 1 ms,
    # 1 h, 30 min: the median is 1 h.
    assert report.overall == figures(10, 4, 3, 2, 57.1, HOUR_MS, 5)
    assert report.teams == {
        # a b d h i: met a b i, missed d, pending h; 30 min, 1 h, 48 h
        "support": figures(5, 3, 1, 1, 75.0, HOUR_MS, 3),
        # b f h: met b f, pending h; 1 h and 48 h: the lower of the two middle values
        "sales": figures(3, 2, 0, 1, 100.0, HOUR_MS, 2),
        # c e g m: missed c g, pending m, e moot
        "unassigned": figures(4, 0, 2, 1, 0.0, 48 * HOUR_MS + 1, 1),
    }
    assert [p.start_ms for p in report.periods] == [
        WINDOW_MS,
        WINDOW_MS + DAY_MS,
        WINDOW_MS + 2 * DAY_MS,
    ]
    assert [figures_of(p) for p in report.periods] == [
        figures(4, 2, 2, 0, 50.0, 48 * HOUR_MS, 3),  # a b c d: 1 h, 48 h, 48 h + 1 ms
        figures(3, 1, 1, 0, 50.0, HOUR_MS, 1),  # e f g
        figures(3, 1, 0, 2, 100.0, 30 * MINUTE_MS, 1),  # h i m
    ]
    assert (report.project, report.start_ms, report.end_ms, report.now_ms, report.step_ms) == (
        "shop",
        WINDOW_MS,
        WINDOW_MS + 3 * DAY_MS,
        now,
        DAY_MS,
    )


def figures_of(period: SlaFigures) -> SlaFigures:
    return figures(
        period.items,
        period.met,
        period.missed,
        period.pending,
        period.share,
        period.median_first_action_ms,
        period.acted,
    )


async def test_the_share_moves_with_the_clock(control: Control) -> None:
    now = await report_items(control)
    end = WINDOW_MS + 3 * DAY_MS
    later = await sla_report(control.db, "shop", WINDOW_MS, end, now + 1, DAY_MS, ALL)
    assert later.overall == figures(10, 4, 4, 1, 50.0, HOUR_MS, 5)  # m: a ms past due
    week = await sla_report(control.db, "shop", WINDOW_MS, end, now + 7 * DAY_MS, DAY_MS, ALL)
    assert week.overall == figures(10, 4, 5, 0, 44.4, HOUR_MS, 5)  # h too


async def test_the_report_counts_only_what_the_asker_sees(control: Control) -> None:
    now = await report_items(control)
    end = WINDOW_MS + 3 * DAY_MS
    web = await sla_report(control.db, "shop", WINDOW_MS, end, now, DAY_MS, {"web": None})
    assert web.overall == figures(9, 3, 3, 2, 50.0, HOUR_MS, 4)  # all but i
    checkout = await sla_report(
        control.db, "shop", WINDOW_MS, end, now, DAY_MS, {"web": frozenset({"checkout"})}
    )
    # a b c d h m: met a b, missed c d, pending h m; 1 h, 48 h, 48 h + 1 ms
    assert checkout.overall == figures(6, 2, 2, 2, 50.0, 48 * HOUR_MS, 3)
    assert checkout.teams["support"] == figures(4, 2, 1, 1, 66.7, HOUR_MS, 2)
    nothing = await sla_report(control.db, "shop", WINDOW_MS, end, now, DAY_MS, {"email": None})
    assert nothing.overall == figures(0, 0, 0, 0, None, None, 0)
    assert nothing.teams == {}
    assert [p.items for p in nothing.periods] == [0, 0, 0]


async def test_periods_cut_at_the_windows_end(control: Control) -> None:
    now = await report_items(control)
    end = WINDOW_MS + 3 * DAY_MS
    report = await sla_report(control.db, "shop", WINDOW_MS, end, now, 2 * DAY_MS, ALL)
    assert [(p.start_ms, p.items, p.met, p.missed) for p in report.periods] == [
        (WINDOW_MS, 7, 3, 3),
        (WINDOW_MS + 2 * DAY_MS, 3, 1, 0),
    ]
    week = await sla_report(control.db, "shop", WINDOW_MS, end, now, 7 * DAY_MS, ALL)
    assert [figures_of(p) for p in week.periods] == [week.overall]


@pytest.mark.parametrize(
    ("start", "end", "step", "message"),
    [
        (WINDOW_MS, WINDOW_MS, DAY_MS, "to must be after from"),
        (WINDOW_MS, WINDOW_MS - 1, DAY_MS, "to must be after from"),
        (WINDOW_MS, WINDOW_MS + DAY_MS, 0, "step must be a positive duration; got 0 ms"),
        (WINDOW_MS, WINDOW_MS + DAY_MS, -HOUR_MS, "step must be a positive duration"),
        (WINDOW_MS, WINDOW_MS + 1001 * HOUR_MS, HOUR_MS, "step cuts the window into 1001"),
    ],
    ids=["empty-window", "backwards", "zero-step", "negative-step", "too-many-periods"],
)
async def test_a_report_that_cant_be_made_is_a_400_naming_the_field(
    tmp_path: Path, start: int, end: int, step: int, message: str
) -> None:
    control = Control(tmp_path, "sqlite")
    try:
        with pytest.raises(ApiError) as refused:
            await sla_report(control.db, "shop", start, end, end, step, ALL)
        assert refused.value.status == 400
        assert refused.value.message.startswith(message)
    finally:
        control.close()
