"""The control plane's schema on both databases: Alembic's migrations from nothing, from a
registry the gateway made before them and from the revision before people and read keys, and
the start-up check of the version.

Real ``voxloop-gateway`` processes on real SQLite files and a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from alembic import command as alembic_command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop_gateway.control import schema
from voxloop_gateway.control.access import BUILTIN_LEVELS
from voxloop_gateway.control.db import Database
from voxloop_gateway.control.registry import Registry, key_hash
from voxloop_gateway.control.tables import metadata

from .conftest import Command, Spawn, clean_environ, free_port, spawn, wait_ready
from .pg import pg_url

__all__ = ["pg_url", "spawn"]  # fixtures

DATA = Path(__file__).parent / "data"
#: The keys whose hashes the registries of before hold (see the .sql files).
SERVER = "sk_LegacyServerKeyOfShop".ljust(46, "0")
SITE = "pk_LegacySiteKeyOfShop".ljust(46, "0")
REVOKED = "sk_LegacyRevokedKeyOfCafe".ljust(46, "0")
ORIGIN = "https://shop.example.com"
TABLES = ("projects", "keys", "email_secrets")


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environ(),
    )


def on(where: str) -> list[str]:
    """The options that name the database: none for the data dir's SQLite, else --store."""
    return [] if where == "sqlite" else ["--store", where]


def make_old_sqlite(data_dir: Path) -> Path:
    path = data_dir / "registry.sqlite3"
    data_dir.mkdir(exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript((DATA / "registry_v1_sqlite.sql").read_text())
    return path


def make_old_postgres(url: str) -> None:
    async def load() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute((DATA / "registry_v1_postgres.sql").read_text())
        finally:
            await conn.close()

    asyncio.run(load())


#: How SQLite reads the registry's DDL of before, which the same tables made since don't show:
#: a TEXT PRIMARY KEY without NOT NULL may hold NULL (SQLite's old quirk; the registry always
#: writes an id), and the inline UNIQUE of a key's hash has no name. Nothing a query sees.
SQLITE_READS_OLD_DDL = [
    ("email_secrets", "id", "nullable"),
    ("keys", "hash", "unique"),
    ("keys", "id", "nullable"),
    ("projects", "id", "nullable"),
]


def rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the registry's tables, in order, as stored."""

    async def read(conn: AsyncConnection) -> dict[str, list[tuple[Any, ...]]]:
        found = {}
        for name in TABLES:
            result = await conn.exec_driver_sql(f"SELECT * FROM {name} ORDER BY id")
            found[name] = [tuple(_plain(v) for v in row) for row in result]
        return found

    return db.run(read)


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def differences(db: Database) -> list[Any]:
    """What the database's tables lack or have beyond tables.py, as Alembic compares them."""

    def compare(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": lambda name, kind, _: kind != "table" or name in metadata.tables,
            },
        )
        found: list[Any] = []
        for change in compare_metadata(context, metadata):
            if isinstance(change, list):  # a column's changes
                found += [(c[2], c[3], c[0].removeprefix("modify_")) for c in change]
            elif change[0] == "add_constraint":
                constraint = change[1]
                found.append((constraint.table.name, *constraint.columns.keys(), "unique"))
            else:
                found.append(change)
        return sorted(found, key=str)

    async def run(conn: AsyncConnection) -> list[Any]:
        return await conn.run_sync(compare)

    return db.run(run)


def check_constraints(db: Database) -> dict[str, list[str]]:
    """The names of the CHECK constraints of every table that has one, as the database has them."""

    def read(conn: Connection) -> dict[str, list[str]]:
        found = inspect(conn)
        names = {
            table: sorted(str(c["name"]) for c in found.get_check_constraints(table))
            for table in metadata.tables
        }
        return {table: checks for table, checks in names.items() if checks}

    async def run(conn: AsyncConnection) -> dict[str, list[str]]:
        return await conn.run_sync(read)

    return db.run(run)


#: The CHECK constraints tables.py names, by its naming convention.
CHECKS = {
    "keys": ["keys_kind_check"],
    "login_failures": ["login_failures_what_check"],
    "rules": ["rules_kind_check"],
    "followups": ["followups_status_check"],
    "alert_rules": ["alert_rules_kind_check", "alert_rules_period_check"],
    "webhook_deliveries": ["webhook_deliveries_state_check"],
    "email_outbox": ["email_outbox_state_check"],
    "digests": ["digests_frequency_check"],
    "privacy_policies": ["privacy_policies_retention_mode_check"],
}


def builtin_groups(db: Database) -> dict[str, tuple[bool, dict[str, str]]]:
    async def read(conn: AsyncConnection) -> dict[str, tuple[bool, dict[str, str]]]:
        found = await conn.exec_driver_sql("SELECT name, builtin, levels FROM groups")
        return {name: (bool(builtin), json.loads(levels)) for name, builtin, levels in found}

    return db.run(read)


def upgrade_to(db: Database, target: str) -> None:
    """Run Alembic's migrations on ``db`` up (or down) to revision ``target``, as of then."""

    def move(conn: Connection) -> None:
        config = schema.alembic_config(conn)
        current = MigrationContext.configure(conn).get_current_revision()
        if current is not None and int(current) > int(target):
            alembic_command.downgrade(config, target)
        else:
            alembic_command.upgrade(config, target)

    async def run(conn: AsyncConnection) -> None:
        await conn.run_sync(move)

    db.run(run, write=True)


def execute(db: Database, sql: str, *rows: dict[str, Any]) -> None:
    """One statement of ``sql`` with ``:name`` parameters, for each of ``rows``."""

    async def run(conn: AsyncConnection) -> None:
        await conn.execute(text(sql), list(rows) if rows else None)

    db.run(run, write=True)


def revision(db: Database) -> str | None:
    def read(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async def run(conn: AsyncConnection) -> str | None:
        return await conn.run_sync(read)

    return db.run(run)


def old_mark(db: Database) -> int:
    """The version the registry's numbering of before reads."""

    async def read(conn: AsyncConnection) -> int:
        if db.dialect == "sqlite":
            return int((await conn.exec_driver_sql("PRAGMA user_version")).scalar_one())
        found = await conn.exec_driver_sql(
            "SELECT version FROM voxloop_schema WHERE component = 'registry'"
        )
        return int(found.scalar_one())

    return db.run(read)


def database(where: str, data_dir: Path) -> Database:
    return Database(data_dir, where)


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest) -> str:
    """The embedded SQLite ("sqlite") or the URL of a new PostgreSQL database."""
    if request.param == "sqlite":
        return "sqlite"
    url: str = request.getfixturevalue("pg_url")
    return url


def test_a_registry_made_before_alembic_is_refused_then_migrated_with_every_row_kept(
    where: str, tmp_path: Path, spawn: Spawn, command: Command
) -> None:
    data_dir = tmp_path / "data"
    if where == "sqlite":
        shown = str(make_old_sqlite(data_dir))
    else:
        make_old_postgres(where)
        shown = Database(data_dir, where).where
    db = database(where, data_dir)
    try:
        before = rows(db)
        assert len(before["keys"]) == 3 and len(before["email_secrets"]) == 2

        refused = cli(data_dir, *on(where), "serve", "--port", "0")
        assert refused.returncode == 2
        assert refused.stderr.splitlines() == [
            f"voxloop-gateway: the registry in {shown} has schema version 1, this gateway"
            f" needs {schema.head()}: run `voxloop-gateway migrate`"
        ]

        migrated = command("--data-dir", str(data_dir), *on(where), "migrate")
        assert migrated.returncode == 0, migrated.stderr
        assert f"registry         1 -> {schema.head()}" in migrated.stdout
        db.close()  # PostgreSQL's cached plans of SELECT * know the tables as they were
        # Every row as it was; keys gained forms, NULL (every form) for the keys of before.
        assert rows(db) == {**before, "keys": [(*row, None) for row in before["keys"]]}
        assert revision(db) == f"{schema.head():04d}"
        assert old_mark(db) == schema.HANDED_OVER  # a gateway of before refuses it now
        # keys was rebuilt on SQLite (to change its CHECK), so its DDL is tables.py's now.
        old_ddl = [d for d in SQLITE_READS_OLD_DDL if d[0] != "keys"]
        assert differences(db) == (old_ddl if where == "sqlite" else [])
        assert check_constraints(db) == CHECKS
        again = command("--data-dir", str(data_dir), *on(where), "migrate")
        assert f"registry         at {schema.head()}, nothing to do" in again.stdout
    finally:
        db.close()

    registry = Registry(data_dir, where)
    try:
        assert [p.id for p in registry.projects()] == ["cafe", "shop"]
        assert {k.id: k.revoked for k in registry.keys()} == {
            SERVER[:11]: False,
            SITE[:11]: False,
            REVOKED[:11]: True,
        }
        assert {s.id: s.revoked for s in registry.email_secrets()} == {
            "es_0a0b0c0d": False,
            "es_deadbeef": True,
        }
        assert registry.signing_secrets("shop") == [bytes(range(64, 96))]
        assert registry.project("shop").secret == bytes(range(32))
        found = registry.authenticate(SERVER)
        assert found is not None and found[0].kind == "server" and found[1].id == "shop"
        assert registry.authenticate(REVOKED) is None
        assert {row[1] for row in before["keys"]} == {key_hash(k) for k in (SERVER, SITE, REVOKED)}
    finally:
        registry.close()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = spawn(data_dir, *on(where), "serve", "--port", str(port))
    wait_ready(url, gateway)
    event = {"channel": "web", "form": "f", "metric": "nps", "score": 9}

    def post(key: str, **headers: str) -> tuple[int, str]:
        answer = httpx.post(
            f"{url}/v1/events",
            json={"events": [event]},
            headers={"Authorization": f"Bearer {key}", **headers},
            timeout=10,
        )
        return answer.status_code, answer.text

    assert post(SERVER)[0] == 202, post(SERVER)
    assert post(SITE, Origin=ORIGIN)[0] == 202
    assert post(REVOKED)[0] == 401


def test_a_new_database_is_made_at_the_head_revision(
    where: str, tmp_path: Path, command: Command
) -> None:
    db = database(where, tmp_path)
    try:
        if where == "sqlite":
            registry = Registry(tmp_path)  # a new data dir needs no migrate: first use makes it
            try:
                registry.create_project("shop")
            finally:
                registry.close()
        else:
            migrated = command("--data-dir", str(tmp_path), *on(where), "migrate")
            assert migrated.returncode == 0, migrated.stderr
            assert f"registry         0 -> {schema.head()}" in migrated.stdout
        assert revision(db) == f"{schema.head():04d}"
        assert old_mark(db) == schema.HANDED_OVER
        assert differences(db) == []
        assert check_constraints(db) == CHECKS
        assert builtin_groups(db) == {n: (True, dict(BUILTIN_LEVELS[n])) for n in BUILTIN_LEVELS}
    finally:
        db.close()


def test_a_registry_at_revision_2_gains_people_and_read_keys_with_every_key_kept(
    where: str, tmp_path: Path, command: Command
) -> None:
    db = database(where, tmp_path)
    try:
        upgrade_to(db, "0002")
        execute(
            db,
            "INSERT INTO projects VALUES (:id, :secret, :channels, 1)",
            {"id": "shop", "secret": bytes(32), "channels": '["app", "web"]'},
        )
        execute(
            db,
            "INSERT INTO keys VALUES (:id, :hash, 'shop', :kind, :channels, '[]', 2, NULL)",
            {"id": SERVER[:11], "hash": key_hash(SERVER), "kind": "server", "channels": "[]"},
            {"id": SITE[:11], "hash": key_hash(SITE), "kind": "site", "channels": '["web"]'},
        )
        before = rows(db)

        migrated = command("--data-dir", str(tmp_path), *on(where), "migrate")
        assert migrated.returncode == 0, migrated.stderr
        assert f"registry         2 -> {schema.head()}" in migrated.stdout
        db.close()  # PostgreSQL's cached plans of SELECT * know the tables as they were
        assert rows(db) == {**before, "keys": [(*row, None) for row in before["keys"]]}
        assert differences(db) == []
        assert check_constraints(db) == CHECKS
        assert builtin_groups(db) == {n: (True, dict(BUILTIN_LEVELS[n])) for n in BUILTIN_LEVELS}
        bogus = {"id": "xk_bogus", "hash": b"x", "kind": "bogus"}
        with pytest.raises(IntegrityError):  # the CHECK is still there, with read in it
            execute(db, KEY_OF_KIND, bogus)
        with pytest.raises(IntegrityError):  # and so is the unique hash
            execute(db, KEY_OF_KIND, {"id": "rk_again", "hash": key_hash(SITE), "kind": "read"})
    finally:
        db.close()

    registry = Registry(tmp_path, where)
    try:
        raw, _ = registry.create_key("shop", "read", ["app"], forms=["checkout"])
        registry.load()  # on PostgreSQL a gateway's reload comes within a second; here at once
        found = registry.authenticate(raw)
        assert found is not None and found[0].kind == "read"
        assert found[0].forms == frozenset({"checkout"})
        server = registry.authenticate(SERVER)
        assert server is not None and server[0].kind == "server" and server[0].forms is None
    finally:
        registry.close()


#: A key of a given kind, every other column filled.
KEY_OF_KIND = (
    "INSERT INTO keys (id, hash, project, kind, channels, origins, created_ms)"
    " VALUES (:id, :hash, 'shop', :kind, '[]', '[]', 3)"
)


def test_people_and_read_keys_migrate_down_to_revision_2_and_up_again(
    where: str, tmp_path: Path, command: Command
) -> None:
    registry = Registry(tmp_path, where)
    db = database(where, tmp_path)
    try:
        if where != "sqlite":
            assert command("--data-dir", str(tmp_path), *on(where), "migrate").returncode == 0
        registry.create_project("shop")
        registry.create_key("shop", "server")
        registry.create_key("shop", "read", forms=["checkout"])
        upgrade_to(db, "0002")
        assert revision(db) == "0002"
        db.close()  # PostgreSQL's cached plans of SELECT * know the tables as they were
        assert [row[3] for row in rows(db)["keys"]] == ["server"]  # 0002 knew no read key
        upgrade_to(db, f"{schema.head():04d}")
        assert differences(db) == [] and check_constraints(db) == CHECKS
    finally:
        db.close()
        registry.close()


def test_a_registry_newer_than_the_gateway_is_refused(
    where: str, tmp_path: Path, command: Command
) -> None:
    made = command("--data-dir", str(tmp_path), *on(where), "migrate")
    assert made.returncode == 0, made.stderr
    db = database(where, tmp_path)
    try:

        async def bump(conn: AsyncConnection) -> None:
            await conn.exec_driver_sql(
                f"UPDATE alembic_version SET version_num = '{schema.head() + 1:04d}'"
            )

        db.run(bump, write=True)
    finally:
        db.close()
    for args in (["serve", "--port", "0"], ["migrate"], ["keys", "list"]):
        if args[0] == "serve":  # a process of its own: were it not refused, it would serve on
            refused = cli(tmp_path, *on(where), *args)
        else:
            refused = command("--data-dir", str(tmp_path), *on(where), *args)
        assert refused.returncode == 2, (args, refused.stderr)
        assert len(refused.stderr.splitlines()) == 1, refused.stderr
        assert f"has schema version {schema.head() + 1}" in refused.stderr
        assert refused.stderr.rstrip().endswith("upgrade the gateway"), refused.stderr


def test_two_migrations_at_once_on_postgresql_take_turns(pg_url: str, tmp_path: Path) -> None:
    make_old_postgres(pg_url)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: cli(tmp_path, "--store", pg_url, "migrate"), range(2)))
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    lines = sorted(r.stdout.splitlines()[0].split("(")[0].strip() for r in runs)
    assert lines == [
        f"registry         1 -> {schema.head()}",
        f"registry         at {schema.head()}, nothing to do",
    ]


def test_an_sqlite_registry_keeps_its_connections_and_sees_what_others_commit(
    tmp_path: Path,
) -> None:
    """A transaction reuses a connection an earlier one opened, and still reads what another
    process committed after that connection was opened."""
    db = Database(tmp_path)
    assert db.path is not None

    async def marked(conn: AsyncConnection) -> bool:
        driver = (await conn.get_raw_connection()).driver_connection
        seen = bool(getattr(driver, "voxloop_test_mark", False))
        driver.voxloop_test_mark = True
        return seen

    async def notes(conn: AsyncConnection) -> int:
        return int((await conn.exec_driver_sql("SELECT count(*) FROM notes")).scalar_one())

    def other_process_writes(statements: list[str]) -> None:
        other = sqlite3.connect(db.path)
        try:
            with other:
                for statement in statements:
                    other.execute(statement)
        finally:
            other.close()

    try:
        assert db.run(marked) is False
        assert db.run(marked) is True  # the same connection, kept open
        other_process_writes(["CREATE TABLE notes (n INTEGER)", "INSERT INTO notes VALUES (1)"])
        assert db.run(notes) == 1
        other_process_writes(["INSERT INTO notes VALUES (2)"])
        assert db.run(notes) == 2
        assert db.run(marked) is True
    finally:
        db.close()


def test_an_sqlite_registry_dropped_without_close_closes_the_connections_it_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Database let go without ``close()`` (as a test may) still closes its connections: an
    open one collected later warns (a ResourceWarning, an error in this suite)."""
    unraised: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraised.append)

    async def one(conn: AsyncConnection) -> int:
        return int((await conn.exec_driver_sql("SELECT 1")).scalar_one())

    db = Database(tmp_path)
    assert db.run(one) == 1
    del db
    gc.collect()
    assert [str(found.exc_value) for found in unraised] == []
