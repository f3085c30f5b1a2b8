"""The control plane's schema version: Alembic run from code, and databases made before it.

The migrations are in ``migrations/versions``, numbered ``0001``, ``0002``...: the revision is
the schema version ``voxloop-gateway migrate`` reports and start-up compares. No ``alembic.ini``
is needed; :func:`alembic_config` points Alembic at the folder the package carries and hands it
the connection in use, so a migration runs in the caller's transaction (on PostgreSQL under the
advisory lock the stores' migrations take too: two runs never race).

Before Alembic, the registry counted its own versions, and only ever reached 1: SQLite's
``PRAGMA user_version`` of ``registry.sqlite3``, PostgreSQL's row ``registry`` of
``voxloop_schema``. Revision ``0001`` is that schema exactly, so such a database is stamped
``0001`` without a row touched, then upgraded. Once under Alembic, the old mark says
:data:`HANDED_OVER`, which a gateway of before refuses as newer than it knows.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import ConfigError
from ..stores.postgres import MIGRATION_LOCK
from .db import Database

MIGRATIONS: Final = Path(__file__).with_name("migrations")
#: The version the registry's own numbering reached; revision ``0001`` is the same schema.
LEGACY_VERSION: Final = 1
#: What the old marks say once Alembic keeps the version: more than a gateway of before knows.
HANDED_OVER: Final = 2
_VERSION_TABLE: Final = "alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the control plane, using ``connection`` when given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def head() -> int:
    """The schema version this code knows: its newest revision."""
    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert found is not None, "the control plane has no migrations"
    return int(found)


def version(db: Database) -> int:
    """The schema version of ``db``: 0 before anything was made, else what it is at."""

    async def read(conn: AsyncConnection) -> int:
        return await conn.run_sync(version_of)

    return db.run(read)


def version_of(conn: Connection) -> int:
    """The schema version on ``conn``: Alembic's revision, or the mark of before Alembic."""
    names = set(inspect(conn).get_table_names())
    if _VERSION_TABLE in names:
        revision = MigrationContext.configure(conn).get_current_revision()
        if revision is None:
            return 0
        if not revision.isdigit():
            raise ConfigError(
                f"the registry is at revision {revision!r}, unknown to this gateway:"
                " upgrade the gateway"
            )
        return int(revision)
    mark = _legacy_mark(conn, names)
    # A mark past the old numbering without Alembic's table: whoever wrote it knew more.
    return mark if mark <= LEGACY_VERSION else head() + mark


def check(db: Database) -> None:
    """ConfigError, in one line, unless ``db`` is at :func:`head` (or empty, on SQLite)."""
    found = version(db)
    if found == 0 and db.dialect == "sqlite":
        return  # made at the current version on first use
    compare("the registry", db.where, found, head())


def ensure(db: Database) -> None:
    """Make an empty SQLite registry at :func:`head`; refuse one at another version."""
    found = version(db)
    if found == 0:
        migrate(db)
    else:
        compare("the registry", db.where, found, head())


def prepare(db: Database) -> None:
    """Before a first statement: :func:`ensure` on SQLite (a new file is made at the current
    version), :func:`check` elsewhere (another version waits for ``migrate`` or an upgrade)."""
    (ensure if db.dialect == "sqlite" else check)(db)


def migrate(db: Database) -> tuple[int, int]:
    """Bring ``db`` to :func:`head` in one transaction; (version before, version after)."""

    async def upgrade(conn: AsyncConnection) -> tuple[int, int]:
        if conn.dialect.name == "postgresql":
            # The stores' migration takes the same lock: one run at a time makes voxloop_schema.
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": MIGRATION_LOCK}
            )
        return await conn.run_sync(_upgrade, db.where)

    return db.run(upgrade, write=True)


def compare(what: str, where: str, found: int, known: int) -> None:
    """ConfigError, in one line, unless version ``found`` of ``what`` is ``known``."""
    if found > known:
        raise ConfigError(
            f"{what} in {where} has schema version {found}; this gateway knows up to {known}:"
            " upgrade the gateway"
        )
    if found < known:
        state = "has no schema yet" if found == 0 else f"has schema version {found}"
        raise ConfigError(
            f"{what} in {where} {state}, this gateway needs {known}: run `voxloop-gateway migrate`"
        )


def _upgrade(conn: Connection, where: str) -> tuple[int, int]:
    before, known = version_of(conn), head()
    if before == known:
        return before, known  # nothing to do, and nothing written: the file stays as it was
    if before > known:
        compare("the registry", where, before, known)
    config = alembic_config(conn)
    if before and not inspect(conn).has_table(_VERSION_TABLE):
        command.stamp(config, f"{before:04d}")  # made before Alembic: its rows stay as they are
    command.upgrade(config, "head")
    _hand_over(conn)
    return before, known


def _legacy_mark(conn: Connection, names: set[str]) -> int:
    if conn.dialect.name == "sqlite":
        return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one()) if names else 0
    if "voxloop_schema" not in names:
        return 0
    found = conn.execute(
        text("SELECT version FROM voxloop_schema WHERE component = 'registry'")
    ).scalar()
    return int(found or 0)


def _hand_over(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA user_version = {HANDED_OVER}")
        return
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS voxloop_schema"
            " (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
    )
    conn.execute(
        text(
            "INSERT INTO voxloop_schema VALUES ('registry', :mark)"
            " ON CONFLICT (component) DO UPDATE SET version = excluded.version"
        ),
        {"mark": HANDED_OVER},
    )
