"""The feed end to end: responses written to real channel stores (SQLite files, PostgreSQL),
read from their log by ``read_feed`` into items, messages and alerts of a real control plane.

Nothing is lost or made twice: the feed read again finds nothing new, two replicas reading one
channel at once take each event once, and a feed killed between its transactions picks up where
its cursor is. Gaps in PostgreSQL's log are waited on, then passed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, select

import voxloop_core
from voxloop_core import Record
from voxloop_gateway import Settings, migrate
from voxloop_gateway.control import tables
from voxloop_gateway.control.registry import Project, Registry
from voxloop_gateway.followups import feed
from voxloop_gateway.followups.feed import GAP_WAIT_MS, Gaps
from voxloop_gateway.ingest.votes import VoteRule
from voxloop_gateway.service import Service

from .conftest import HOUR_MS, listening

#: The feed's clock in these tests; events carry the real time (the core checks it).
NOW_MS = int(time.time() * 1000)
_POLICY = voxloop_core.Policy(
    channels=frozenset({"web", "app", "email"}),
    max_future_ms=300_000,
    retention_ms=365 * 24 * HOUR_MS,
)
_counter = iter(range(1, 10**9))


# --- gaps, as plain values ----------------------------------------------------------------------


def test_a_gap_is_waited_on_then_passed() -> None:
    gaps = Gaps(wait_ms=5000)
    assert gaps.readable("web:events", 0, [1, 2, 3], 0) == 3
    assert gaps.readable("web:events", 3, [4, 6, 7], 1000) == 1  # 5 is missing: wait
    assert gaps.readable("web:events", 4, [6, 7], 3000) == 0
    assert gaps.readable("web:events", 4, [6, 7], 5999) == 0
    assert gaps.readable("web:events", 4, [6, 7, 9], 6000) == 2  # 5 passed; 8 seen just now
    assert gaps.readable("web:events", 7, [9], 10999) == 0
    assert gaps.readable("web:events", 7, [9], 11000) == 1
    assert gaps.readable("app:events", 0, [2], 11000) == 0  # each log keeps its own


def test_a_gap_that_fills_is_read_in_order() -> None:
    gaps = Gaps(wait_ms=5000)
    assert gaps.readable("web:events", 0, [1, 3, 4], 0) == 1
    assert gaps.readable("web:events", 1, [2, 3, 4], 100) == 3  # 2 committed late
    assert gaps.readable("web:events", 4, [5, 8], 200) == 1
    assert gaps.readable("web:events", 5, [6, 8], 300) == 1  # 6 filled, 7 still missing
    assert gaps.readable("web:events", 6, [8], 5199) == 0
    assert gaps.readable("web:events", 6, [8], 5200) == 1  # 7 was missing since 200


def test_what_a_logged_vote_says_of_its_group() -> None:
    from .conftest import response

    first = response(vote_key="v", received_ms=1000, ts_ms=1000, counted=False, revised=True)
    scanner = response(vote_key="v", received_ms=900, ts_ms=900, held="quarantined", counted=False)
    second = response(vote_key="v", received_ms=2000, ts_ms=2000, revised=True)
    group = [scanner, first, second]
    assert feed.answer_of(first, group) == second
    assert feed.answer_of(second, group) == second
    assert feed.answer_of(scanner, [scanner]) is None
    assert not feed.changes_answer(first, group)  # a scanner's click was no answer
    assert feed.changes_answer(second, group)
    plain = response()
    assert feed.answer_of(plain, []) == plain and not feed.changes_answer(plain, [])
    kinds = [
        feed.message_type(feed.Seen(project="p", response=first, answer=second)),
        feed.message_type(feed.Seen(project="p", response=second, answer=second, change=True)),
        feed.message_type(feed.Seen(project="p", response=scanner, answer=None)),
        feed.message_type(feed.Seen(project="p", response=second, answer=second, revision=True)),
    ]
    assert kinds == ["response.created", "response.updated", None, "response.updated"]


# --- end to end -------------------------------------------------------------------------------


@dataclass
class Stores:
    """A data directory (or PostgreSQL database) with projects ``shop`` and ``other``."""

    backend: str
    settings: Settings
    shop: Project
    other: Project


def make_stores(data_dir: Path, store: str, backend: str) -> Stores:
    settings = Settings(data_dir=data_dir, store=store)
    if store != "sqlite":
        migrate.migrate(settings)
    registry = Registry(data_dir, store)
    try:
        shop = registry.create_project("shop")
        other = registry.create_project("other")
        registry.db.run(listening, write=True)
    finally:
        registry.close()
    return Stores(backend, settings, shop, other)


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    store = "sqlite" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    return make_stores(tmp_path, store, request.param)


@pytest.fixture
def pg_stores(pg_url: str, tmp_path: Path) -> Stores:
    """The same on PostgreSQL only: for what only its log does (gaps)."""
    return make_stores(tmp_path, pg_url, "postgresql")


@pytest.fixture
async def service(stores: Stores) -> AsyncIterator[Service]:
    """A service over the stores, as a gateway's (its workers not started)."""
    made = Service(stores.settings)
    await made.connect()
    yield made
    await made.close()


def records(project: Project, *events: dict[str, Any]) -> list[Record]:
    """``events`` as the gateway stores them for ``project``; each gets an id of its own."""
    given = [{"id": f"e{next(_counter)}", "ts": NOW_MS - 60_000, **e} for e in events]
    decoded, rejected = voxloop_core.decode_batch(msgspec.json.encode({"events": given}))
    assert rejected == []
    made, refused = voxloop_core.validate(decoded, _POLICY, NOW_MS, project.secret)
    assert refused == []
    return made


def event(**fields: Any) -> dict[str, Any]:
    return {
        "channel": "web",
        "form": "checkout",
        "metric": "nps",
        "score": 3,
        "comment": "Slow",
        **fields,
    }


async def write(
    service: Service, project: Project, *events: dict[str, Any], rule: VoteRule | None = None
) -> list[Record]:
    """Store ``events`` of ``project`` as the gateway would, 500 a write; their records."""
    made: list[Record] = []
    for start in range(0, len(events), 500):
        chunk = records(project, *events[start : start + 500])
        by_channel: dict[str, list[Record]] = {}
        for record in chunk:
            by_channel.setdefault(record.channel, []).append(record)
        for channel, mine in by_channel.items():
            store = await service.store(channel)
            result = await store.write(project.id, mine, rule=rule)
            assert result.stored == len(mine)
        made += chunk
    return made


async def read(service: Service, table: Any, *where: Any) -> list[Any]:
    async def work(conn: Any) -> list[Any]:
        return list((await conn.execute(select(table).where(*where))).all())

    return await service.registry.db.arun(work)


async def messages(service: Service, event_type: str) -> list[dict[str, Any]]:
    rows = await read(service, tables.outbox, tables.outbox.c.event_type == event_type)
    return [json.loads(row.payload)["data"] for row in rows]


async def test_the_feed_turns_what_the_stores_committed_into_items(
    service: Service, stores: Stores
) -> None:
    shop, other = stores.shop, stores.other
    assert await feed.read_feed(service, NOW_MS, "replica-a") == 0  # nothing stored yet
    detractor, promoter, silent, on_app = await write(
        service,
        shop,
        event(),
        event(score=9),
        event(score=1, comment=None),
        event(channel="app", score=0, comment="Crashes"),
    )
    (theirs,) = await write(service, other, event(score=2))
    taken = await feed.read_feed(service, NOW_MS, "replica-a")
    assert taken == 5
    found = await read(service, tables.followups)
    assert sorted((r.project, r.channel, r.subject) for r in found) == sorted(
        [
            ("shop", "web", detractor.key.hex()),
            ("shop", "app", on_app.key.hex()),
            ("other", "web", theirs.key.hex()),
        ]
    )
    created = await messages(service, "response.created")
    assert sorted((m["project"], m["ref"]) for m in created) == sorted(
        [("shop", f"web.{r.key.hex()}") for r in (detractor, promoter, silent)]
        + [("shop", f"app.{on_app.key.hex()}"), ("other", f"web.{theirs.key.hex()}")]
    )
    assert len(await messages(service, "followup.created")) == 3
    # Read again, and by another replica: nothing new, nothing twice.
    assert await feed.read_feed(service, NOW_MS + 1000, "replica-a") == 0
    assert await feed.read_feed(service, NOW_MS + 2000, "replica-b") == 0
    assert len(await read(service, tables.followups)) == 3
    assert len(await messages(service, "response.created")) == 5
    cursors = await read(service, tables.feed_cursors)
    assert {c.channel for c in cursors} == {"web", "app"}


async def test_vote_changes_follow_one_item(service: Service, stores: Stores) -> None:
    shop = stores.shop
    first = await write(service, shop, event(score=2, vote_key="order-7", ts=NOW_MS - 50_000))
    await feed.read_feed(service, NOW_MS, "r")
    (item,) = await read(service, tables.followups)
    assert first[0].vote_key is not None  # a keyed hash of "order-7"
    assert (item.subject, item.ref, item.score) == (first[0].vote_key, ref_of_record(first[0]), 2)
    second = await write(
        service, shop, event(score=5, vote_key="order-7", ts=NOW_MS - 40_000, comment="Meh")
    )
    await feed.read_feed(service, NOW_MS + 1, "r")
    (item,) = await read(service, tables.followups)
    assert (item.ref, item.score, item.excerpt, item.status) == (
        f"web.{second[0].key.hex()}",
        5,
        "Meh",
        "new",
    )
    updated = await messages(service, "response.updated")
    assert [(m["ref"], m["counts"], m["revised"]) for m in updated] == [
        (f"web.{second[0].key.hex()}", True, True)
    ]
    await write(service, shop, event(score=10, vote_key="order-7", ts=NOW_MS - 30_000))
    # A vote with an earlier ts changes nothing: the later one still counts.
    await write(service, shop, event(score=0, vote_key="order-7", ts=NOW_MS - 45_000))
    await feed.read_feed(service, NOW_MS + 2, "r")
    (item,) = await read(service, tables.followups)
    assert (item.status, item.score) == ("closed", 10)
    assert "changed to 10 (nps)" in item.resolution
    # Two votes of a new group read in one batch: one item, showing the one that counts.
    both = await write(
        service,
        shop,
        event(score=1, vote_key="order-8", ts=NOW_MS - 20_000),
        event(score=4, vote_key="order-8", ts=NOW_MS - 10_000, comment="Worse"),
    )
    await feed.read_feed(service, NOW_MS + 3, "r")
    eight = await read(service, tables.followups, tables.followups.c.subject == both[0].vote_key)
    assert [(r.ref, r.score, r.excerpt) for r in eight] == [(ref_of_record(both[1]), 4, "Worse")]
    kinds = sorted(m["ref"] for m in await messages(service, "response.created"))
    assert ref_of_record(both[0]) in kinds and ref_of_record(both[1]) not in kinds


async def test_one_batch_makes_and_follows_items_as_one_at_a_time_would(
    service: Service, stores: Stores
) -> None:
    """A batch's new items and messages are written together at its end: an item it made and
    then read again (a second vote of its group), items of several forms, and every message's
    deliveries all read back as if each response had been taken alone."""
    from voxloop_gateway.followups import items

    shop = stores.shop
    made, changed, other_form, _promoter = await write(
        service,
        shop,
        event(score=1, vote_key="order-9", ts=NOW_MS - 20_000),
        event(score=4, vote_key="order-9", ts=NOW_MS - 10_000, comment="Still waiting"),
        event(form="signup", score=0, comment="Too long"),
        event(form="signup", score=10),
    )
    assert await feed.read_feed(service, NOW_MS, "r") == 4
    found = {r.subject: r for r in await read(service, tables.followups)}
    assert set(found) == {made.vote_key, other_form.key.hex()}
    # The group's item shows the vote that counts, and the second vote found it unchanged.
    voted = found[made.vote_key]
    assert (voted.status, voted.ref, voted.score, voted.excerpt) == (
        "new",
        ref_of_record(changed),
        4,
        "Still waiting",
    )
    changes = await read(service, tables.followup_changes)
    assert sorted((c.followup, c.kind) for c in changes) == sorted(
        (item.id, "created") for item in found.values()
    )
    # The followup.created messages carry each item as the API reads it back.
    created = {m["id"]: m for m in await messages(service, "followup.created")}
    assert set(created) == {item.id for item in found.values()}

    async def as_read(conn: Any) -> Any:
        return await items.read_item(conn, found[other_form.key.hex()].id)

    signup = await service.registry.db.arun(as_read)
    assert created[signup.id] == items.payload(signup)
    assert created[voted.id]["ref"] == ref_of_record(changed)
    # Every message has its one delivery, to the project's endpoint.
    outbox_ids = {r.id for r in await read(service, tables.outbox)}
    deliveries = await read(service, tables.webhook_deliveries)
    assert sorted(d.message for d in deliveries) == sorted(outbox_ids)
    assert {d.endpoint for d in deliveries} == {"ep_shop"}


def ref_of_record(record: Record) -> str:
    return f"{record.channel}.{record.key.hex()}"


async def test_a_comment_added_later_reaches_the_feed(service: Service, stores: Stores) -> None:
    shop = stores.shop
    rule = VoteRule(edit_window_ms=7 * 24 * HOUR_MS, burst_ms=2000)
    (click,) = await write(
        service, shop, event(channel="email", score=1, comment=None, vote_key="mail-1"), rule=rule
    )
    await feed.read_feed(service, NOW_MS, "r")
    assert await read(service, tables.followups) == []
    store = await service.store("email")
    assert click.vote_key is not None
    assert await store.attach_comment(shop.id, click.key, click.vote_key, "Nobody called back")
    assert await feed.read_feed(service, NOW_MS + 1, "r") == 1
    (item,) = await read(service, tables.followups)
    assert (item.ref, item.excerpt) == (ref_of_record(click), "Nobody called back")
    updated = await messages(service, "response.updated")
    assert [(m["ref"], m["comment"]) for m in updated] == [
        (ref_of_record(click), "Nobody called back")
    ]
    assert await feed.read_feed(service, NOW_MS + 2, "r") == 0


async def test_a_scanners_burst_makes_no_item_and_no_message(
    service: Service, stores: Stores
) -> None:
    rule = VoteRule(edit_window_ms=7 * 24 * HOUR_MS, burst_ms=60_000)
    for score in (0, 5, 10):
        await write(
            service,
            stores.shop,
            event(channel="email", score=score, vote_key="scanned", comment=f"c{score}"),
            rule=rule,
        )
    await feed.read_feed(service, NOW_MS, "r")
    assert await read(service, tables.followups) == []
    assert await messages(service, "response.created") == []
    assert await messages(service, "response.updated") == []


async def count(service: Service, table: Any) -> int:
    async def work(conn: Any) -> int:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

    return await service.registry.db.arun(work)


async def test_two_replicas_reading_one_channel_take_each_event_once(
    service: Service, stores: Stores
) -> None:
    other = Service(stores.settings)
    await other.connect()
    try:
        for round_ in range(4):
            await write(service, stores.shop, *(event(score=round_) for _ in range(30)))
            web_a, web_b = await service.store("web"), await other.store("web")
            state_a, state_b = feed.Feed(), feed.Feed()
            # Leases aside (as when one ran out while its holder was slow): the cursor decides.
            await asyncio.gather(
                feed.read_channel(service, state_a, web_a, NOW_MS + round_),
                feed.read_channel(other, state_b, web_b, NOW_MS + round_),
            )
        assert await count(service, tables.followups) == 120
        assert len(await messages(service, "response.created")) == 120
        assert len(await messages(service, "followup.created")) == 120
    finally:
        await other.close()


async def test_the_first_read_of_a_channel_starts_near_its_end(
    service: Service, stores: Stores
) -> None:
    await write(service, stores.shop, *(event(score=9) for _ in range(feed.BACKFILL + 7)))
    taken = await feed.read_feed(service, NOW_MS, "r")
    assert taken == feed.BACKFILL
    assert len(await messages(service, "response.created")) == feed.BACKFILL


FEED_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from voxloop_gateway import Settings
    from voxloop_gateway.followups import feed
    from voxloop_gateway.service import Service

    async def main() -> None:
        service = Service(Settings(data_dir=Path(sys.argv[1]), store=sys.argv[2]))
        await service.connect()
        while True:
            await feed.read_feed(service, int(sys.argv[3]), "doomed")

    asyncio.run(main())
    """
)


async def test_a_feed_killed_between_batches_loses_and_repeats_nothing(
    service: Service, stores: Stores
) -> None:
    total = 1500
    await write(service, stores.shop, event(score=9))
    await feed.read_feed(service, NOW_MS, "r")  # the channel's cursor is at its start now
    for start in range(0, total, 500):
        await write(service, stores.shop, *(event(score=start // 500) for _ in range(500)))
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            FEED_SCRIPT,
            str(stores.settings.data_dir),
            stores.settings.store,
            str(NOW_MS),
        ]
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            cursors = await read(
                service, tables.feed_cursors, tables.feed_cursors.c.channel == "web"
            )
            if cursors[0].event_seq >= 501:
                break
            assert time.monotonic() < deadline, "the feed made no progress"
            await asyncio.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    before = await count(service, tables.followups)
    assert 500 <= before < total, "killed before the end"
    # Its lease runs out; another replica goes on from the cursor.
    later = NOW_MS + feed.LEASE_MS + 1
    assert await feed.read_feed(service, later, "r") == total - before
    assert await count(service, tables.followups) == total
    assert len(await messages(service, "response.created")) == total + 1
    assert len(await messages(service, "followup.created")) == total
    items = await read(service, tables.followups)
    assert len({(i.channel, i.subject) for i in items}) == total


async def test_a_gap_in_postgresqls_log_is_waited_on_then_passed(pg_stores: Stores) -> None:
    stores = pg_stores
    service = Service(stores.settings)
    await service.connect()
    try:
        await _gap(service, stores)
    finally:
        await service.close()


async def _gap(service: Service, stores: Stores) -> None:
    first = await write(service, stores.shop, event())
    await feed.read_feed(service, NOW_MS, "r")
    # A duplicate takes a seq and stores nothing: the next event comes after a gap.
    store = await service.store("web")
    assert (await store.write(stores.shop.id, first)).duplicates == 1
    await write(service, stores.shop, event(score=1))
    assert await feed.read_feed(service, NOW_MS + 1000, "r") == 0
    assert await feed.read_feed(service, NOW_MS + 1000 + GAP_WAIT_MS - 1, "r") == 0
    assert await feed.read_feed(service, NOW_MS + 1000 + GAP_WAIT_MS, "r") == 1
    assert await count(service, tables.followups) == 2
