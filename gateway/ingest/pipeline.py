"""The ingest pipeline after decoding: the dedup window, the channel's store, the outcome counts.

``routes.events`` (a batch from any client) and ``routes.email_links`` (a click on a rating
link) both hand their validated records to :func:`commit`; the vote and email-click rules the
stores apply are in ``ingest.votes``.
"""

from __future__ import annotations

import time

from voxloop_core import Record

from ..service import Service
from ..stores import VoteRule, WriteResult


async def commit(
    service: Service,
    project: str,
    channel: str,
    records: list[Record],
    now_ms: int,
    *,
    rule: VoteRule | None = None,
) -> tuple[int, int]:
    """Store ``records`` of one channel; (stored, duplicates). Raises StoreError (503).

    ``rule`` judges clicks on email rating links (see the store's ``write``).
    """
    window = service.window(project, channel)
    fresh, seen = window.split(records, now_ms)
    result = WriteResult(0, 0)
    if fresh:
        started = time.perf_counter()
        store = await service.store(channel)  # opened on first use: may fail like a write
        result = await store.write(project, fresh, rule=rule)  # StoreError: 503
        service.metrics.commit(channel, time.perf_counter() - started)
        window.remember(fresh, now_ms)
    service.metrics.outcome(channel, "accepted", result.stored)
    service.accepted += result.stored
    service.metrics.outcome(channel, "duplicate", seen + result.duplicates)
    return result.stored, seen + result.duplicates
