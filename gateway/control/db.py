"""The control plane's database: one SQLAlchemy engine, on SQLite in the data dir or PostgreSQL.

Embedded, it is ``registry.sqlite3`` in the data directory (``sqlite+aiosqlite``), made 0600 in
a 0700 folder before SQLite first opens it; scaled out, it is the stores' PostgreSQL
(``postgresql+asyncpg``), shared by every replica.

Statements run on an event loop of the database's own, in a daemon thread, whoever asks: the
synchronous CLI and the registry's lookups wait for the result (:meth:`Database.run`), code on
the gateway's event loop awaits it (:meth:`Database.arun`), and a background reload takes the
future (:meth:`Database.submit`). The engine, its pool and its connections thus live on one loop
only, and neither side needs the other's kind of call.

Errors come out as :class:`~..errors.ConfigError` in one line naming where the database is
(``IntegrityError`` excepted: a broken unique rule is for the caller to word). Statement
parameters, which hold secrets, are never part of a message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import stat
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import URL, event, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from ..errors import ConfigError
from ..settings import redacted_store
from . import tables

REGISTRY_FILE: Final = "registry.sqlite3"
#: The modes of the data directory's folders and files: they hold project secrets, email signing
#: secrets and everyone's feedback, so only the gateway's own user may read them.
PRIVATE_DIR_MODE: Final = 0o700
PRIVATE_FILE_MODE: Final = 0o600
#: What SQLite keeps beside a database file: its rollback journal, WAL and shared memory.
SQLITE_SIDE_FILES: Final = ("-journal", "-wal", "-shm")
#: How long a caller waits for a statement before giving up on the database.
ANSWER_SECONDS: Final = 30.0
#: How long SQLite waits for another process's lock, and PostgreSQL for a connection.
CONNECT_SECONDS: Final = 10.0
SQLITE_BUSY_SECONDS: Final = 5.0
#: Connections to the SQLite file kept open between transactions, and how many more may be
#: opened meanwhile (each closed after its transaction).
SQLITE_POOL: Final = 2
SQLITE_OVERFLOW: Final = 8

_T = TypeVar("_T")
#: What runs on the database's loop: given a connection in a transaction, it returns a result.
Work = Callable[[AsyncConnection], Awaitable[_T]]
#: PostgreSQL's code for "relation does not exist": the tables were never migrated.
_UNDEFINED_TABLE: Final = "42P01"


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


class Database:
    """The control plane's database of a data directory (``store="sqlite"``) or a PostgreSQL.

    Nothing is opened until the first statement; :meth:`close` releases the connections and
    the thread, and the next statement opens them again.
    """

    def __init__(self, data_dir: Path, store: str = "sqlite") -> None:
        self.path: Path | None = None
        if store == "sqlite":
            self.path = data_dir / REGISTRY_FILE
            self.url: URL = URL.create("sqlite+aiosqlite", database=str(self.path))
            #: Where the database is, as messages may show it.
            self.where = str(self.path)
        else:
            # asyncpg reads the URL itself, as the stores' pool does (sslmode, passfile...).
            self.url = URL.create("postgresql+asyncpg")
            self.where = redacted_store(store)
        self._dsn = store
        self.dialect: Final = "sqlite" if self.path is not None else "postgresql"
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        #: The engine once made (at most one): a list, which the finalizer holds, not the Database.
        self._engines: list[AsyncEngine] = []
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # --- running statements ----------------------------------------------------------------

    def submit(self, work: Work[_T], *, write: bool = False) -> concurrent.futures.Future[_T]:
        """Start ``work`` in a transaction of its own on the database's loop; its future.

        ``write`` takes SQLite's write lock from the start (``BEGIN IMMEDIATE``), so that what
        the work reads stays true until it commits.
        """
        loop = self._started()
        return asyncio.run_coroutine_threadsafe(self._transaction(work, write), loop)

    def run(self, work: Work[_T], *, write: bool = False) -> _T:
        """:meth:`submit`, then wait for the result: for synchronous code (the CLI, lookups)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("Database.run called from the database's own loop")
        future = self.submit(work, write=write)
        try:
            return future.result(timeout=ANSWER_SECONDS)
        except concurrent.futures.TimeoutError:
            future.cancel()  # the statement must not go on holding a connection
            raise ConfigError(
                f"the registry in {self.where} did not answer in {ANSWER_SECONDS:.0f} s"
            ) from None

    async def arun(self, work: Work[_T], *, write: bool = False) -> _T:
        """:meth:`submit`, awaited: for code on another event loop (the gateway's)."""
        return await asyncio.wait_for(
            asyncio.wrap_future(self.submit(work, write=write)), ANSWER_SECONDS
        )

    def exists(self) -> bool:
        """Whether the control plane has been set up: its file, or a project in PostgreSQL."""
        if self.path is not None:
            return self.path.exists()

        async def has_a_project(conn: AsyncConnection) -> bool:
            if not await conn.run_sync(_has_table, tables.projects.name):
                return False
            found = await conn.execute(select(tables.projects.c.id).limit(1))
            return found.first() is not None

        return self.run(has_a_project)

    def changed_at(self) -> tuple[int, int] | None:
        """The SQLite file's modification time and size, None on PostgreSQL or without it."""
        if self.path is None:
            return None
        try:
            found = self.path.stat()
        except OSError:
            return None
        return found.st_mtime_ns, found.st_size

    def close(self) -> None:
        """Close the connections and stop the thread; a later statement starts them again."""
        with self._lock:
            loop, thread, engines = self._loop, self._thread, self._engines
            self._loop, self._thread, self._engines = None, None, []
            if self._finalizer is not None:
                self._finalizer.detach()
                self._finalizer = None
        if loop is None or thread is None:
            return
        _shut(loop, thread, engines)

    # --- inside ----------------------------------------------------------------------------

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, daemon=True, name="voxloop-control-db"
                )
                thread.start()
                self._loop, self._thread = loop, thread
                # Shut with the Database if it is dropped without close() (e.g. by a test): the
                # connections it keeps are closed too.
                self._finalizer = weakref.finalize(self, _shut, loop, thread, self._engines)
            return self._loop

    def _make_engine(self) -> AsyncEngine:
        if self.path is None:
            dsn = self._dsn

            async def connect() -> Any:
                return await asyncpg.connect(
                    dsn, timeout=CONNECT_SECONDS, command_timeout=ANSWER_SECONDS
                )

            return create_async_engine(
                self.url,
                async_creator=connect,
                pool_size=2,
                max_overflow=2,
                pool_pre_ping=True,
                pool_timeout=CONNECT_SECONDS,
                hide_parameters=True,
            )
        try:
            private_dir(self.path.parent)
            private_file(self.path)  # before SQLite makes it: it and its journal stay private
        except OSError as exc:
            raise ConfigError(f"can't open the registry {self.path}: {exc}") from None
        # A few connections kept open between calls (:data:`SQLITE_POOL`): opening one is a
        # thread of aiosqlite's and a file to open, which cost the rules' feed more than its
        # statements did. Each transaction still sees what another process committed before
        # it began; ``close()`` closes them.
        engine = create_async_engine(
            self.url,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=SQLITE_POOL,
            max_overflow=SQLITE_OVERFLOW,
            hide_parameters=True,
            connect_args={"timeout": SQLITE_BUSY_SECONDS},
        )
        # SQLAlchemy's own transactions, not the sqlite3 module's: DDL is transactional too
        # (a migration commits whole or not at all), and a write locks from its BEGIN.
        event.listen(engine.sync_engine, "connect", _no_implicit_transactions)
        event.listen(engine.sync_engine, "begin", _begin)
        return engine

    async def _transaction(self, work: Work[_T], write: bool) -> _T:
        try:
            if not self._engines:
                self._engines.append(self._make_engine())
            async with self._connection(self._engines[0], write) as conn:
                return await work(conn)
        except (IntegrityError, ConfigError):
            raise
        except (SQLAlchemyError, asyncpg.PostgresError, OSError, TimeoutError) as exc:
            raise self._failure(exc) from None

    @asynccontextmanager
    async def _connection(self, engine: AsyncEngine, write: bool) -> AsyncIterator[AsyncConnection]:
        async with engine.connect() as conn:
            if write:
                conn = await conn.execution_options(voxloop_write=True)
            async with conn.begin():
                yield conn

    def _failure(self, exc: BaseException) -> ConfigError:
        if getattr(getattr(exc, "orig", None), "sqlstate", None) == _UNDEFINED_TABLE:
            return ConfigError(f"no registry in {self.where}: run `voxloop-gateway migrate` first")
        if self.path is not None:
            return ConfigError(f"can't open the registry {self.path}: {_reason(exc)}")
        return ConfigError(f"can't reach the registry in {self.where}: {_reason(exc)}")


def _has_table(conn: Connection, name: str) -> bool:
    return inspect(conn).has_table(name)


def _reason(exc: BaseException) -> str:
    """The driver's own words for ``exc``, on one line, without SQLAlchemy's statement dump."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        cause: BaseException = exc.orig.__cause__ or exc.orig
        text = str(cause) or type(cause).__name__
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("voxloop_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _shut(
    loop: asyncio.AbstractEventLoop, thread: threading.Thread, engines: list[AsyncEngine]
) -> None:
    """Close the connections ``engines`` keep, on their loop, then stop the loop and its thread.

    From the loop's own thread (a finalizer run there) they can't be waited for: SQLite's are
    then closed when collected.
    """
    if thread is not threading.current_thread() and loop.is_running():
        for engine in engines:
            done = asyncio.run_coroutine_threadsafe(engine.dispose(), loop)
            try:
                done.result(timeout=5)
            except Exception as exc:  # a connection broken already may fail to close politely
                logging.getLogger(__name__).debug("closing the registry's connections: %s", exc)
    engines.clear()
    _stop(loop, thread)


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    if loop.is_closed():
        return
    loop.call_soon_threadsafe(loop.stop)
    if thread is not threading.current_thread():
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()


__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "REGISTRY_FILE",
    "SQLITE_SIDE_FILES",
    "Database",
    "Work",
    "private_dir",
    "private_file",
]
