"""The read benchmark's data: a year of realistic feedback, in the gateway and the naive peer.

The events are ``bench.realistic_batch``'s (mixed metrics, comments of 0-500 characters in seven
languages, tags, meta, respondents), made oldest first over the last year, validated by the core
as the gateway validates them, and written through the gateway's own channel stores in this
process (what ``ingest.pipeline`` hands a store) rather than over HTTP: a million events
in a minute rather than ten thousand requests. The naive peer gets the same rows in its table.
What was stored is counted on the way (:class:`Seeded`), for the checks of agreement.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

import voxloop_core
from voxloop_core import DAY_MS, METRIC_RANGES, Record
from voxloop_gateway.service import STORES_DIR
from voxloop_gateway.stores import SqliteStore

from .bench import realistic_batch

CHANNELS: Final = ("web", "app", "email")
#: Events in one body of ``realistic_batch``; its events are a millisecond apart.
BATCH_EVENTS: Final = 100
#: Events made and committed together: one store transaction per channel at most.
CHUNK_EVENTS: Final = 15_000
#: How far back the events go: a year, inside the contract's retention window.
SPAN_MS: Final = 364 * DAY_MS
#: What a manager looks for, in three scripts: a word, and a sentence that says it, put at the
#: head of comments beside ``realistic_batch``'s everyday phrases. The rarer a word, the longer
#: a scan must read to fill a page of it. A common topic leads one comment in ``TOPIC_EVERY``
#: (0.2%): a newest-first scan fills a page after about 25,000 rows.
TOPICS: Final = {
    "en": ("refund", "I asked for a refund three weeks ago and I am still waiting. "),
    "ar": ("استرداد", "طلبت استرداد المبلغ منذ ثلاثة أسابيع وما زلت أنتظر. "),
    "fa": ("بازپرداخت", "سه هفته پیش درخواست بازپرداخت دادم و هنوز منتظرم. "),
}
TOPIC_EVERY: Final = 500
#: A specific complaint leads one comment in ``RARE_EVERY`` (50 in a million): a scan reads
#: nearly every row to fill a page of it, while an index goes straight to them.
RARE_TOPICS: Final = {
    "en": ("chargeback", "My card was charged twice, so my bank has opened a chargeback. "),
    "ar": ("احتيال", "خصم المبلغ مرتين وأبلغت البنك عن احتيال. "),
    "fa": ("کلاهبرداری", "مبلغ دو بار کسر شد و به بانک گزارش کلاهبرداری دادم. "),
}
RARE_EVERY: Final = 20_000
#: Seeding says how far it got every so many events (on stderr).
PROGRESS_EVERY: Final = 100_000
#: The naive peer's columns, named rather than by position: a change of its schema fails here.
_NAIVE_INSERT: Final = (
    "INSERT INTO events (id, channel, form, metric, score, comment, respondent, ts)"
    " VALUES (?,?,?,?,?,?,?,?)"
)


def _histograms() -> dict[str, list[int]]:
    return {metric: [0] * (high - low + 1) for metric, (low, high) in METRIC_RANGES.items()}


@dataclass
class Seeded:
    """What was stored, counted as it was made.

    Attributes:
        events: events stored, in each of the gateway and the naive peer.
        seconds: how long seeding took, making the events included.
        oldest_ms: the first event's time (epoch ms).
        newest_ms: the last event's time.
        histograms: metric -> counts per score over every channel: what stats must say.
        matches: each ``TOPICS`` and ``RARE_TOPICS`` word -> the comments holding it,
            ignoring case.
    """

    events: int = 0
    seconds: float = 0.0
    oldest_ms: int = 0
    newest_ms: int = 0
    histograms: dict[str, list[int]] = field(default_factory=_histograms)
    matches: dict[str, int] = field(
        default_factory=lambda: {w: 0 for w, _ in (*TOPICS.values(), *RARE_TOPICS.values())}
    )

    @property
    def rate(self) -> float:
        """Events stored per second."""
        return self.events / self.seconds if self.seconds else 0.0

    def count(self, records: list[Record]) -> None:
        """Add ``records``, oldest first, to what the reads must find."""
        for record in records:
            low = METRIC_RANGES[record.metric][0]
            self.histograms[record.metric][record.score - low] += 1
            if record.comment is not None:
                folded = record.comment.casefold()
                for word in self.matches:
                    if word in folded:
                        self.matches[word] += 1
        if records:
            self.oldest_ms = self.oldest_ms or records[0].ts_ms
            self.newest_ms = records[-1].ts_ms
        self.events += len(records)


def make_records(events: int, now_ms: int, secret: bytes, seed: int = 13) -> Iterator[list[Record]]:
    """``events`` records, oldest first, in chunks of ``CHUNK_EVENTS``, as the gateway makes them.

    The bodies of ``realistic_batch`` start on an even grid over the last ``SPAN_MS``, each a
    burst of events a millisecond apart, so every event has a time of its own and "newest
    first" is one order, whatever breaks ties. The core decodes and validates them with the
    project's ``secret`` at ``now_ms``.

    Raises:
        ValueError: ``events`` don't fit a millisecond apart in the span.
    """
    rng = random.Random(seed)
    batches = -(-events // BATCH_EVENTS)
    step = (SPAN_MS - BATCH_EVENTS) // max(batches - 1, 1)
    if step <= BATCH_EVENTS:
        raise ValueError(f"{events} events don't fit a millisecond apart in {SPAN_MS} ms")
    start_ms = now_ms - SPAN_MS
    policy = voxloop_core.Policy()
    made = 0
    chunk: list[Record] = []
    for batch in range(batches):
        size = min(BATCH_EVENTS, events - made)
        decoded, refused = voxloop_core.decode_batch(
            realistic_batch(size, rng, start_ms + batch * step)
        )
        valid = [_with_topic(e, made + n) for n, e in enumerate(decoded) if e is not None]
        records, invalid = voxloop_core.validate(valid, policy, now_ms, secret)
        if refused or invalid:
            raise RuntimeError(f"the core refused made events: {(refused + invalid)[:3]}")
        chunk.extend(records)
        made += size
        if len(chunk) >= CHUNK_EVENTS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _with_topic(event: voxloop_core.Event, index: int) -> voxloop_core.Event:
    """``event``, the ``index``-th made, its comment led by a topic's sentence if its turn.

    The common topics take the first turns of every ``TOPIC_EVERY`` events, the rare ones the
    next turns of every ``RARE_EVERY`` (a multiple of it), so the two never meet.
    """
    topics = list(TOPICS.values())
    turn = index % TOPIC_EVERY
    if turn < len(topics):
        return msgspec.structs.replace(event, comment=topics[turn][1] + (event.comment or ""))
    rare = list(RARE_TOPICS.values())
    turn = index % RARE_EVERY - len(topics)
    if 0 <= turn < len(rare):
        return msgspec.structs.replace(event, comment=rare[turn][1] + (event.comment or ""))
    return event


def naive_rows(records: list[Record]) -> list[tuple[object, ...]]:
    """The naive peer's rows of ``records``: the same events in its columns (time in seconds).

    The comment is the one the gateway stores (the core's cleaned text), so that a search
    means the same in both.
    """
    return [
        (r.id, r.channel, r.form, r.metric, r.score, r.comment, r.respondent, r.ts_ms / 1000)
        for r in records
    ]


async def seed(
    data_dir: Path, project: str, secret: bytes, naive_db: Path, events: int, now_ms: int
) -> Seeded:
    """Store ``events`` events in the gateway's channel stores under ``data_dir`` and in the
    naive peer's table at ``naive_db`` (which the peer has made).

    Each chunk goes to the gateway through :meth:`SqliteStore.write` (one per channel, the
    stores committing at once) and to the naive peer in one ``executemany``, beside them.

    Raises:
        RuntimeError: a store took a record for a duplicate: the events were not all stored.
    """
    seeded = Seeded()
    started = time.perf_counter()
    stores = {
        c: SqliteStore(data_dir / STORES_DIR / f"{c}.sqlite3", c, synchronous="NORMAL")
        for c in CHANNELS
    }
    naive = sqlite3.connect(naive_db, check_same_thread=False)
    try:
        for store in stores.values():
            await store.open()
        for records in make_records(events, now_ms, secret):
            by_channel: dict[str, list[Record]] = {c: [] for c in CHANNELS}
            for record in records:
                by_channel[record.channel].append(record)
            writes = [stores[c].write(project, rs) for c, rs in by_channel.items() if rs]
            *results, _ = await asyncio.gather(
                *writes, asyncio.to_thread(_insert, naive, naive_rows(records))
            )
            if sum(result.duplicates for result in results):
                raise RuntimeError(f"the stores took some of {len(records)} new events as seen")
            seeded.count(records)
            if seeded.events % PROGRESS_EVERY < len(records):
                elapsed = time.perf_counter() - started
                print(
                    f"  read: seeded {seeded.events:,} of {events:,} events,"
                    f" {seeded.events / elapsed:,.0f}/s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        for store in stores.values():
            await store.close()
        naive.close()
    seeded.seconds = time.perf_counter() - started
    return seeded


def _insert(naive: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    with naive:
        naive.executemany(_NAIVE_INSERT, rows)
