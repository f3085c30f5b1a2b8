"""The parts of a running gateway, owned by the app's lifespan: registry, stores, windows, limits.

There is one store per channel (shared by the projects), opened on first use and kept open, and
one dedup window per project and channel in front of it. Nothing here is module-level state:
``create_app`` makes a ``Service`` and the lifespan opens and closes it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

import voxloop_core

from .control.db import REGISTRY_FILE, private_dir, private_file
from .control.people import People
from .control.registry import Registry
from .errors import ApiError, retry_after
from .http.limits import RateLimiter
from .http.metrics import Metrics
from .http.shared_limits import SharedLimits
from .settings import Settings
from .stores import PostgresStore, SqliteStore, Store, postgres

STORES_DIR = "stores"


def secure_data_dir(data_dir: Path) -> None:
    """Close a data directory to other users: its folders 0700, the registry and stores 0600.

    New files are made private as they are created (see :func:`private_file`); this also closes
    those an older gateway, a copy or a restore left open to others.
    """
    private_dir(data_dir)
    if (data_dir / REGISTRY_FILE).exists():
        private_file(data_dir / REGISTRY_FILE)
    stores = data_dir / STORES_DIR
    if stores.exists():
        private_dir(stores)
        for path in sorted(stores.glob("*.sqlite3")):
            private_file(path)


class Service:
    """Everything the routes share, for one process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = Registry(settings.data_dir, settings.store)
        #: The people who log in, their groups and sessions, in the registry's database.
        self.people = People(self.registry.db)
        self.stores: dict[str, Store] = {}
        self.pool: Any = None  # asyncpg's pool, on PostgreSQL
        #: The rate limits the replicas share, on PostgreSQL.
        self.shared_limits: SharedLimits | None = None
        self.windows: dict[tuple[str, str], voxloop_core.DedupWindow] = {}
        self.key_limiter = RateLimiter(settings.key_rate, settings.key_burst)
        self.address_limiter = RateLimiter(settings.address_rate, settings.address_burst)
        self.metrics = Metrics(
            lambda: float(sum(s.pending for s in self.stores.values())), self.registry.channels
        )
        #: Events this process stored: the background work yields to ingest while it grows.
        self.accepted = 0
        #: Set on the first stop signal (and at close): /readyz and new writes answer 503.
        self.draining = False
        self._opening = asyncio.Lock()

    def store_path(self, channel: str) -> Path:
        """Where ``channel``'s store lives."""
        return self.settings.data_dir / STORES_DIR / f"{channel}.sqlite3"

    async def connect(self) -> None:
        """Load the registry and, on PostgreSQL, make the pool: what reading needs.

        Opens no store and shares no rate limits; :meth:`open` does both for a gateway, and a
        one-off read (``voxloop-gateway stats``) opens only the stores that exist already
        (:meth:`has_store`), so it reads what the gateway reads and makes nothing.
        """
        if not self.settings.postgres:
            secure_data_dir(self.settings.data_dir)
        self.registry.load()
        if self.settings.postgres:
            self.pool = await asyncpg.create_pool(
                self.settings.store,
                min_size=1,
                max_size=self.settings.pg_pool_size,
                command_timeout=30,
                timeout=10,
            )

    def channels(self) -> list[str]:
        """The built-in channels and every project's, as last loaded, by name."""
        return sorted(self.registry.channels())

    async def open(self) -> None:
        """Load the registry, share the rate limits, open the stores of every channel."""
        await self.connect()
        if self.pool is not None:
            settings = self.settings
            self.shared_limits = SharedLimits(
                self.registry.db,
                f"{socket.gethostname()}:{os.getpid()}",
                key_rate=settings.key_rate,
                key_burst=settings.key_burst,
                address_rate=settings.address_rate,
                address_burst=settings.address_burst,
            )
            self.shared_limits.start()
        channels = self.channels()
        needed = postgres.WRITERS * len(channels) + 4  # every writer busy, and reads besides
        if self.pool is not None and self.settings.pg_pool_size < needed:
            logging.getLogger(__name__).warning(
                "pg_pool_size is %d; %d channels with %d writers each and the reads want %d:"
                " writes may queue for a connection when all channels are busy",
                self.settings.pg_pool_size,
                len(channels),
                postgres.WRITERS,
                needed,
            )
        for channel in channels:
            await self.store(channel)

    async def has_store(self, channel: str) -> bool:
        """Whether ``channel``'s store exists: its file, or its partitions in PostgreSQL.

        A store that doesn't exist has no events; a read asks this first rather than open it,
        which would make it.
        """
        if channel in self.stores:
            return True
        if self.pool is None:
            return self.store_path(channel).is_file()
        names = [f'"{postgres.partition_name(t, channel)}"' for t in ("events", "aggregates")]
        async with self.pool.acquire() as conn:
            found = await conn.fetchval(
                "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL", *names
            )
        return bool(found)

    async def store(self, channel: str) -> Store:
        """``channel``'s store, opened on first use."""
        found = self.stores.get(channel)
        if found is not None:
            return found
        async with self._opening:
            found = self.stores.get(channel)
            if found is None:
                found = self._make_store(channel)
                await found.open()
                self.stores[channel] = found
        return found

    def _make_store(self, channel: str) -> Store:
        if self.pool is not None:
            return PostgresStore(self.pool, channel, max_pending=self.settings.max_pending)
        path = self.store_path(channel)
        try:
            private_dir(path.parent)
            private_file(path)  # before SQLite makes it, so that it and its WAL are private
        except OSError:
            pass  # the store's open fails on the same problem, and says so as a 503
        return SqliteStore(
            path,
            channel,
            synchronous=self.settings.synchronous,
            max_pending=self.settings.max_pending,
            busy_timeout_ms=self.settings.busy_timeout_ms,
        )

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

    def check_taking_writes(self) -> None:
        """ApiError 503 while the gateway drains: clients send their writes elsewhere."""
        if self.draining:
            raise ApiError(503, "the gateway is shutting down; retry", retry_after(1))

    async def close(self) -> None:
        """Stop taking work and let every queued commit land."""
        self.draining = True
        if self.shared_limits is not None:
            await self.shared_limits.stop()
        await asyncio.gather(*(store.close() for store in self.stores.values()))
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
        self.registry.close()
