"""What every channel store does, whatever keeps the events: the gateway's one store interface.

:class:`~voxloop_gateway.stores.SqliteStore` (one file per channel, the embedded default) and
:class:`~voxloop_gateway.stores.PostgresStore` (one partition per channel of shared tables, for
several gateway replicas) both implement it, and one test suite runs against both.

The rules both keep (CONTRACT.md): a write returns only once its records are durable; the
unique ``(project, key)`` is the final word on duplicates; after every commit the aggregates
equal a scan of the counted events; among the events of one project, form and ``vote_key``
only the greatest by ``(ts_ms, id or "", key)`` that isn't held counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from voxloop_core import METRIC_RANGES, Record

Histograms = dict[tuple[str, int], list[int]]
"""(form, hour start in epoch ms) -> counts per score of one metric; index i counts score low+i."""


class WriteResult(NamedTuple):
    """What one ``write()`` did.

    Attributes:
        stored: records newly stored by this call.
        duplicates: records the store already held, or that an earlier record of the same call
            or of an earlier write in the same group commit stored first.
    """

    stored: int
    duplicates: int


class VoteRule(NamedTuple):
    """How clicks on an email's rating links are judged (CONTRACT.md, "Email rating links").

    Attributes:
        edit_window_ms: after the first recorded click, how long another click may still change
            the vote; a later one is stored as history, ``held = 'late'``.
        burst_ms: clicks on ``burst_scores`` different scores within this time look like a link
            scanner: all the clicks of that burst are held as ``quarantined``.
    """

    edit_window_ms: int
    burst_ms: int

    @staticmethod
    def burst_scores(metric: str) -> int:
        """How many different scores within ``burst_ms`` make a burst: 3, or 2 for thumbs."""
        low, high = METRIC_RANGES[metric]
        return min(3, high - low + 1)


class Store(Protocol):
    """One channel's events and hourly aggregates. ``open()`` first, ``close()`` last."""

    channel: str
    max_pending: int

    @property
    def pending(self) -> int:
        """Records queued or being committed, not yet committed (the queue-depth metric)."""
        ...

    async def open(self) -> None:
        """Connect and check the schema; raises StoreUnavailable naming what is wrong."""
        ...

    async def write(
        self, project: str, records: Sequence[Record], *, rule: VoteRule | None = None
    ) -> WriteResult:
        """Store ``records`` durably; StoreBusy when the queue is full, StoreUnavailable when
        the commit failed (nothing of it stored)."""
        ...

    async def writable(self) -> bool:
        """Whether a write can be committed right now (for /readyz); never raises."""
        ...

    async def hourly(
        self,
        project: str,
        metric: str,
        *,
        forms: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> Histograms:
        """Hourly histograms of the counted events, from the aggregates."""
        ...

    async def scan(
        self,
        project: str,
        metric: str,
        *,
        forms: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> Histograms:
        """The same as ``hourly``, recomputed from the counted events (tests and audits)."""
        ...

    async def quarantined(
        self,
        project: str,
        metric: str,
        *,
        forms: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> Histograms:
        """Hourly histograms of the votes held as quarantined."""
        ...

    async def attach_comment(self, project: str, key: bytes, vote_key: str, comment: str) -> bool:
        """Set the comment of the stored vote ``key`` of ``vote_key``; False if there is none."""
        ...

    async def close(self) -> None:
        """Let queued writes commit, then release everything; closing twice does nothing."""
        ...
