"""Retention with a clock the test moves: old events deleted or redacted in bounded batches, the
aggregates kept, one replica at a time, and ``voxloop-gateway purge`` with ``--dry-run``."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop import new_id
from voxloop_core import DAY_MS
from voxloop_gateway import Settings, migrate
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.integrations.workers import Workers
from voxloop_gateway.privacy import retention
from voxloop_gateway.service import Service
from voxloop_gateway.stores import ResponseFilter, Selection

from ..gateway.conftest import (
    Command,
    command,  # noqa: F401  (the gateway tests' fixture, used here)
    start_gateway,
)
from ..gateway.readers import database
from .test_erasure import FAST, NOW_MS

CHANNELS = ("web", "app")


def seeded(data_dir: Path, store: str = "sqlite") -> tuple[list[dict[str, Any]], str, str]:
    """Projects ``shop`` (kept 30 days, deleted), ``notes`` (kept 30 days, redacted) and
    ``forever`` (no window), each with answers of the last 10 days; what was sent, the keys."""
    if store != "sqlite":
        migrate.migrate(Settings(store=store, data_dir=data_dir))
    registry = Registry(data_dir, store)
    try:
        keys = {}
        for name in ("shop", "notes", "forever"):
            registry.create_project(name)
            keys[name], _ = registry.create_key(name, "server")
        site, _ = registry.create_key("shop", "site", ["web"], ["https://shop.example.com"])
    finally:
        registry.close()
    policy(data_dir, "shop", 30, "delete", store)
    policy(data_dir, "notes", 30, "redact", store)
    gateway = start_gateway(data_dir, site, keys["shop"], store=store, **FAST)
    rng = random.Random(21)
    sent = []
    try:
        for project, key in keys.items():
            made = [
                {
                    "id": new_id(),
                    "channel": CHANNELS[n % 2],
                    "form": "checkout",
                    "metric": "csat",
                    "score": rng.randint(1, 5),
                    "comment": f"comment {n}",
                    "meta": {"plan": "pro"},
                    "ts": NOW_MS - rng.randint(1, 10 * DAY_MS),
                }
                for n in range(120)
            ]
            answer = gateway.post(made, key=key)
            assert answer.status_code == 202 and answer.json()["accepted"] == 120, answer.text
            sent += [dict(e, project=project) for e in made]
    finally:
        gateway.stop()
    return sent, site, keys["shop"]


def policy(
    data_dir: Path, project: str, days: int | None, mode: str, store: str = "sqlite"
) -> None:
    """Set ``project``'s retention in the control plane, as ``privacy set`` does."""
    upsert = text(
        "INSERT INTO privacy_policies"
        " (project, scrub, patterns, retention_days, retention_mode, updated_ms)"
        " VALUES (:project, false, '[]', :days, :mode, 0) ON CONFLICT (project) DO UPDATE"
        " SET retention_days = excluded.retention_days, retention_mode = excluded.retention_mode"
    )

    async def write(conn: AsyncConnection) -> None:
        await conn.execute(upsert, {"project": project, "days": days, "mode": mode})

    control(data_dir, store, write)


def control(data_dir: Path, store: str, work: Any) -> Any:
    """Run ``work`` on the control plane (SQLite in ``data_dir``, or PostgreSQL)."""
    registry = Registry(data_dir, store)
    try:
        return registry.db.run(work, write=True)
    finally:
        registry.close()


def old(sent: list[dict[str, Any]], project: str, before_ms: int) -> Counter[str]:
    return Counter(e["channel"] for e in sent if e["project"] == project and e["ts"] < before_ms)


async def snapshot(service: Service, project: str) -> tuple[dict[str, Any], dict[str, int]]:
    """Each channel's aggregates of ``project``, and how many events it holds."""
    aggregates, events = {}, {}
    for channel in CHANNELS:
        store = await service.store(channel)
        aggregates[channel] = await store.hourly(project, "csat")
        events[channel] = await store.count(project, Selection())
    return aggregates, events


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_retention_deletes_or_redacts_old_events_in_batches_and_keeps_the_aggregates(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, backend: str
) -> None:
    with database(backend) as store:
        retention_of_old_events(tmp_path, store, caplog)


def retention_of_old_events(tmp_path: Path, store: str, caplog: pytest.LogCaptureFixture) -> None:
    sent, _, _ = seeded(tmp_path, store)
    now = NOW_MS + 25 * DAY_MS  # the clock moves on: events older than 5 days are past 30
    before = now - 30 * DAY_MS

    async def run() -> None:
        service = Service(Settings(data_dir=tmp_path, store=store))
        await service.open()
        try:
            windows, would = await retention.pending(service, now)
            assert [(w.project, w.mode, w.before_ms) for w in windows] == [
                ("notes", "redact", before),
                ("shop", "delete", before),
            ]
            for project in ("shop", "notes"):
                assert would.counts[project] == {
                    c: old(sent, project, before)[c] for c in sorted(service.channels())
                }
            kept = {p: await snapshot(service, p) for p in ("shop", "notes", "forever")}

            # A round with no time left does nothing and keeps the lease; another replica
            # can't take the job meanwhile.
            assert await retention.retention_job(service, now, "one", budget_s=0) == 0
            assert await retention.retention_job(service, now, "two", budget_s=None) == 0
            with caplog.at_level(logging.INFO, logger="voxloop_gateway.privacy.retention"):
                changed = await retention.retention_job(service, now, "one", budget_s=None)
            assert changed == sum(would.counts["shop"].values()) + sum(
                would.counts["notes"].values()
            )
            # Done: not due again for a while, whoever asks.
            assert await retention.retention_job(service, now + 1, "two", budget_s=None) == 0

            aggregates, events = await snapshot(service, "shop")
            assert aggregates == kept["shop"][0], "deleting old events changed the stats"
            for channel in CHANNELS:
                assert (
                    events[channel] == kept["shop"][1][channel] - old(sent, "shop", before)[channel]
                )
            notes = await snapshot(service, "notes")
            assert notes == kept["notes"], "redacting changed the stats or removed events"
            assert await snapshot(service, "forever") == kept["forever"]
            for channel in CHANNELS:
                opened = await service.store(channel)
                rows = await opened.responses(
                    ResponseFilter(project="notes"), after=None, limit=500
                )
                for row in rows:
                    if row.ts_ms < before:
                        assert (row.comment, row.meta) == (None, None)
                    else:
                        assert row.comment is not None and row.meta == {"plan": "pro"}
            # Nothing left: a second run changes nothing, in bounded batches all the same.
            again = await retention.purge(service, now, actor="system:retention", batch=7)
            assert again.total == 0 and again.finished
        finally:
            await service.close()

    asyncio.run(run())
    logged = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith("retention: project shop, channel web: ") and "events deleted" in m
        for m in logged
    ), logged
    assert any("project notes, channel app" in m and "redacted" in m for m in logged), logged

    async def read(conn: AsyncConnection) -> list[tuple[str, str]]:
        found = await conn.execute(
            text("SELECT actor, project FROM audit_log WHERE action = 'retention' ORDER BY project")
        )
        return [(actor, project) for actor, project in found]

    audited = control(tmp_path, store, read)
    assert audited == [("system:retention", "notes"), ("system:retention", "shop")]


def test_retention_in_small_batches_stops_on_its_budget_and_goes_on_later(
    tmp_path: Path,
) -> None:
    sent, _, _ = seeded(tmp_path)
    now = NOW_MS + 25 * DAY_MS
    before = now - 30 * DAY_MS
    steps: list[tuple[str, str, int]] = []

    async def run() -> None:
        service = Service(Settings(data_dir=tmp_path))
        await service.open()
        try:
            done = await retention.purge(
                service,
                now,
                actor="system:retention",
                projects=["shop"],
                batch=5,
                progress=lambda p, c, n: steps.append((p, c, n)),
            )
            assert done.finished and done.counts["shop"] == dict(old(sent, "shop", before))
        finally:
            await service.close()

    asyncio.run(run())
    assert steps and all(n <= 5 for _, _, n in steps)
    assert sum(n for _, _, n in steps) == sum(old(sent, "shop", before).values())


def test_purge_dry_run_then_purge_from_the_command_line(
    tmp_path: Path,
    command: Command,  # noqa: F811  (the gateway tests' fixture)
) -> None:
    sent, site, server = seeded(tmp_path)
    policy(tmp_path, "shop", 1, "delete")  # a day: most of the last ten days' events go
    gateway = start_gateway(tmp_path, site, server, **FAST)
    try:
        stats = gateway.stats(metric="csat")["total"]
        before = NOW_MS - DAY_MS
        going = old(sent, "shop", before)

        dry = command("--data-dir", str(tmp_path), "purge", "--project", "shop", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "would change" in dry.stdout and "nothing changed" in dry.stdout
        for channel in CHANNELS:  # what goes is counted as of now: a few may age meanwhile
            line = next(x for x in dry.stdout.splitlines() if x.split()[:2] == ["shop", channel])
            assert line.split()[-1] in (str(going[channel]), str(going[channel] + 1))
        assert gateway.stats(metric="csat")["total"] == stats

        done = command("--data-dir", str(tmp_path), "purge")
        assert done.returncode == 0, done.stderr
        assert "shop web:" in done.stdout and "events deleted" in done.stdout
        assert gateway.stats(metric="csat")["total"] == stats  # the aggregates stay
        with gateway.client(server) as client:
            left = client.get("/v1/responses", params={"limit": 500}).json()["responses"]
        assert len(left) <= sum(e["project"] == "shop" for e in sent) - sum(going.values())
    finally:
        gateway.stop()


def test_purge_names_an_unknown_project(
    tmp_path: Path,
    command: Command,  # noqa: F811
) -> None:
    seeded(tmp_path)
    answer = command("--data-dir", str(tmp_path), "purge", "--project", "nope", "--dry-run")
    assert answer.returncode == 2 and "no project 'nope'" in answer.stderr


def test_the_gateways_background_round_runs_retention(tmp_path: Path) -> None:
    sent, _, _ = seeded(tmp_path)
    now = NOW_MS + 25 * DAY_MS
    before = now - 30 * DAY_MS

    async def run() -> dict[str, int]:
        service = Service(Settings(data_dir=tmp_path))
        await service.open()
        workers = Workers(service)
        try:
            return await workers.round(now, periodic=True)
        finally:
            await workers.stop()
            await service.close()

    done = asyncio.run(run())
    expected = sum(old(sent, "shop", before).values()) + sum(old(sent, "notes", before).values())
    assert (done["retention"], done["erasures"]) == (expected, 0), done
    assert all(n >= 0 for n in done.values()), done  # no job failed
