"""Retention: events older than their project's window are deleted, or lose comment and meta.

A project's policy (``privacy_policies``) sets ``retention_days`` (none: kept for ever) and
``retention_mode``: ``delete`` removes the events, ``redact`` clears only what the person wrote
(comment and meta). Either way the aggregates stay: last year's scores are still last year's
scores, with fewer of the events behind them left to read (``stores.base`` states the
invariant exactly).

Each store works in bounded batches (:meth:`~..stores.Store.expire`, :data:`BATCH` events a
transaction, oldest first), so a first run over years of events never holds a store's write
lock for long, and ingest goes on between batches. The background job (:func:`retention_job`)
runs on one replica at a time (a lease, :mod:`..integrations.jobs`), for at most
:data:`ROUND_SECONDS` a round; what is left, the next round does. ``voxloop-gateway purge``
runs :func:`purge` to the end, and with ``--dry-run`` :func:`pending` says what would go.
Progress goes to the log, one line per project and channel; each run that changed anything
leaves one audit record per project.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop_core import DAY_MS

from ..control import tables
from ..integrations import jobs
from ..service import Service
from ..stores import ExpireMode
from . import audit

#: The lease's name in the ``jobs`` table.
JOB: Final = "retention"
#: Events one transaction changes at most.
BATCH: Final = 5_000
#: How long one round of the background job works before leaving the rest to the next one.
ROUND_SECONDS: Final = 2.0
#: How long a replica holds the job: a round, and then some.
LEASE_MS: Final = 120_000
#: How often the job runs once it has caught up.
EVERY_MS: Final = 3_600_000
#: What the log and the CLI say a mode did to the events.
DONE: Final = {"delete": "deleted", "redact": "redacted"}

_log = logging.getLogger(__name__)

#: Called with a project, a channel and how many events one batch changed.
Progress = Callable[[str, str, int], None]


class Window(msgspec.Struct, frozen=True):
    """One project's retention: events before ``before_ms`` go, as ``mode`` says."""

    project: str
    days: int
    mode: ExpireMode
    before_ms: int


class Done(msgspec.Struct, kw_only=True):
    """What a run did (or, for :func:`pending`, would do): per project, per channel."""

    counts: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    finished: bool = True

    @property
    def total(self) -> int:
        return sum(n for channels in self.counts.values() for n in channels.values())


async def windows(
    service: Service, now_ms: int, projects: Sequence[str] | None = None
) -> list[Window]:
    """The retention of each project that has one (of ``projects`` when given), by name."""

    async def read(conn: AsyncConnection) -> list[Window]:
        p = tables.privacy_policies
        query = select(p.c.project, p.c.retention_days, p.c.retention_mode).where(
            p.c.retention_days.is_not(None)
        )
        if projects is not None:
            query = query.where(p.c.project.in_(list(projects)))
        found = await conn.execute(query.order_by(p.c.project))
        return [
            Window(project, days, mode, now_ms - days * DAY_MS) for project, days, mode in found
        ]

    return await service.registry.db.arun(read)


async def _channels(service: Service, project: str) -> list[str]:
    found = service.registry.project_of(project)
    channels = sorted(found.channels) if found is not None else service.channels()
    return [c for c in channels if await service.has_store(c)]


async def pending(
    service: Service, now_ms: int, projects: Sequence[str] | None = None
) -> tuple[list[Window], Done]:
    """What a run at ``now_ms`` would change, per project and channel (a dry run)."""
    found = await windows(service, now_ms, projects)
    done = Done()
    for window in found:
        per = done.counts.setdefault(window.project, {})
        for channel in await _channels(service, window.project):
            store = await service.store(channel)
            per[channel] = await store.count_expired(window.project, window.before_ms, window.mode)
    return found, done


async def purge(
    service: Service,
    now_ms: int,
    *,
    actor: str,
    projects: Sequence[str] | None = None,
    budget_s: float | None = None,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> Done:
    """Apply each project's retention as of ``now_ms``, in batches of ``batch`` events.

    Stops after ``budget_s`` seconds (None: runs to the end), with ``finished`` False when it
    left work. Logs one line per project and channel that changed, and audits one record per
    project (``retention``, by ``actor``).
    """
    started = time.monotonic()
    done = Done()
    for window in await windows(service, now_ms, projects):
        per: dict[str, int] = {}
        for channel in await _channels(service, window.project):
            store = await service.store(channel)
            changed = 0
            while True:
                if budget_s is not None and time.monotonic() - started >= budget_s:
                    done.finished = False
                    break
                step = await store.expire(window.project, window.before_ms, window.mode, batch)
                changed += step
                if progress is not None and step:
                    progress(window.project, channel, step)
                if step < batch:
                    break
            if changed:
                per[channel] = changed
                _log.info(
                    "retention: project %s, channel %s: %s events %s (older than %d days)",
                    window.project,
                    channel,
                    f"{changed:,}",
                    DONE[window.mode],
                    window.days,
                )
        if per:
            done.counts[window.project] = per
            await audit.record(
                service.registry.db,
                actor=actor,
                action="retention",
                project=window.project,
                detail={
                    "mode": window.mode,
                    "days": window.days,
                    "before_ms": window.before_ms,
                    "counts": per,
                },
                now_ms=now_ms,
            )
        if not done.finished:
            break
    return done


async def retention_job(
    service: Service, now_ms: int, holder: str, *, budget_s: float | None = ROUND_SECONDS
) -> int:
    """The background job: one round of :func:`purge` on the one replica holding the lease.

    Once a round gets to the end, the job rests for :data:`EVERY_MS`; a round cut short keeps
    the lease, and the same replica goes on next time. Returns how many events it changed.
    """
    db = service.registry.db
    if not await jobs.claim(db, JOB, holder, now_ms, lease_ms=LEASE_MS, every_ms=EVERY_MS):
        return 0
    done = await purge(service, now_ms, actor=audit.system_actor(JOB), budget_s=budget_s)
    if done.finished:
        await jobs.finish(db, JOB, holder, now_ms)
    return done.total
