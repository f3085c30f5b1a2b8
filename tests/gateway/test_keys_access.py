"""Which key may be used from where: server keys never from a browser, and CORS that sees every
key the CLI makes or revokes as soon as authenticated requests do (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from voxloop import new_id
from voxloop_gateway import Settings, migrate
from voxloop_gateway.control.registry import Registry

from .conftest import ORIGIN, Gateway, clean_environ, start_gateway
from .pg import pg_url

__all__ = ["pg_url"]  # a fixture

BROWSER_RULE = (
    "a server key must never be used from a browser: this request carries an Origin header;"
    " use a site key (pk_...) in web pages"
)
NEW_ORIGIN = "https://new.example"


def stored(gateway: Gateway, form: str) -> int:
    """Events of ``form`` in any store file of the gateway's data dir."""
    total = 0
    for path in (gateway.data_dir / "stores").glob("*.sqlite3"):
        with sqlite3.connect(path) as db:
            total += db.execute("SELECT count(*) FROM events WHERE form = ?", (form,)).fetchone()[0]
    return total


def batch(form: str, channel: str = "web") -> dict[str, Any]:
    return {
        "events": [{"id": new_id(), "channel": channel, "form": form, "metric": "nps", "score": 9}]
    }


@pytest.mark.parametrize(
    "origin", [ORIGIN, "https://evil.example", "null"], ids=["allowed", "foreign", "opaque"]
)
def test_a_server_key_with_an_origin_is_refused_and_nothing_is_stored(
    gateway: Gateway, origin: str
) -> None:
    form = f"browser-{new_id()[:8]}"
    with gateway.client(gateway.server_key, Origin=origin) as client:
        events = client.post("/v1/events", json=batch(form))
        kiosk = client.post("/v1/events", json=batch(form, "kiosk"))
        stats = client.get("/v1/stats", params={"metric": "nps"})
    for answer in (events, kiosk, stats):
        assert answer.status_code == 403, answer.text
        assert answer.json() == {"error": BROWSER_RULE}
        assert gateway.server_key not in answer.text
    assert stored(gateway, form) == 0
    assert gateway.stats(metric="nps", form=form)["total"]["count"] == 0


def test_a_key_shaped_like_a_server_key_with_an_origin_is_refused_by_the_rule(
    gateway: Gateway,
) -> None:
    unknown = "sk_" + "A" * 43
    with gateway.client(unknown, Origin=ORIGIN) as client:
        answer = client.post("/v1/events", json=batch("f"))
    assert answer.status_code == 403 and answer.json() == {"error": BROWSER_RULE}


def test_without_an_origin_a_server_key_writes_and_a_site_key_still_may_with_one(
    gateway: Gateway,
) -> None:
    form = f"fine-{new_id()[:8]}"
    with gateway.client(gateway.server_key) as client:
        assert client.post("/v1/events", json=batch(form)).status_code == 202
    with gateway.client(gateway.site_key, Origin=ORIGIN) as client:
        answer = client.post("/v1/events", json=batch(form))
    assert answer.status_code == 202, answer.text
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert stored(gateway, form) == 2


# --- CORS sees the registry as it is now ------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``voxloop-gateway ARGS...`` in a process of its own."""
    done = subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environ(),
    )
    assert done.returncode == 0, done.stderr
    return done


def preflight_allows(url: str, origin: str) -> bool:
    answer = httpx.options(
        f"{url}/v1/events",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=10,
    )
    assert answer.status_code == 204
    allowed = answer.headers.get("access-control-allow-origin")
    assert allowed in (None, origin)
    return bool(allowed == origin)


def test_a_preflight_sees_a_key_the_cli_made_or_revoked_at_once_on_sqlite(
    gateway: Gateway,
) -> None:
    where = ("--data-dir", str(gateway.data_dir))
    assert not preflight_allows(gateway.url, NEW_ORIGIN)  # the gateway has loaded the registry
    made = cli(*where, "keys", "create", "shop", "--kind", "site", "--origin", NEW_ORIGIN)
    key = made.stdout.strip()
    assert preflight_allows(gateway.url, NEW_ORIGIN)  # no authenticated request in between
    assert preflight_allows(gateway.url, NEW_ORIGIN.upper())  # origins compare in lower case
    cli(*where, "keys", "revoke", key[:11])
    assert not preflight_allows(gateway.url, NEW_ORIGIN)
    assert preflight_allows(gateway.url, ORIGIN)  # the other site key's origin is untouched


@pytest.fixture
def pg_gateway(pg_url: str, tmp_path: Path) -> Iterator[Gateway]:
    migrate.migrate(Settings(store=pg_url, data_dir=tmp_path))
    registry = Registry(tmp_path, pg_url)
    try:
        registry.create_project("shop")
        site, _ = registry.create_key("shop", "site", ["web"], [ORIGIN])
        server, _ = registry.create_key("shop", "server")
    finally:
        registry.close()
    running = start_gateway(tmp_path / "replica", site, server, store=pg_url)
    yield running
    running.stop()


def until(check: Any, want: bool, seconds: float) -> float:
    """Seconds until ``check()`` gives ``want``; fails after ``seconds``."""
    start = time.monotonic()
    while check() != want:
        assert time.monotonic() - start < seconds, f"still {not want} after {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - start


def test_a_preflight_sees_a_key_the_cli_made_or_revoked_within_the_reload_on_postgresql(
    pg_gateway: Gateway, pg_url: str
) -> None:
    def allows() -> bool:
        return preflight_allows(pg_gateway.url, NEW_ORIGIN)

    assert not allows()
    made = cli(
        "--store", pg_url, "keys", "create", "shop", "--kind", "site", "--origin", NEW_ORIGIN
    )
    # The reload runs every second (PG_RELOAD_SECONDS); preflights alone must bring it about.
    assert until(allows, True, 3.0) < 3.0
    cli("--store", pg_url, "keys", "revoke", made.stdout.strip()[:11])
    assert until(allows, False, 3.0) < 3.0
    assert preflight_allows(pg_gateway.url, ORIGIN)


async def test_a_gateway_looks_for_a_change_once_per_turn_of_its_loop(tmp_path: Path) -> None:
    # The requests of one turn share one look at the file; the next turn sees the change.
    writer = Registry(tmp_path)
    writer.create_project("shop")
    key, _ = writer.create_key("shop", "server")
    gateway = Registry(tmp_path)
    assert gateway.authenticate(key) is not None  # the turn's look
    time.sleep(0.05)  # past a tick of the file's clock
    writer.revoke_key(key[:11])
    assert gateway.authenticate(key) is not None  # the same turn: a request made with the first
    await asyncio.sleep(0)
    assert gateway.authenticate(key) is None
    writer.close()
    gateway.close()


def test_outside_an_event_loop_every_call_looks_for_a_change(tmp_path: Path) -> None:
    writer = Registry(tmp_path)
    writer.create_project("shop")
    key, _ = writer.create_key("shop", "server")
    reader = Registry(tmp_path)
    assert reader.authenticate(key) is not None
    time.sleep(0.05)
    writer.revoke_key(key[:11])
    assert reader.authenticate(key) is None
    writer.close()
    reader.close()
