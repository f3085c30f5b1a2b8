"""Schema versions: ``voxloop-gateway migrate`` applies the missing steps; start-up checks them.

Two components carry a version each: the ``registry`` (projects, keys, email secrets) and the
channel ``store``. On SQLite the registry file and each channel's file record theirs in
``PRAGMA user_version``; on PostgreSQL both are rows of ``voxloop_schema``. A gateway starts only
when every component is at the version its code knows: an older one asks for ``migrate``, a
newer one for an upgrade of the gateway, each in one line. New SQLite files (the embedded
default on a fresh machine) are made at the current version, so ``make run`` needs no step.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from .errors import ConfigError
from .registry_db import (
    REGISTRY_VERSION,
    PostgresRegistryDb,
    SqliteRegistryDb,
    migrate_registry_pg,
    registry_version_pg,
)
from .service import STORES_DIR, secure_data_dir
from .settings import Settings
from .stores import StoreUnavailable, postgres, sqlite


def store_files(data_dir: Path) -> list[Path]:
    """The channel store files of a data directory."""
    return sorted((data_dir / STORES_DIR).glob("*.sqlite3"))


def migrate(settings: Settings) -> list[str]:
    """Bring every component to this code's version; a line per component saying what changed."""
    if settings.postgres:
        registry = PostgresRegistryDb(settings.store)
        try:
            before, after = migrate_registry_pg(registry)
        finally:
            registry.close()
        lines = [_line("registry", registry.where, before, after)]
        before, after = asyncio.run(_migrate_pg_store(settings.store))
        return lines + [_line("store", registry.where, before, after)]
    try:
        secure_data_dir(settings.data_dir)
    except OSError as exc:
        raise ConfigError(f"can't open the data dir {settings.data_dir}: {exc}") from None
    SqliteRegistryDb(settings.data_dir).read("SELECT 1")  # creates or stamps it
    lines = [_line("registry", str(settings.data_dir), REGISTRY_VERSION, REGISTRY_VERSION)]
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
    if settings.postgres:
        registry = PostgresRegistryDb(settings.store)
        try:
            found = registry_version_pg(registry)
        finally:
            registry.close()
        _compare("the registry", registry.where, found, REGISTRY_VERSION)
        found = asyncio.run(_pg_store_version(settings.store))
        _compare("the store", registry.where, found, postgres.SCHEMA_VERSION)
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


def _compare(what: str, where: str, found: int, known: int) -> None:
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
