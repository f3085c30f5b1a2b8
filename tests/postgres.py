"""The PostgreSQL server the tests use, and what a test does without one.

``VOXLOOP_TEST_PG`` names it (default ``postgresql://postgres@127.0.0.1:5432/test``). Without a
reachable server a PostgreSQL test skips, unless ``CI`` is set: then it fails, because CI must
test the PostgreSQL leg.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os

import asyncpg  # type: ignore[import-untyped]
import pytest

PG_URL = os.environ.get("VOXLOOP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@functools.cache
def postgres_problem() -> str | None:
    """Why the server at ``PG_URL`` can't be used, or None if it can."""

    async def probe() -> None:
        conn = await asyncpg.connect(PG_URL, timeout=5)
        try:
            # Once, in public: a store's migration would otherwise make it in the first test
            # schema, and dropping that schema would take the trigram indexes of the others.
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        finally:
            await conn.close()

    try:  # on a thread of its own: the calling thread may be running a loop already
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, probe()).result()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def require_postgres() -> None:
    """Skip the calling test without a PostgreSQL to use, or fail it when running in CI."""
    problem = postgres_problem()
    if problem is None:
        return
    message = f"PostgreSQL at {PG_URL} (VOXLOOP_TEST_PG) is not reachable: {problem}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI is set, so the PostgreSQL leg must be tested")
    pytest.skip(message)
