"""Fixtures of the follow-up tests: a control plane on a SQLite file or a fresh PostgreSQL
database, with projects and people, and stored responses built as plain values.

``control`` runs every test that takes it once on each backend. The feed's own tests go further
(real channel stores, a real gateway): see test_feed.py and test_routes.py.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.gateway.pg import pg_schema_url, pg_url
from voxloop_gateway.control import schema, tables
from voxloop_gateway.control.access import Level, Scope, Section
from voxloop_gateway.control.db import Database
from voxloop_gateway.control.people import People
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.followups import feed
from voxloop_gateway.followups.feed import Seen
from voxloop_gateway.integrations import outbox
from voxloop_gateway.stores.reads import StoredResponse

__all__ = ["pg_schema_url", "pg_url"]  # fixtures

NOW_MS = 1_795_435_200_000  # 2026-11-23T12:00:00Z
HOUR_MS = 3_600_000
PASSWORD = "a long and quite unguessable passphrase 7"
BASE_URL = "https://cx.example.com"
SHOP_CHANNELS = ("app", "email", "kiosk", "web")

_T = TypeVar("_T")
_keys = itertools.count(1)


def response(**fields: Any) -> StoredResponse:
    """A stored NPS detractor with a comment on ``web``, with ``fields`` changed; each call a
    key of its own unless ``key`` is given."""
    base: dict[str, Any] = {
        "channel": "web",
        "key": next(_keys).to_bytes(16, "big"),
        "id": None,
        "ts_ms": NOW_MS - 60_000,
        "received_ms": NOW_MS - 60_000,
        "form": "checkout",
        "metric": "nps",
        "score": 3,
        "counted": True,
        "held": None,
        "comment": "The delivery was late",
        "locale": "en",
        "tags": None,
        "meta": None,
        "respondent": "r-1",
        "vote_key": None,
        "revised": False,
    }
    base.update(fields)
    return StoredResponse(**base)


def seen(
    answer: StoredResponse | None,
    *,
    event: StoredResponse | None = None,
    project: str = "shop",
    revision: bool = False,
    change: bool = False,
) -> Seen:
    """What the feed reads: ``event`` (``answer`` itself when not given) and its answer now."""
    shown = event if event is not None else answer
    assert shown is not None
    return Seen(project=project, response=shown, answer=answer, revision=revision, change=change)


@dataclass
class Control:
    """A control plane with projects ``shop`` (channels app, email, kiosk, web) and
    ``other``, and people: ``owner`` sees everything, ``ana`` edits the inbox of ``app`` only,
    ``vera`` only views the inbox, ``nils`` has no inbox at all."""

    backend: str
    data_dir: Path
    store: str
    db: Database
    users: dict[str, str]  # name -> user id

    def run(self, work: Callable[[AsyncConnection], Awaitable[_T]], write: bool = False) -> _T:
        return self.db.run(work, write=write)

    def take(self, *seen: Seen, now_ms: int = NOW_MS) -> int:
        return self.run(functools.partial(_take, seen=seen, now_ms=now_ms), write=True)

    def rows(self, table: Any, *where: Any, order: Any = None) -> list[Any]:
        async def read(conn: AsyncConnection) -> list[Any]:
            query = select(table).where(*where)
            if order is not None:
                query = query.order_by(order)
            return list((await conn.execute(query)).all())

        return self.run(read)

    def items(self) -> list[Any]:
        return self.rows(tables.followups, order=tables.followups.c.created_ms)

    def messages(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """The outbox's payloads (of ``event_type``), oldest first."""
        where = [] if event_type is None else [tables.outbox.c.event_type == event_type]
        rows = self.rows(tables.outbox, *where, order=tables.outbox.c.created_ms)
        return [json.loads(row.payload) for row in rows]

    def changes(self, item_id: str) -> list[Any]:
        return self.rows(
            tables.followup_changes,
            tables.followup_changes.c.followup == item_id,
            order=tables.followup_changes.c.id,
        )


async def _take(conn: AsyncConnection, *, seen: tuple[Seen, ...], now_ms: int) -> int:
    return await feed.take(conn, seen, now_ms, BASE_URL)


INBOX_EDIT: dict[Section, Level] = {"inbox": "edit", "responses": "view", "alerts": "edit"}


def make_people(registry: Registry) -> dict[str, str]:
    """The people of :class:`Control`; their user ids by name."""
    people = People(registry.db)
    people.create_group("app-inbox", INBOX_EDIT, [Scope("shop", frozenset({"app"}))])
    people.create_group("inbox-viewers", {"inbox": "view"}, [Scope("shop")])
    people.create_group("dashboard-only", {"dashboard": "view"}, [Scope("shop")])
    made = {
        "owner": people.create_user("olga@example.com", ["owner"], PASSWORD)[0],
        "ana": people.create_user("ana@example.com", ["app-inbox"], PASSWORD)[0],
        "vera": people.create_user("vera@example.com", ["inbox-viewers"], PASSWORD)[0],
        "nils": people.create_user("nils@example.com", ["dashboard-only"], PASSWORD)[0],
    }
    return {name: user.id for name, user in made.items()}


async def listening(conn: AsyncConnection) -> None:
    """An endpoint of each project taking every type: ``response.*`` messages are written only
    for a project that has one."""
    await conn.execute(
        insert(tables.webhook_endpoints),
        [
            {
                "id": f"ep_{project}",
                "project": project,
                "url": f"https://{project}.example.com/hooks",
                "event_types": json.dumps(outbox.EVENT_TYPES),
                "secret": "whsec_" + "A" * 43 + "=",
                "description": "",
                "created_ms": NOW_MS,
            }
            for project in ("shop", "other")
        ],
    )


def make_control(data_dir: Path, store: str, backend: str) -> Control:
    registry = Registry(data_dir, store)
    if store != "sqlite":
        schema.migrate(registry.db)
    registry.create_project("shop", ["kiosk"])
    registry.create_project("other")
    registry.db.run(listening, write=True)
    users = make_people(registry)
    return Control(backend, data_dir, store, registry.db, users)


@pytest.fixture(params=["sqlite", "postgresql"])
def control(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Control]:
    """A control plane with projects and people, on SQLite and on PostgreSQL."""
    store = "sqlite" if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    made = make_control(tmp_path, store, request.param)
    yield made
    made.db.close()


def run_async(coroutine: Awaitable[_T]) -> _T:
    """Run ``coroutine`` on a loop of its own (the test's thread has none)."""

    async def wrapped() -> _T:
        return await coroutine

    return asyncio.run(wrapped())
