"""Schema versions: ``voxloop-gateway migrate`` applies the missing steps; start-up checks them.

Two components carry a version each: the control plane, shown as the ``registry`` (projects,
keys, email secrets...: Alembic's revision, see :mod:`.control.schema`), and the channel
``store`` (hand-tuned SQL: each SQLite file's ``PRAGMA user_version``, PostgreSQL's row of
``voxloop_schema``). A gateway starts only when every component is at the version its code
knows: an older one asks for ``migrate``, a newer one for an upgrade of the gateway, each in one
line. New SQLite files (the embedded default on a fresh machine) are made at the current version,
so ``make run`` needs no step.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from .control import schema
from .control.db import Database
from .errors import ConfigError
from .service import STORES_DIR, secure_data_dir
from .settings import Settings
from .stores import StoreUnavailable, postgres, sqlite


def store_files(data_dir: Path) -> list[Path]:
    """The channel store files of a data directory."""
    return sorted((data_dir / STORES_DIR).glob("*.sqlite3"))


def migrate(settings: Settings) -> list[str]:
    """Bring every component to this code's version; a line per component saying what changed."""
    if not settings.postgres:
        try:
            secure_data_dir(settings.data_dir)
        except OSError as exc:
            raise ConfigError(f"can't open the data dir {settings.data_dir}: {exc}") from None
    db = Database(settings.data_dir, settings.store)
    try:
        before, after = schema.migrate(db)
    finally:
        db.close()
    lines = [_line("registry", db.where, before, after)]
    if settings.postgres:
        before, after = asyncio.run(_migrate_pg_store(settings.store))
        return lines + [_line("store", db.where, before, after)]
    for path in store_files(settings.data_dir):
        try:
            before, after = sqlite.migrate_file(path)
        except StoreUnavailable as exc:
            raise ConfigError(str(exc)) from None
        except sqlite3.Error as exc:  # not a database, or locked
            raise ConfigError(f"can't open the store {path}: {exc}") from None
        lines.append(_line(f"store {path.stem}", str(path), before, after))
    return lines


def check(settings: Settings) -> None:
    """ConfigError, in one line, unless every component is at this code's version."""
    db = Database(settings.data_dir, settings.store)
    if settings.postgres or db.exists():  # a missing SQLite registry: `init` makes it
        try:
            schema.check(db)
        finally:
            db.close()
    if settings.postgres:
        found = asyncio.run(_pg_store_version(settings.store))
        schema.compare("the store", db.where, found, postgres.SCHEMA_VERSION)
        return
    for path in store_files(settings.data_dir):
        try:
            version = sqlite.file_version(path)
        except sqlite3.Error as exc:  # not a database, or locked
            raise ConfigError(f"can't open the store {path}: {exc}") from None
        if version:
            try:
                sqlite.check_version(version, f"the store {path}")
            except StoreUnavailable as exc:
                raise ConfigError(str(exc)) from None


def _line(what: str, where: str, before: int, after: int) -> str:
    change = f"{before} -> {after}" if before != after else f"at {after}, nothing to do"
    return f"{what:<16} {change}  ({where})"


async def _connect(dsn: str) -> Any:
    try:
        return await asyncpg.connect(dsn, timeout=10)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise ConfigError(f"can't reach PostgreSQL: {exc}") from None


async def _migrate_pg_store(dsn: str) -> tuple[int, int]:
    conn = await _connect(dsn)
    try:
        found: tuple[int, int] = await postgres.migrate(conn)
        return found
    finally:
        await conn.close()


async def _pg_store_version(dsn: str) -> int:
    conn = await _connect(dsn)
    try:
        found: int = await postgres.schema_version(conn)
        return found
    finally:
        await conn.close()
