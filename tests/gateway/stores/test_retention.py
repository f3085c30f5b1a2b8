"""Retention on both backends: old events removed, or their comment and meta cleared, in
bounded batches, oldest first; the aggregates keep what was counted.

The clock is the caller's: every batch is asked for the events before a time given here.
"""

from __future__ import annotations

import asyncio

import pytest

from voxloop_core import DAY_MS, HOUR_MS, METRIC_RANGES
from voxloop_gateway.stores import ResponseFilter, Selection, Store

from .conftest import NOW_MS, PROJECT, Session, aggregates_of, days_of, event, make_records
from .test_base import METRICS, assert_aggregates_equal_scan
from .test_erase import now_ms, ranked, table_rows

#: Retention of 30 days, as the caller's clock has it.
CUTOFF = NOW_MS - 30 * DAY_MS


async def batches(store: Store, mode: str, limit: int, project: str = PROJECT) -> list[int]:
    """Every batch of retention until there is nothing left to do: what each changed."""
    done = []
    while changed := await store.expire(project, CUTOFF, mode, limit):  # type: ignore[arg-type]
        assert 0 < changed <= limit
        done.append(changed)
    return done


async def comments(store: Store, project: str = PROJECT) -> dict[str | None, object]:
    page = await store.responses(ResponseFilter(project=project), after=None, limit=100)
    return {r.id: (r.comment, r.meta, r.tags, r.locale) for r in page}


async def test_delete_removes_old_events_oldest_first_and_keeps_their_counts(
    session: Session, store: Store
) -> None:
    old = make_records(
        *(
            event(id=f"old{i}", score=i % 11, ts=CUTOFF - (7 - i) * DAY_MS - i * HOUR_MS)
            for i in range(7)
        ),
        event(id="vote-a", score=2, vote_key="v", ts=CUTOFF - 2 * DAY_MS),
        event(id="vote-b", score=9, vote_key="v", ts=CUTOFF - DAY_MS),
        event(id="edge", score=5, ts=CUTOFF - 1),
    )
    new = make_records(
        event(id="at-cutoff", score=1, ts=CUTOFF),
        event(id="new", score=3, ts=NOW_MS, comment="kept"),
        event(id="vote-c", score=7, vote_key="w", ts=NOW_MS - 1000),
    )
    await store.write(PROJECT, old + new)
    await store.write("globex", old)
    written = ranked([(PROJECT, r, None) for r in old + new] + [("globex", r, None) for r in old])
    hourly, daily = await session.aggregates(store), await session.aggregates(store, daily=True)
    assert hourly == aggregates_of(written) and daily == days_of(hourly)
    assert await store.count_expired(PROJECT, CUTOFF, "delete") == len(old)

    first = await store.expire(PROJECT, CUTOFF, "delete", 4)

    assert first == 4  # the four oldest
    left = {e.id for e in await session.events(store) if e.project == PROJECT}
    assert left == {
        "old4",
        "old5",
        "old6",
        "vote-a",
        "vote-b",
        "edge",
        "at-cutoff",
        "new",
        "vote-c",
    }
    assert await batches(store, "delete", 4) == [4, 2]
    assert await store.count_expired(PROJECT, CUTOFF, "delete") == 0
    left = {e.id for e in await session.events(store) if e.project == PROJECT}
    assert left == {"at-cutoff", "new", "vote-c"}
    # The counts of the past stay: every aggregate row and every read of them as before...
    assert await session.aggregates(store) == hourly
    assert await session.aggregates(store, daily=True) == daily
    # ...while a scan finds only what is left: the aggregates are the scan plus what went.
    assert await scanned(store, PROJECT) == aggregates_of(ranked((PROJECT, r, None) for r in new))
    gone = ranked((PROJECT, r, None) for r in old)
    assert sorted(await scanned(store, PROJECT) + aggregates_of(gone)) == sorted(
        row for row in hourly if row[0] == PROJECT
    )
    # Another project's events are its own retention's.
    assert len([e for e in await session.events(store) if e.project == "globex"]) == len(old)
    # New votes of a group still count as before.
    await assert_aggregates_equal_scan(store, ("globex",))


async def scanned(store: Store, project: str) -> list[tuple[str, str, str, int, int, int]]:
    """A scan of ``project``'s counted events, as aggregate rows (``aggregates_of``'s shape)."""
    rows = []
    for metric in METRICS:
        low = METRIC_RANGES[metric][0]
        for (form, hour), counts in (await store.scan(project, metric)).items():
            rows += [(project, metric, form, hour, low + i, n) for i, n in enumerate(counts) if n]
    return sorted(rows)


async def test_redact_clears_comment_and_meta_of_old_events_once(
    session: Session, store: Store
) -> None:
    old = make_records(
        event(
            id="o1", comment="ring me at 0612", ts=CUTOFF - 5 * DAY_MS, tags=["vip"], locale="fr"
        ),
        event(id="o2", meta={"order": "A-1", "n": 2}, ts=CUTOFF - 4 * DAY_MS),
        event(id="o3", comment="slow", meta={"plan": "pro"}, ts=CUTOFF - 3 * DAY_MS),
        event(id="o4", tags=["plain"], ts=CUTOFF - 2 * DAY_MS),  # nothing to clear
        event(id="o5", comment="fine", ts=CUTOFF - DAY_MS),
    )
    new = make_records(event(id="n1", comment="ring me later", meta={"plan": "pro"}, ts=NOW_MS))
    await store.write(PROJECT, old + new)
    await store.write("globex", old)
    hourly = await session.aggregates(store)
    (seq_before, _) = await store.last_seq()
    assert await store.count_expired(PROJECT, CUTOFF, "redact") == 4

    assert await batches(store, "redact", 3) == [3, 1]

    assert await store.count_expired(PROJECT, CUTOFF, "redact") == 0
    assert await store.expire(PROJECT, CUTOFF, "redact", 3) == 0  # redacted once only
    assert await comments(store) == {
        "o1": (None, None, ["vip"], "fr"),
        "o2": (None, None, None, None),
        "o3": (None, None, None, None),
        "o4": (None, None, ["plain"], None),
        "o5": (None, None, None, None),
        "n1": ("ring me later", {"plan": "pro"}, None, None),
    }
    # The comments' search no longer finds them; the new one still.
    found = await store.responses(
        ResponseFilter(project=PROJECT, text="ring me"), after=None, limit=10
    )
    assert [r.id for r in found] == ["n1"]
    found = await store.responses(
        ResponseFilter(project=PROJECT, meta=(("plan", "pro"),)), after=None, limit=10
    )
    assert [r.id for r in found] == ["n1"]
    # The events and their counts stay, and so does the log; another project is untouched.
    assert await session.aggregates(store) == hourly
    await assert_aggregates_equal_scan(store, (PROJECT, "globex"))
    assert await store.last_seq() == (seq_before, 0)
    assert (await comments(store, "globex"))["o1"] == ("ring me at 0612", None, ["vip"], "fr")
    # Deleting them afterwards still works, and finds every old event.
    assert await batches(store, "delete", 10) == [5]
    assert await session.aggregates(store) == hourly


async def test_retention_removes_tombstones_whose_time_has_passed(
    session: Session, store: Store
) -> None:
    records = make_records(event(id="a", respondent="r-1"), event(id="b", respondent="r-2"))
    await store.write(PROJECT, records)
    soon = now_ms() + 200
    await store.erase(PROJECT, Selection(), tombstone_until_ms=soon)
    assert await table_rows(session, store, "tombstones") == 2
    while now_ms() <= soon:
        await asyncio.sleep(0.05)
    assert await store.expire(PROJECT, CUTOFF, "delete", 10) == 0
    assert await table_rows(session, store, "tombstones") == 0


@pytest.mark.parametrize(("mode", "limit"), [("delete", 0), ("purge", 10)])
async def test_a_batch_needs_a_mode_and_room(store: Store, mode: str, limit: int) -> None:
    with pytest.raises(ValueError, match="mode must be delete or redact|limit must be at least 1"):
        await store.expire(PROJECT, CUTOFF, mode, limit)  # type: ignore[arg-type]


async def test_redaction_goes_on_where_it_stopped_and_looks_again_from_the_oldest(
    store: Store,
) -> None:
    vote, *said = make_records(
        event(id="v0", vote_key="v", ts=CUTOFF - 9 * DAY_MS),  # the oldest, no comment yet
        *(event(id=f"o{i}", comment=f"said {i}", ts=CUTOFF - (5 - i) * DAY_MS) for i in range(4)),
    )
    await store.write(PROJECT, [vote, *said])
    assert await store.expire(PROJECT, CUTOFF, "redact", 2) == 2
    # A comment comes to the old vote, before where redaction stopped.
    assert vote.vote_key is not None
    assert await store.attach_comment(PROJECT, vote.key, vote.vote_key, "ring me")
    assert await store.count_expired(PROJECT, CUTOFF, "redact") == 3

    assert await batches(store, "redact", 2) == [2, 1]

    assert await store.count_expired(PROJECT, CUTOFF, "redact") == 0
    assert {c for c, *_ in (await comments(store)).values()} == {None}
