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
from typing import Any, Final

#: How often a replica adds its counts and reads the names over their limit.
SYNC_SECONDS: Final = 1.0
#: The span the shared totals are summed over.
WINDOW_SECONDS: Final = 5
#: The table, part of the registry's schema (see registry_db).
TABLE: Final = """
CREATE TABLE IF NOT EXISTS rate_usage (
    what TEXT NOT NULL,
    name TEXT NOT NULL,
    second BIGINT NOT NULL,
    replica TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (what, name, second, replica)
)"""

_ADD: Final = """
INSERT INTO rate_usage (what, name, second, replica, count)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::int[])
ON CONFLICT (what, name, second, replica) DO UPDATE SET count = excluded.count"""
_OVER: Final = """
SELECT what, name FROM rate_usage
WHERE second > $1
GROUP BY what, name
HAVING (what = 'key' AND sum(count) > $2) OR (what = 'address' AND sum(count) > $3)"""
_FORGET: Final = "DELETE FROM rate_usage WHERE second <= $1"


class SharedLimits:
    """One replica's part in the shared limits: counts out, names over their limit in."""

    def __init__(
        self,
        pool: Any,
        replica: str,
        *,
        key_rate: float,
        key_burst: float,
        address_rate: float,
        address_burst: float,
    ) -> None:
        self.pool = pool
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
        rows: list[tuple[str, str, int, str, int]] = []
        for second in sorted(s for s in self._counts if s < now_s):
            for (what, name), count in self._counts.pop(second).items():
                if count >= max(1.0, self.rates[what] / 10):
                    rows.append((what, name, second, self.replica, count))
        columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 5
        async with self.pool.acquire() as conn:
            if rows:
                await conn.execute(_ADD, *columns)
            over = await conn.fetch(
                _OVER, now_s - WINDOW_SECONDS, self.limits["key"], self.limits["address"]
            )
            await conn.execute(_FORGET, now_s - 2 * WINDOW_SECONDS)
        self._over = frozenset((row["what"], row["name"]) for row in over)
