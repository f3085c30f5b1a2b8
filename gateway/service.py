"""The parts of a running gateway, owned by the app's lifespan: registry, stores, windows, limits.

There is one store per channel (shared by the projects), opened on first use and kept open, and
one dedup window per project and channel in front of it. Nothing here is module-level state:
``create_app`` makes a ``Service`` and the lifespan opens and closes it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import voxloop_core

from .limits import RateLimiter
from .metrics import Metrics
from .registry import Registry
from .settings import Settings
from .stores import SqliteStore

STORES_DIR = "stores"


class Service:
    """Everything the routes share, for one process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = Registry(settings.data_dir)
        self.stores: dict[str, SqliteStore] = {}
        self.windows: dict[tuple[str, str], voxloop_core.DedupWindow] = {}
        self.key_limiter = RateLimiter(settings.key_rate, settings.key_burst)
        self.address_limiter = RateLimiter(settings.address_rate, settings.address_burst)
        self.metrics = Metrics(lambda: float(sum(s.pending for s in self.stores.values())))
        #: Set on the first stop signal (and at close): /readyz and new writes answer 503.
        self.draining = False
        self._opening = asyncio.Lock()

    def store_path(self, channel: str) -> Path:
        """Where ``channel``'s store lives."""
        return self.settings.data_dir / STORES_DIR / f"{channel}.sqlite3"

    async def open(self) -> None:
        """Load the registry and open the stores of every channel a project has."""
        self.registry.load()
        channels = {c for p in self.registry.projects() for c in p.channels}
        for channel in sorted(channels | set(voxloop_core.BUILTIN_CHANNELS)):
            await self.store(channel)

    async def store(self, channel: str) -> SqliteStore:
        """``channel``'s store, opened on first use."""
        found = self.stores.get(channel)
        if found is not None:
            return found
        async with self._opening:
            found = self.stores.get(channel)
            if found is None:
                found = SqliteStore(
                    self.store_path(channel),
                    channel,
                    synchronous=self.settings.synchronous,
                    max_pending=self.settings.max_pending,
                    busy_timeout_ms=self.settings.busy_timeout_ms,
                )
                await found.open()
                self.stores[channel] = found
        return found

    def window(self, project: str, channel: str) -> voxloop_core.DedupWindow:
        """The dedup window of ``project``'s events on ``channel``."""
        found = self.windows.get((project, channel))
        if found is None:
            found = self.windows[(project, channel)] = voxloop_core.DedupWindow(
                self.settings.dedup_entries, self.settings.dedup_age_s * 1000
            )
        return found

    async def ready(self) -> dict[str, bool]:
        """Whether each open store accepts writes now."""
        return {name: await store.writable() for name, store in sorted(self.stores.items())}

    async def close(self) -> None:
        """Stop taking work and let every queued commit land."""
        self.draining = True
        await asyncio.gather(*(store.close() for store in self.stores.values()))
