"""What only the SQLite store has: WAL and synchronous, its file, its lock, its upgrades."""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

import voxloop_gateway.stores as stores
from voxloop_gateway.stores import SqliteStore, StoreUnavailable, WriteResult

from .conftest import (
    NOW_MS,
    PROJECT,
    aggregates_of,
    body_before_v3,
    days_of,
    event,
    make_records,
    query_file,
    stored_before_v3,
)


@pytest.fixture
async def store(store_path: pathlib.Path) -> Any:
    """An open SQLite store of the web channel in a fresh file, closed after the test."""
    opened = SqliteStore(store_path, "web")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
async def test_wal_and_synchronous_are_applied(store_path: pathlib.Path, synchronous: Any) -> None:
    store = SqliteStore(store_path, "web", synchronous=synchronous)
    await store.open()
    try:
        assert query_file(store_path, "PRAGMA journal_mode") == [("wal",)]
        # synchronous is per connection: ask the store's own.
        assert store._db is not None
        (level,) = await store._db.execute_fetchall("PRAGMA synchronous")
        assert level[0] == {"FULL": 2, "NORMAL": 1}[synchronous]
    finally:
        await store.close()


async def test_integrity_check_is_ok_after_writes(store: SqliteStore) -> None:
    records = make_records(
        *(
            event(id=f"e{i}", score=i % 11, vote_key=f"voter-{i % 3}" if i % 2 else None)
            for i in range(50)
        )
    )
    for record in records:
        await store.write(PROJECT, [record])

    assert query_file(store.path, "PRAGMA integrity_check") == [("ok",)]
    assert query_file(store.path, "PRAGMA foreign_key_check") == []


def parent_is_a_file(path: pathlib.Path) -> None:
    path.parent.write_text("a file where the folder should be")


def path_is_a_folder(path: pathlib.Path) -> None:
    path.mkdir(parents=True)


def not_a_database(path: pathlib.Path) -> None:
    path.parent.mkdir()
    path.write_bytes(b"not a database " * 100)


@pytest.mark.parametrize(
    "spoil",
    [parent_is_a_file, path_is_a_folder, not_a_database],
    ids=["parent-is-a-file", "path-is-a-folder", "not-a-database"],
)
async def test_open_failure_raises_store_unavailable_naming_the_file(
    tmp_path: pathlib.Path, spoil: Callable[[pathlib.Path], None]
) -> None:
    path = tmp_path / "stores" / "web.sqlite3"
    spoil(path)
    store = SqliteStore(path, "web")

    with pytest.raises(StoreUnavailable, match="can't open the store of channel 'web'") as caught:
        await store.open()
    assert str(path) in str(caught.value)
    assert not await store.writable()
    await store.close()


async def test_failed_commit_fails_its_writes_and_the_store_recovers(
    store_path: pathlib.Path,
) -> None:
    store = SqliteStore(store_path, "web", busy_timeout_ms=50)
    await store.open()
    records = make_records(*(event(id=f"e{i}", score=i) for i in range(6)))
    try:
        # A second connection holds the write lock, so the store's commit fails for real.
        with contextlib.closing(sqlite3.connect(store_path, isolation_level=None)) as blocker:
            blocker.execute("BEGIN EXCLUSIVE")
            results = await asyncio.gather(
                store.write(PROJECT, records[:3]),
                store.write(PROJECT, records[3:]),
                return_exceptions=True,
            )
            assert all(isinstance(r, StoreUnavailable) for r in results)
            assert "channel 'web'" in str(results[0]) and "database is locked" in str(results[0])
            assert store.pending == 0
            assert not await store.writable()
            blocker.execute("ROLLBACK")

        assert await store.writable()
        # Nothing of the failed commit was kept: every record is new now.
        assert await store.write(PROJECT, records) == WriteResult(6, 0)
        assert await store.hourly(PROJECT, "nps") == await store.scan(PROJECT, "nps")
        assert query_file(store_path, "SELECT count(*) FROM events") == [(6,)]
    finally:
        await store.close()


async def test_a_version_1_file_is_refused_until_migrated_in_place(
    store_path: pathlib.Path,
) -> None:
    store_path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(store_path, isolation_level=None)) as db:
        db.executescript(V1_SCHEMA)
        db.execute(
            "INSERT INTO events VALUES (1, 'acme', x'00112233445566778899aabbccddeeff', 'old',"
            f" {NOW_MS}, 'checkout', 'nps', 9, NULL, 1, {NOW_MS}, '{{}}')"
        )
    needs = f"version 1, this gateway needs {stores.sqlite.SCHEMA_VERSION}: run `voxloop"
    with pytest.raises(StoreUnavailable, match=needs):
        await SqliteStore(store_path, "web").open()

    assert stores.sqlite.migrate_file(store_path) == (1, stores.sqlite.SCHEMA_VERSION)
    upgraded = SqliteStore(store_path, "web")
    await upgraded.open()
    try:
        assert query_file(store_path, "PRAGMA user_version") == [(stores.sqlite.SCHEMA_VERSION,)]
        assert query_file(store_path, "SELECT id, held, respondent FROM events") == [
            ("old", None, None)
        ]
        (vote,) = make_records(event(id="new", score=3))
        assert await upgraded.write(PROJECT, [vote]) == WriteResult(1, 0)
    finally:
        await upgraded.close()


async def test_a_version_2_file_migrates_the_respondent_into_its_own_column(
    store_path: pathlib.Path,
) -> None:
    before = stored_before_v3()
    store_path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(store_path, isolation_level=None)) as db:
        db.executescript(V2_SCHEMA)
        db.executemany(
            "INSERT INTO events (project, key, id, ts_ms, form, metric, score, vote_key, counted,"
            " received_ms, body, held) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (p, r.key, r.id, r.ts_ms, r.form, r.metric, r.score, r.vote_key, counted, NOW_MS)
                + (body_before_v3(r), held)
                for p, r, counted, held in before
            ],
        )
        db.executemany("INSERT INTO aggregates VALUES (?,?,?,?,?,?)", aggregates_of(before))
    columns = "seq, project, key, id, ts_ms, form, metric, score, vote_key, counted, held"
    events = query_file(store_path, f"SELECT {columns} FROM events ORDER BY seq")
    bodies = query_file(store_path, "SELECT body FROM events ORDER BY seq")
    needs = f"version 2, this gateway needs {stores.sqlite.SCHEMA_VERSION}: run `voxloop"
    with pytest.raises(StoreUnavailable, match=needs):
        await SqliteStore(store_path, "web").open()

    assert stores.sqlite.migrate_file(store_path) == (2, stores.sqlite.SCHEMA_VERSION)

    assert query_file(store_path, f"SELECT {columns} FROM events ORDER BY seq") == events
    assert query_file(store_path, "SELECT * FROM aggregates ORDER BY 1, 2, 3, 4, 5") == (
        aggregates_of(before)
    )
    assert query_file(store_path, "SELECT * FROM aggregates_daily ORDER BY 1, 2, 3, 4, 5") == (
        days_of(aggregates_of(before))
    )
    moved = query_file(store_path, "SELECT respondent, body FROM events ORDER BY seq")
    for (respondent, body), (old,), (_, record, _, _) in zip(moved, bodies, before, strict=True):
        assert respondent == record.respondent  # the keyed hash, as body held it
        kept = json.loads(old)
        kept.pop("respondent", None)
        assert json.loads(body) == kept and "respondent" not in body
    plan = query_file(
        store_path,
        "EXPLAIN QUERY PLAN SELECT key FROM events WHERE project = ? AND respondent = ?",
        (PROJECT, "x"),
    )
    assert "USING INDEX events_by_respondent (project=? AND respondent=?)" in plan[0][3]
    assert query_file(store_path, "PRAGMA integrity_check") == [("ok",)]

    upgraded = SqliteStore(store_path, "web")
    await upgraded.open()
    try:
        for project in (PROJECT, "globex"):
            for metric in ("nps", "csat"):
                assert await upgraded.hourly(project, metric) == await upgraded.scan(
                    project, metric
                )
        # New rows write the column; a vote changed after the migration moves the aggregates.
        new, vote = make_records(
            event(id="new", respondent="user-9", comment="ok"),
            event(id="v4", score=10, vote_key="email:x", ts=NOW_MS + 1000),
        )
        assert await upgraded.write(PROJECT, [new, vote]) == WriteResult(2, 0)
        assert query_file(store_path, "SELECT respondent, body FROM events WHERE id = 'new'") == [
            (new.respondent, '{"comment":"ok"}')
        ]
        counted = query_file(
            store_path, "SELECT id FROM events WHERE vote_key IS NOT NULL AND counted"
        )
        assert counted == [("v4",)]
        assert await upgraded.hourly(PROJECT, "nps") == await upgraded.scan(PROJECT, "nps")
    finally:
        await upgraded.close()
    current = stores.sqlite.SCHEMA_VERSION
    assert stores.sqlite.migrate_file(store_path) == (current, current)


async def test_a_file_of_a_newer_version_is_refused(store_path: pathlib.Path) -> None:
    store_path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(store_path)) as db:
        db.execute(f"PRAGMA user_version = {stores.sqlite.SCHEMA_VERSION + 1}")
    with pytest.raises(StoreUnavailable, match="upgrade the gateway"):
        await SqliteStore(store_path, "web").open()


# The events table as version 1 made it, to prove the upgrade.
V1_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY, project TEXT NOT NULL, key BLOB NOT NULL, id TEXT,
    ts_ms INTEGER NOT NULL, form TEXT NOT NULL, metric TEXT NOT NULL, score INTEGER NOT NULL,
    vote_key TEXT, counted INTEGER NOT NULL, received_ms INTEGER NOT NULL, body TEXT NOT NULL,
    UNIQUE (project, key)
);
CREATE TABLE aggregates (
    project TEXT NOT NULL, metric TEXT NOT NULL, form TEXT NOT NULL, hour INTEGER NOT NULL,
    score INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (project, metric, form, hour, score)
) WITHOUT ROWID;
CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at_ms INTEGER NOT NULL);
PRAGMA user_version = 1;
"""

# The whole schema as version 2 made it (held, no respondent column), to prove the upgrade.
V2_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    project TEXT NOT NULL,
    key BLOB NOT NULL,
    id TEXT,
    ts_ms INTEGER NOT NULL,
    form TEXT NOT NULL,
    metric TEXT NOT NULL,
    score INTEGER NOT NULL,
    vote_key TEXT,
    counted INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    held TEXT,
    UNIQUE (project, key)
);
CREATE INDEX events_by_vote ON events (project, form, vote_key) WHERE vote_key IS NOT NULL;
CREATE INDEX events_held ON events (project, metric, held) WHERE held IS NOT NULL;
CREATE TABLE aggregates (
    project TEXT NOT NULL,
    metric TEXT NOT NULL,
    form TEXT NOT NULL,
    hour INTEGER NOT NULL,
    score INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (project, metric, form, hour, score)
) WITHOUT ROWID;
CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at_ms INTEGER NOT NULL);
PRAGMA user_version = 2;
"""
