"""Builders and fixtures for the store tests: records made by the real core, real SQLite files."""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

import voxloop_core
from voxloop_core import Record
from voxloop_gateway.stores import SqliteStore

NOW_MS = 1_795_435_200_000  # 2026-11-23T12:00:00Z, an hour start
HOUR_MS = 3_600_000
SECRET = b"project-secret-0123456789abcdef!"
PROJECT = "acme"


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


def query_file(path: pathlib.Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Rows of ``sql`` read from the store's file through a separate, plain connection."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(sql, params).fetchall()


@pytest.fixture
def store_path(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "stores" / "web.sqlite3"


@pytest.fixture
async def store(store_path: pathlib.Path) -> AsyncIterator[SqliteStore]:
    """An open store of the web channel in a fresh file, closed after the test."""
    opened = SqliteStore(store_path, "web")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
