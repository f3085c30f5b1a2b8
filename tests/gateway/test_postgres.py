"""Gateways on PostgreSQL: migrations, replicas sharing one database, PostgreSQL going away.

Real gateways over real HTTP on loopback, on a fresh database each; the replicas are gateways
in threads of this process sharing the database, as replicas behind a load balancer do.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from voxloop_gateway import Settings, migrate
from voxloop_gateway.control import schema
from voxloop_gateway.control.registry import Registry

from .conftest import ORIGIN, Command, Gateway, clean_environ, start_gateway
from .pg import Relay, pg_url, relay, with_database

__all__ = ["pg_url", "relay"]  # fixtures


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environ(),
    )


def setup_project(url: str, tmp_path: Path) -> tuple[str, str]:
    """Migrate the database and add project ``shop`` with its keys; (site key, server key)."""
    migrate.migrate(Settings(store=url, data_dir=tmp_path))
    registry = Registry(tmp_path, url)
    try:
        registry.create_project("shop", ["kiosk"])
        site, _ = registry.create_key("shop", "site", ["web", "app"], [ORIGIN])
        server, _ = registry.create_key("shop", "server")
    finally:
        registry.close()
    return site, server


@pytest.fixture
def replicas(pg_url: str, tmp_path: Path) -> Iterator[list[Gateway]]:
    """Two gateways on one database."""
    site, server = setup_project(pg_url, tmp_path)
    running = [
        start_gateway(tmp_path / f"r{i}", site, server, store=pg_url, key_rate=1e6, key_burst=1e6)
        for i in range(2)
    ]
    yield running
    for gateway in running:
        gateway.stop()


def count_events(url: str, sql: str) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


# --- migrations ----------------------------------------------------------------------------


def test_serve_refuses_an_unmigrated_database_then_migrate_sets_it_up(
    pg_url: str, tmp_path: Path, command: Command
) -> None:
    refused = cli("--store", pg_url, "serve", "--port", "0")
    assert refused.returncode == 2
    assert "has no schema yet" in refused.stderr and "voxloop-gateway migrate" in refused.stderr

    first = command("--store", pg_url, "migrate")
    assert first.returncode == 0, first.stderr
    assert f"registry         0 -> {schema.head()}" in first.stdout
    assert "store            0 -> " in first.stdout
    again = command("--store", pg_url, "migrate")
    assert again.stdout.count("nothing to do") == 2

    no_project = cli("--store", pg_url, "serve", "--port", "0")
    assert no_project.returncode == 2 and "voxloop-gateway init" in no_project.stderr


def test_a_schema_newer_than_the_gateway_is_refused(pg_url: str, command: Command) -> None:
    assert command("--store", pg_url, "migrate").returncode == 0
    count_events(
        pg_url, "UPDATE voxloop_schema SET version = version + 1 WHERE component = 'store'"
    )
    refused = cli("--store", pg_url, "serve", "--port", "0")
    assert refused.returncode == 2
    assert "upgrade the gateway" in refused.stderr


def test_init_keys_and_stats_work_on_postgresql(pg_url: str, command: Command) -> None:
    """``init`` as a process of its own, the commands around it in this one (``command``)."""
    assert command("--store", pg_url, "migrate").returncode == 0
    made = cli("--store", pg_url, "init", "--project", "acme")
    assert made.returncode == 0, made.stderr and "site key   pk_" in made.stdout
    listed = command("--store", pg_url, "keys", "list", "acme")
    assert listed.stdout.count("acme") == 2
    secret = command("--store", pg_url, "email-secret", "create", "acme")
    assert len(secret.stdout.strip()) == 64


def test_stats_reads_what_the_api_reads_and_makes_nothing(pg_url: str, tmp_path: Path) -> None:
    site, server = setup_project(pg_url, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def table(*extra: str, env: dict[str, str] | None = None) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", "voxloop_gateway.cli", *extra]
            + ["stats", "shop", "--metric", "csat"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=elsewhere,
            env=clean_environ(**(env or {})),
        )
        assert done.returncode == 0, done.stderr
        total: list[str] = done.stdout.splitlines()[1].split()
        return total

    # Before any gateway opened the stores: zeros, and no partition made by a read.
    assert table("--store", pg_url)[:2] == ["total", "0"]
    assert count_events(pg_url, "SELECT to_regclass('events_web') IS NULL")

    gateway = start_gateway(tmp_path / "r", site, server, store=pg_url)
    try:
        events = [
            {"channel": channel, "form": "f", "metric": "csat", "score": score}
            for channel, score in (("web", 5), ("app", 4), ("kiosk", 2))
        ]
        assert gateway.post(events).status_code == 202
        answer = gateway.stats(metric="csat")["total"]
    finally:
        gateway.stop()
    assert answer["count"] == 3
    for total in (table("--store", pg_url), table(env={"VOXLOOP_STORE": pg_url})):
        assert total[:2] == ["total", "3"]
        assert " ".join(total).endswith(str(answer["histogram"]))
    assert list(elsewhere.iterdir()) == []  # no ./data, no store file


# --- replicas --------------------------------------------------------------------------------


def _batch(ids: list[str]) -> dict[str, Any]:
    return {
        "events": [
            {"id": i, "channel": "app", "form": "checkout", "metric": "nps", "score": n % 11}
            for n, i in enumerate(ids)
        ]
    }


def test_two_replicas_count_the_same_events_once(replicas: list[Gateway], pg_url: str) -> None:
    ids = [str(uuid.uuid4()) for _ in range(400)]
    batches = [ids[i : i + 20] for i in range(0, len(ids), 20)]

    def send(n: int) -> int:
        # Every batch is sent to both replicas, twice each: a client's retries after timeouts.
        gateway = replicas[n % 2]
        with gateway.client(gateway.server_key) as client:
            answer = client.post("/v1/events", json=_batch(batches[n // 4]))
        assert answer.status_code == 202, answer.text
        accepted: int = answer.json()["accepted"]
        return accepted

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        accepted = sum(pool.map(send, range(len(batches) * 4)))
    assert accepted == len(ids)
    for gateway in replicas:
        stats = gateway.stats(metric="nps")
        assert stats["total"]["count"] == len(ids)
    assert count_events(pg_url, "SELECT count(*) FROM events") == len(ids)
    scanned = count_events(pg_url, "SELECT count(*) FROM events WHERE counted AND metric = 'nps'")
    assert scanned == len(ids)


def test_concurrent_vote_changes_on_two_replicas_leave_one_vote(
    replicas: list[Gateway], pg_url: str
) -> None:
    def vote(n: int) -> None:
        gateway = replicas[n % 2]
        event = {
            "id": f"v-{n}",
            "channel": "email",
            "form": "newsletter",
            "metric": "csat",
            "score": 1 + n % 5,
            "vote_key": f"recipient-{n % 3}",
            "ts": 1_795_435_200_000 + n,
        }
        with gateway.client(gateway.server_key) as client:
            assert client.post("/v1/events", json={"events": [event]}).status_code == 202

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(vote, range(60)))
    stats = replicas[0].stats(metric="csat", channel="email")
    # One vote per recipient: the latest ts, n = 57, 58, 59 -> scores 3, 4, 5.
    assert stats["total"]["count"] == 3
    assert stats["total"]["histogram"] == [0, 0, 1, 1, 1]
    assert count_events(pg_url, "SELECT count(*) FROM events WHERE counted") == 3


def test_keys_made_and_revoked_reach_every_replica(
    replicas: list[Gateway], pg_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    registry = Registry(tmp_path, pg_url)
    raw, key = registry.create_key("shop", "server")
    request.addfinalizer(registry.close)
    event = {"channel": "app", "form": "f", "metric": "thumbs", "score": 1}

    def statuses() -> list[int]:
        return [g.post([event], key=raw).status_code for g in replicas]

    _eventually(lambda: statuses() == [202, 202])
    registry.revoke_key(key.id)
    _eventually(lambda: statuses() == [401, 401])


def test_rate_limits_are_shared_by_the_replicas(pg_url: str, tmp_path: Path) -> None:
    site, server = setup_project(pg_url, tmp_path)
    limits = {"address_rate": 2.0, "address_burst": 6.0, "trusted_proxies": ("127.0.0.1/32",)}
    running = [
        start_gateway(tmp_path / f"r{i}", site, server, store=pg_url, **limits) for i in range(2)
    ]
    event = {"channel": "web", "form": "f", "metric": "thumbs", "score": 1}
    try:
        # One visitor through a balancer, alternating between the replicas: each replica alone
        # would let about 6 + 2/s through, together they must hold the shared limit.
        allowed = 0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            for gateway in running:
                with gateway.client(site, **{"X-Forwarded-For": "203.0.113.7"}) as client:
                    status = client.post("/v1/events", json={"events": [event]}).status_code
                allowed += status == 202
            time.sleep(0.05)
        # Shared: about 6 + 2 × 6 s = 18, plus what passed before the syncs saw it (≤ 2 s of
        # two replicas' local buckets). Not shared, it would be about 2 × 18 = 36.
        assert allowed <= 28, allowed
        others = running[0].post([event], key=site)  # another visitor is not limited
        assert others.status_code == 202
    finally:
        for gateway in running:
            gateway.stop()


# --- PostgreSQL going away -------------------------------------------------------------------


def test_postgresql_gone_mid_load_gives_503_then_recovers_without_restart(
    pg_url: str, relay: Relay, tmp_path: Path
) -> None:
    site, server = setup_project(pg_url, tmp_path)
    database = pg_url.rsplit("/", 1)[1]
    through_relay = with_database(pg_url, database, port=relay.port)
    gateway = start_gateway(tmp_path / "r", site, server, store=through_relay)
    acked: set[str] = set()
    answers: list[tuple[int, str | None]] = []
    try:

        def post(n: int) -> None:
            ids = [f"e-{n}-{k}" for k in range(5)]
            try:
                answer = gateway.post(_batch(ids)["events"])
            except httpx.HTTPError:
                answers.append((0, None))
                return
            answers.append((answer.status_code, answer.headers.get("retry-after")))
            if answer.status_code == 202:
                acked.update(ids)

        for n in range(30):
            post(n)
        relay.cut()
        for n in range(30, 60):
            post(n)
        with httpx.Client(base_url=gateway.url) as client:
            assert client.get("/readyz").status_code == 503
        relay.mend()
        _eventually(lambda: httpx.get(f"{gateway.url}/readyz").status_code == 200)
        for n in range(60, 90):
            post(n)
    finally:
        gateway.stop()

    failed = [a for a in answers if a[0] != 202]
    assert failed, "cutting PostgreSQL off made no request fail"
    assert all(status == 503 and retry for status, retry in failed), failed
    assert answers[-1][0] == 202  # back without a restart
    stored = count_events(pg_url, "SELECT count(*) FROM events")
    # Every acknowledged event is stored, and nothing unacknowledged was answered 2xx.
    assert stored >= len(acked)
    ids = {r for r in _ids(pg_url)}
    assert acked <= ids


def _ids(url: str) -> list[str]:
    async def run() -> list[str]:
        conn = await asyncpg.connect(url)
        try:
            return [row["id"] for row in await conn.fetch("SELECT id FROM events")]
        finally:
            await conn.close()

    return asyncio.run(run())


def _eventually(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.1)
