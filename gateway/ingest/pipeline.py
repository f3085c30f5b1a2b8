"""The ingest pipeline after decoding: the dedup window, the channel's store, the outcome counts.

``routes.events`` (a batch from any client) and ``routes.email_links`` (a click on a rating
link) both hand their validated records to :func:`commit`; the vote and email-click rules the
stores apply are in ``ingest.votes``.
"""

from __future__ import annotations

import time

from voxloop_core import Record

from ..service import Service
from ..stores import VoteRule


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
    metrics = service.metrics
    if not fresh:
        metrics.outcome(channel, "duplicate", seen)
        return 0, seen
    started = time.perf_counter()
    # Opened on first use, which may fail like a write; open already, without a coroutine.
    store = service.stores.get(channel) or await service.store(channel)
    result = await store.write(project, fresh, rule=rule)  # StoreError: 503
    metrics.commit(channel, time.perf_counter() - started)
    window.remember(fresh, now_ms)
    stored = result.stored
    duplicates = seen + result.duplicates
    metrics.outcome(channel, "accepted", stored)
    service.accepted += stored
    metrics.outcome(channel, "duplicate", duplicates)
    return stored, duplicates
