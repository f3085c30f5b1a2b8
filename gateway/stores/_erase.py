"""What removing events changes besides the rows, written once for both stores.

An erasure reads the rows it removes as :class:`Removed`; from them come what the aggregates
lose (the counted ones), the vote groups to rank again (an erased vote may have been the one
that counted), and the receipt (:class:`~.base.Erased`). Each store removes the rows, ranks the
groups with :func:`~.base.settle_votes` and adds the deltas in its own transaction.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

from voxloop_core import HOUR_MS

from .base import AggregateKey, Erased, VoteGroup

#: The columns of an event an erasure reads, in the order of :class:`Removed`.
COLUMNS: Final = "e.key, e.vote_key, e.form, e.metric, e.score, e.ts_ms, e.counted"
#: Most rows one statement of an erasure names: SQLite binds at most 32,766 parameters.
CHUNK: Final = 10_000


class Removed(NamedTuple):
    """One event an erasure removes, as read in its transaction."""

    key: bytes
    vote_key: str | None
    form: str
    metric: str
    score: int
    ts_ms: int
    counted: bool

    @classmethod
    def of(cls, row: Sequence[Any]) -> Removed:
        key, vote_key, form, metric, score, ts_ms, counted = row
        return cls(bytes(key), vote_key, form, metric, score, ts_ms, bool(counted))


def uncounted(project: str, removed: Iterable[Removed]) -> collections.Counter[AggregateKey]:
    """What the hourly aggregate rows lose: -1 for every counted event removed."""
    deltas: collections.Counter[AggregateKey] = collections.Counter()
    for row in removed:
        if row.counted:
            hour = row.ts_ms - row.ts_ms % HOUR_MS
            deltas[(project, row.metric, row.form, hour, row.score)] -= 1
    return deltas


def vote_groups(project: str, removed: Iterable[Removed]) -> list[VoteGroup]:
    """The vote groups the removed events were in, sorted (the order their locks are taken)."""
    return sorted({(project, row.form, row.vote_key) for row in removed if row.vote_key})


def receipt(removed: Sequence[Removed]) -> Erased:
    """What the caller learns of an erasure: how many events, and their keys."""
    return Erased(len(removed), [(row.key, row.vote_key) for row in removed])


def chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """``values`` in slices of at most :data:`CHUNK`."""
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]
