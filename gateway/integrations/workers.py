"""The gateway's background work: rules, SLA, alerts, digests, and delivering the outbox.

One :class:`Workers` per gateway process, started when the service opens and stopped before it
closes. Each round runs every job once, each in its own ``try`` so that one failing (a database
that is briefly away, a receiver that hangs) never stops the others, and logs what failed. The
jobs themselves make sure they run once across replicas (:mod:`.jobs`, ``SKIP LOCKED``); this
only decides how often each is tried:

- every round (``ROUND_SECONDS``): the rules read what the stores committed (``followups.feed``),
  the SLA's breach scan, and the deliveries of webhooks and emails that are due;
- every minute: the aggregate alerts and the digests, which look at whole periods; the
  privacy work: retention (a bounded round, on one replica), the erasures a crash left
  unfinished, and the audit log's own retention.

The jobs share the process with ingest. While events arrive, a round that took ``t`` seconds
is followed by a pause of at least ``t × (1 / BUSY_SHARE − 1)``, so the jobs take no more than
:data:`BUSY_SHARE` of the time and a burst of traffic is stored at full speed; the follow-up
items, alerts and webhooks of that burst come after it (``make bench``'s integrations section
measures both). When nothing arrives, the jobs run as often as a round allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

import httpx

if TYPE_CHECKING:
    from ..service import Service

#: How often the frequent jobs run: the longest a detractor waits for their follow-up item.
ROUND_SECONDS: Final = 0.5
#: How often the jobs over whole periods run.
PERIODIC_SECONDS: Final = 60.0
#: The most of the process's time the jobs take while events are arriving: ingest comes first
#: (its 202 is what clients wait on), the rules and deliveries catch up when it slows down.
BUSY_SHARE: Final = 0.08
#: How long the feed reads in a round while events arrive (it stops after the batch that
#: passes it).
BUSY_BUDGET_SECONDS: Final = 0.1
#: How long a stop waits for the round in progress before cutting it short.
STOP_SECONDS: Final = 5.0

_log = logging.getLogger(__name__)
Job = Callable[[int], Awaitable[int]]


def now_ms() -> int:
    """The time now, in epoch milliseconds: what every job is given, as tests give their own."""
    return int(time.time() * 1000)


class Workers:
    """The background jobs of one gateway process."""

    def __init__(self, service: Service) -> None:
        self.service = service
        #: Who holds a lease: this process, unique even across hosts that reuse pids.
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._last_periodic = 0.0
        self._accepted = service.accepted
        #: One client for the process's webhook deliveries, so connections are reused.
        self._client: httpx.AsyncClient | None = None

    def jobs(self) -> tuple[list[tuple[str, Job]], list[tuple[str, Job]]]:
        """The frequent jobs and the periodic ones, each named for the log."""
        from ..followups import alerts, feed, sla
        from ..privacy import audit, erasure, retention
        from . import digest, mail, ssrf, webhooks

        service, db, holder = self.service, self.service.registry.db, self.holder
        settings = service.settings
        if self._client is None:
            self._client = ssrf.guarded_client(settings.webhook_allow, settings.webhook_timeout_s)
        client = self._client
        frequent: list[tuple[str, Job]] = [
            ("rules", lambda now: feed.read_feed(service, now, holder, budget_s=self.budget())),
            ("sla", lambda now: sla.scan_breaches(db, now, base_url=settings.base_url)),
            (
                "webhooks",
                lambda now: webhooks.deliver_due(
                    db, settings, holder, now, client, budget_s=self.budget() or ROUND_SECONDS
                ),
            ),
            ("mail", lambda now: mail.send_due(db, settings, holder, now)),
        ]
        periodic: list[tuple[str, Job]] = [
            ("alerts", lambda now: alerts.check_aggregates(service, now)),
            ("digests", lambda now: digest.write_digests(service, now)),
            ("retention", lambda now: retention.retention_job(service, now, holder)),
            ("erasures", lambda now: erasure.resume(service, now)),
            ("audit", lambda now: audit.expire_audit(db, now, settings.audit_retention_days)),
        ]
        return frequent, periodic

    async def round(self, now: int, *, periodic: bool) -> dict[str, int]:
        """Run every frequent job once (and the periodic ones with ``periodic``); what each did.

        A job that fails is logged and counted as -1; the others still run.
        """
        frequent, every_minute = self.jobs()
        done: dict[str, int] = {}
        for name, job in frequent + (every_minute if periodic else []):
            if self._stopping.is_set():
                break
            try:
                done[name] = await job(now)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("background job %s failed; it runs again next round", name)
                done[name] = -1
        return done

    def start(self) -> None:
        """Start the rounds on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="workers")

    async def stop(self) -> None:
        """Stop after the job in progress, or cut it short after :data:`STOP_SECONDS`.

        A job is let finish rather than cancelled at once: a store's read runs in a thread of
        its own, which must hand its result back to a loop still running. A job cut short
        commits nothing of its unfinished transaction; the next round (of this gateway or
        another) does it again.
        """
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_SECONDS)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def budget(self) -> float | None:
        """The feed's time for a round: short while events arrive (none when they don't)."""
        return BUSY_BUDGET_SECONDS if self.service.accepted != self._accepted else None

    def pause(self, took: float) -> float:
        """How long to wait after a round that took ``took`` seconds (see the module's text)."""
        busy = self.service.accepted != self._accepted
        self._accepted = self.service.accepted
        pause = ROUND_SECONDS - took
        if busy:
            pause = max(pause, took * (1 / BUSY_SHARE - 1))
        return max(0.0, pause)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            periodic = started - self._last_periodic >= PERIODIC_SECONDS
            if periodic:
                self._last_periodic = started
            await self.round(now_ms(), periodic=periodic)
            await self._wait(self.pause(time.monotonic() - started))

    async def _wait(self, pause: float) -> None:
        """Wait ``pause`` seconds, or less: until a stop, or a round's time without events."""
        deadline = time.monotonic() + pause
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            before = self.service.accepted
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), min(left, ROUND_SECONDS))
            if self.service.accepted == before and left > ROUND_SECONDS:
                return  # ingest went quiet: catch up now
