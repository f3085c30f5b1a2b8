"""The SQLite channel store: durable group commits, exact aggregates, votes, backpressure."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxloop_gateway.stores as stores
from voxloop_core import METRIC_RANGES, Record
from voxloop_gateway.stores import (
    Histograms,
    SqliteStore,
    StoreBusy,
    StoreError,
    StoreUnavailable,
    WriteResult,
)

from .conftest import HOUR_MS, NOW_MS, PROJECT, event, make_records, query_file

PROJECTS = ("acme", "globex")
FORMS = ("checkout", "support")
METRICS = tuple(METRIC_RANGES)
PROPERTY_SETTINGS = settings(
    max_examples=50,
    deadline=None,  # real files: an example's time says nothing about correctness
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Written = list[tuple[str, Record]]


async def assert_aggregates_equal_scan(store: SqliteStore, projects: Sequence[str]) -> None:
    for project in projects:
        for metric in METRICS:
            assert await store.hourly(project, metric) == await store.scan(project, metric)


def counted_keys(path: pathlib.Path) -> set[tuple[str, bytes]]:
    return {(p, k) for p, k in query_file(path, "SELECT project, key FROM events WHERE counted")}


def vote_rank(record: Record) -> tuple[int, str, bytes]:
    return (record.ts_ms, record.id or "", record.key)


def reference(written: Written) -> tuple[dict[tuple[str, str], Histograms], set[tuple[str, bytes]]]:
    """What the store must hold after ``written``, computed the slow, obvious way.

    Only valid when repeated keys are exact repeats (the first arrival is then irrelevant).
    """
    stored: dict[tuple[str, bytes], Record] = {}
    for project, record in written:
        stored.setdefault((project, record.key), record)
    winners: dict[tuple[str, str, str], tuple[str, bytes]] = {}
    counted: set[tuple[str, bytes]] = set()
    for (project, key), record in stored.items():
        if record.vote_key is None:
            counted.add((project, key))
            continue
        group = (project, record.form, record.vote_key)
        best = winners.get(group)
        if best is None or vote_rank(record) > vote_rank(stored[best]):
            winners[group] = (project, key)
    counted.update(winners.values())
    histograms: dict[tuple[str, str], Histograms] = {}
    for project, key in counted:
        record = stored[(project, key)]
        low, high = METRIC_RANGES[record.metric]
        hour = record.ts_ms - record.ts_ms % HOUR_MS
        by_hour = histograms.setdefault((project, record.metric), {})
        by_hour.setdefault((record.form, hour), [0] * (high - low + 1))[record.score - low] += 1
    return histograms, counted


async def write_in_batches(
    store: SqliteStore, written: Written, cuts: Sequence[int], concurrently: bool
) -> list[WriteResult]:
    """Write ``written`` in slices cut at ``cuts``, one project per write call."""
    bounds = sorted({0, len(written), *(c % (len(written) + 1) for c in cuts)})
    calls: list[tuple[str, list[Record]]] = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        for project in PROJECTS:
            chunk = [r for p, r in written[start:end] if p == project]
            if chunk:
                calls.append((project, chunk))
    if concurrently:
        return list(await asyncio.gather(*(store.write(p, rs) for p, rs in calls)))
    return [await store.write(p, rs) for p, rs in calls]


@st.composite
def client_events(
    draw: st.DrawFn, ids: st.SearchStrategy[str | None]
) -> tuple[str, dict[str, Any]]:
    """A (project, event) pair over a few forms, hours and voters, so that they collide."""
    metric = draw(st.sampled_from(METRICS))
    low, high = METRIC_RANGES[metric]
    fields: dict[str, Any] = {
        "form": draw(st.sampled_from(FORMS)),
        "metric": metric,
        "score": draw(st.integers(low, high)),
        "ts": NOW_MS - draw(st.sampled_from([0, 1, 1_000, HOUR_MS - 1, HOUR_MS, 3 * HOUR_MS])),
    }
    event_id = draw(ids)
    if event_id is not None:
        fields["id"] = event_id
    vote_key = draw(st.sampled_from([None, None, "alice", "bob"]))
    if vote_key is not None:
        fields["vote_key"] = vote_key
    return draw(st.sampled_from(PROJECTS)), event(**fields)


def to_written(pairs: list[tuple[str, dict[str, Any]]]) -> Written:
    records = make_records(*(fields for _, fields in pairs))
    return [(project, record) for (project, _), record in zip(pairs, records, strict=True)]


# --- the public surface ---------------------------------------------------------------------


def test_public_surface_is_sorted_and_complete() -> None:
    public = {
        name
        for name, value in vars(stores).items()
        if not name.startswith("_")
        and not isinstance(value, type(stores))
        and name != "annotations"
    }
    assert stores.__all__ == sorted(stores.__all__)
    assert set(stores.__all__) == public
    assert issubclass(StoreBusy, StoreError) and issubclass(StoreUnavailable, StoreError)


# --- stored and duplicates ------------------------------------------------------------------


async def test_write_counts_stored_and_duplicates(store: SqliteStore) -> None:
    a, b, c = make_records(event(id="a"), event(id="b", score=3), event(id="c", score=0))

    assert await store.write(PROJECT, [a, b]) == WriteResult(stored=2, duplicates=0)
    assert await store.write(PROJECT, [a, b, c]) == WriteResult(stored=1, duplicates=2)
    assert await store.write(PROJECT, [c, c]) == WriteResult(stored=0, duplicates=2)
    assert await store.write(PROJECT, []) == WriteResult(stored=0, duplicates=0)
    assert await store.write("another-project", [a]) == WriteResult(stored=1, duplicates=0)


async def test_duplicates_within_one_write_are_stored_once(store: SqliteStore) -> None:
    (d,) = make_records(event(id="d"))

    assert await store.write(PROJECT, [d, d, d]) == WriteResult(stored=1, duplicates=2)
    assert query_file(store.path, "SELECT count(*) FROM events") == [(1,)]


async def test_same_key_in_two_concurrent_writes_is_stored_by_the_first(
    store: SqliteStore,
) -> None:
    # Same id, different content: the id is the idempotency key, the first arrival wins.
    first, second = make_records(event(id="same", score=10), event(id="same", score=0))

    results = await asyncio.gather(store.write(PROJECT, [first]), store.write(PROJECT, [second]))

    assert results == [WriteResult(1, 0), WriteResult(0, 1)]
    (histogram,) = (await store.scan(PROJECT, "nps")).values()
    assert histogram[10] == 1 and sum(histogram) == 1


async def test_same_records_written_many_times_concurrently_are_stored_once(
    store: SqliteStore,
) -> None:
    records = make_records(
        *(event(id=f"e{i:03d}", score=i % 11, ts=NOW_MS - i * 60_000) for i in range(300))
    )

    results = await asyncio.gather(*(store.write(PROJECT, records) for _ in range(40)))

    assert sum(r.stored for r in results) == 300
    assert sum(r.duplicates for r in results) == 300 * 39
    assert query_file(store.path, "SELECT count(*) FROM events") == [(300,)]
    assert await store.hourly(PROJECT, "nps") == await store.scan(PROJECT, "nps")
    assert sum(map(sum, (await store.hourly(PROJECT, "nps")).values())) == 300
    assert store.pending == 0


async def test_duplicates_are_recognised_after_close_and_reopen(
    store_path: pathlib.Path,
) -> None:
    records = make_records(*(event(id=f"e{i}", score=i) for i in range(10)))
    first = SqliteStore(store_path, "web")
    await first.open()
    assert await first.write(PROJECT, records[:6]) == WriteResult(6, 0)
    await first.close()

    again = SqliteStore(store_path, "web")
    await again.open()
    try:
        assert await again.write(PROJECT, records) == WriteResult(stored=4, duplicates=6)
        assert await again.hourly(PROJECT, "nps") == {("checkout", NOW_MS): [1] * 10 + [0]}
    finally:
        await again.close()


# --- aggregates equal a scan ----------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    pairs=st.lists(
        client_events(ids=st.one_of(st.none(), st.sampled_from([f"id-{i}" for i in range(12)]))),
        min_size=1,
        max_size=40,
    ),
    cuts=st.lists(st.integers(0, 40), max_size=5),
    concurrently=st.booleans(),
    rewrites=st.integers(0, 2),
)
def test_aggregates_equal_scan_after_mixed_writes(
    pairs: list[tuple[str, dict[str, Any]]], cuts: list[int], concurrently: bool, rewrites: int
) -> None:
    # Ids repeat with different content, votes change, retries come back: whatever arrives,
    # each write is one commit that keeps aggregates equal to the counted events.
    written = to_written(pairs)

    async def scenario(path: pathlib.Path) -> None:
        store = SqliteStore(path, "web", synchronous="NORMAL")
        await store.open()
        try:
            results: list[WriteResult] = []
            for _ in range(rewrites + 1):
                results += await write_in_batches(store, written, cuts, concurrently)
            await assert_aggregates_equal_scan(store, PROJECTS)
        finally:
            await store.close()
        distinct = {(p, r.key) for p, r in written}
        assert sum(r.stored for r in results) == len(distinct)
        assert sum(r.stored + r.duplicates for r in results) == len(written) * (rewrites + 1)
        assert query_file(path, "SELECT count(*) FROM events") == [(len(distinct),)]

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(scenario(pathlib.Path(folder) / "web.sqlite3"))


# --- votes ----------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(data=st.data())
def test_vote_outcome_is_independent_of_arrival_order(data: st.DataObject) -> None:
    # Unique ids (or none): a repeated key is always an exact repeat, so only votes decide.
    n = data.draw(st.integers(1, 30), label="n")
    ids = data.draw(st.permutations([f"id-{i:02d}" for i in range(30)]), label="ids")
    pairs = [
        data.draw(client_events(ids=st.sampled_from([None, ids[i]])), label=f"event {i}")
        for i in range(n)
    ]
    repeats = data.draw(st.lists(st.integers(0, n - 1), max_size=5), label="repeats")
    written = to_written(pairs + [pairs[i] for i in repeats])
    expected_histograms, expected_counted = reference(written)

    async def outcome(path: pathlib.Path, order: Written) -> tuple[object, ...]:
        cuts = data.draw(st.lists(st.integers(0, len(order)), max_size=6), label="cuts")
        concurrently = data.draw(st.booleans(), label="concurrently")
        store = SqliteStore(path, "web", synchronous="NORMAL")
        await store.open()
        try:
            await write_in_batches(store, order, cuts, concurrently)
            histograms = {
                (project, metric): await store.hourly(project, metric)
                for project in PROJECTS
                for metric in METRICS
            }
            await assert_aggregates_equal_scan(store, PROJECTS)
        finally:
            await store.close()
        return histograms, counted_keys(path)

    outcomes = []
    with tempfile.TemporaryDirectory() as folder:
        for attempt in range(2):
            order = data.draw(st.permutations(written), label=f"order {attempt}")
            path = pathlib.Path(folder) / f"web-{attempt}.sqlite3"
            outcomes.append(asyncio.run(outcome(path, order)))

    expected = (
        {
            (project, metric): expected_histograms.get((project, metric), {})
            for project in PROJECTS
            for metric in METRICS
        },
        expected_counted,
    )
    assert outcomes[0] == outcomes[1] == expected


async def test_vote_history_is_kept_and_only_the_latest_vote_counts(store: SqliteStore) -> None:
    vote = {"metric": "csat", "vote_key": "2026-11-nps/alice"}
    middle, latest, earliest, other_voter, other_form = make_records(
        event(id="v2", score=3, ts=NOW_MS + 2_000, **vote),
        event(id="v3", score=5, ts=NOW_MS + 3_000, **vote),
        event(id="v1", score=1, ts=NOW_MS + 1_000, **vote),
        event(id="w1", score=2, ts=NOW_MS, metric="csat", vote_key="2026-11-nps/bob"),
        event(id="x1", score=4, ts=NOW_MS, form="onboarding", **vote),
    )

    for record in (middle, latest, earliest, other_voter, other_form):
        assert await store.write(PROJECT, [record]) == WriteResult(1, 0)

    rows = query_file(store.path, "SELECT id, counted FROM events ORDER BY id")
    assert rows == [("v1", 0), ("v2", 0), ("v3", 1), ("w1", 1), ("x1", 1)]
    assert await store.hourly(PROJECT, "csat") == {
        ("checkout", NOW_MS): [0, 1, 0, 0, 1],
        ("onboarding", NOW_MS): [0, 0, 0, 1, 0],
    }
    assert await store.hourly(PROJECT, "csat") == await store.scan(PROJECT, "csat")


async def test_vote_changed_to_another_hour_and_metric_moves_the_aggregates(
    store: SqliteStore,
) -> None:
    before, after = make_records(
        event(id="a", metric="nps", score=0, ts=NOW_MS - HOUR_MS, vote_key="k"),
        event(id="b", metric="thumbs", score=1, ts=NOW_MS + 5, vote_key="k"),
    )
    await store.write(PROJECT, [before])
    assert await store.hourly(PROJECT, "nps") == {("checkout", NOW_MS - HOUR_MS): [1] + [0] * 10}

    await store.write(PROJECT, [after])

    assert await store.hourly(PROJECT, "nps") == {}  # emptied rows are removed, not left at 0
    assert await store.hourly(PROJECT, "thumbs") == {("checkout", NOW_MS): [0, 1]}
    assert query_file(store.path, "SELECT count(*) FROM aggregates WHERE count <= 0") == [(0,)]


async def test_vote_ties_are_broken_by_id_then_key(store: SqliteStore) -> None:
    same_time = {"metric": "thumbs", "ts": NOW_MS, "vote_key": "k"}
    with_b, with_a, without_id = make_records(
        event(id="b", score=1, **same_time),
        event(id="a", score=0, **same_time),
        event(score=0, **same_time),
    )

    await store.write(PROJECT, [with_a, without_id])
    await store.write(PROJECT, [with_b])

    assert query_file(store.path, "SELECT id FROM events WHERE counted") == [("b",)]
    assert await store.hourly(PROJECT, "thumbs") == {("checkout", NOW_MS): [0, 1]}


# --- reads ----------------------------------------------------------------------------------


async def test_hourly_filters_by_forms_and_hour_range(store: SqliteStore) -> None:
    h0, h1, h2 = NOW_MS - 2 * HOUR_MS, NOW_MS - HOUR_MS, NOW_MS
    await store.write(
        PROJECT,
        make_records(
            *(
                event(id=f"{form}-{hour}", form=form, score=10, ts=hour + 59_000)
                for form in ("checkout", "onboarding")
                for hour in (h0, h1, h2)
            ),
            event(id="csat", metric="csat", score=4, ts=h1),
        ),
    )
    await store.write("globex", make_records(event(id="elsewhere", ts=h1)))
    one = [0] * 10 + [1]

    everything = await store.hourly(PROJECT, "nps")
    assert sorted(everything) == [(f, h) for f in ("checkout", "onboarding") for h in (h0, h1, h2)]
    assert set(await store.hourly(PROJECT, "nps", forms=["onboarding"])) == {
        ("onboarding", h0),
        ("onboarding", h1),
        ("onboarding", h2),
    }
    assert await store.hourly(PROJECT, "nps", forms=[]) == {}
    assert await store.hourly(PROJECT, "nps", forms=["checkout"], start_ms=h1, end_ms=h2) == {
        ("checkout", h1): one
    }
    # An hour belongs to a range by its start: start_ms inside h1 leaves h1 out.
    assert set(await store.hourly(PROJECT, "nps", start_ms=h1 + 1)) == {
        ("checkout", h2),
        ("onboarding", h2),
    }
    assert set(await store.hourly(PROJECT, "nps", end_ms=h1)) == {
        ("checkout", h0),
        ("onboarding", h0),
    }
    assert await store.hourly(PROJECT, "csat") == {("checkout", h1): [0, 0, 0, 1, 0]}
    assert await store.hourly("globex", "nps") == {("checkout", h1): [0] * 9 + [1, 0]}
    for filters in ({}, {"forms": ["checkout"]}, {"start_ms": h1 + 1}, {"end_ms": h2}):
        assert await store.hourly(PROJECT, "nps", **filters) == await store.scan(
            PROJECT, "nps", **filters
        )
    with pytest.raises(ValueError, match="unknown metric 'stars'"):
        await store.hourly(PROJECT, "stars")


# --- backpressure and lifecycle -------------------------------------------------------------


async def test_write_over_max_pending_raises_store_busy(store_path: pathlib.Path) -> None:
    store = SqliteStore(store_path, "web", max_pending=10)
    await store.open()
    try:
        records = make_records(*(event(id=f"e{i}") for i in range(11)))
        with pytest.raises(StoreBusy, match="at most 10") as caught:
            await store.write(PROJECT, records)
        assert caught.value.retry_after > 0

        first = asyncio.create_task(store.write(PROJECT, records[:6]))
        await asyncio.sleep(0)  # the task runs up to its wait for the commit
        assert store.pending == 6
        with pytest.raises(StoreBusy):
            await store.write(PROJECT, records[6:])
        assert await first == WriteResult(6, 0)
        assert store.pending == 0
        assert await store.write(PROJECT, records[6:]) == WriteResult(5, 0)
    finally:
        await store.close()


async def test_close_lets_queued_writes_commit(store_path: pathlib.Path) -> None:
    store = SqliteStore(store_path, "web")
    await store.open()
    records = make_records(*(event(id=f"e{i}") for i in range(20)))
    writes = [asyncio.create_task(store.write(PROJECT, [record])) for record in records]
    await asyncio.sleep(0)  # every write is queued

    await store.close()

    assert [w.result() for w in writes] == [WriteResult(1, 0)] * 20
    assert query_file(store_path, "SELECT count(*) FROM events") == [(20,)]


async def test_write_after_close_raises_store_unavailable(store_path: pathlib.Path) -> None:
    store = SqliteStore(store_path, "web")
    records = make_records(event(id="late"))
    with pytest.raises(StoreUnavailable, match="'web' is not open"):
        await store.write(PROJECT, records)
    assert not await store.writable()
    await store.open()
    assert await store.writable()

    await store.close()
    await store.close()  # closing twice is fine

    with pytest.raises(StoreUnavailable, match="'web' is closed"):
        await store.write(PROJECT, records)
    assert not await store.writable()


async def test_records_of_another_channel_are_refused(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="got channel 'app'"):
        await store.write(PROJECT, make_records(event(channel="app")))
    assert store.pending == 0


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
    pairs = [
        ("acme", event(id=f"e{i}", score=i % 11, vote_key=f"voter-{i % 3}" if i % 2 else None))
        for i in range(50)
    ]
    for project, record in to_written(pairs):
        await store.write(project, [record])

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


# --- email clicks: the edit window, scanner bursts, comments ------------------------------

RULE = stores.VoteRule(edit_window_ms=60_000, burst_ms=5_000)


def email_click(view: str, score: int, ts: int = NOW_MS, **fields: Any) -> dict[str, Any]:
    return event(id=view, score=score, ts=ts, vote_key="email:c-1", **fields)


async def test_a_burst_of_three_scores_is_quarantined_retroactively(store: SqliteStore) -> None:
    first, second, third = make_records(
        *(email_click(f"v{s}", s, ts=NOW_MS + i) for i, s in enumerate((9, 3, 6)))
    )
    await store.write(PROJECT, [first], rule=RULE)
    await store.write(PROJECT, [second], rule=RULE)
    # Two scores are a change of mind: the later one counts.
    assert query_file(store.path, "SELECT id, counted, held FROM events ORDER BY id") == [
        ("v3", 1, None),
        ("v9", 0, None),
    ]
    await store.write(PROJECT, [third], rule=RULE)
    rows = query_file(store.path, "SELECT id, counted, held FROM events ORDER BY id")
    assert rows == [("v3", 0, "quarantined"), ("v6", 0, "quarantined"), ("v9", 0, "quarantined")]
    assert await store.hourly(PROJECT, "nps") == {}
    assert await store.quarantined(PROJECT, "nps") == {
        ("checkout", NOW_MS): [0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0]
    }
    await assert_aggregates_equal_scan(store, [PROJECT])


async def test_thumbs_needs_both_scores_for_a_burst(store: SqliteStore) -> None:
    down, up = make_records(
        email_click("d", 0, metric="thumbs"), email_click("u", 1, metric="thumbs")
    )
    await store.write(PROJECT, [down], rule=RULE)
    await store.write(PROJECT, [up], rule=RULE)
    assert query_file(store.path, "SELECT count(*) FROM events WHERE held IS NULL") == [(0,)]


async def test_a_click_past_the_edit_window_is_history_only(store: SqliteStore) -> None:
    late_rule = stores.VoteRule(edit_window_ms=0, burst_ms=5_000)
    first, later = make_records(email_click("a", 9), email_click("b", 2, ts=NOW_MS + 1))
    await store.write(PROJECT, [first], rule=late_rule)
    await asyncio.sleep(0.002)  # received a millisecond or more after the first
    await store.write(PROJECT, [later], rule=late_rule)
    rows = query_file(store.path, "SELECT id, counted, held FROM events ORDER BY id")
    assert rows == [("a", 1, None), ("b", 0, "late")]
    await assert_aggregates_equal_scan(store, [PROJECT])


async def test_a_comment_attaches_only_to_its_own_vote(store: SqliteStore) -> None:
    (click,) = make_records(email_click("v1", 7))
    await store.write(PROJECT, [click], rule=RULE)
    assert click.vote_key is not None
    assert await store.attach_comment(PROJECT, click.key, click.vote_key, "Thanks!")
    assert not await store.attach_comment(PROJECT, click.key, "another", "Not mine")
    assert not await store.attach_comment("globex", click.key, click.vote_key, "Not mine")
    assert query_file(store.path, "SELECT body ->> '$.comment' FROM events") == [("Thanks!",)]


async def test_a_version_1_file_is_upgraded_in_place(store_path: pathlib.Path) -> None:
    store_path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(store_path, isolation_level=None)) as db:
        db.executescript(V1_SCHEMA)
        db.execute(
            "INSERT INTO events VALUES (1, 'acme', x'00112233445566778899aabbccddeeff', 'old',"
            f" {NOW_MS}, 'checkout', 'nps', 9, NULL, 1, {NOW_MS}, '{{}}')"
        )
    upgraded = SqliteStore(store_path, "web")
    await upgraded.open()
    try:
        assert query_file(store_path, "PRAGMA user_version") == [(stores.sqlite.SCHEMA_VERSION,)]
        assert query_file(store_path, "SELECT id, held FROM events") == [("old", None)]
        (vote,) = make_records(event(id="new", score=3))
        assert await upgraded.write(PROJECT, [vote]) == WriteResult(1, 0)
    finally:
        await upgraded.close()


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
