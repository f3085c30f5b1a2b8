"""Builders and fixtures for the store tests: records made by the real core, and both backends.

Every test of the shared suite runs against a real SQLite file and a real PostgreSQL. The
PostgreSQL one gets a schema of its own (``CREATE SCHEMA t_<random>``, migrated, dropped after
the test), reached through the pool's ``search_path``; ``VOXLOOP_TEST_PG`` names the database.
Without a reachable PostgreSQL its tests are skipped, or fail when ``CI`` is set.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import pathlib
import secrets
import sqlite3
import urllib.parse
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, NamedTuple, Protocol, TypeVar

import asyncpg  # type: ignore[import-untyped]
import msgspec
import pytest

import voxloop_core
from tests.postgres import PG_URL, require_postgres
from voxloop_core import DAY_MS, HOUR_MS, Record
from voxloop_gateway.stores import SqliteStore, Store
from voxloop_gateway.stores.postgres import PostgresStore, migrate

NOW_MS = 1_795_435_200_000  # 2026-11-23T12:00:00Z, an hour start
SECRET = b"project-secret-0123456789abcdef!"
PROJECT = "acme"
PG_DSN = PG_URL

_T = TypeVar("_T")


def event(**fields: Any) -> dict[str, Any]:
    """A valid NPS event of the web channel, as a client sends it, with ``fields`` changed."""
    base: dict[str, Any] = {"channel": "web", "form": "checkout", "metric": "nps", "score": 9}
    base.update(fields)
    return base


def make_records(*events: dict[str, Any]) -> list[Record]:
    """Decode and validate ``events`` as one request body, as the gateway does; all must pass."""
    decoded, rejected = voxloop_core.decode_batch(msgspec.json.encode({"events": list(events)}))
    assert rejected == []
    records, refused = voxloop_core.validate(decoded, voxloop_core.DEFAULT_POLICY, NOW_MS, SECRET)
    assert refused == []
    return records


def body_before_v3(record: Record) -> str:
    """The ``body`` column as stores wrote it before ``respondent`` became a column of its own
    (SQLite schema 2, PostgreSQL schema 1): the respondent's keyed hash inside it."""
    fields = {
        "comment": record.comment,
        "respondent": record.respondent,
        "locale": record.locale,
        "tags": record.tags,
        "meta": record.meta,
    }
    return msgspec.json.encode({k: v for k, v in fields.items() if v is not None}).decode()


def stored_before_v3() -> list[tuple[str, Record, bool, str | None]]:
    """Events a store held before the respondent column: (project, record, counted, held).

    Two projects, events with and without a respondent, a vote group with its history and a
    late click, text of several scripts, tags and meta: what a migration must keep.
    """
    plain = make_records(
        event(id="p1", respondent="user-1", comment="Très bien 👍", locale="fr", tags=["a"]),
        event(id="p2", score=3, meta={"plan": "pro", "n": 2, "ok": True, "x": 1.5}),
        event(id="p3", score=0, respondent="user-2", ts=NOW_MS - 3 * HOUR_MS),
        event(id="p4", metric="csat", score=4, respondent='quote " and \\ backslash'),
    )
    votes = make_records(
        event(id="v1", score=2, vote_key="email:x", respondent="user-1", ts=NOW_MS - 2000),
        event(id="v2", score=8, vote_key="email:x", respondent="user-1", ts=NOW_MS - 1000),
        event(id="v3", score=5, vote_key="email:x", respondent="user-1", comment="later"),
    )
    return [
        (PROJECT, plain[0], True, None),
        (PROJECT, plain[1], True, None),
        (PROJECT, plain[2], True, None),
        ("globex", plain[0], True, None),
        ("globex", plain[3], True, None),
        (PROJECT, votes[0], False, None),
        (PROJECT, votes[1], True, None),
        (PROJECT, votes[2], False, "late"),
    ]


def aggregates_of(
    stored: list[tuple[str, Record, bool, str | None]],
) -> list[tuple[str, str, str, int, int, int]]:
    """The aggregate rows of the counted events of ``stored``, sorted."""
    counts: dict[tuple[str, str, str, int, int], int] = {}
    for project, record, counted, _ in stored:
        if counted:
            hour = record.ts_ms - record.ts_ms % HOUR_MS
            row = (project, record.metric, record.form, hour, record.score)
            counts[row] = counts.get(row, 0) + 1
    return sorted((*row, count) for row, count in counts.items())


def days_of(
    aggregates: list[tuple[str, str, str, int, int, int]],
) -> list[tuple[str, str, str, int, int, int]]:
    """The daily aggregate rows of hourly ``aggregates``: each UTC day's hours added up, per form
    and over the forms (form ``*``), sorted."""
    counts: dict[tuple[str, str, str, int, int], int] = {}
    for project, metric, form, hour, score, count in aggregates:
        for key in (form, "*"):
            row = (project, metric, key, hour - hour % DAY_MS, score)
            counts[row] = counts.get(row, 0) + count
    return sorted((*row, count) for row, count in counts.items())


def query_file(path: pathlib.Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Rows of ``sql`` read from a SQLite store's file through a separate, plain connection."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(sql, params).fetchall()


class Stored(NamedTuple):
    """One stored event as a test inspects it, the same from either backend."""

    project: str
    key: bytes
    id: str | None
    counted: int
    held: str | None
    comment: str | None


class Session(Protocol):
    """A backend within one event loop: makes stores and reads what they stored."""

    def make(self, channel: str = "web", **options: Any) -> Store:
        """A new, unopened store of ``channel`` on this test's data."""
        ...

    async def events(self, store: Store) -> list[Stored]:
        """Every event ``store`` holds, read apart from the store, ordered by project and id."""
        ...

    async def aggregates(
        self, store: Store, *, daily: bool = False
    ) -> list[tuple[str, str, str, int, int, int]]:
        """Every aggregate row of ``store``: (project, metric, form, hour, score, count), or
        with ``daily`` every daily one (a day for the hour)."""
        ...


class Backend(Protocol):
    name: str

    def session(self, *, fresh: bool = False) -> contextlib.AbstractAsyncContextManager[Session]:
        """A session in the running loop; ``fresh`` empties the test's data first."""
        ...


# --- SQLite ---------------------------------------------------------------------------------


class SqliteSession:
    def __init__(self, folder: pathlib.Path) -> None:
        self.folder = folder

    def make(self, channel: str = "web", **options: Any) -> Store:
        return SqliteStore(self.folder / f"{channel}.sqlite3", channel, **options)

    async def events(self, store: Store) -> list[Stored]:
        assert isinstance(store, SqliteStore)
        rows = query_file(
            store.path,
            "SELECT project, key, id, counted, held, body ->> '$.comment' FROM events",
        )
        return sorted((Stored(*row) for row in rows), key=_event_order)

    async def aggregates(
        self, store: Store, *, daily: bool = False
    ) -> list[tuple[str, str, str, int, int, int]]:
        assert isinstance(store, SqliteStore)
        table = "aggregates_daily" if daily else "aggregates"
        return sorted(query_file(store.path, f"SELECT * FROM {table}"))


class SqliteBackend:
    name = "sqlite"

    def __init__(self, folder: pathlib.Path) -> None:
        self.folder = folder
        self._sessions = 0

    @contextlib.asynccontextmanager
    async def session(self, *, fresh: bool = False) -> AsyncIterator[Session]:
        if fresh:
            self._sessions += 1
        yield SqliteSession(self.folder / f"stores-{self._sessions}")


# --- PostgreSQL -----------------------------------------------------------------------------


def blocking(work: Coroutine[Any, Any, _T]) -> _T:
    """Run ``work`` to the end in a loop of its own thread, whatever loop this thread has."""
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, work).result()


class PostgresSession:
    def __init__(self, backend: PostgresBackend, admin: asyncpg.Connection) -> None:
        self.backend = backend
        self.admin = admin
        self.pools: list[asyncpg.Pool] = []

    def make(self, channel: str = "web", **options: Any) -> Store:
        """A store on a pool of its own made when it opens: a replica of its own."""
        return _LazyPoolStore(self, channel, options)

    async def pool(self, **connect: Any) -> asyncpg.Pool:
        """A new pool on this test's schema, closed with the session."""
        pool = await self.backend.pool(**connect)
        self.pools.append(pool)
        return pool

    async def events(self, store: Store) -> list[Stored]:
        rows = await self.admin.fetch(
            "SELECT project, key, id, counted::int, held, body ->> 'comment' FROM events"
            " WHERE channel = $1",
            store.channel,
        )
        return sorted((Stored(*row) for row in rows), key=_event_order)

    async def aggregates(
        self, store: Store, *, daily: bool = False
    ) -> list[tuple[str, str, str, int, int, int]]:
        table, time = ("aggregates_daily", "day") if daily else ("aggregates", "hour")
        rows = await self.admin.fetch(
            f"SELECT project, metric, form, {time}, score, count FROM {table} WHERE channel = $1",
            store.channel,
        )
        return sorted(tuple(row) for row in rows)

    async def close(self) -> None:
        for pool in self.pools:
            await pool.close()
        await self.admin.close()


class _LazyPoolStore(PostgresStore):
    """A PostgresStore whose pool is made at ``open()``, in the test's loop."""

    def __init__(self, session: PostgresSession, channel: str, options: dict[str, Any]) -> None:
        super().__init__(None, channel, **options)
        self._session = session

    async def open(self) -> None:
        if self._pool is None:
            self._pool = await self._session.pool()
        await super().open()


class PostgresBackend:
    name = "postgresql"

    def __init__(self, schema: str, **server_settings: str) -> None:
        self.schema = schema
        self.server_settings = server_settings

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(PG_DSN, server_settings=self._settings())

    async def pool(self, dsn: str = PG_DSN, **connect: Any) -> asyncpg.Pool:
        """A new pool on this schema; the caller closes it."""
        options: dict[str, Any] = {"min_size": 1, "max_size": 4, "timeout": 5}
        options.update(connect)
        return await asyncpg.create_pool(dsn, server_settings=self._settings(), **options)

    def _settings(self) -> dict[str, str]:
        return {
            "search_path": self.schema,
            "application_name": f"voxloop-test-{self.schema}",
            **self.server_settings,
        }

    @contextlib.asynccontextmanager
    async def session(self, *, fresh: bool = False) -> AsyncIterator[Session]:
        session = PostgresSession(self, await self.connect())
        try:
            if fresh:
                await session.admin.execute(
                    "TRUNCATE events, aggregates, aggregates_daily, heartbeat, revisions,"
                    " tombstones"
                )
            yield session
        finally:
            await session.close()

    async def create(self, *, migrated: bool = True) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f"CREATE SCHEMA {self.schema}")
        finally:
            await conn.close()
        if migrated:
            conn = await self.connect()
            try:
                await migrate(conn)
            finally:
                await conn.close()

    async def drop(self) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        finally:
            await conn.close()


@contextlib.contextmanager
def postgres_schema(*, migrated: bool = True, **server_settings: str) -> Iterator[PostgresBackend]:
    """A schema of its own for one test, dropped after it."""
    require_postgres()
    backend = PostgresBackend(f"t_{secrets.token_hex(6)}", **server_settings)
    blocking(backend.create(migrated=migrated))
    try:
        yield backend
    finally:
        blocking(backend.drop())


def _event_order(stored: Stored) -> tuple[str, str, bytes]:
    return (stored.project, stored.id or "", stored.key)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Backend]:
    """Each backend in turn, with an empty store for this test."""
    if request.param == "sqlite":
        yield SqliteBackend(tmp_path)
        return
    with postgres_schema() as made:
        yield made


@pytest.fixture
def postgres() -> Iterator[PostgresBackend]:
    """PostgreSQL alone, with a migrated schema of its own for this test."""
    with postgres_schema() as made:
        yield made


@pytest.fixture
async def session(backend: Backend) -> AsyncIterator[Session]:
    async with backend.session() as opened:
        yield opened


@pytest.fixture
async def store(session: Session) -> AsyncIterator[Store]:
    """An open store of the web channel, closed after the test."""
    opened = session.make()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def store_path(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "stores" / "web.sqlite3"


def proxied_dsn(port: int) -> str:
    """``PG_DSN`` with its address replaced by the local ``port``."""
    parts = urllib.parse.urlsplit(PG_DSN)
    user = f"{parts.username}@" if parts.username else ""
    if parts.password:
        user = f"{parts.username}:{parts.password}@"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


class Proxy:
    """A TCP proxy in front of PostgreSQL that a test can cut, as if the server went away.

    ``cut()`` closes every connection through it and stops listening (new connections are
    refused); ``restore()`` listens again on the same port. The server itself is never touched.
    """

    def __init__(self) -> None:
        parts = urllib.parse.urlsplit(PG_DSN)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await asyncio.sleep(0.05)  # let both ends see the connections go

    async def close(self) -> None:
        await self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            sink.transport.abort()
            self._writers.discard(sink)
