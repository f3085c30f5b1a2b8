"""Work done once across replicas: a lease per job in the control plane's ``jobs`` table.

Several gateways may run against one PostgreSQL; a periodic job (the SLA's breach scan, the
rules' reading of the stores, the digests, the aggregate alerts) must run in one of them at a
time. :func:`claim` takes the job's row for a while (its lease) when nobody holds it and it is
due; on PostgreSQL the row is read ``FOR UPDATE SKIP LOCKED``, so a replica that finds another
one claiming it goes on without waiting, and on SQLite the write transaction (``BEGIN
IMMEDIATE``) makes the claim one at a time. A replica that dies holding a lease loses it when
the lease runs out. Each job's own writes are still made safe to repeat (a breach is marked in
the statement that finds it), so a lease that ran out while its holder was only slow costs a
repeat of nothing.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ..control import tables
from ..control.db import Database

_JOBS = tables.jobs


async def claim(
    db: Database, name: str, holder: str, now_ms: int, *, lease_ms: int, every_ms: int = 0
) -> bool:
    """Take job ``name`` for ``holder`` until ``now_ms + lease_ms``, if it is free and due.

    Due means its last run ended ``every_ms`` or more before ``now_ms`` (0: always due). The
    holder of an unexpired lease may claim it again (to extend it). Returns whether it did.
    """

    async def take(conn: AsyncConnection) -> bool:
        insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        await conn.execute(insert(_JOBS).values(name=name).on_conflict_do_nothing())
        query = select(_JOBS.c.lease_ms, _JOBS.c.holder, _JOBS.c.last_ms).where(
            _JOBS.c.name == name
        )
        if db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = (await conn.execute(query)).first()
        if row is None:
            return False  # another replica holds the row this instant
        lease, held_by, last = row
        if lease is not None and lease > now_ms and held_by != holder:
            return False
        if last is not None and every_ms and last + every_ms > now_ms:
            return False
        await conn.execute(
            update(_JOBS)
            .where(_JOBS.c.name == name)
            .values(lease_ms=now_ms + lease_ms, holder=holder)
        )
        return True

    return await db.arun(take, write=True)


async def finish(db: Database, name: str, holder: str, now_ms: int) -> None:
    """Give job ``name`` back, recording ``now_ms`` as its last run, if ``holder`` still has it."""

    async def release(conn: AsyncConnection) -> None:
        await conn.execute(
            update(_JOBS)
            .where(_JOBS.c.name == name, _JOBS.c.holder == holder)
            .values(lease_ms=None, last_ms=now_ms)
        )

    await db.arun(release, write=True)
