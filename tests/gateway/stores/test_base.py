"""The Store contract on both backends: group commits, exact aggregates, votes, backpressure.

Every test here runs once on a SQLite file and once on PostgreSQL (the ``backend`` fixture,
ids ``sqlite`` and ``postgresql``); what only one backend has is tested in ``test_sqlite.py``
and ``test_postgres.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxloop_gateway.stores as stores
from voxloop_core import DAY_MS, METRIC_RANGES, Record
from voxloop_gateway.stores import (
    ALL_FORMS,
    Histograms,
    Store,
    StoreBusy,
    StoreError,
    StoreUnavailable,
    WriteResult,
)

from .conftest import HOUR_MS, NOW_MS, PROJECT, Backend, Session, event, make_records

PROJECTS = ("acme", "globex")
FORMS = ("checkout", "support")
METRICS = tuple(METRIC_RANGES)
PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,  # real files and a real server: an example's time says nothing
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        # ``backend`` is made once per test; each example starts from emptied data
        # (``session(fresh=True)``), so nothing leaks from one example to the next.
        HealthCheck.function_scoped_fixture,
    ],
)
#: Options of stores the properties write through: durability is not what they test.
FAST = {"sqlite": {"synchronous": "NORMAL"}, "postgresql": {}}

Written = list[tuple[str, Record]]


async def assert_aggregates_equal_scan(store: Store, projects: Sequence[str]) -> None:
    for project in projects:
        for metric in METRICS:
            hourly = await store.hourly(project, metric)
            assert hourly == await store.scan(project, metric)
            await assert_rollups_add_up(store, project, metric, hourly)


async def assert_rollups_add_up(
    store: Store, project: str, metric: str, hourly: Histograms, **window: Any
) -> None:
    """Every step, per form or not, of every form or of one, gives ``hourly`` (the window's
    hours) added up in Python."""
    one = {key: counts for key, counts in hourly.items() if key[0] == FORMS[0]}
    for step in ("hour", "day", "window"):
        for per_form in (True, False):
            read = await store.hourly(project, metric, step=step, per_form=per_form, **window)
            assert read == rolled_up(hourly, step, per_form), (step, per_form)
            read = await store.hourly(
                project, metric, forms=FORMS[:1], step=step, per_form=per_form, **window
            )
            assert read == rolled_up(one, step, per_form), (step, per_form, FORMS[0])


def rolled_up(hourly: Histograms, step: str, per_form: bool) -> Histograms:
    """``hourly`` added up by ``step`` (and over the forms unless ``per_form``), in Python:
    what the store's read must give."""
    out: Histograms = {}
    for (form, hour), counts in hourly.items():
        start = {"hour": hour, "day": hour - hour % DAY_MS, "window": 0}[step]
        into = out.setdefault((form if per_form else ALL_FORMS, start), [0] * len(counts))
        for i, n in enumerate(counts):
            into[i] += n
    return out


async def counted_keys(session: Session, store: Store) -> set[tuple[str, bytes]]:
    return {(e.project, e.key) for e in await session.events(store) if e.counted}


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
    store: Store, written: Written, cuts: Sequence[int], concurrently: bool
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


async def test_write_counts_stored_and_duplicates(store: Store) -> None:
    a, b, c = make_records(event(id="a"), event(id="b", score=3), event(id="c", score=0))

    assert await store.write(PROJECT, [a, b]) == WriteResult(stored=2, duplicates=0)
    assert await store.write(PROJECT, [a, b, c]) == WriteResult(stored=1, duplicates=2)
    assert await store.write(PROJECT, [c, c]) == WriteResult(stored=0, duplicates=2)
    assert await store.write(PROJECT, []) == WriteResult(stored=0, duplicates=0)
    assert await store.write("another-project", [a]) == WriteResult(stored=1, duplicates=0)


async def test_duplicates_within_one_write_are_stored_once(session: Session, store: Store) -> None:
    (d,) = make_records(event(id="d"))

    assert await store.write(PROJECT, [d, d, d]) == WriteResult(stored=1, duplicates=2)
    assert len(await session.events(store)) == 1


async def test_same_key_in_two_concurrent_writes_is_stored_by_the_first(store: Store) -> None:
    # Same id, different content: the id is the idempotency key, the first arrival wins.
    first, second = make_records(event(id="same", score=10), event(id="same", score=0))

    results = await asyncio.gather(store.write(PROJECT, [first]), store.write(PROJECT, [second]))

    assert results == [WriteResult(1, 0), WriteResult(0, 1)]
    (histogram,) = (await store.scan(PROJECT, "nps")).values()
    assert histogram[10] == 1 and sum(histogram) == 1


async def test_same_records_written_many_times_concurrently_are_stored_once(
    session: Session, store: Store
) -> None:
    records = make_records(
        *(event(id=f"e{i:03d}", score=i % 11, ts=NOW_MS - i * 60_000) for i in range(300))
    )

    results = await asyncio.gather(*(store.write(PROJECT, records) for _ in range(40)))

    assert sum(r.stored for r in results) == 300
    assert sum(r.duplicates for r in results) == 300 * 39
    assert len(await session.events(store)) == 300
    assert await store.hourly(PROJECT, "nps") == await store.scan(PROJECT, "nps")
    assert sum(map(sum, (await store.hourly(PROJECT, "nps")).values())) == 300
    assert store.pending == 0


async def test_a_large_write_stores_exactly_the_keys_not_held(
    session: Session, store: Store
) -> None:
    # 700 records, more than one insert statement takes: every third key already stored, and
    # some twice in the write; each stored once, the first of the write winning.
    records = make_records(
        *(event(id=f"k{i:03d}", score=i % 11, ts=NOW_MS - i * 60_000) for i in range(700))
    )
    held = records[::3]
    assert await store.write(PROJECT, held) == WriteResult(len(held), 0)
    (late,) = make_records(event(id="k001", score=0, ts=NOW_MS - 60_000))
    write = [*records, *records[:50], late]

    assert await store.write(PROJECT, write) == WriteResult(700 - len(held), len(held) + 51)

    stored = await session.events(store)
    assert len(stored) == 700
    assert await store.hourly(PROJECT, "nps") == await store.scan(PROJECT, "nps")
    assert sum(map(sum, (await store.scan(PROJECT, "nps")).values())) == 700
    first = await store.response(PROJECT, late.key)
    assert first is not None and first.score == 1  # k001 as the write's first record of it


async def test_a_read_by_day_adds_up_only_the_windows_hours(store: Store) -> None:
    # Events every 50 minutes over four days; a window from 7 o'clock of the second day to
    # 5 o'clock of the fourth: its first and last days hold only the hours inside it.
    day0 = NOW_MS - NOW_MS % DAY_MS - 4 * DAY_MS
    records = make_records(
        *(event(id=f"d{i:03d}", score=i % 11, ts=day0 + i * 50 * 60_000) for i in range(110))
    )
    await store.write(PROJECT, records)
    start, end = day0 + DAY_MS + 7 * HOUR_MS, day0 + 3 * DAY_MS + 5 * HOUR_MS
    hourly = await store.hourly(PROJECT, "nps", start_ms=start, end_ms=end)
    daily = await store.hourly(PROJECT, "nps", start_ms=start, end_ms=end, step="day")
    assert daily == rolled_up(hourly, "day", True)
    await assert_rollups_add_up(store, PROJECT, "nps", hourly, start_ms=start, end_ms=end)
    inside_a_day = {"start_ms": day0 + DAY_MS + 7 * HOUR_MS, "end_ms": day0 + DAY_MS + 9 * HOUR_MS}
    hours = await store.hourly(PROJECT, "nps", **inside_a_day)
    assert hours
    await assert_rollups_add_up(store, PROJECT, "nps", hours, **inside_a_day)
    assert sorted(day for _, day in daily) == [day0 + DAY_MS, day0 + 2 * DAY_MS, day0 + 3 * DAY_MS]
    inside = sum(1 for r in records if start <= r.ts_ms - r.ts_ms % HOUR_MS < end)
    assert sum(map(sum, daily.values())) == inside > 0


async def test_duplicates_are_recognised_after_close_and_reopen(session: Session) -> None:
    records = make_records(*(event(id=f"e{i}", score=i) for i in range(10)))
    first = session.make()
    await first.open()
    assert await first.write(PROJECT, records[:6]) == WriteResult(6, 0)
    await first.close()

    again = session.make()
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
    backend: Backend,
    pairs: list[tuple[str, dict[str, Any]]],
    cuts: list[int],
    concurrently: bool,
    rewrites: int,
) -> None:
    # Ids repeat with different content, votes change, retries come back: whatever arrives,
    # each write is one commit that keeps aggregates equal to the counted events.
    written = to_written(pairs)

    async def scenario() -> None:
        async with backend.session(fresh=True) as session:
            store = session.make(**FAST[backend.name])
            await store.open()
            try:
                results: list[WriteResult] = []
                for _ in range(rewrites + 1):
                    results += await write_in_batches(store, written, cuts, concurrently)
                await assert_aggregates_equal_scan(store, PROJECTS)
                distinct = {(p, r.key) for p, r in written}
                assert sum(r.stored for r in results) == len(distinct)
                assert sum(r.stored + r.duplicates for r in results) == len(written) * (
                    rewrites + 1
                )
                assert len(await session.events(store)) == len(distinct)
            finally:
                await store.close()

    asyncio.run(scenario())


# --- votes ----------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(data=st.data())
def test_vote_outcome_is_independent_of_arrival_order(
    backend: Backend, data: st.DataObject
) -> None:
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

    async def outcome(order: Written) -> tuple[object, ...]:
        cuts = data.draw(st.lists(st.integers(0, len(order)), max_size=6), label="cuts")
        concurrently = data.draw(st.booleans(), label="concurrently")
        async with backend.session(fresh=True) as session:
            store = session.make(**FAST[backend.name])
            await store.open()
            try:
                await write_in_batches(store, order, cuts, concurrently)
                histograms = {
                    (project, metric): await store.hourly(project, metric)
                    for project in PROJECTS
                    for metric in METRICS
                }
                await assert_aggregates_equal_scan(store, PROJECTS)
                return histograms, await counted_keys(session, store)
            finally:
                await store.close()

    outcomes = []
    for attempt in range(2):
        order = data.draw(st.permutations(written), label=f"order {attempt}")
        outcomes.append(asyncio.run(outcome(order)))

    expected = (
        {
            (project, metric): expected_histograms.get((project, metric), {})
            for project in PROJECTS
            for metric in METRICS
        },
        expected_counted,
    )
    assert outcomes[0] == outcomes[1] == expected


async def test_vote_history_is_kept_and_only_the_latest_vote_counts(
    session: Session, store: Store
) -> None:
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

    rows = [(e.id, e.counted) for e in await session.events(store)]
    assert rows == [("v1", 0), ("v2", 0), ("v3", 1), ("w1", 1), ("x1", 1)]
    assert await store.hourly(PROJECT, "csat") == {
        ("checkout", NOW_MS): [0, 1, 0, 0, 1],
        ("onboarding", NOW_MS): [0, 0, 0, 1, 0],
    }
    assert await store.hourly(PROJECT, "csat") == await store.scan(PROJECT, "csat")


async def test_vote_changed_to_another_hour_and_metric_moves_the_aggregates(
    session: Session, store: Store
) -> None:
    before, after = make_records(
        event(id="a", metric="nps", score=0, ts=NOW_MS - HOUR_MS, vote_key="k"),
        event(id="b", metric="thumbs", score=1, ts=NOW_MS + 5, vote_key="k"),
    )
    await store.write(PROJECT, [before])
    assert await store.hourly(PROJECT, "nps") == {("checkout", NOW_MS - HOUR_MS): [1] + [0] * 10}

    await store.write(PROJECT, [after])

    assert await store.hourly(PROJECT, "nps") == {}  # emptied rows are removed, not left at 0
    assert await store.hourly(PROJECT, "nps", step="day") == {}
    assert await store.hourly(PROJECT, "thumbs") == {("checkout", NOW_MS): [0, 1]}
    day = NOW_MS - NOW_MS % DAY_MS
    assert await store.hourly(PROJECT, "thumbs", step="day") == {("checkout", day): [0, 1]}
    assert [row for row in await session.aggregates(store) if row[-1] <= 0] == []
    assert [row for row in await session.aggregates(store, daily=True) if row[-1] <= 0] == []


async def test_vote_ties_are_broken_by_id_then_key(session: Session, store: Store) -> None:
    same_time = {"metric": "thumbs", "ts": NOW_MS, "vote_key": "k"}
    with_b, with_a, without_id, upper_z = make_records(
        event(id="b", score=1, **same_time),
        event(id="a", score=0, **same_time),
        event(score=0, **same_time),
        # "Z" < "a" < "b" as Python (and SQLite) compare text; a locale's collation would
        # put "Z" last.
        event(id="Z", score=0, **same_time),
    )

    await store.write(PROJECT, [with_a, without_id])
    await store.write(PROJECT, [with_b])
    await store.write(PROJECT, [upper_z])

    assert [e.id for e in await session.events(store) if e.counted] == ["b"]
    assert await store.hourly(PROJECT, "thumbs") == {("checkout", NOW_MS): [0, 1]}


# --- reads ----------------------------------------------------------------------------------


async def test_hourly_filters_by_forms_and_hour_range(store: Store) -> None:
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


async def test_hours_before_1970_are_floored_like_python(store: Store) -> None:
    # SQL's % keeps the dividend's sign; the hour of a negative ts must still be its floor.
    # validate refuses such a ts (retention), so a valid record is moved there.
    old = msgspec.structs.replace(make_records(event(id="old"))[0], ts_ms=-HOUR_MS - 1)
    assert await store.write(PROJECT, [old]) == WriteResult(1, 0)
    expected = {("checkout", old.ts_ms - old.ts_ms % HOUR_MS): [0] * 9 + [1, 0]}
    assert await store.hourly(PROJECT, "nps") == await store.scan(PROJECT, "nps") == expected


# --- backpressure and lifecycle -------------------------------------------------------------


async def test_write_over_max_pending_raises_store_busy(session: Session) -> None:
    store = session.make(max_pending=10)
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


async def test_close_lets_queued_writes_commit(session: Session) -> None:
    store = session.make()
    await store.open()
    records = make_records(*(event(id=f"e{i}") for i in range(20)))
    writes = [asyncio.create_task(store.write(PROJECT, [record])) for record in records]
    await asyncio.sleep(0)  # every write is queued

    await store.close()

    assert [w.result() for w in writes] == [WriteResult(1, 0)] * 20
    assert len(await session.events(store)) == 20


async def test_write_after_close_raises_store_unavailable(session: Session) -> None:
    store = session.make()
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


async def test_records_of_another_channel_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="got channel 'app'"):
        await store.write(PROJECT, make_records(event(channel="app")))
    assert store.pending == 0


async def test_text_of_any_script_and_meta_is_stored_as_sent(
    session: Session, store: Store
) -> None:
    (record,) = make_records(
        event(
            id="i18n",
            comment="خیلی خوب بود\u200c! 很好 👍",
            locale="fa-IR",
            tags=["موبایل", "x"],
            meta={"plan": "pro", "cart_value": 129.5, "n": 2**62, "ok": True},
        )
    )
    assert await store.write(PROJECT, [record]) == WriteResult(1, 0)
    (stored,) = await session.events(store)
    assert stored.comment == record.comment


# --- email clicks: the edit window, scanner bursts, comments ------------------------------

RULE = stores.VoteRule(edit_window_ms=60_000, burst_ms=5_000)


def email_click(view: str, score: int, ts: int = NOW_MS, **fields: Any) -> dict[str, Any]:
    return event(id=view, score=score, ts=ts, vote_key="email:c-1", **fields)


async def test_a_burst_of_three_scores_is_quarantined_retroactively(
    session: Session, store: Store
) -> None:
    first, second, third = make_records(
        *(email_click(f"v{s}", s, ts=NOW_MS + i) for i, s in enumerate((9, 3, 6)))
    )
    await store.write(PROJECT, [first], rule=RULE)
    await store.write(PROJECT, [second], rule=RULE)
    # Two scores are a change of mind: the later one counts.
    assert [(e.id, e.counted, e.held) for e in await session.events(store)] == [
        ("v3", 1, None),
        ("v9", 0, None),
    ]
    await store.write(PROJECT, [third], rule=RULE)
    rows = [(e.id, e.counted, e.held) for e in await session.events(store)]
    assert rows == [("v3", 0, "quarantined"), ("v6", 0, "quarantined"), ("v9", 0, "quarantined")]
    assert await store.hourly(PROJECT, "nps") == {}
    assert await store.quarantined(PROJECT, "nps") == {
        ("checkout", NOW_MS): [0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0]
    }
    await assert_aggregates_equal_scan(store, [PROJECT])


async def test_a_burst_within_one_group_commit_is_quarantined(
    session: Session, store: Store
) -> None:
    clicks = make_records(*(email_click(f"v{s}", s, ts=NOW_MS + s) for s in (9, 3, 6)))

    await asyncio.gather(*(store.write(PROJECT, [click], rule=RULE) for click in clicks))

    assert {(e.counted, e.held) for e in await session.events(store)} == {(0, "quarantined")}
    assert await store.hourly(PROJECT, "nps") == {}
    await assert_aggregates_equal_scan(store, [PROJECT])


async def test_thumbs_needs_both_scores_for_a_burst(session: Session, store: Store) -> None:
    down, up = make_records(
        email_click("d", 0, metric="thumbs"), email_click("u", 1, metric="thumbs")
    )
    await store.write(PROJECT, [down], rule=RULE)
    await store.write(PROJECT, [up], rule=RULE)
    assert [e for e in await session.events(store) if e.held is None] == []


async def test_a_click_past_the_edit_window_is_history_only(session: Session, store: Store) -> None:
    late_rule = stores.VoteRule(edit_window_ms=0, burst_ms=5_000)
    first, later = make_records(email_click("a", 9), email_click("b", 2, ts=NOW_MS + 1))
    await store.write(PROJECT, [first], rule=late_rule)
    await asyncio.sleep(0.002)  # received a millisecond or more after the first
    await store.write(PROJECT, [later], rule=late_rule)
    rows = [(e.id, e.counted, e.held) for e in await session.events(store)]
    assert rows == [("a", 1, None), ("b", 0, "late")]
    await assert_aggregates_equal_scan(store, [PROJECT])


async def test_a_scanners_burst_does_not_start_the_edit_window(
    session: Session, store: Store
) -> None:
    # A scanner clicks every score at delivery; the person clicks after the edit window (but
    # while the link is valid): theirs is the first vote that could count, so it counts.
    rule = stores.VoteRule(edit_window_ms=50, burst_ms=10_000)
    scanned = make_records(*(email_click(f"s{i}", i, ts=NOW_MS + i) for i in (0, 5, 10)))
    (person,) = make_records(email_click("p", 8, ts=NOW_MS + 100))
    await store.write(PROJECT, scanned, rule=rule)
    await asyncio.sleep(0.1)
    rule = stores.VoteRule(edit_window_ms=50, burst_ms=10)  # the burst is long over
    await store.write(PROJECT, [person], rule=rule)
    rows = {e.id: (e.counted, e.held) for e in await session.events(store)}
    assert rows == {
        "s0": (0, "quarantined"),
        "s5": (0, "quarantined"),
        "s10": (0, "quarantined"),
        "p": (1, None),
    }
    await assert_aggregates_equal_scan(store, [PROJECT])


async def test_a_comment_attaches_only_to_its_own_vote(session: Session, store: Store) -> None:
    (click,) = make_records(email_click("v1", 7))
    await store.write(PROJECT, [click], rule=RULE)
    assert click.vote_key is not None
    assert await store.attach_comment(PROJECT, click.key, click.vote_key, "Thanks! ممنون")
    assert not await store.attach_comment(PROJECT, click.key, "another", "Not mine")
    assert not await store.attach_comment("globex", click.key, click.vote_key, "Not mine")
    assert [e.comment for e in await session.events(store)] == ["Thanks! ممنون"]
    await assert_aggregates_equal_scan(store, [PROJECT])


async def test_a_repeated_click_of_the_counted_score_keeps_its_comment(
    session: Session, store: Store
) -> None:
    # Click 8, comment; open the email again and click 8: the answer, comment included, stays.
    first, again, changed, own = make_records(
        email_click("v1", 8),
        email_click("v2", 8, ts=NOW_MS + 1),
        email_click("v3", 6, ts=NOW_MS + 2),
        email_click("v4", 6, ts=NOW_MS + 3, comment="Slow delivery"),
    )
    assert first.vote_key is not None
    await store.write(PROJECT, [first], rule=RULE)
    assert await store.attach_comment(PROJECT, first.key, first.vote_key, "Great support")
    await store.write(PROJECT, [again], rule=RULE)
    rows = [(e.id, e.counted, e.held, e.comment) for e in await session.events(store)]
    assert rows == [("v1", 0, None, "Great support"), ("v2", 1, None, "Great support")]
    assert await store.hourly(PROJECT, "nps") == {
        ("checkout", NOW_MS): [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]
    }
    # Another score starts without the comment written for the 8; the 8s keep theirs as history.
    await store.write(PROJECT, [changed], rule=RULE)
    rows = [(e.id, e.counted, e.comment) for e in await session.events(store)]
    assert rows == [("v1", 0, "Great support"), ("v2", 0, "Great support"), ("v3", 1, None)]
    # A click with a comment of its own keeps its own.
    await store.write(PROJECT, [own], rule=RULE)
    assert [(e.id, e.counted, e.comment) for e in await session.events(store)][2:] == [
        ("v3", 0, None),
        ("v4", 1, "Slow delivery"),
    ]
    assert await store.hourly(PROJECT, "nps") == {
        ("checkout", NOW_MS): [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    }
    await assert_aggregates_equal_scan(store, [PROJECT])


async def test_a_repeated_click_that_does_not_count_carries_nothing(
    session: Session, store: Store
) -> None:
    late_rule = stores.VoteRule(edit_window_ms=0, burst_ms=5_000)
    first, late = make_records(email_click("a", 8), email_click("b", 8, ts=NOW_MS + 1))
    assert first.vote_key is not None
    await store.write(PROJECT, [first], rule=late_rule)
    assert await store.attach_comment(PROJECT, first.key, first.vote_key, "Great support")
    await asyncio.sleep(0.002)  # received a millisecond or more after the first
    await store.write(PROJECT, [late], rule=late_rule)
    rows = [(e.id, e.counted, e.held, e.comment) for e in await session.events(store)]
    assert rows == [("a", 1, None, "Great support"), ("b", 0, "late", None)]
    await assert_aggregates_equal_scan(store, [PROJECT])
