"""``voxloop-gateway migrate`` and the start-up check on the embedded SQLite files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from voxloop_gateway.stores import sqlite

from .conftest import clean_environ, make_project
from .stores.test_sqlite import V1_SCHEMA


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environ(),
    )


def test_serve_refuses_an_old_store_file_until_migrate_upgrades_it(tmp_path: Path) -> None:
    make_project(tmp_path)
    old = tmp_path / "stores" / "web.sqlite3"
    old.parent.mkdir()
    with sqlite3.connect(old) as db:
        db.executescript(V1_SCHEMA)

    refused = cli(tmp_path, "serve", "--port", "0")
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"voxloop-gateway: the store {old} has schema version 1, this gateway needs"
        f" {sqlite.SCHEMA_VERSION}: run `voxloop-gateway migrate`"
    ]

    migrated = cli(tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert f"store web        1 -> {sqlite.SCHEMA_VERSION}" in migrated.stdout
    assert sqlite.file_version(old) == sqlite.SCHEMA_VERSION
    again = cli(tmp_path, "migrate")
    assert "nothing to do" in again.stdout and "->" not in again.stdout


def test_serve_refuses_a_store_file_newer_than_the_gateway(tmp_path: Path) -> None:
    make_project(tmp_path)
    newer = tmp_path / "stores" / "app.sqlite3"
    newer.parent.mkdir()
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version = {sqlite.SCHEMA_VERSION + 1}")
    for command in ("serve", "migrate"):
        refused = cli(tmp_path, command, *(["--port", "0"] if command == "serve" else []))
        assert refused.returncode == 2
        assert "upgrade the gateway" in refused.stderr
