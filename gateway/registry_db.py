"""Where the registry's rows live: a SQLite file in the data dir, or PostgreSQL shared by replicas.

The registry (projects, keys, email signing secrets) is small and read far more than written, so
both backends offer the same three calls, synchronous, with SQLite's ``?`` placeholders: ``write``
one statement in its own transaction, ``read`` rows, and ``version`` for change detection. The
PostgreSQL one runs asyncpg on a thread of its own, so the CLI and the gateway's per-request
lookups stay plain function calls.

The registry's tables are versioned as the component ``registry`` (SQLite: the file's
``user_version``; PostgreSQL: a row of ``voxloop_schema``); ``voxloop-gateway migrate`` applies
the steps, and a gateway refuses a registry newer than it knows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import asyncpg  # type: ignore[import-untyped]

from .errors import ConfigError
from .settings import redacted_store
from .shared_limits import TABLE as RATE_USAGE_TABLE
from .stores.postgres import MIGRATION_LOCK

REGISTRY_FILE: Final = "registry.sqlite3"
#: The registry's schema version this code knows.
REGISTRY_VERSION: Final = 1
#: How often a gateway on PostgreSQL rereads the registry (it can't stat a file).
PG_RELOAD_SECONDS: Final = 1.0
#: The modes of the data directory's folders and files: they hold project secrets, email signing
#: secrets and everyone's feedback, so only the gateway's own user may read them.
PRIVATE_DIR_MODE: Final = 0o700
PRIVATE_FILE_MODE: Final = 0o600
#: What SQLite keeps beside a database file: its rollback journal, WAL and shared memory.
SQLITE_SIDE_FILES: Final = ("-journal", "-wal", "-shm")

_T = TypeVar("_T")
Row = tuple[Any, ...]

_TABLES: Final = """
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY,
    secret {blob} NOT NULL,
    channels TEXT NOT NULL,
    created_ms {int} NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    hash {blob} NOT NULL UNIQUE,
    project TEXT NOT NULL REFERENCES projects(id),
    kind TEXT NOT NULL CHECK (kind IN ('site', 'server')),
    channels TEXT NOT NULL,
    origins TEXT NOT NULL,
    created_ms {int} NOT NULL,
    revoked_ms {int}
);
CREATE TABLE IF NOT EXISTS email_secrets (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES projects(id),
    secret {blob} NOT NULL,
    created_ms {int} NOT NULL,
    revoked_ms {int}
);
"""

#: The ``voxloop_schema`` table every component records its version in (PostgreSQL).
SCHEMA_TABLE: Final = """
CREATE TABLE IF NOT EXISTS voxloop_schema (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)"""

#: PostgreSQL steps of the registry: version i+1 is ``_PG_STEPS[i]``.
_PG_STEPS: Final = (_TABLES.format(blob="BYTEA", int="BIGINT") + ";" + RATE_USAGE_TABLE,)


class Duplicate(Exception):
    """A write broke a unique rule (a project or key that exists)."""


class RegistryDb(Protocol):
    """The registry's storage, as the Registry uses it."""

    where: str

    def write(self, sql: str, params: Sequence[object]) -> int:
        """Run one statement in its own transaction; the rows it changed. Duplicate on a
        unique rule, ConfigError when the storage can't be reached."""
        ...

    def read(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """The rows of one query."""
        ...

    def version(self) -> object:
        """Something that changes when the rows may have: a reload is due when it differs."""
        ...

    def exists(self) -> bool:
        """Whether the registry has been set up by ``init``."""
        ...

    def close(self) -> None:
        """Release the connection, if any."""
        ...


def private_dir(path: Path) -> None:
    """Make the folder ``path`` (with its missing parents) for its owner only: 0700.

    A folder found open to others is closed to them; one the process doesn't own and can't
    change is left as it is, with a warning.
    """
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _close_to_others(path)


def private_file(path: Path) -> None:
    """Create the file ``path`` empty and 0600 if it is missing, or close it to others if not.

    SQLite takes an empty file for a new database, and makes its journal, WAL and shared-memory
    files with the database file's mode: a database made here stays private whatever the
    process's umask.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        _close_to_others(path)
        for suffix in SQLITE_SIDE_FILES:
            side = path.with_name(path.name + suffix)
            if side.exists():
                _close_to_others(side)
        return
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)  # the umask may have taken the owner's bits too
    finally:
        os.close(fd)


def _close_to_others(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)
    except FileNotFoundError:
        pass  # a side file SQLite removed meanwhile
    except OSError as exc:
        logging.getLogger(__name__).warning(
            "%s is open to other users and could not be made private: %s", path, exc
        )


class SqliteRegistryDb:
    """The registry in ``registry.sqlite3`` of a data directory, as the CLI made it."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / REGISTRY_FILE
        self.where = str(self.path)

    def _connect(self) -> sqlite3.Connection:
        try:
            private_dir(self.path.parent)
            private_file(self.path)
            db = sqlite3.connect(self.path, timeout=5.0)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > REGISTRY_VERSION:
                db.close()
                raise ConfigError(
                    f"the registry {self.path} has schema version {version}; this gateway"
                    f" knows up to {REGISTRY_VERSION}: upgrade the gateway"
                )
            if version < REGISTRY_VERSION:
                db.executescript(_TABLES.format(blob="BLOB", int="INTEGER"))
                db.execute(f"PRAGMA user_version = {REGISTRY_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"can't open the registry {self.path}: {exc}") from None
        return db

    def write(self, sql: str, params: Sequence[object]) -> int:
        db = self._connect()
        try:
            with db:
                changed: int = db.execute(sql, params).rowcount
        except sqlite3.IntegrityError as exc:
            raise Duplicate(str(exc)) from None
        finally:
            db.close()
        return changed

    def read(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        db = self._connect()
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def version(self) -> object:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def exists(self) -> bool:
        return self.path.exists()

    def close(self) -> None:
        pass  # a connection per call


class PostgresRegistryDb:
    """The registry in PostgreSQL, shared by every replica; asyncpg on a private thread."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.where = redacted_store(dsn)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        self._lock = threading.Lock()

    def _run(self, work: Coroutine[Any, Any, _T]) -> _T:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=loop.run_forever, daemon=True, name="voxloop-registry"
                )
                self._thread.start()
                self._loop = loop
            future = asyncio.run_coroutine_threadsafe(work, self._loop)
            try:
                return future.result(timeout=30)
            except TimeoutError:
                future.cancel()  # the query must not go on holding the one connection
                raise ConfigError(f"the registry in {self.where} did not answer in 30 s") from None

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            try:
                self._conn = await asyncpg.connect(self.dsn, timeout=10)
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                raise ConfigError(f"can't reach the registry in {self.where}: {exc}") from None
        return self._conn

    async def _call(self, method: str, sql: str, params: Sequence[object]) -> Any:
        conn = await self._connection()
        try:
            return await getattr(conn, method)(_numbered(sql), *params)
        except asyncpg.UniqueViolationError as exc:
            raise Duplicate(str(exc)) from None
        except asyncpg.UndefinedTableError:
            raise ConfigError(
                f"no registry in {self.where}: run `voxloop-gateway migrate` first"
            ) from None
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
            await _drop(conn)
            self._conn = None
            raise ConfigError(f"can't reach the registry in {self.where}: {exc}") from None

    def write(self, sql: str, params: Sequence[object]) -> int:
        status: str = self._run(self._call("execute", sql, params))
        return int(status.rsplit(" ", 1)[-1])

    def read(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        records = self._run(self._call("fetch", sql, params))
        return [tuple(record) for record in records]

    def version(self) -> object:
        # No file to stat: a reload is due every PG_RELOAD_SECONDS.
        return int(time.monotonic() // PG_RELOAD_SECONDS)

    def exists(self) -> bool:
        # Migrated and holding a project: what `init` leaves, as the SQLite file is.
        return registry_version_pg(self) > 0 and bool(self.read("SELECT 1 FROM projects LIMIT 1"))

    def close(self) -> None:
        if self._loop is not None:
            if self._conn is not None:
                self._run(_drop(self._conn))
                self._conn = None
            loop, self._loop = self._loop, None
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5)
            loop.close()


def registry_version_pg(db: PostgresRegistryDb) -> int:
    """The registry's schema version in PostgreSQL; 0 before the first ``migrate``."""

    async def version() -> int:
        conn = await db._connection()
        found = await conn.fetchval("SELECT to_regclass('voxloop_schema') IS NOT NULL")
        if not found:
            return 0
        value = await conn.fetchval(
            "SELECT version FROM voxloop_schema WHERE component = 'registry'"
        )
        return int(value or 0)

    return db._run(version())


def migrate_registry_pg(db: PostgresRegistryDb) -> tuple[int, int]:
    """Apply the registry's missing PostgreSQL steps, each in a transaction; (from, to)."""

    async def migrate() -> tuple[int, int]:
        conn = await db._connection()
        async with conn.transaction():
            # The store's migration takes the same lock: one creates voxloop_schema at a time.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(SCHEMA_TABLE)
            found = await conn.fetchval(
                "SELECT version FROM voxloop_schema WHERE component = 'registry'"
            )
            start = int(found or 0)
            if start > REGISTRY_VERSION:
                raise ConfigError(
                    f"the registry in {db.where} has schema version {start}; this gateway"
                    f" knows up to {REGISTRY_VERSION}: upgrade the gateway"
                )
            for step in _PG_STEPS[start:]:
                await conn.execute(step)
            await conn.execute(
                "INSERT INTO voxloop_schema VALUES ('registry', $1)"
                " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                REGISTRY_VERSION,
            )
        return start, REGISTRY_VERSION

    return db._run(migrate())


def _numbered(sql: str) -> str:
    """SQLite's ``?`` placeholders as PostgreSQL's ``$1, $2, ...``."""
    count = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


async def _drop(conn: Any) -> None:
    try:
        await conn.close(timeout=2)
    except Exception:  # a broken connection may fail to close politely
        conn.terminate()
