"""The store alone: what a durable write costs in CPU time, with no HTTP in front of it.

The http section's goals are ratios and CPU budgets of the whole request; this module measures
the part of them no gateway code above the store can avoid. A fresh :class:`SqliteStore` in a
temporary folder is fed validated records (the wrk script's bodies, decoded and validated as the
gateway does, all built before the clock starts), and the process's CPU time (every thread: the
store's writer thread does the SQLite work) is divided by the events stored:

- 100-event writes one after another: one transaction, and one fsync, for each;
- the same with ``synchronous=NORMAL``: no fsync at each commit, to show what it costs;
- 100-event writes and 1-event writes, :data:`CONCURRENT` at a time, as that many wrk
  connections hand them over: the store's group commit shares one transaction among those
  waiting, which makes a 100-event write cheaper per event than one after another does.

Each figure is the median of :data:`REPETITIONS` runs, each on a fresh store. A run stores a few
thousand events: an event costs the store more as its file grows, so a small file gives the
lower figure, which is what a floor is. The measuring
thread is pinned to CPU 0 when it may be, as the servers of the section are, so that the
store's writer thread shares one core with the event loop as it does in the gateway.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import msgspec

import voxloop_core
from voxloop_core import DEFAULT_POLICY, Record
from voxloop_gateway.stores import SqliteStore

from .bench import SECRET, uuid7
from .http_bench import CONNECTIONS

#: Writes handed to the store at once: the section's wrk connections.
CONCURRENT: Final = CONNECTIONS
REPETITIONS: Final = 3
#: Events of each run (two rounds of 32 100-event writes), and the most seconds one run may
#: take (then it counts what it stored).
BATCH_EVENTS: Final = 6_400
SINGLE_EVENTS: Final = 6_400
RUN_SECONDS: Final = 15.0
PROJECT: Final = "bench"
CHANNEL: Final = "web"
_METRICS: Final = (("nps", 0, 10), ("csat", 1, 5), ("ces", 1, 7))
#: Events whose ids share a millisecond: the ids are time-ordered as the SDK's and the widget's
#: are, at the rate of a busy gateway (a run of one millisecond for all would scatter them).
EVENTS_PER_MS: Final = 8
Synchronous = Literal["FULL", "NORMAL"]


@dataclass
class StoreFloors:
    """CPU µs per stored event of the store alone, medians of :data:`REPETITIONS` runs."""

    #: 100-event writes one after another.
    batch_us: float
    #: The same 100-event writes with ``synchronous=NORMAL``: no fsync at each commit.
    batch_nosync_us: float
    #: 100-event writes, :data:`CONCURRENT` at a time.
    batch_concurrent_us: float
    #: 1-event writes, :data:`CONCURRENT` at a time.
    single_us: float


def bodies(count: int, size: int, rng: random.Random, start_ms: int) -> Iterator[bytes]:
    """``count`` request bodies of ``size`` events each, as the section's wrk script sends."""
    n = 0
    for _ in range(count):
        events = []
        for _ in range(size):
            n += 1
            metric, low, high = _METRICS[n % 3]
            events.append(
                {
                    "id": uuid7(start_ms + n // EVENTS_PER_MS, rng),
                    "channel": CHANNEL,
                    "form": "checkout",
                    "metric": metric,
                    "score": low + n % (high - low + 1),
                    "comment": "Fast checkout, thanks!",
                }
            )
        yield msgspec.json.encode({"events": events})


def validated(count: int, size: int, seed: int = 0) -> list[list[Record]]:
    """``count`` writes of ``size`` records each, decoded and validated as the gateway does;
    RuntimeError if the core refuses any event (then the figures would be of fewer events)."""
    now_ms = int(time.time() * 1000)
    writes = []
    for body in bodies(count, size, random.Random(seed), now_ms):
        events, rejected = voxloop_core.decode_batch(body)
        records, refused = voxloop_core.validate(events, DEFAULT_POLICY, now_ms, SECRET)
        if rejected or refused or len(records) != size:
            raise RuntimeError(f"the core refused events of {body!r}: {rejected + refused}")
        writes.append(records)
    return writes


async def _cpu_per_event(
    folder: Path,
    writes: list[list[Record]],
    concurrent: int,
    synchronous: Synchronous,
) -> float:
    """CPU µs per event stored by ``writes``, ``concurrent`` of them at a time, on a fresh
    store; bounded by :data:`RUN_SECONDS` (then what was stored so far counts)."""
    store = SqliteStore(folder / "web.db", CHANNEL, synchronous=synchronous)
    await store.open()
    try:
        stored = 0
        deadline = time.monotonic() + RUN_SECONDS
        cpu = time.process_time()
        for start in range(0, len(writes), concurrent):
            part = writes[start : start + concurrent]
            if concurrent == 1:
                results = [await store.write(PROJECT, part[0])]
            else:
                results = await asyncio.gather(*(store.write(PROJECT, w) for w in part))
            stored += sum(r.stored for r in results)
            if time.monotonic() > deadline:
                break
        cpu = time.process_time() - cpu
    finally:
        await store.close()
    if not stored:
        raise RuntimeError("the store stored nothing")
    return 1e6 * cpu / stored


@contextmanager
def _on_cpu0() -> Iterator[None]:
    """Pin this thread (and the threads it starts) to CPU 0 meanwhile, when it may run there."""
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if 0 not in before:
        yield
        return
    os.sched_setaffinity(0, {0})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def store_floors(
    batch_events: int = BATCH_EVENTS,
    single_events: int = SINGLE_EVENTS,
    repetitions: int = REPETITIONS,
) -> StoreFloors:
    """Measure the store alone (module docstring); a few seconds with the defaults."""
    batches = validated(max(1, batch_events // 100), 100, seed=1)
    singles = validated(max(1, single_events), 1, seed=2)

    def median(writes: list[list[Record]], concurrent: int, sync: Synchronous) -> float:
        runs = []
        for _ in range(repetitions):
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(asyncio.run(_cpu_per_event(Path(tmp), writes, concurrent, sync)))
        return statistics.median(runs)

    with _on_cpu0():
        return StoreFloors(
            batch_us=median(batches, 1, "FULL"),
            batch_nosync_us=median(batches, 1, "NORMAL"),
            batch_concurrent_us=median(batches, CONCURRENT, "FULL"),
            single_us=median(singles, CONCURRENT, "FULL"),
        )
