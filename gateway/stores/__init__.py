"""Per-channel event stores: where accepted events become durable and aggregates stay exact.

Each channel has its own store. A store deduplicates on its primary key, commits writes in
groups, and keeps hourly and daily histograms that always equal a scan of its counted events.
SQLite (one file per channel) is the embedded default. The read side pages through a channel's
responses by a :class:`ResponseFilter` after a :class:`Position` (see ``reads``). Events leave a
store only by erasure (a :class:`Selection`, with exact aggregates and tombstones) or retention
(see ``base``).
"""

from __future__ import annotations

from ..ingest.votes import VoteRule
from ._errors import StoreBusy, StoreError, StoreUnavailable
from ._rollups import ALL_FORMS, Step
from .base import Erased, ExpireMode, Histograms, Store, WriteResult
from .postgres import PostgresStore
from .reads import Position, ResponseFilter, Selection, StoredResponse, merge
from .sqlite import SqliteStore

__all__ = [
    "ALL_FORMS",
    "Erased",
    "ExpireMode",
    "Histograms",
    "Position",
    "PostgresStore",
    "ResponseFilter",
    "Selection",
    "SqliteStore",
    "Step",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreUnavailable",
    "StoredResponse",
    "VoteRule",
    "WriteResult",
    "merge",
]
