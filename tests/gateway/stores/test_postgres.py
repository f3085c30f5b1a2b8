"""What only the PostgreSQL store has: schema versions, partitions, replicas, a server that goes."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Iterator

import asyncpg  # type: ignore[import-untyped]
import msgspec
import pytest

from voxloop_core import HOUR_MS, Record
from voxloop_gateway.stores import StoreUnavailable, VoteRule, WriteResult, postgres
from voxloop_gateway.stores.postgres import (
    SCHEMA_VERSION,
    PostgresStore,
    migrate,
    partition_name,
    schema_version,
)

from .conftest import (
    NOW_MS,
    PROJECT,
    PostgresBackend,
    Proxy,
    aggregates_of,
    body_before_v3,
    days_of,
    event,
    make_records,
    postgres_schema,
    proxied_dsn,
    stored_before_v3,
)

METRICS = ("nps", "csat", "ces", "likert", "thumbs")


@pytest.fixture
def unmigrated() -> Iterator[PostgresBackend]:
    with postgres_schema(migrated=False) as made:
        yield made


@pytest.fixture
async def admin(postgres: PostgresBackend) -> AsyncIterator[asyncpg.Connection]:
    conn = await postgres.connect()
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def replicas(postgres: PostgresBackend) -> AsyncIterator[list[PostgresStore]]:
    """Two stores of the web channel on two pools: two gateway replicas on one database."""
    pools = [await postgres.pool(), await postgres.pool()]
    stores = [PostgresStore(pool, "web", replica=f"replica-{i}") for i, pool in enumerate(pools)]
    for store in stores:
        await store.open()
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()
        for pool in pools:
            await pool.close()


async def assert_consistent(store: PostgresStore, projects: tuple[str, ...] = (PROJECT,)) -> None:
    for project in projects:
        for metric in METRICS:
            assert await store.hourly(project, metric) == await store.scan(project, metric)


# --- schema versions ------------------------------------------------------------------------


async def test_open_refuses_a_schema_never_migrated(unmigrated: PostgresBackend) -> None:
    pool = await unmigrated.pool()
    try:
        assert await schema_version(pool) == 0
        store = PostgresStore(pool, "web")
        with pytest.raises(StoreUnavailable) as caught:
            await store.open()
        assert str(caught.value) == (
            "can't open the store of channel 'web': its PostgreSQL schema is at version 0,"
            f" this gateway needs {SCHEMA_VERSION}: run `voxloop-gateway migrate`"
        )
        assert not await store.writable()

        assert await migrate(pool) == (0, SCHEMA_VERSION)
        await store.open()
        assert await store.writable()
        await store.close()
    finally:
        await pool.close()


async def test_open_refuses_a_newer_schema(
    postgres: PostgresBackend, admin: asyncpg.Connection
) -> None:
    await admin.execute("UPDATE voxloop_schema SET version = $1", SCHEMA_VERSION + 1)
    pool = await postgres.pool()
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await PostgresStore(pool, "web").open()
        assert str(caught.value).endswith(
            f"at version {SCHEMA_VERSION + 1}, this gateway knows up to {SCHEMA_VERSION}:"
            " upgrade the gateway"
        )
        with pytest.raises(StoreUnavailable, match="upgrade the gateway"):
            await migrate(admin)
    finally:
        await pool.close()


async def test_concurrent_migrations_dont_race(unmigrated: PostgresBackend) -> None:
    conns = [await unmigrated.connect() for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(conn) for conn in conns))
        # Each step is a transaction of its own: a run may find the steps before it done.
        assert [found for found, _ in results].count(0) == 1
        assert {left for _, left in results} == {SCHEMA_VERSION}
        assert await schema_version(conns[0]) == SCHEMA_VERSION
        assert await migrate(conns[0]) == (SCHEMA_VERSION, SCHEMA_VERSION)
    finally:
        for conn in conns:
            await conn.close()


async def test_a_version_1_schema_migrates_the_respondent_into_its_own_column(
    unmigrated: PostgresBackend,
) -> None:
    before = stored_before_v3()
    admin = await unmigrated.connect()
    try:
        # Version 1 exactly as its step made it, with the web channel's partitions.
        await admin.execute(postgres._SCHEMA_TABLE)
        await admin.execute(postgres._STEPS[0])
        await admin.execute("INSERT INTO voxloop_schema VALUES ('store', 1)")
        for table in ("events", "aggregates"):
            await admin.execute(
                f"CREATE TABLE {table}_web PARTITION OF {table} FOR VALUES IN ('web')"
            )
        await admin.executemany(
            "INSERT INTO events (channel, project, key, id, ts_ms, form, metric, score, vote_key,"
            " counted, held, received_ms, body)"
            " VALUES ('web', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)",
            [
                (p, r.key, r.id, r.ts_ms, r.form, r.metric, r.score, r.vote_key, counted, held)
                + (NOW_MS, body_before_v3(r))
                for p, r, counted, held in before
            ],
        )
        await admin.executemany(
            "INSERT INTO aggregates VALUES ('web', $1, $2, $3, $4, $5, $6)", aggregates_of(before)
        )
        columns = "project, key, id, ts_ms, form, metric, score, vote_key, counted, held"
        order = "ORDER BY project, id"
        events = await admin.fetch(f"SELECT {columns} FROM events {order}")
        bodies = await admin.fetch(f"SELECT project, id, body::text FROM events {order}")

        assert await migrate(admin) == (1, SCHEMA_VERSION)

        assert await admin.fetch(f"SELECT {columns} FROM events {order}") == events
        aggregates = await admin.fetch(
            "SELECT project, metric, form, hour, score, count FROM aggregates"
            " ORDER BY project, metric, form, hour, score"
        )
        assert [tuple(row) for row in aggregates] == aggregates_of(before)
        days = await admin.fetch(
            "SELECT project, metric, form, day, score, count FROM aggregates_daily"
            " ORDER BY project, metric, form, day, score"
        )
        assert [tuple(row) for row in days] == days_of(aggregates_of(before))
        hashes = {(p, r.id): r.respondent for p, r, _, _ in before}
        moved = await admin.fetch(f"SELECT project, id, respondent, body::text FROM events {order}")
        for (project, id_, respondent, body), (_, _, old) in zip(moved, bodies, strict=True):
            assert respondent == hashes[(project, id_)]
            kept = json.loads(old)
            kept.pop("respondent", None)
            assert json.loads(body) == kept and "respondent" not in body

        # A scan by respondent uses the channel partition's index (with the table's statistics:
        # without them, later versions' indexes on (channel, project, ...) look as good).
        await admin.execute("ANALYZE events")
        async with admin.transaction():
            await admin.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(
                row[0]
                for row in await admin.fetch(
                    "EXPLAIN SELECT key FROM events"
                    " WHERE channel = 'web' AND project = $1 AND respondent = $2",
                    PROJECT,
                    "x",
                )
            )
        assert "Index" in plan and "events_web_channel_project_respondent_idx" in plan, plan

        pool = await unmigrated.pool()
        web, app = PostgresStore(pool, "web"), PostgresStore(pool, "app")
        try:
            await web.open()
            await app.open()  # a partition made after the migration gets the index too
            indexes = await admin.fetch(
                "SELECT tablename FROM pg_indexes WHERE indexdef LIKE '%respondent%'"
                " AND schemaname = current_schema()"
            )
            assert {row[0] for row in indexes} == {"events", "events_web", "events_app"}
            for project in (PROJECT, "globex"):
                for metric in ("nps", "csat"):
                    assert await web.hourly(project, metric) == await web.scan(project, metric)
            # New rows write the column; a vote changed after the migration moves the aggregates.
            new, vote = make_records(
                event(id="new", respondent="user-9", comment="ok"),
                event(id="v4", score=10, vote_key="email:x", ts=NOW_MS + 1000),
            )
            assert await web.write(PROJECT, [new, vote]) == WriteResult(2, 0)
            row = await admin.fetchrow("SELECT respondent, body::text FROM events WHERE id = 'new'")
            assert tuple(row) == (new.respondent, '{"comment": "ok"}')
            counted = await admin.fetch(
                "SELECT id FROM events WHERE vote_key IS NOT NULL AND counted"
            )
            assert [row[0] for row in counted] == ["v4"]
            await assert_consistent(web, (PROJECT, "globex"))
        finally:
            await web.close()
            await app.close()
            await pool.close()
        assert await migrate(admin) == (SCHEMA_VERSION, SCHEMA_VERSION)
    finally:
        await admin.close()


# --- partitions -----------------------------------------------------------------------------


async def partitions(admin: asyncpg.Connection) -> set[tuple[str, str]]:
    rows = await admin.fetch(
        "SELECT parent.relname, child.relname FROM pg_inherits"
        " JOIN pg_class AS parent ON parent.oid = inhparent"
        " JOIN pg_class AS child ON child.oid = inhrelid"
        " WHERE parent.relkind = 'p' AND child.relkind = 'r'"
        " AND child.relnamespace = current_schema()::regnamespace"
    )
    return {(parent, child) for parent, child in rows}


async def test_open_creates_the_channel_partitions_once(
    postgres: PostgresBackend, admin: asyncpg.Connection
) -> None:
    assert await partitions(admin) == set()
    pools = [await postgres.pool(), await postgres.pool()]
    try:
        # Two replicas opening the same new channel at once: one creates, neither fails.
        stores = [PostgresStore(pool, "web") for pool in pools]
        await asyncio.gather(*(store.open() for store in stores))
        assert await partitions(admin) == {
            ("events", "events_web"),
            ("aggregates", "aggregates_web"),
        }
        for store in stores:
            await store.close()
    finally:
        for pool in pools:
            await pool.close()


async def test_two_channels_are_kept_in_their_own_partitions(
    postgres: PostgresBackend, admin: asyncpg.Connection
) -> None:
    pool = await postgres.pool()
    web, app = PostgresStore(pool, "web"), PostgresStore(pool, "app-2")
    try:
        await web.open()
        await app.open()
        (on_web,) = make_records(event(id="same", score=10))
        # A channel the registry adds (core's default policy knows only web, app and email).
        on_app = msgspec.structs.replace(
            make_records(event(id="same", score=0))[0], channel="app-2"
        )
        assert await web.write(PROJECT, [on_web]) == WriteResult(1, 0)
        assert await app.write(PROJECT, [on_app]) == WriteResult(1, 0)

        assert await web.hourly(PROJECT, "nps") == {("checkout", NOW_MS): [0] * 10 + [1]}
        assert await app.hourly(PROJECT, "nps") == {("checkout", NOW_MS): [1] + [0] * 10}
        rows = await admin.fetch("SELECT tableoid::regclass::text, channel FROM events")
        assert sorted(tuple(row) for row in rows) == [
            ('"events_app-2"', "app-2"),
            ("events_web", "web"),
        ]
        rows = await admin.fetch("SELECT DISTINCT tableoid::regclass::text FROM aggregates")
        assert sorted(row[0] for row in rows) == ['"aggregates_app-2"', "aggregates_web"]
    finally:
        await web.close()
        await app.close()
        await pool.close()


def test_long_channel_names_get_distinct_partition_names() -> None:
    first, second = "a" * 63 + "1", "a" * 63 + "2"
    names = {partition_name(t, c) for t in ("events", "aggregates") for c in (first, second)}
    assert len(names) == 4
    assert all(len(name) <= 63 for name in names)
    assert partition_name("events", "web") == "events_web"
    with pytest.raises(ValueError, match="channel must be"):
        PostgresStore(None, "Web; DROP TABLE events")


# --- replicas -------------------------------------------------------------------------------


async def test_two_replicas_store_every_event_once(
    replicas: list[PostgresStore], admin: asyncpg.Connection
) -> None:
    rng = random.Random(7)
    for round_ in range(4):
        records = make_records(
            *(
                event(
                    id=f"r{round_}-{i}",
                    score=rng.randint(0, 10),
                    ts=NOW_MS - rng.randrange(0, 4) * HOUR_MS - rng.randrange(1000),
                    vote_key=rng.choice([None, None, "alice", "bob"]),
                )
                for i in range(120)
            )
        )
        # Each replica gets every record three times, in slices of its own, all at once.
        writes = []
        for store in replicas:
            for _ in range(3):
                shuffled = rng.sample(records, len(records))
                cuts = sorted(rng.sample(range(1, len(records)), 5))
                for start, end in zip([0, *cuts], [*cuts, len(records)], strict=True):
                    writes.append(store.write(PROJECT, shuffled[start:end]))
        results = await asyncio.gather(*writes)

        assert sum(r.stored for r in results) == len(records)
        assert sum(r.duplicates for r in results) == len(records) * 5
    count = await admin.fetchval("SELECT count(*) FROM events")
    assert count == 4 * 120
    await assert_consistent(replicas[0])
    for store in replicas:
        assert await store.hourly(PROJECT, "nps") == await replicas[0].scan(PROJECT, "nps")
    # Exactly one counted vote per voter and hour-independent group; every other event counts.
    voters = await admin.fetch(
        "SELECT vote_key, count(*) FILTER (WHERE counted) FROM events"
        " WHERE vote_key IS NOT NULL GROUP BY vote_key"
    )
    assert [row[1] for row in voters] == [1, 1]  # alice and bob (as keyed hashes)


async def test_concurrent_vote_changes_on_two_replicas_count_once(
    replicas: list[PostgresStore], admin: asyncpg.Connection
) -> None:
    rng = random.Random(11)
    for round_ in range(5):
        vote_key = f"email:c-{round_}"
        clicks = make_records(
            *(
                event(
                    id=f"{round_}-{i:02d}",
                    score=rng.randint(0, 10),
                    ts=NOW_MS - rng.randrange(10_000),
                    vote_key=vote_key,
                )
                for i in range(30)
            )
        )
        writes = [
            replicas[rng.randrange(2)].write(PROJECT, [click])
            for click in clicks + rng.sample(clicks, 10)  # and some retries
        ]
        results = await asyncio.gather(*writes)
        assert sum(r.stored for r in results) == 30

        best = max(clicks, key=lambda r: (r.ts_ms, r.id or "", r.key))
        counted = await admin.fetch(
            "SELECT id FROM events WHERE vote_key = $1 AND counted", best.vote_key
        )
        assert [row["id"] for row in counted] == [best.id]
        await assert_consistent(replicas[rng.randrange(2)])


async def test_concurrent_email_clicks_on_two_replicas_keep_aggregates_exact(
    replicas: list[PostgresStore], admin: asyncpg.Connection
) -> None:
    # Judged clicks depend on arrival order (a burst is quarantined), but whatever the order:
    # at most one vote of a recipient counts, and it is the greatest of those not held.
    rule = VoteRule(edit_window_ms=60_000, burst_ms=5_000)
    rng = random.Random(13)
    for round_ in range(6):
        vote_key = f"email:r-{round_}"
        clicks = make_records(
            *(
                event(
                    id=f"{round_}-{i}",
                    score=rng.randint(0, 10),
                    ts=NOW_MS - i,
                    **{"vote_key": vote_key},
                )
                for i in range(rng.randint(1, 6))
            )
        )
        await asyncio.gather(
            *(replicas[rng.randrange(2)].write(PROJECT, [c], rule=rule) for c in clicks)
        )
        rows = await admin.fetch(
            "SELECT id, ts_ms, key, counted, held FROM events WHERE vote_key = $1",
            clicks[0].vote_key,
        )
        assert len(rows) == len(clicks)
        free = [row for row in rows if row["held"] is None]
        counted = [row["id"] for row in rows if row["counted"]]
        if free:
            best = max(free, key=lambda row: (row["ts_ms"], row["id"], row["key"]))
            assert counted == [best["id"]]
        else:
            assert counted == []
        if len({c.score for c in clicks}) >= 3:
            assert not free  # three scores within seconds: all held as a scanner's burst
    for store in replicas:
        await assert_consistent(store)
        held = await store.quarantined(PROJECT, "nps")
        count = await admin.fetchval("SELECT count(*) FROM events WHERE held = 'quarantined'")
        assert sum(map(sum, held.values())) == count


# --- PostgreSQL going away ------------------------------------------------------------------


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    relay = Proxy()
    await relay.restore()
    try:
        yield relay
    finally:
        await relay.close()


@pytest.fixture
async def proxied(postgres: PostgresBackend, proxy: Proxy) -> AsyncIterator[PostgresStore]:
    """A store whose pool reaches PostgreSQL only through ``proxy``."""
    pool = await postgres.pool(dsn=proxied_dsn(proxy.port), min_size=2, timeout=2)
    store = PostgresStore(pool, "web")
    await store.open()
    try:
        yield store
    finally:
        await store.close()
        pool.terminate()


async def test_writes_fail_while_postgres_is_away_and_the_store_recovers(
    proxied: PostgresStore, proxy: Proxy, admin: asyncpg.Connection
) -> None:
    records = make_records(*(event(id=f"e{i}", score=i % 11) for i in range(12)))
    assert await proxied.write(PROJECT, records[:4]) == WriteResult(4, 0)

    await proxy.cut()

    with pytest.raises(StoreUnavailable, match="channel 'web' could not commit"):
        await proxied.write(PROJECT, records[4:8])
    assert not await proxied.writable()
    with pytest.raises(StoreUnavailable, match="could not be read"):
        await proxied.hourly(PROJECT, "nps")
    assert proxied.pending == 0

    await proxy.restore()

    assert await proxied.writable()  # the same store, without a restart
    assert await proxied.write(PROJECT, records) == WriteResult(8, 4)
    assert await admin.fetchval("SELECT count(*) FROM events") == 12
    await assert_consistent(proxied)


async def test_postgres_going_away_mid_load_never_reports_unstored_writes(
    proxied: PostgresStore, proxy: Proxy, admin: asyncpg.Connection
) -> None:
    batches = [
        make_records(*(event(id=f"b{b}-{i}", score=(b + i) % 11) for i in range(50)))
        for b in range(60)
    ]

    async def write(batch: list[Record]) -> WriteResult | None:
        await asyncio.sleep(random.uniform(0, 0.2))
        try:
            return await proxied.write(PROJECT, batch)
        except StoreUnavailable:
            return None

    load = [asyncio.create_task(write(batch)) for batch in batches]
    await asyncio.sleep(0.1)
    await proxy.cut()
    results = await asyncio.gather(*load)
    await proxy.restore()

    stored = {row["id"] for row in await admin.fetch("SELECT id FROM events")}
    succeeded = [batch for batch, result in zip(batches, results, strict=True) if result]
    failed = [batch for batch, result in zip(batches, results, strict=True) if not result]
    assert failed and succeeded, "the cut missed the load: nothing was tested"
    for batch in succeeded:  # a WriteResult means committed
        assert {r.id for r in batch} <= stored
    # Retries of everything that failed store each event once, whatever had been committed.
    for batch in failed:
        assert (await proxied.write(PROJECT, batch)).stored + (
            await proxied.write(PROJECT, batch)
        ).stored <= len(batch)
    assert await admin.fetchval("SELECT count(*) FROM events") == 60 * 50
    await assert_consistent(proxied)


async def test_terminated_connections_are_replaced_not_reused(
    postgres: PostgresBackend, admin: asyncpg.Connection
) -> None:
    pool = await postgres.pool(min_size=3, max_size=3)
    store = PostgresStore(pool, "web")
    await store.open()
    try:
        records = make_records(*(event(id=f"e{i}", score=i % 11) for i in range(10)))
        assert await store.write(PROJECT, records[:1]) == WriteResult(1, 0)
        ours = "application_name = $1 AND pid <> pg_backend_pid()"
        name = f"voxloop-test-{postgres.schema}"
        killed = await admin.fetchval(
            f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {ours}", name
        )
        assert killed == 3

        # Each dead connection may fail at most one write; then only fresh ones serve.
        failures = 0
        for record in records[1:]:
            for _ in range(4):  # the retries a client would send
                try:
                    assert await store.write(PROJECT, [record]) == WriteResult(1, 0)
                    break
                except StoreUnavailable:
                    failures += 1
        assert failures <= 3
        assert await store.writable()
        assert await admin.fetchval("SELECT count(*) FROM events") == 10
        await assert_consistent(store)
    finally:
        await store.close()
        await pool.close()


async def test_a_pool_that_cant_connect_answers_unavailable(postgres: PostgresBackend) -> None:
    with pytest.raises((OSError, asyncpg.PostgresError)):
        await asyncpg.connect(proxied_dsn(1), timeout=2)
    # A pool whose connections all fail (nothing listens there) makes a store that can't open.
    pool = await asyncpg.create_pool(proxied_dsn(1), min_size=0, timeout=2)
    try:
        store = PostgresStore(pool, "web")
        with pytest.raises(StoreUnavailable, match="can't open the store of channel 'web'"):
            await store.open()
        assert not await store.writable()
    finally:
        await pool.close()


async def test_nul_characters_in_tags_and_meta_dont_fail_the_commit(
    postgres: PostgresBackend, admin: asyncpg.Connection
) -> None:
    pool = await postgres.pool()
    store = PostgresStore(pool, "web")
    await store.open()
    try:
        poisoned, clean = make_records(
            event(id="nul", tags=["a\x00b"], meta={"k\x00": "v\x00", "path": "C:\\u0000"}),
            event(id="clean"),
        )
        assert await store.write(PROJECT, [poisoned, clean]) == WriteResult(2, 0)
        body = await admin.fetchval("SELECT body::text FROM events WHERE id = 'nul'")
        assert body == '{"meta": {"k": "v", "path": "C:\\\\u0000"}, "tags": ["ab"]}'
    finally:
        await store.close()
        await pool.close()
