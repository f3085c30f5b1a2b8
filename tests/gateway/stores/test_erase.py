"""Erasure on both backends: events leave with their counts, vote groups re-rank, tombstones.

Every series (the hourly and daily aggregate rows, each read of the stats, the scan, the
quarantined votes) is checked against a recount, made here in Python, of what must remain.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import voxloop_gateway.stores as stores
from voxloop_core import HOUR_MS, METRIC_RANGES, Record
from voxloop_gateway.stores import (
    Erased,
    Histograms,
    PostgresStore,
    ResponseFilter,
    Selection,
    SqliteStore,
    Store,
    WriteResult,
    sqlite,
)
from voxloop_gateway.stores import postgres as postgres_store

from .conftest import (
    NOW_MS,
    PROJECT,
    Backend,
    PostgresBackend,
    PostgresSession,
    Session,
    aggregates_of,
    days_of,
    event,
    make_records,
    query_file,
)
from .test_base import (
    FAST,
    FORMS,
    METRICS,
    PROPERTY_SETTINGS,
    assert_aggregates_equal_scan,
    client_events,
    reference,
    to_written,
)

RULE = stores.VoteRule(edit_window_ms=60_000, burst_ms=5_000)
#: Far enough ahead for any test: a tombstone that outlives it.
LATER_MS = NOW_MS + 365 * 86_400_000
#: (project, record, counted, held): what a store must hold, as ``aggregates_of`` reads it.
Expected = list[tuple[str, Record, bool, str | None]]


def pseudonym(respondent: str) -> str:
    """The keyed hash a store holds for the client's ``respondent``."""
    (record,) = make_records(event(respondent=respondent))
    assert record.respondent is not None
    return record.respondent


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def matches(selection: Selection, record: Record) -> bool:
    """Whether ``selection`` names ``record``: the rule of ``Store.erase``, written plainly."""
    return (
        (selection.respondent is None or record.respondent == selection.respondent)
        and (selection.form is None or record.form == selection.form)
        and (selection.start_ms is None or record.ts_ms >= selection.start_ms)
        and (selection.end_ms is None or record.ts_ms < selection.end_ms)
    )


def ranked(expected: Iterable[tuple[str, Record, str | None]]) -> Expected:
    """``(project, record, held)`` with ``counted`` recomputed: an event without a vote key
    counts, and of each vote group the latest vote that isn't held."""
    rows = list(expected)
    best: dict[tuple[str, str, str], tuple[int, str, bytes]] = {}
    for project, record, held in rows:
        if record.vote_key is not None and held is None:
            group = (project, record.form, record.vote_key)
            rank = (record.ts_ms, record.id or "", record.key)
            best[group] = max(best.get(group, rank), rank)
    return [
        (
            project,
            record,
            record.vote_key is None
            or (held is None and best[(project, record.form, record.vote_key)][2] == record.key),
            held,
        )
        for project, record, held in rows
    ]


def quarantined_of(expected: Expected, project: str, metric: str) -> Histograms:
    """The quarantined votes of ``expected`` as ``Store.quarantined`` reads them."""
    low, high = METRIC_RANGES[metric]
    out: Histograms = {}
    for owner, record, _, held in expected:
        if owner == project and record.metric == metric and held == "quarantined":
            hour = record.ts_ms - record.ts_ms % HOUR_MS
            counts = out.setdefault((record.form, hour), [0] * (high - low + 1))
            counts[record.score - low] += 1
    return out


async def assert_recounted(session: Session, store: Store, expected: Expected) -> None:
    """Every series of ``store`` equals the recount of ``expected``, and it holds just those."""
    hourly = aggregates_of(expected)
    assert await session.aggregates(store) == hourly
    assert await session.aggregates(store, daily=True) == days_of(hourly)
    projects = sorted({project for project, *_ in expected} | {PROJECT})
    await assert_aggregates_equal_scan(store, projects)
    for project in projects:
        for metric in METRICS:
            want = quarantined_of(expected, project, metric)
            assert await store.quarantined(project, metric) == want
    held = sorted((e.project, e.key, e.counted, e.held) for e in await session.events(store))
    assert held == sorted((p, r.key, int(counted), h) for p, r, counted, h in expected)


async def table_rows(session: Session, store: Store, table: str) -> int:
    """How many rows of ``table`` (revisions, tombstones) ``store``'s channel has."""
    if isinstance(store, SqliteStore):
        return int(query_file(store.path, f"SELECT count(*) FROM {table}")[0][0])
    assert isinstance(session, PostgresSession)
    found = await session.admin.fetchval(
        f"SELECT count(*) FROM {table} WHERE channel = $1", store.channel
    )
    return int(found)


@contextlib.asynccontextmanager
async def opened(session: Session, channel: str = "web", **options: Any) -> Any:
    store = session.make(channel, **options)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


# --- a respondent in every channel ------------------------------------------------------------


def answers(channel: str) -> tuple[list[tuple[Record, str | None, bool]], list[Record]]:
    """One channel's answers of two people: ``(record, held, by_click)`` in the order written,
    and which of them are person ``r-1``'s. Each has plain answers, a changed vote, and on
    email the rating links' clicks (a change of score, and a scanner's burst)."""
    hours_ago = [NOW_MS - n * HOUR_MS for n in range(21)]
    fields = [
        event(id="p1", respondent="r-1", comment="call me on 0612", ts=hours_ago[3]),
        event(id="p2", respondent="r-2", score=3, ts=hours_ago[3]),
        event(id="p3", respondent="r-1", metric="csat", score=4, form="support"),
        event(id="v1", respondent="r-1", score=5, vote_key="form:1", ts=NOW_MS - 2000),
        event(id="v2", respondent="r-1", score=8, vote_key="form:1", ts=NOW_MS - 1000),
        event(id="w1", respondent="r-2", score=2, vote_key="form:2", ts=NOW_MS - 2000),
        event(id="w2", respondent="r-2", score=6, vote_key="form:2", ts=NOW_MS - 1000),
    ]
    held: list[str | None] = [None] * len(fields)
    if channel == "email":
        clicks = [
            event(id="c1", respondent="r-1", score=9, vote_key="email:c-1", ts=hours_ago[20]),
            event(id="c2", respondent="r-1", score=4, vote_key="email:c-1", ts=hours_ago[19]),
        ] + [
            event(id=f"s{s}", respondent="r-1", score=s, vote_key="email:c-2", form="survey")
            for s in (1, 5, 10)
        ]
        fields += clicks
        held += [None, None] + ["quarantined"] * 3
    records = make_records(*({**f, "channel": channel} for f in fields))
    plain = 7  # the answers before the clicks
    written = [(r, h, n >= plain) for n, (r, h) in enumerate(zip(records, held, strict=True))]
    person = [r for r in records if r.respondent == pseudonym("r-1")]
    return written, person


async def test_erasing_a_respondent_in_every_channel_leaves_every_series_equal_to_a_recount(
    session: Session,
) -> None:
    selection = Selection(respondent=pseudonym("r-1"))
    for channel in ("web", "app", "email"):
        written, person = answers(channel)
        async with opened(session, channel) as store:
            for record, _, click in written:  # one by one: the clicks are judged as they come
                await store.write(PROJECT, [record], rule=RULE if click else None)
                await store.write("globex", [record])
            v2 = next(r for r in person if r.id == "v2")
            assert v2.vote_key is not None
            assert await store.attach_comment(PROJECT, v2.key, v2.vote_key, "changed my mind")
            # Only the clicks judged by the rule can be held: globex's are plain votes.
            before = ranked(
                (p, r, h if p == PROJECT else None)
                for r, h, _ in written
                for p in (PROJECT, "globex")
            )
            await assert_recounted(session, store, before)
            assert await store.count(PROJECT, selection) == len(person)

            erased = await store.erase(PROJECT, selection, tombstone_until_ms=LATER_MS)

            assert erased.events == len(person)
            assert sorted(erased.refs) == sorted((r.key, r.vote_key) for r in person)
            remaining = [row for row in before if not (row[0] == PROJECT and row[1] in person)]
            await assert_recounted(session, store, remaining)
            assert await store.count(PROJECT, selection) == 0
            assert await store.count("globex", selection) == len(person)  # another project's
            assert await table_rows(session, store, "revisions") == 0
            assert await store.revisions(0, 10) == []
            found = await store.responses(
                ResponseFilter(project=PROJECT, text="call me"), after=None, limit=10
            )
            assert found == []
            assert {r.id for _, r in await store.log(0, 100) if r.project == PROJECT} == {
                "p2",
                "w1",
                "w2",
            }
            # Erasing again finds nothing and changes nothing.
            assert await store.erase(PROJECT, selection, tombstone_until_ms=LATER_MS) == Erased(
                0, []
            )
            await assert_recounted(session, store, remaining)


async def test_erasing_the_counted_vote_lets_the_next_one_count(session: Session) -> None:
    async with opened(session, "email") as store:
        # Two scores (three would be a scanner's burst): 9, then 4, then 9 again.
        first, second, third = make_records(
            *(
                event(channel="email", id=f"c{n}", score=s, vote_key="email:c-1", ts=NOW_MS - t)
                for n, (s, t) in enumerate(((9, 3 * HOUR_MS), (4, 2 * HOUR_MS), (9, HOUR_MS)))
            )
        )
        changed = make_records(
            *(
                event(channel="email", id=f"f{n}", score=s, vote_key="form:x", ts=NOW_MS - t)
                for n, s, t in ((1, 2, 2000), (2, 10, 1000))
            )
        )
        for record in (first, second, third):
            await store.write(PROJECT, [record], rule=RULE)
        await store.write(PROJECT, changed)
        await assert_recounted(
            session,
            store,
            ranked((PROJECT, r, None) for r in (first, second, third, *changed)),
        )

        # The counted click (the latest) goes: the one before it counts again, in its own hour.
        erased = await store.erase(
            PROJECT,
            Selection(start_ms=NOW_MS - HOUR_MS, end_ms=NOW_MS - HOUR_MS + 1),
            tombstone_until_ms=LATER_MS,
        )
        assert erased.refs == [(third.key, third.vote_key)]
        await assert_recounted(
            session, store, ranked((PROJECT, r, None) for r in (first, second, *changed))
        )
        # A window that holds only the vote that lost: nothing counted moves.
        erased = await store.erase(
            PROJECT,
            Selection(start_ms=NOW_MS - 3 * HOUR_MS, end_ms=NOW_MS - 2 * HOUR_MS),
            tombstone_until_ms=LATER_MS,
        )
        assert erased.refs == [(first.key, first.vote_key)]
        await assert_recounted(
            session, store, ranked((PROJECT, r, None) for r in (second, *changed))
        )
        # The vote changed on a form: its counted one goes, the first answer counts again.
        await store.erase(
            PROJECT, Selection(start_ms=NOW_MS - 1000, end_ms=NOW_MS), tombstone_until_ms=LATER_MS
        )
        await assert_recounted(
            session, store, ranked((PROJECT, r, None) for r in (second, changed[0]))
        )


async def test_a_form_and_a_whole_project_are_erased_and_others_stay(session: Session) -> None:
    async with opened(session) as store:
        records = make_records(
            *(
                event(id=f"e{i}", form=FORMS[i % 2], score=i % 11, ts=NOW_MS - i * 40 * 60_000)
                for i in range(60)
            )
        )
        for project in (PROJECT, "globex"):
            await store.write(project, records)
        keep = [r for r in records if r.form != FORMS[0]]

        erased = await store.erase(PROJECT, Selection(form=FORMS[0]), tombstone_until_ms=LATER_MS)

        assert erased.events == 30
        expected = ranked(
            [(PROJECT, r, None) for r in keep] + [("globex", r, None) for r in records]
        )
        await assert_recounted(session, store, expected)
        assert await store.count(PROJECT, Selection()) == 30

        erased = await store.erase(PROJECT, Selection(), tombstone_until_ms=LATER_MS)

        assert erased.events == 30
        await assert_recounted(session, store, ranked(("globex", r, None) for r in records))
        for metric in METRICS:
            assert await store.hourly(PROJECT, metric) == {}
            assert await store.hourly(PROJECT, metric, step="window", per_form=False) == {}


# --- tombstones -----------------------------------------------------------------------------


async def test_a_tombstone_refuses_a_retry_within_its_time_and_lets_it_in_after(
    session: Session,
) -> None:
    a, b, c = make_records(
        event(id="a", respondent="r-1"), event(id="b", respondent="r-2"), event(id="c")
    )
    async with opened(session) as store:
        await store.write(PROJECT, [a, b, c])
        await store.erase(
            PROJECT, Selection(respondent=pseudonym("r-1")), tombstone_until_ms=LATER_MS
        )
        soon = now_ms() + 300
        await store.erase(PROJECT, Selection(respondent=pseudonym("r-2")), tombstone_until_ms=soon)
        assert await table_rows(session, store, "tombstones") == 2

        # The retries come back, one among new events: refused, not stored, not counted.
        (d,) = make_records(event(id="d", score=2))
        assert await store.write(PROJECT, [a, d, b]) == WriteResult(stored=1, duplicates=2)
        assert await store.write(PROJECT, [a]) == WriteResult(stored=0, duplicates=1)
        await assert_recounted(session, store, ranked((PROJECT, r, None) for r in (c, d)))
        # Another project's event of the same key is its own.
        assert await store.write("globex", [a]) == WriteResult(stored=1, duplicates=0)

        while now_ms() <= soon:
            await asyncio.sleep(0.05)
        assert await store.write(PROJECT, [b]) == WriteResult(stored=1, duplicates=0)
        assert await store.write(PROJECT, [a]) == WriteResult(stored=0, duplicates=1)
        expected = ranked([(PROJECT, r, None) for r in (b, c, d)] + [("globex", a, None)])
        await assert_recounted(session, store, expected)
        # The next erasure removes the tombstone whose time has passed, and keeps the other.
        assert await store.erase(PROJECT, Selection(form="none"), tombstone_until_ms=LATER_MS) == (
            Erased(0, [])
        )
        assert await table_rows(session, store, "tombstones") == 1


async def test_tombstones_refuse_retries_after_the_store_is_opened_again(session: Session) -> None:
    records = make_records(*(event(id=f"e{i}", score=i % 11) for i in range(20)))
    async with opened(session) as store:
        await store.write(PROJECT, records)
        await store.erase(PROJECT, Selection(), tombstone_until_ms=LATER_MS)
    async with opened(session) as store:
        assert await store.write(PROJECT, records) == WriteResult(stored=0, duplicates=20)
        await assert_recounted(session, store, [])


# --- the log ----------------------------------------------------------------------------------


async def test_an_event_stored_after_erasing_the_latest_ones_comes_later_in_the_log(
    session: Session,
) -> None:
    a, b, c, d = make_records(*(event(id=i, respondent=i) for i in "abcd"))
    async with opened(session) as store:
        await store.write(PROJECT, [a, b, c])
        log = await store.log(0, 10)
        last = log[-1][0]
        # The two latest go: a reader already past them must still find the next event.
        for respondent in ("c", "b"):
            await store.erase(
                PROJECT, Selection(respondent=pseudonym(respondent)), tombstone_until_ms=LATER_MS
            )
        await store.write(PROJECT, [d])
        assert [r.id for _, r in await store.log(last, 10)] == ["d"]
        assert [r.id for _, r in await store.log(0, 10)] == ["a", "d"]
    async with opened(session) as store:  # and so after the file is opened again
        (e,) = make_records(event(id="e"))
        await store.write(PROJECT, [e])
        assert [r.id for _, r in await store.log(last, 10)] == ["d", "e"]


# --- a property -----------------------------------------------------------------------------


RESPONDENTS = ("r-1", "r-2", "r-3")
TIMES = (None, NOW_MS - 3 * HOUR_MS, NOW_MS - HOUR_MS, NOW_MS - 1000, NOW_MS)


@st.composite
def answered(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    project, fields = draw(client_events(ids=st.none()))
    respondent = draw(st.sampled_from((None, *RESPONDENTS)))
    if respondent is not None:
        fields["respondent"] = respondent
    return project, fields


selections = st.builds(
    Selection,
    respondent=st.sampled_from((None, *RESPONDENTS)).map(lambda r: r and pseudonym(r)),
    form=st.sampled_from((None, *FORMS)),
    start_ms=st.sampled_from(TIMES),
    end_ms=st.sampled_from(TIMES),
)


@PROPERTY_SETTINGS
@given(
    pairs=st.lists(answered(), min_size=1, max_size=40),
    erasures=st.lists(st.tuples(st.sampled_from(("acme", "globex")), selections), max_size=3),
)
def test_aggregates_equal_a_recount_after_any_erasure(
    backend: Backend, pairs: list[tuple[str, dict[str, Any]]], erasures: list[tuple[str, Selection]]
) -> None:
    written = to_written(pairs)

    async def scenario() -> None:
        async with backend.session(fresh=True) as session:
            store = session.make(**FAST[backend.name])
            await store.open()
            try:
                for project in ("acme", "globex"):
                    await store.write(project, [r for p, r in written if p == project])
                remaining = dict.fromkeys((p, r.key) for p, r in written)
                kept = {(p, r.key): r for p, r in written}
                for project, selection in erasures:
                    gone = {
                        (p, key)
                        for p, key in remaining
                        if p == project and matches(selection, kept[(p, key)])
                    }
                    erased = await store.erase(project, selection, tombstone_until_ms=LATER_MS)
                    assert {(project, key) for key, _ in erased.refs} == gone
                    for pair in gone:
                        del remaining[pair]
                    histograms, counted = reference([(p, kept[(p, k)]) for p, k in remaining])
                    for (p, metric), hourly in histograms.items():
                        assert await store.hourly(p, metric) == hourly
                    await assert_aggregates_equal_scan(store, ("acme", "globex"))
                    assert {
                        (e.project, e.key) for e in await session.events(store) if e.counted
                    } == counted
                # Every retry, after the erasures: none comes back.
                for project in ("acme", "globex"):
                    result = await store.write(project, [r for p, r in written if p == project])
                    assert result.stored == 0
                assert len(await session.events(store)) == len(remaining)
            finally:
                await store.close()

    asyncio.run(scenario())


# --- a replica erasing while another writes -------------------------------------------------


async def test_replicas_erasing_and_writing_at_once_keep_the_aggregates_exact(
    postgres: PostgresBackend,
) -> None:
    # Two replicas of one channel: one writes votes of many groups (every group's votes change
    # as they come), the other erases time windows of them meanwhile.
    async with postgres.session() as session:
        writer, eraser = session.make(), session.make()
        await writer.open()
        await eraser.open()
        try:
            batches = [
                make_records(
                    *(
                        event(
                            id=f"b{n}-{g}",
                            score=(n + g) % 11,
                            vote_key=f"voter-{g}",
                            ts=NOW_MS - (20 - n) * 60_000 - g,
                        )
                        for g in range(40)
                    )
                )
                for n in range(20)
            ]

            async def write() -> None:
                for batch in batches:
                    await writer.write(PROJECT, batch)

            async def erase(writing: asyncio.Task[None]) -> int:
                # Rounds of erasures while the writes go on, and one after them.
                erased, last = 0, False
                while not last:
                    last = writing.done()
                    for n in range(0, 20, 3):
                        start = NOW_MS - (20 - n) * 60_000 - 60_000
                        done = await eraser.erase(
                            PROJECT,
                            Selection(start_ms=start, end_ms=start + 60_000),
                            tombstone_until_ms=LATER_MS,
                        )
                        erased += done.events
                return erased

            writing = asyncio.create_task(write())
            erased = await erase(writing)
            await writing
            assert erased > 0
            await assert_aggregates_equal_scan(writer, (PROJECT,))
            counted = [e for e in await session.events(writer) if e.counted]
            groups = {e.id.split("-")[1] for e in await session.events(writer) if e.id}
            assert len(counted) == len(groups)  # one counted vote per group left
        finally:
            await writer.close()
            await eraser.close()


# --- SIGKILL in the middle of an erasure ----------------------------------------------------

ERASED = "r-erased"
PEOPLE = 20_000


def crowd() -> list[Record]:
    """Many answers of one person (plain ones, and votes changed in many groups), and a few of
    others: an erasure long enough to be killed in the middle of."""
    fields = [
        event(
            id=f"e{i}",
            respondent=ERASED if i % 10 else "someone",
            score=i % 11,
            ts=NOW_MS - (i % 500) * 60_000,
            comment="my number is 0612" if i % 3 == 0 else None,
            vote_key=f"v{i % 2000}" if i % 4 == 0 else None,
        )
        for i in range(PEOPLE)
    ]
    return [
        record
        for start in range(0, PEOPLE, 1000)
        for record in make_records(*fields[start : start + 1000])
    ]


def child(backend: str, where: str) -> None:
    """The process killed: open the store, say so, erase the person (``python -c``)."""

    async def run() -> None:
        if backend == "sqlite":
            store: Store = SqliteStore(pathlib.Path(where), "web")
        else:
            pool = await PostgresBackend(where).pool()
            store = PostgresStore(pool, "web")
        await store.open()
        print("erasing", flush=True)
        await store.erase(
            PROJECT, Selection(respondent=pseudonym(ERASED)), tombstone_until_ms=LATER_MS
        )
        print("erased", flush=True)

    asyncio.run(run())


def start_child(backend: str, where: str) -> subprocess.Popen[str]:
    code = f"from tests.gateway.stores.test_erase import child; child({backend!r}, {where!r})"
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        cwd=pathlib.Path(__file__).parents[3],
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "erasing\n"
    return process


def kill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def reap(process: subprocess.Popen[str]) -> None:
    """Kill the child if a failed test left it running, and close its pipe."""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)
    if process.stdout is not None:
        process.stdout.close()


async def assert_all_or_nothing(session: Session, store: Store, records: list[Record]) -> None:
    person = [r for r in records if r.respondent == pseudonym(ERASED)]
    selection = Selection(respondent=pseudonym(ERASED))
    left = await store.count(PROJECT, selection)
    tombstones = await table_rows(session, store, "tombstones")
    assert (left, tombstones) in ((len(person), 0), (0, len(person)))
    await assert_aggregates_equal_scan(store, (PROJECT,))
    # Erasing again (the whole of it, or nothing more) leaves the same, exact.
    await store.erase(PROJECT, selection, tombstone_until_ms=LATER_MS)
    assert await store.count(PROJECT, selection) == 0
    assert await table_rows(session, store, "tombstones") == len(person)
    others = ranked((PROJECT, r, None) for r in records if r.respondent != pseudonym(ERASED))
    await assert_recounted(session, store, others)


async def write_crowd(store: Store, records: list[Record]) -> None:
    for start in range(0, len(records), 5_000):
        await store.write(PROJECT, records[start : start + 5_000])


async def test_sqlite_an_erasure_killed_in_the_middle_applied_none_of_it(
    tmp_path: pathlib.Path,
) -> None:
    from .conftest import SqliteSession

    session = SqliteSession(tmp_path)
    records = crowd()
    async with opened(session, synchronous="NORMAL") as store:
        await write_crowd(store, records)
    assert isinstance(store, SqliteStore)
    process = start_child("sqlite", str(store.path))
    try:
        # The erasure holds the file's write lock from its first statement to its commit: kill
        # it while the lock is held, that is in the middle of its transaction.
        with contextlib.closing(sqlite3.connect(store.path, timeout=0, isolation_level=None)) as db:
            while True:
                try:
                    db.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:
                    break  # locked: the erasure is under way
                db.execute("ROLLBACK")
                assert process.poll() is None, "the erasure ended before it could be killed"
        kill(process)
    finally:
        reap(process)
    async with opened(session) as store:
        assert await store.count(PROJECT, Selection(respondent=pseudonym(ERASED))) > 0
        await assert_all_or_nothing(session, store, records)


async def test_postgres_an_erasure_killed_in_the_middle_applied_none_of_it(
    postgres: PostgresBackend,
) -> None:
    records = crowd()
    async with postgres.session() as session:
        async with opened(session) as store:
            await write_crowd(store, records)
        process = start_child("postgresql", postgres.schema)
        try:
            # A transaction that wrote has a transaction id: kill the erasure once it has one.
            watch = f"voxloop-test-{postgres.schema}"
            busy = (
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1"
                " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
            )
            while (pid := await session.admin.fetchval(busy, watch)) is None:
                assert process.poll() is None, "the erasure ended before it could be killed"
                await asyncio.sleep(0.005)
            kill(process)
        finally:
            reap(process)
        # The server rolls the transaction back once it sees its client gone.
        gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
        while await session.admin.fetchval(gone, pid):
            await asyncio.sleep(0.05)
        async with opened(session) as store:
            assert await store.count(PROJECT, Selection(respondent=pseudonym(ERASED))) > 0
            await assert_all_or_nothing(session, store, records)


# --- stores made before erasure ---------------------------------------------------------------


async def test_sqlite_a_version_6_file_takes_erasures_once_migrated(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "web.sqlite3"
    records = make_records(event(id="a", respondent="r-1"), event(id="b"))
    async with opened_file(path) as store:
        await store.write(PROJECT, records)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.executescript(
            "DROP TABLE tombstones; DROP TABLE log_end; DROP INDEX revisions_by_key;"
            " PRAGMA user_version = 6;"
        )
    rows = query_file(path, "SELECT * FROM events ORDER BY seq")

    assert sqlite.migrate_file(path) == (6, sqlite.SCHEMA_VERSION)

    assert query_file(path, "SELECT * FROM events ORDER BY seq") == rows
    async with opened_file(path) as store:
        erased = await store.erase(
            PROJECT, Selection(respondent=pseudonym("r-1")), tombstone_until_ms=LATER_MS
        )
        assert erased.events == 1
        assert await store.write(PROJECT, records) == WriteResult(0, 2)
        await assert_aggregates_equal_scan(store, (PROJECT,))


@contextlib.asynccontextmanager
async def opened_file(path: pathlib.Path) -> Any:
    store = SqliteStore(path, "web")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_postgres_a_version_5_schema_takes_erasures_once_migrated(
    postgres: PostgresBackend,
) -> None:
    if True:
        async with postgres.session() as session:
            records = make_records(event(id="a", respondent="r-1"), event(id="b"))
            async with opened(session) as store:
                await store.write(PROJECT, records)
            admin = session.admin
            await admin.execute(
                "DROP TABLE tombstones; DROP INDEX revisions_by_key;"
                " UPDATE voxloop_schema SET version = 5 WHERE component = 'store'"
            )
            assert await postgres_store.migrate(admin) == (5, postgres_store.SCHEMA_VERSION)
            async with opened(session) as store:
                erased = await store.erase(
                    PROJECT, Selection(respondent=pseudonym("r-1")), tombstone_until_ms=LATER_MS
                )
                assert erased.events == 1
                assert await store.write(PROJECT, records) == WriteResult(0, 2)
                await assert_aggregates_equal_scan(store, (PROJECT,))
