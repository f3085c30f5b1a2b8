"""Rate limits that replicas share, through PostgreSQL, without a round trip per request.

Each replica limits with its own token buckets (:class:`~.limits.RateLimiter`), which alone would
let a key or an address make N times its rate through N replicas. So each replica also counts
what it let through, per name and second, and once a second (:data:`SYNC_SECONDS`) adds the
counts of its busy names to ``rate_usage`` and reads back the names whose total over all
replicas in the last :data:`WINDOW_SECONDS` went past ``rate × window + burst``. Those names get
429 on every replica until the next sync finds them under their limit again.

The shared limit is therefore approximate by about a second, the price of not asking the
database on every request; the local buckets still stop a burst at once. A name counts as busy
on a replica when it made at least a tenth of its rate there within the second: quieter names
can't exceed the limit in total unless more than ten replicas share them, and thousands of
one-off visitors cost no writes. If PostgreSQL can't be reached, the sync skips a beat and the
local limits go on alone.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import Final

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ..control.db import Database
from ..control.tables import rate_usage

#: How often a replica adds its counts and reads the names over their limit.
SYNC_SECONDS: Final = 1.0
#: The span the shared totals are summed over.
WINDOW_SECONDS: Final = 5


class SharedLimits:
    """One replica's part in the shared limits: counts out, names over their limit in."""

    def __init__(
        self,
        db: Database,
        replica: str,
        *,
        key_rate: float,
        key_burst: float,
        address_rate: float,
        address_burst: float,
    ) -> None:
        self.db = db
        self.replica = replica
        self.rates = {"key": key_rate, "address": address_rate}
        self.limits = {
            "key": key_rate * WINDOW_SECONDS + key_burst,
            "address": address_rate * WINDOW_SECONDS + address_burst,
        }
        #: (what, name) -> count, per whole second of the clock.
        self._counts: dict[int, collections.Counter[tuple[str, str]]] = {}
        self._over: frozenset[tuple[str, str]] = frozenset()
        self._task: asyncio.Task[None] | None = None

    def over(self, what: str, name: str) -> bool:
        """Whether ``name`` went past its shared limit at the last sync."""
        return (what, name) in self._over

    def count(self, what: str, name: str) -> None:
        """Count one request let through for ``name``."""
        second = int(time.time())
        found = self._counts.get(second)
        if found is None:
            found = self._counts[second] = collections.Counter()
        found[(what, name)] += 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="voxloop-shared-limits")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            try:
                await self.sync(int(time.time()))
            except Exception as exc:  # the local limits go on alone meanwhile
                logging.getLogger(__name__).warning("shared rate limits not synced: %s", exc)

    async def sync(self, now_s: int) -> None:
        """Add the busy names' counts of the finished seconds; read the names over the limit."""
        rows: list[dict[str, object]] = []
        for second in sorted(s for s in self._counts if s < now_s):
            for (what, name), count in self._counts.pop(second).items():
                if count >= max(1.0, self.rates[what] / 10):
                    rows.append(
                        {
                            "what": what,
                            "name": name,
                            "second": second,
                            "replica": self.replica,
                            "count": count,
                        }
                    )
        limits = self.limits

        async def exchange(conn: AsyncConnection) -> frozenset[tuple[str, str]]:
            if rows:
                upsert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert
                add = upsert(rate_usage).values(rows)
                await conn.execute(
                    add.on_conflict_do_update(
                        index_elements=list(rate_usage.primary_key),
                        set_={"count": add.excluded.count},
                    )
                )
            total = func.sum(rate_usage.c.count)
            over = await conn.execute(
                select(rate_usage.c.what, rate_usage.c.name)
                .where(rate_usage.c.second > now_s - WINDOW_SECONDS)
                .group_by(rate_usage.c.what, rate_usage.c.name)
                .having(
                    or_(
                        and_(rate_usage.c.what == "key", total > limits["key"]),
                        and_(rate_usage.c.what == "address", total > limits["address"]),
                    )
                )
            )
            await conn.execute(
                delete(rate_usage).where(rate_usage.c.second <= now_s - 2 * WINDOW_SECONDS)
            )
            return frozenset((what, name) for what, name in over)

        self._over = await self.db.arun(exchange)
