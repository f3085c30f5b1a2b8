"""Digests on SQLite and PostgreSQL, with answers written through the real stores at chosen
times: exactly what each user's digest says within their access, when one is due (the UTC day
and Monday boundaries to the millisecond), once across replicas, the email as it arrives over
SMTP, and ``voxloop-gateway digests``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

import voxloop_core
from tests.gateway.conftest import Command, command
from tests.gateway.pg import pg_url
from voxloop_core import DAY_MS, HOUR_MS
from voxloop_gateway import migrate
from voxloop_gateway.control import tables
from voxloop_gateway.control.access import Scope
from voxloop_gateway.control.people import People
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.integrations import mail
from voxloop_gateway.integrations.digest import gather_digest, is_due, period_of, write_digests
from voxloop_gateway.integrations.messages import DigestContent, OpenItem, ScoreTrend
from voxloop_gateway.service import Service
from voxloop_gateway.settings import Settings

from .mailbox import Mailbox, mailbox

__all__ = ["command", "mailbox", "pg_url"]  # fixtures

#: 2026-11-23T00:00:00Z, a Monday.
NOV23 = 1_795_392_000_000
NOV24 = NOV23 + DAY_MS
NOV25 = NOV23 + 2 * DAY_MS
#: Wednesday 2026-11-25, 09:00 UTC.
NOW_MS = NOV25 + 9 * HOUR_MS
BASE_URL = "https://cx.example.com"
PASSWORD = "correct horse battery staple"
HOSTILE = "Awful <script>alert(1)</script> & slow"


class World:
    """Project ``shop`` (channels web, app, email, kiosk), its people, its stores and rules.

    olga is an owner (everything); wendy is in ``web-team`` (the dashboard and the inbox of
    channel web only); eric in ``exporters`` (exports only: no dashboard, no inbox); dora is an
    owner who was disabled.
    """

    def __init__(self, data_dir: Path, where: str) -> None:
        self.data_dir, self.where = data_dir, where
        self.settings = Settings(data_dir=data_dir, store=where, public_url=BASE_URL)
        if where != "sqlite":
            migrate.migrate(self.settings)
        self.registry = Registry(data_dir, where)
        self.shop = self.registry.create_project("shop", ["kiosk"])
        self.db = self.registry.db
        people = People(self.db)
        web = Scope("shop", channels=frozenset({"web"}))
        people.create_group("web-team", {"dashboard": "view", "inbox": "edit"}, [web])
        people.create_group("exporters", {"exports": "view"}, [Scope("shop")])
        self.ids = {
            name: people.create_user(f"{name}@example.com", [group], PASSWORD)[0].id
            for name, group in {
                "olga": "owner",
                "wendy": "web-team",
                "eric": "exporters",
                "dora": "owner",
            }.items()
        }
        people.disable_user("dora@example.com")
        self.services: list[Service] = []

    async def service(self) -> Service:
        """A gateway's service on this world's registry and stores (another one each call)."""
        made = Service(self.settings)
        await made.connect()
        self.services.append(made)
        return made

    async def stop(self) -> None:
        """Close the services, on the loop that opened them."""
        for service in self.services:
            await service.close()
        self.services.clear()

    def close(self) -> None:
        self.registry.close()

    async def answer(self, channel: str, metric: str, scores: list[int], at_ms: int) -> None:
        """Store answers of form ``checkout`` given at ``at_ms``, through the real store."""
        events = [
            {
                "id": f"{channel}-{metric}-{at_ms}-{n}",
                "channel": channel,
                "form": "checkout",
                "metric": metric,
                "score": score,
                "ts": at_ms,
            }
            for n, score in enumerate(scores)
        ]
        decoded, rejected = voxloop_core.decode_batch(msgspec.json.encode({"events": events}))
        assert rejected == []
        records, refused = voxloop_core.validate(
            decoded, voxloop_core.DEFAULT_POLICY, NOW_MS, self.shop.secret
        )
        assert refused == []
        service = self.services[0] if self.services else await self.service()
        written = await (await service.store(channel)).write("shop", records)
        assert written.stored == len(events)

    async def add(self, table: Any, *rows: dict[str, Any]) -> None:
        async def write(conn: AsyncConnection) -> None:
            await conn.execute(insert(table), list(rows))

        await self.db.arun(write, write=True)

    async def subscribe(self, user: str, frequency: str, lang: str, last_ms: int | None) -> None:
        row = {"user": self.ids[user], "project": "shop", "frequency": frequency, "lang": lang}
        await self.add(tables.digests, {**row, "last_ms": last_ms})

    async def last_ms(self) -> dict[str, int | None]:
        async def read(conn: AsyncConnection) -> dict[str, int | None]:
            found = await conn.execute(
                select(tables.users.c.email, tables.digests.c.last_ms).join(
                    tables.users, tables.users.c.id == tables.digests.c.user
                )
            )
            return {email.split("@")[0]: last for email, last in found}

        return await self.db.arun(read)

    async def emails(self) -> list[dict[str, Any]]:
        async def read(conn: AsyncConnection) -> list[dict[str, Any]]:
            found = await conn.execute(
                select(tables.email_outbox).order_by(tables.email_outbox.c.recipient)
            )
            return [dict(row._mapping) for row in found]

        return await self.db.arun(read)

    async def item(self, item_id: str, channel: str, form: str, **fields: Any) -> None:
        row = {
            "id": item_id,
            "project": "shop",
            "channel": channel,
            "form": form,
            "subject": f"subject-{item_id}",
            "ref": f"{channel}.{item_id}",
            "metric": "nps",
            "score": 2,
            "excerpt": None,
            "respondent": None,
            "rule": "rul_default",
            "status": "new",
            "assignee": None,
            "tags": "[]",
            "created_ms": NOW_MS - 50 * HOUR_MS,
            "updated_ms": NOW_MS - 50 * HOUR_MS,
        }
        await self.add(tables.followups, {**row, **fields})

    async def rule(self) -> None:
        await self.add(
            tables.rules,
            {
                "id": "rul_default",
                "project": "shop",
                "name": "Detractors with a comment",
                "kind": "followup",
                "low": True,
                "has_comment": True,
                "sla_hours": 48,
                "enabled": True,
                "created_ms": NOV23 - 30 * DAY_MS,
            },
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def made(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A world on SQLite files or a new PostgreSQL database, made outside the test's loop."""
    where = "sqlite" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    world = World(tmp_path, where)
    yield world
    world.close()


@pytest.fixture
async def world(made: World) -> AsyncIterator[World]:
    """The world, its services closed on the test's loop."""
    yield made
    await made.stop()


async def seeded(world: World) -> World:
    """The answers and follow-ups the digests of these tests report on."""
    await world.answer("web", "nps", [10, 9, 3], NOV24 + 10 * HOUR_MS)  # yesterday
    await world.answer("web", "nps", [10], NOV23 + 12 * HOUR_MS)  # the day before
    await world.answer("web", "nps", [0], NOV25 + 8 * HOUR_MS)  # today: in no period yet
    await world.answer("app", "csat", [5, 4, 2, 1], NOV24 + 11 * HOUR_MS)
    await world.answer("web", "nps", [10, 10], NOV23 - 3 * DAY_MS + 10 * HOUR_MS)  # last week
    await world.answer("web", "nps", [0], NOV23 - 11 * DAY_MS)  # the week before
    await world.answer("app", "csat", [5], NOV23 - 3 * DAY_MS)
    await world.rule()
    olga, wendy = world.ids["olga"], world.ids["wendy"]
    await world.item("fu_a", "web", "checkout", due_ms=NOW_MS - 2 * HOUR_MS, excerpt=HOSTILE)
    await world.item(
        "fu_b",
        "app",
        "signup",
        metric="csat",
        score=1,
        status="assigned",
        assignee=olga,
        due_ms=NOW_MS + 5 * HOUR_MS,
    )
    await world.item(
        "fu_c",
        "web",
        "checkout",
        score=4,
        status="in_progress",
        assignee=wendy,
        due_ms=NOW_MS + HOUR_MS,
    )
    await world.item("fu_d", "web", "checkout", status="resolved", due_ms=NOW_MS - 5 * HOUR_MS)
    await world.item("fu_e", "kiosk", "counter", score=0, due_ms=NOW_MS + 30 * HOUR_MS)
    return world


# --- when ----------------------------------------------------------------------------------


def test_the_period_is_the_last_whole_utc_day_or_week_from_monday() -> None:
    assert period_of("daily", NOW_MS) == (NOV24, NOV25)
    assert period_of("daily", NOV25) == (NOV24, NOV25)
    assert period_of("daily", NOV25 - 1) == (NOV23, NOV24)
    assert period_of("weekly", NOW_MS) == (NOV23 - 7 * DAY_MS, NOV23)
    assert period_of("weekly", NOV23) == (NOV23 - 7 * DAY_MS, NOV23)
    assert period_of("weekly", NOV23 - 1) == (NOV23 - 14 * DAY_MS, NOV23 - 7 * DAY_MS)


@pytest.mark.parametrize(
    ("frequency", "last_ms", "now_ms", "due"),
    [
        ("daily", None, NOW_MS, True),
        ("daily", NOV24 + 10 * HOUR_MS, NOV25 - 1, False),
        ("daily", NOV24 + 10 * HOUR_MS, NOV25, True),
        ("daily", NOV25, NOV25 + DAY_MS - 1, False),
        ("daily", NOV25 - 1, NOV25, True),
        ("weekly", None, NOW_MS, True),
        ("weekly", NOV23 - DAY_MS, NOV23 - 1, False),
        ("weekly", NOV23 - DAY_MS, NOV23, True),
        ("weekly", NOV23, NOV23 + 7 * DAY_MS - 1, False),
        ("weekly", NOV23, NOV23 + 7 * DAY_MS, True),
    ],
    ids=[
        "daily-never",
        "daily-before-midnight",
        "daily-at-midnight",
        "daily-written-at-midnight",
        "daily-a-ms-before",
        "weekly-never",
        "weekly-sunday-night",
        "weekly-monday",
        "weekly-written-monday",
        "weekly-next-monday",
    ],
)
def test_a_digest_is_due_once_a_day_or_a_week_has_begun(
    frequency: Any, last_ms: int | None, now_ms: int, due: bool
) -> None:
    assert is_due(frequency, last_ms, now_ms) is due


async def test_digests_are_written_at_the_boundary_to_the_millisecond(world: World) -> None:
    await world.subscribe("olga", "daily", "en", NOV24 + 10 * HOUR_MS)
    await world.subscribe("wendy", "weekly", "en", NOV23 - DAY_MS)
    service = await world.service()
    assert await write_digests(service, NOV23 - 1) == 0
    assert await write_digests(service, NOV23) == 1  # Monday: wendy's week
    assert await world.last_ms() == {"olga": NOV24 + 10 * HOUR_MS, "wendy": NOV23}
    assert await write_digests(service, NOV25 - 1) == 0
    assert await write_digests(service, NOV25) == 1  # midnight: olga's day
    assert await world.last_ms() == {"olga": NOV25, "wendy": NOV23}
    assert await write_digests(service, NOV25 + DAY_MS - 1) == 0
    assert await write_digests(service, NOV23 + 7 * DAY_MS - 1) == 1  # olga's next day only
    assert await write_digests(service, NOV23 + 7 * DAY_MS) == 2
    emails = await world.emails()
    assert [e["recipient"] for e in emails] == ["olga@example.com"] * 3 + ["wendy@example.com"] * 2
    assert {e["created_ms"] for e in emails} == {
        NOV23,
        NOV25,
        NOV23 + 7 * DAY_MS - 1,
        NOV23 + 7 * DAY_MS,
    }


# --- what -----------------------------------------------------------------------------------


async def test_a_digest_says_exactly_what_its_reader_may_see(world: World) -> None:
    await seeded(world)
    service = await world.service()
    people = People(world.db)
    olga = people.access_of(people.user("olga@example.com"))
    wendy = people.access_of(people.user("wendy@example.com"))
    eric = people.access_of(people.user("eric@example.com"))
    shop = world.registry.project("shop", reload=True)
    items = {
        "fu_a": OpenItem(
            id="fu_a",
            channel="web",
            form="checkout",
            metric="nps",
            score=2,
            excerpt=HOSTILE,
            status="new",
            due_ms=NOW_MS - 2 * HOUR_MS,
            assignee=None,
        ),
        "fu_b": OpenItem(
            id="fu_b",
            channel="app",
            form="signup",
            metric="csat",
            score=1,
            excerpt=None,
            status="assigned",
            due_ms=NOW_MS + 5 * HOUR_MS,
            assignee="olga@example.com",
        ),
        "fu_c": OpenItem(
            id="fu_c",
            channel="web",
            form="checkout",
            metric="nps",
            score=4,
            excerpt=None,
            status="in_progress",
            due_ms=NOW_MS + HOUR_MS,
            assignee="wendy@example.com",
        ),
        "fu_e": OpenItem(
            id="fu_e",
            channel="kiosk",
            form="counter",
            metric="nps",
            score=0,
            excerpt=None,
            status="new",
            due_ms=NOW_MS + 30 * HOUR_MS,
            assignee=None,
        ),
    }
    assert await gather_digest(service, shop, olga, "daily", NOW_MS) == DigestContent(
        project="shop",
        frequency="daily",
        start_ms=NOV24,
        end_ms=NOV25,
        now_ms=NOW_MS,
        scores=[
            ScoreTrend(
                channel="app",
                metric="csat",
                score=50.0,
                count=4,
                previous_score=None,
                previous_count=0,
            ),
            ScoreTrend(
                channel="web",
                metric="nps",
                score=33.3,
                count=3,
                previous_score=100.0,
                previous_count=1,
            ),
        ],
        items=[items["fu_a"], items["fu_c"], items["fu_b"], items["fu_e"]],
        open_count=4,
        overdue_count=1,
    )
    assert await gather_digest(service, shop, wendy, "weekly", NOW_MS) == DigestContent(
        project="shop",
        frequency="weekly",
        start_ms=NOV23 - 7 * DAY_MS,
        end_ms=NOV23,
        now_ms=NOW_MS,
        scores=[
            ScoreTrend(
                channel="web",
                metric="nps",
                score=100.0,
                count=2,
                previous_score=-100.0,
                previous_count=1,
            ),
        ],
        items=[items["fu_a"], items["fu_c"]],
        open_count=2,
        overdue_count=1,
    )
    assert await gather_digest(service, shop, eric, "daily", NOW_MS) is None


async def test_the_digest_emails_as_they_arrive(world: World, mailbox: Mailbox) -> None:
    await seeded(world)
    await world.subscribe("olga", "daily", "en", None)
    await world.subscribe("wendy", "weekly", "ar", None)
    service = await world.service()
    assert await write_digests(service, NOW_MS) == 2
    assert await world.last_ms() == {"olga": NOW_MS, "wendy": NOW_MS}
    settings = Settings(
        smtp_host="127.0.0.1", smtp_port=mailbox.port, smtp_tls="none", mail_from="cx@x.example"
    )
    assert await mail.send_due(world.db, settings, "a", NOW_MS) == 2
    by_recipient = {str(m["To"]): m for m in mailbox.messages}
    olga, wendy = by_recipient["olga@example.com"], by_recipient["wendy@example.com"]

    assert olga["Subject"] == "[shop] Daily digest: 24 Nov 2026"
    text, html = parts(olga)
    assert text.splitlines() == [
        "voxloop · shop",
        "",
        "Daily digest",
        "",
        "24 Nov 2026",
        "",
        "Scores by channel",
        "- App, CSAT %: 50.0 (Responses: 4); Day before: –; Change: –",
        "- Web, NPS: 33.3 (Responses: 3); Day before: 100.0; Change: down 66.7",
        "",
        "Follow-ups needing action",
        "4 open, 1 overdue.",
        "",
        "- New · NPS 2 · Web / checkout · Nobody",
        "  Overdue since 25 Nov 2026, 07:00",
        f"  > {HOSTILE}",
        f"  {BASE_URL}/app/shop/followups/fu_a?lang=en",
        "- In progress · NPS 4 · Web / checkout · wendy@example.com",
        "  Due 25 Nov 2026, 10:00",
        f"  {BASE_URL}/app/shop/followups/fu_c?lang=en",
        "- Assigned · CSAT % 1 · App / signup · olga@example.com",
        "  Due 25 Nov 2026, 14:00",
        f"  {BASE_URL}/app/shop/followups/fu_b?lang=en",
        "- New · NPS 0 · kiosk / counter · Nobody",
        "  Due 26 Nov 2026, 15:00",
        f"  {BASE_URL}/app/shop/followups/fu_e?lang=en",
        "",
        f"Open the dashboard: {BASE_URL}/app/shop/?lang=en",
        "",
        "-- ",
        f"Sent by voxloop from {BASE_URL}. Times are in UTC.",
    ]
    assert '<html lang="en" dir="ltr">' in html
    assert "<script>" not in html
    assert "Awful &lt;script&gt;alert(1)&lt;/script&gt; &amp; slow" in html
    assert '<td style="padding:4px 8px;border-bottom:1px solid #eaeef2;">down 66.7</td>' in html

    assert wendy["Subject"] == "[shop] الملخص الأسبوعي: أسبوع ١٦ نوفمبر ٢٠٢٦"
    text, html = parts(wendy)
    assert '<html lang="ar" dir="rtl">' in html and '<div lang="ar" dir="rtl"' in html
    assert "من ١٦ نوفمبر ٢٠٢٦ إلى ٢٢ نوفمبر ٢٠٢٦" in text
    assert (
        "- الويب، صافي نقاط الترويج (NPS): ١٠٠٫٠ (الإجابات: ٢)؛ الأسبوع السابق: \u061c-١٠٠٫٠؛"
        " التغيّر: ارتفاع ٢٠٠٫٠"
    ) in text.splitlines()
    assert "التطبيق" not in text and "kiosk" not in text  # app and kiosk: not wendy's
    assert "٢ مفتوحة، منها ١ متأخرة." in text
    assert f"{BASE_URL}/app/shop/followups/fu_a?lang=ar" in text
    assert "fu_b" not in text and "fu_e" not in text
    assert "&lt;script&gt;" in html and "<script>" not in html


async def test_a_reader_who_may_see_nothing_or_is_disabled_gets_no_digest(world: World) -> None:
    await seeded(world)
    await world.subscribe("eric", "daily", "en", None)
    await world.subscribe("dora", "daily", "en", None)
    service = await world.service()
    assert await write_digests(service, NOW_MS) == 0
    assert await world.emails() == []
    assert await world.last_ms() == {"eric": NOW_MS, "dora": NOW_MS}  # the day is done


async def test_a_digest_lists_ten_items_and_counts_them_all(world: World) -> None:
    await world.rule()
    for n in range(12):
        due = NOW_MS + (n - 3) * HOUR_MS  # four overdue (one due this very ms), in order
        await world.item(f"fu_{n:02d}", "web", "checkout", due_ms=due)
    await world.subscribe("olga", "daily", "en", None)
    service = await world.service()
    people = People(world.db)
    olga = people.access_of(people.user("olga@example.com"))
    shop = world.registry.project("shop", reload=True)
    content = await gather_digest(service, shop, olga, "daily", NOW_MS)
    assert content is not None and content.items is not None
    assert [item.id for item in content.items] == [f"fu_{n:02d}" for n in range(10)]
    assert (content.open_count, content.overdue_count) == (12, 4)
    assert content.scores == []
    assert await write_digests(service, NOW_MS) == 1
    (email,) = await world.emails()
    assert "No responses in this period or the one before." in email["text"]
    assert "12 open, 4 overdue. The 10 due first:" in email["text"]


async def test_two_replicas_write_each_digest_once(world: World) -> None:
    await seeded(world)
    await world.subscribe("olga", "daily", "en", None)
    await world.subscribe("wendy", "weekly", "en", NOV23 - DAY_MS)
    first, second = await world.service(), await world.service()
    for now in (NOW_MS, NOW_MS + DAY_MS):
        written = await asyncio.gather(write_digests(first, now), write_digests(second, now))
        assert sum(written) == (2 if now == NOW_MS else 1)
    emails = await world.emails()
    assert [(e["recipient"], e["created_ms"]) for e in emails] == [
        ("olga@example.com", NOW_MS),
        ("olga@example.com", NOW_MS + DAY_MS),
        ("wendy@example.com", NOW_MS),
    ]


async def test_a_digest_row_moved_since_it_was_read_writes_nothing(world: World) -> None:
    """The row's last_ms is checked where it is moved: a replica that read it before another
    wrote the digest finds it moved, and writes no second email."""
    await world.subscribe("olga", "daily", "en", None)
    service = await world.service()

    async def moved(conn: AsyncConnection) -> None:
        await conn.execute(update(tables.digests).values(last_ms=NOW_MS - 1))

    await world.db.arun(moved, write=True)  # as if another replica wrote it a moment ago
    assert await write_digests(service, NOW_MS) == 0
    assert await world.emails() == []


# --- voxloop-gateway digests ----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[World, list[str]]]:
    where = "sqlite" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    made = World(tmp_path, where)
    flags = ["--data-dir", str(tmp_path)] + ([] if where == "sqlite" else ["--store", where])
    yield made, flags
    made.close()


def test_digests_add_list_and_remove(cli_world: tuple[World, list[str]], command: Command) -> None:
    world, flags = cli_world
    added = command(*flags, "digests", "add", "Olga@Example.com", "shop", "daily", "--lang", "ar")
    assert (added.returncode, added.stdout) == (0, "digest olga@example.com shop daily ar\n")
    again = command(*flags, "digests", "add", "olga@example.com", "shop", "weekly")
    assert (again.returncode, again.stdout) == (0, "digest olga@example.com shop weekly en\n")
    assert command(*flags, "digests", "add", "wendy@example.com", "shop", "daily").returncode == 0
    listed = command(*flags, "digests", "list")
    assert listed.stdout.splitlines() == [
        "olga@example.com   shop  weekly  en  never",
        "wendy@example.com  shop  daily   en  never",
    ]
    assert command(*flags, "digests", "list", "shop").stdout == listed.stdout
    removed = command(*flags, "digests", "remove", "wendy@example.com", "shop")
    assert (removed.returncode, removed.stdout) == (0, "removed wendy@example.com shop\n")
    assert command(*flags, "digests", "list").stdout == (
        "olga@example.com  shop  weekly  en  never\n"
    )


@pytest.mark.parametrize(
    ("args", "status", "said"),
    [
        (
            ["add", "eric@example.com", "shop", "daily"],
            2,
            "voxloop-gateway: user 'eric@example.com' may see neither the dashboard nor the"
            " follow-up inbox of project 'shop': add them to a group that does first\n",
        ),
        (
            ["add", "nobody@example.com", "shop", "daily"],
            2,
            "voxloop-gateway: no user 'nobody@example.com'; `voxloop-gateway users list` shows"
            " them\n",
        ),
        (
            ["add", "olga@example.com", "nope", "daily"],
            2,
            "voxloop-gateway: no project 'nope'; projects: shop\n",
        ),
        (
            ["add", "olga@example.com", "shop", "hourly"],
            2,
            "voxloop-gateway digests add: argument frequency: invalid choice: 'hourly' (choose"
            " from 'daily', 'weekly') (see voxloop-gateway digests add --help)\n",
        ),
        (
            ["add", "olga@example.com", "shop", "daily", "--lang", "fr"],
            2,
            "voxloop-gateway digests add: argument --lang: invalid choice: 'fr' (choose from"
            " 'en', 'ar', 'fa', 'id') (see voxloop-gateway digests add --help)\n",
        ),
        (
            ["remove", "olga@example.com", "shop"],
            2,
            "voxloop-gateway: user 'olga@example.com' gets no digest of project 'shop':"
            " `voxloop-gateway digests list` shows the digests\n",
        ),
    ],
    ids=["no-access", "no-user", "no-project", "frequency", "lang", "remove-none"],
)
def test_digests_refuses_in_one_line(
    tmp_path: Path, command: Command, args: list[str], status: int, said: str
) -> None:
    world = World(tmp_path, "sqlite")
    try:
        done = command("--data-dir", str(tmp_path), "digests", *args)
    finally:
        world.close()
    assert (done.returncode, done.stdout, done.stderr) == (status, "", said)


async def test_digests_list_shows_when_the_last_one_was_written(
    tmp_path: Path, command: Command
) -> None:
    world = World(tmp_path, "sqlite")
    try:
        await world.subscribe("olga", "weekly", "fa", None)
        assert await write_digests(await world.service(), NOW_MS) == 1
        listed = await asyncio.to_thread(command, "--data-dir", str(tmp_path), "digests", "list")
    finally:
        await world.stop()
        world.close()
    assert listed.stdout == "olga@example.com  shop  weekly  fa  2026-11-25T09:00:00.000Z\n"


def parts(message: Any) -> tuple[str, str]:
    """The plain text and the HTML of a ``multipart/alternative`` message (lines ending in LF)."""
    assert message.get_content_type() == "multipart/alternative"
    text_part, html_part = message.iter_parts()
    assert (text_part.get_content_type(), html_part.get_content_type()) == (
        "text/plain",
        "text/html",
    )
    return (
        text_part.get_content().replace("\r\n", "\n"),
        html_part.get_content().replace("\r\n", "\n"),
    )
