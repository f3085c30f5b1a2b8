"""The log of each channel store: events by ``seq``, comments attached later as revisions.

The shared tests run on a SQLite file and on PostgreSQL (the ``backend`` fixture); the upgrades
that bring the log to stores made before it are each backend's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import msgspec
import pytest
from msgspec.structs import replace

import voxloop_core
import voxloop_gateway.stores as stores
from voxloop_core import HOUR_MS, Record
from voxloop_gateway.stores import (
    PostgresStore,
    SqliteStore,
    Store,
    StoredResponse,
    StoreUnavailable,
    WriteResult,
    postgres,
    sqlite,
)

from .conftest import (
    NOW_MS,
    PROJECT,
    SECRET,
    Backend,
    PostgresBackend,
    Session,
    event,
    make_records,
    postgres_schema,
    query_file,
)
from .test_sqlite import V2_SCHEMA

RULE = stores.VoteRule(edit_window_ms=60_000, burst_ms=5_000)


def email_click(view: str, score: int, ts: int = NOW_MS, **fields: Any) -> dict[str, Any]:
    """A click on an email rating link: a vote of the one vote group ``email:c-1``."""
    return event(id=view, score=score, ts=ts, vote_key="email:c-1", **fields)


def ids(entries: list[tuple[int, StoredResponse]]) -> list[str | None]:
    return [response.id for _, response in entries]


def seqs(entries: list[tuple[int, StoredResponse]]) -> list[int]:
    return [seq for seq, _ in entries]


async def read_all(store: Store, *, after: int = 0, limit: int = 3) -> list[int]:
    """Every seq of the log after ``after``, read page by page of ``limit``, as a reader would."""
    found: list[int] = []
    while page := await store.log(after, limit):
        assert len(page) <= limit
        found += seqs(page)
        after = page[-1][0]
    return found


# --- both backends --------------------------------------------------------------------------


async def test_an_empty_store_has_an_empty_log(store: Store) -> None:
    assert await store.log(0, 10) == []
    assert await store.revisions(0, 10) == []
    assert await store.last_seq() == (0, 0)


async def test_the_log_holds_every_event_in_the_order_of_its_commits(store: Store) -> None:
    one, two, three, *batch = make_records(
        *(event(id=f"e{i}", score=i, ts=NOW_MS - i * HOUR_MS) for i in range(7))
    )
    for record in (one, two, three):
        await store.write(PROJECT, [record])
    await store.write(PROJECT, batch)
    (other,) = make_records(event(id="g1", score=3))
    await store.write("globex", [other])

    log = await store.log(0, 100)
    # One commit after another, nothing lost or duplicated meanwhile: 1, 2, 3... on both.
    assert seqs(log) == list(range(1, 9))
    assert ids(log)[:3] == ["e0", "e1", "e2"]  # in the order stored, not by their time
    assert sorted(ids(log)[3:7]) == ["e3", "e4", "e5", "e6"]  # one commit: in the store's order
    assert ids(log)[7] == "g1"  # every project's events
    assert [response.channel for _, response in log] == ["web"] * 8
    assert await store.last_seq() == (8, 0)


async def test_pages_of_the_log_start_after_the_cursor_and_stop_at_the_limit(
    store: Store,
) -> None:
    records = make_records(*(event(id=f"e{i}", score=i) for i in range(7)))
    for record in records:
        await store.write(PROJECT, [record])
    everything = await store.log(0, 100)

    assert await store.log(0, 2) == everything[:2]
    assert await store.log(everything[1][0], 2) == everything[2:4]
    assert await store.log(everything[5][0], 5) == everything[6:]
    assert await store.log(everything[6][0], 5) == []
    assert await store.log(-1, 1) == everything[:1]
    assert await read_all(store, limit=3) == seqs(everything)
    assert await read_all(store, limit=1) == seqs(everything)
    for wrong in (0, -1):
        with pytest.raises(ValueError, match=f"limit must be at least 1, got {wrong}"):
            await store.log(0, wrong)
        with pytest.raises(ValueError, match=f"limit must be at least 1, got {wrong}"):
            await store.revisions(0, wrong)


async def test_each_logged_event_reads_as_the_read_side_shows_it(store: Store) -> None:
    records = make_records(
        event(id="full", respondent="user-1", comment="Très bien 👍", locale="fr", tags=["a"]),
        event(id="meta", metric="csat", score=2, meta={"plan": "pro", "n": 2, "ok": True}),
        email_click("v1", 3, respondent="user-2"),
    )
    await store.write(PROJECT, records[:2])
    await store.write(PROJECT, records[2:], rule=RULE)

    log = await store.log(0, 10)
    assert len(log) == 3
    for _, response in log:
        assert response.project == PROJECT  # the log reads every project's events
        assert response == replace(await store.response(PROJECT, response.key), project=PROJECT)
    by_id = {response.id: response for _, response in log}
    full, vote = by_id["full"], by_id["v1"]
    assert (full.comment, full.locale, full.tags, full.counted) == (
        "Très bien 👍",
        "fr",
        ["a"],
        True,
    )
    assert full.respondent == records[0].respondent and full.vote_key is None
    assert by_id["meta"].meta == {"plan": "pro", "n": 2, "ok": True}
    assert vote.vote_key == records[2].vote_key is not None
    assert (vote.counted, vote.held, vote.revised) == (True, None, False)


async def test_a_changed_vote_is_logged_with_the_flags_as_they_are_now(store: Store) -> None:
    first, second = make_records(email_click("v1", 9), email_click("v2", 3, ts=NOW_MS + 1))
    await store.write(PROJECT, [first], rule=RULE)
    ((cursor, logged),) = await store.log(0, 10)
    assert (logged.id, logged.counted, logged.revised) == ("v1", True, False)

    await store.write(PROJECT, [second], rule=RULE)
    # The new vote comes after the cursor, counted; the one it replaced reads as replaced.
    ((_, changed),) = await store.log(cursor, 10)
    assert (changed.id, changed.score, changed.counted, changed.revised) == ("v2", 3, True, True)
    assert changed.vote_key == first.vote_key
    assert [(r.id, r.counted, r.revised) for _, r in await store.log(0, 10)] == [
        ("v1", False, True),
        ("v2", True, True),
    ]
    assert await store.revisions(0, 10) == []  # a vote is an event of its own


async def test_a_held_click_is_logged_held(store: Store) -> None:
    late_rule = stores.VoteRule(edit_window_ms=0, burst_ms=5_000)
    first, late = make_records(email_click("a", 8), email_click("b", 2, ts=NOW_MS + 1))
    await store.write(PROJECT, [first], rule=late_rule)
    await asyncio.sleep(0.002)  # received a millisecond or more after the first
    await store.write(PROJECT, [late], rule=late_rule)
    assert [(r.id, r.counted, r.held) for _, r in await store.log(0, 10)] == [
        ("a", True, None),
        ("b", False, "late"),
    ]


async def test_a_comment_attached_later_is_a_revision_with_the_response_as_it_is_now(
    store: Store,
) -> None:
    (click,) = make_records(email_click("v1", 4))
    assert click.vote_key is not None
    await store.write(PROJECT, [click], rule=RULE)
    log = await store.log(0, 10)

    assert await store.attach_comment(PROJECT, click.key, click.vote_key, "Slow delivery")
    ((first, revised),) = await store.revisions(0, 10)
    assert first == 1
    assert (revised.id, revised.comment, revised.counted) == ("v1", "Slow delivery", True)
    assert revised == replace(await store.response(PROJECT, click.key), project=PROJECT)
    # The event is not logged again: the log is the events, in the order they came.
    assert [seq for seq, _ in await store.log(0, 10)] == seqs(log)
    assert await store.last_seq() == (seqs(log)[-1], 1)

    # The same comment sent again (a form sent twice) is no change.
    assert await store.attach_comment(PROJECT, click.key, click.vote_key, "Slow delivery")
    assert seqs(await store.revisions(0, 10)) == [1]
    # Another one is: each revision reads the response as it is now.
    assert await store.attach_comment(PROJECT, click.key, click.vote_key, "Resolved, thanks")
    revisions = await store.revisions(0, 10)
    assert seqs(revisions) == [1, 2]
    assert [r.comment for _, r in revisions] == ["Resolved, thanks"] * 2
    assert await store.revisions(1, 10) == revisions[1:]
    assert await store.revisions(0, 1) == revisions[:1]
    assert await store.revisions(2, 10) == []

    # No vote, no revision.
    assert not await store.attach_comment(PROJECT, click.key, "another", "Not mine")
    assert not await store.attach_comment("globex", click.key, click.vote_key, "Not mine")
    assert seqs(await store.revisions(0, 10)) == [1, 2]
    assert await store.last_seq() == (seqs(log)[-1], 2)


async def test_a_comment_a_repeated_click_carries_is_in_its_event_not_a_revision(
    store: Store,
) -> None:
    first, again = make_records(email_click("v1", 8), email_click("v2", 8, ts=NOW_MS + 1))
    assert first.vote_key is not None
    await store.write(PROJECT, [first], rule=RULE)
    assert await store.attach_comment(PROJECT, first.key, first.vote_key, "Great support")
    cursor, _ = await store.last_seq()
    await store.write(PROJECT, [again], rule=RULE)
    ((_, carried),) = await store.log(cursor, 10)
    assert (carried.id, carried.comment, carried.counted) == ("v2", "Great support", True)
    assert seqs(await store.revisions(0, 10)) == [1]


async def test_a_reader_can_start_at_the_end_of_the_log(store: Store) -> None:
    old = make_records(*(event(id=f"old{i}", score=i) for i in range(4)))
    await store.write(PROJECT, old)
    events, revisions = await store.last_seq()
    assert events == max(seqs(await store.log(0, 10)))
    assert (await store.log(events, 10), revisions) == ([], 0)

    (new,) = make_records(event(id="new", score=10))
    await store.write(PROJECT, [new])
    assert ids(await store.log(events, 10)) == ["new"]
    assert await store.last_seq() == (events + 1, 0)


async def test_duplicates_add_nothing_to_the_log(backend: Backend, store: Store) -> None:
    records = make_records(event(id="a"), event(id="b", score=3))
    assert await store.write(PROJECT, records) == WriteResult(2, 0)
    (c,) = make_records(event(id="c", score=5))
    assert await store.write(PROJECT, [*records, c]) == WriteResult(1, 2)
    (d,) = make_records(event(id="d", score=6))
    await store.write(PROJECT, [d])

    log = await store.log(0, 10)
    assert ids(log)[:2] in (["a", "b"], ["b", "a"])
    assert ids(log)[2:] == ["c", "d"]
    if backend.name == "sqlite":
        assert seqs(log) == [1, 2, 3, 4]  # one writer, numbered as it commits
    else:
        # A duplicate takes a number before it is found to be one: gaps that never fill.
        assert seqs(log)[:2] == [1, 2] and seqs(log)[2] in (3, 4, 5) and seqs(log)[3] == 6


async def test_channels_have_logs_of_their_own(session: Session, store: Store) -> None:
    other = session.make("app")
    await other.open()
    try:
        (web,) = make_records(event(id="w"))
        (app,) = make_records(event(id="a", channel="app"))
        await store.write(PROJECT, [web])
        await other.write(PROJECT, [app])
        assert [(seq, r.id, r.channel) for seq, r in await store.log(0, 10)] == [(1, "w", "web")]
        assert [(seq, r.id, r.channel) for seq, r in await other.log(0, 10)] == [(1, "a", "app")]
    finally:
        await other.close()


async def test_a_closed_store_refuses_to_read_its_log(session: Session) -> None:
    store = session.make()
    for read in (store.log(0, 1), store.revisions(0, 1), store.last_seq()):
        with pytest.raises(StoreUnavailable, match="channel 'web'"):
            await read


# --- SQLite ---------------------------------------------------------------------------------


async def test_sqlite_a_version_5_file_keeps_its_events_in_the_log_once_migrated(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "web.sqlite3"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.executescript(V2_SCHEMA)  # then the steps that made version 5
        for step in (2, 3, 4):
            db.executescript(sqlite._UPGRADES[step])
        records = make_records(
            email_click("v1", 9, respondent="user-1"),
            event(id="p1", comment="old comment"),
            event(id="p2", score=2, ts=NOW_MS - HOUR_MS),
        )
        db.executemany(
            "INSERT INTO events (project, key, id, ts_ms, form, metric, score, vote_key, counted,"
            " received_ms, body, respondent) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (PROJECT, r.key, r.id, r.ts_ms, r.form, r.metric, r.score, r.vote_key, True)
                + (NOW_MS, '{"comment":"old comment"}' if r.comment else "{}", r.respondent)
                for r in records
            ],
        )
    assert sqlite.file_version(path) == 5
    rows = query_file(path, "SELECT * FROM events ORDER BY seq")
    needs = f"version 5, this gateway needs {sqlite.SCHEMA_VERSION}: run `voxloop"
    with pytest.raises(StoreUnavailable, match=needs):
        await SqliteStore(path, "web").open()

    assert sqlite.migrate_file(path) == (5, sqlite.SCHEMA_VERSION)
    assert query_file(path, "SELECT * FROM events ORDER BY seq") == rows
    assert query_file(path, "PRAGMA integrity_check") == [("ok",)]
    store = SqliteStore(path, "web")
    await store.open()
    try:
        log = await store.log(0, 10)
        assert [(seq, r.id, r.comment) for seq, r in log] == [
            (1, "v1", None),
            (2, "p1", "old comment"),
            (3, "p2", None),
        ]
        assert await store.last_seq() == (3, 0)
        vote = records[0]
        assert vote.vote_key is not None
        assert await store.attach_comment(PROJECT, vote.key, vote.vote_key, "now")
        assert [(seq, r.id, r.comment) for seq, r in await store.revisions(0, 10)] == [
            (1, "v1", "now")
        ]
        (new,) = make_records(event(id="new"))
        await store.write(PROJECT, [new])
        assert [(seq, r.id) for seq, r in await store.log(3, 10)] == [(4, "new")]
    finally:
        await store.close()
    assert sqlite.migrate_file(path) == (sqlite.SCHEMA_VERSION, sqlite.SCHEMA_VERSION)


async def test_sqlite_a_revision_is_committed_with_its_comment_or_not_at_all(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "web.sqlite3"
    store = SqliteStore(path, "web", busy_timeout_ms=50)
    await store.open()
    try:
        (click,) = make_records(email_click("v1", 4))
        assert click.vote_key is not None
        await store.write(PROJECT, [click], rule=RULE)
        # Another connection holds the write lock: the comment fails, and no revision is left.
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as blocker:
            blocker.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StoreUnavailable, match="database is locked"):
                await store.attach_comment(PROJECT, click.key, click.vote_key, "lost")
            blocker.execute("ROLLBACK")
        assert await store.revisions(0, 10) == []
        assert query_file(path, "SELECT body FROM events") == [("{}",)]
        assert await store.attach_comment(PROJECT, click.key, click.vote_key, "kept")
        assert [(seq, r.comment) for seq, r in await store.revisions(0, 10)] == [(1, "kept")]
    finally:
        await store.close()


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture
def unmigrated() -> Iterator[PostgresBackend]:
    with postgres_schema(migrated=False) as made:
        yield made


@pytest.fixture
async def admin(unmigrated: PostgresBackend) -> AsyncIterator[asyncpg.Connection]:
    conn = await unmigrated.connect()
    try:
        yield conn
    finally:
        await conn.close()


async def test_postgres_a_version_4_schema_numbers_its_events_as_received_once_migrated(
    unmigrated: PostgresBackend, admin: asyncpg.Connection
) -> None:
    # Version 4 exactly as its steps made it, with the partitions of two channels, one empty.
    await admin.execute(postgres._SCHEMA_TABLE)
    for step in range(4):
        sql = postgres._STEPS[step]
        assert isinstance(sql, str)
        await admin.execute(sql)
    await admin.execute("INSERT INTO voxloop_schema VALUES ('store', 4)")
    for channel in ("web", "app"):
        for table in ("events", "aggregates"):
            await admin.execute(
                f"CREATE TABLE {table}_{channel} PARTITION OF {table} FOR VALUES IN ('{channel}')"
            )
    records = make_records(
        event(id="third", score=1),
        event(id="first", score=9, comment="kept"),
        email_click("second", 5),
        event(id="fourth", score=7),
    )
    received = {"first": NOW_MS - 3000, "second": NOW_MS - 2000, "third": NOW_MS - 1000}
    await admin.executemany(
        "INSERT INTO events (channel, project, key, id, ts_ms, form, metric, score, vote_key,"
        " counted, received_ms, body, respondent)"
        " VALUES ('web', $1, $2, $3, $4, $5, $6, $7, $8, true, $9, $10::jsonb, NULL)",
        [
            (PROJECT, r.key, r.id, r.ts_ms, r.form, r.metric, r.score, r.vote_key)
            + (received.get(r.id or "", NOW_MS), '{"comment": "kept"}' if r.comment else "{}")
            for r in records
        ],
    )
    columns = "project, key, id, ts_ms, form, metric, score, vote_key, counted, held, body"
    rows = await admin.fetch(f"SELECT {columns} FROM events ORDER BY key")

    assert await postgres.migrate(admin) == (4, postgres.SCHEMA_VERSION)

    assert await admin.fetch(f"SELECT {columns} FROM events ORDER BY key") == rows
    numbered = await admin.fetch("SELECT id, seq FROM events ORDER BY seq")
    assert [tuple(row) for row in numbered] == [
        ("first", 1),
        ("second", 2),
        ("third", 3),
        ("fourth", 4),
    ]
    # The log is read through its index.
    async with admin.transaction():
        await admin.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            row[0]
            for row in await admin.fetch(
                "EXPLAIN SELECT seq FROM events_web WHERE channel = 'web' AND seq > $1"
                " ORDER BY seq LIMIT 10",
                0,
            )
        )
    assert "events_web_channel_seq_idx" in plan and "Sort" not in plan, plan

    pool = await unmigrated.pool()
    web, app = PostgresStore(pool, "web"), PostgresStore(pool, "app")
    try:
        await web.open()
        await app.open()
        log = await web.log(0, 10)
        assert [(r.id, seq) for seq, r in log] == [tuple(row) for row in numbered]
        for _, response in log:
            assert response == replace(await web.response(PROJECT, response.key), project=PROJECT)
        assert log[0][1].comment == "kept"
        # New events continue each channel's numbering; the empty one starts at 1.
        (new,) = make_records(event(id="new", score=10))
        (first_app,) = make_records(event(id="app-1", channel="app"))
        await web.write(PROJECT, [new])
        await app.write(PROJECT, [first_app])
        assert [(seq, r.id) for seq, r in await web.log(4, 10)] == [(5, "new")]
        assert [(seq, r.id) for seq, r in await app.log(0, 10)] == [(1, "app-1")]
        # Comments attached after the migration are revisions.
        vote = records[2]
        assert vote.vote_key is not None
        assert await web.attach_comment(PROJECT, vote.key, vote.vote_key, "attached")
        assert [(s, r.id, r.comment) for s, r in await web.revisions(0, 10)] == [
            (1, "second", "attached")
        ]
        assert await web.last_seq() == (5, 1)
        assert await app.last_seq() == (1, 0)
    finally:
        await web.close()
        await app.close()
        await pool.close()
    assert await postgres.migrate(admin) == (postgres.SCHEMA_VERSION, postgres.SCHEMA_VERSION)


async def test_postgres_replicas_writing_at_once_leave_every_event_in_the_log_once(
    postgres: PostgresBackend,
) -> None:
    pools = [await postgres.pool(), await postgres.pool()]
    replicas = [PostgresStore(pool, "web", replica=f"replica-{i}") for i, pool in enumerate(pools)]
    for replica in replicas:
        await replica.open()
    try:
        records = make_records(*(event(id=f"e{i:03}", score=i % 11) for i in range(120)))
        written: list[Record] = []
        writes = []
        for n in range(0, len(records), 4):  # some written by both: duplicates
            batch = records[n : n + 4]
            written += batch
            writes.append(replicas[n // 4 % 2].write(PROJECT, batch))
            writes.append(replicas[(n // 4 + 1) % 2].write(PROJECT, batch[:1]))
        results = await asyncio.gather(*writes)
        assert sum(result.stored for result in results) == len(records)

        log = await replicas[0].log(0, 1000)
        assert seqs(log) == sorted(set(seqs(log)))
        assert sorted(ids(log)) == sorted(r.id for r in written)
        assert await replicas[1].log(0, 1000) == log
        assert (await replicas[1].last_seq())[0] == seqs(log)[-1]
    finally:
        for replica in replicas:
            await replica.close()
        for pool in pools:
            await pool.close()


CHANNELS = ("web", "seq_web", "events_web")


async def test_postgres_a_channel_whose_name_looks_like_a_sequence_gets_its_own(
    postgres: PostgresBackend,
) -> None:
    # The partition of channel "seq_web" is events_seq_web; web's sequence is seq_events_web.
    pool = await postgres.pool()
    stores_ = [PostgresStore(pool, name) for name in CHANNELS]
    try:
        for store in stores_:
            await store.open()
        for n, store in enumerate(stores_):
            events = [event(id=f"{store.channel}-{i}", channel=store.channel) for i in range(n + 1)]
            decoded, _ = voxloop_core.decode_batch(msgspec.json.encode({"events": events}))
            policy = voxloop_core.Policy(channels=frozenset(CHANNELS))
            records, refused = voxloop_core.validate(decoded, policy, NOW_MS, SECRET)
            assert refused == []
            await store.write(PROJECT, records)
        for n, store in enumerate(stores_):
            assert seqs(await store.log(0, 10)) == list(range(1, n + 2))
    finally:
        for store in stores_:
            await store.close()
        await pool.close()
