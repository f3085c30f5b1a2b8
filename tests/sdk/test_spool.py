"""The offline spool: events survive an outage, a restart and a SIGKILL, and arrive exactly once.

Durability point under test: with a spool, every event captured before ``flush()`` is on disk
when ``flush()`` returns, whether or not the gateway answered.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import voxloop
from voxloop._spool import Spool

from .conftest import FAST, MakeTwin, counted, free_port, serve, unique_form

ROOT = Path(__file__).resolve().parents[2]

#: The app: capture N events with a spool against a gateway that isn't there, flush (which
#: puts them on disk), say "ready", and wait to be killed.
CAPTURE_THEN_HANG = textwrap.dedent(
    """
    import sys, time, voxloop
    endpoint, key, spool, n, form = sys.argv[1:]
    config = voxloop.Config(
        spool_path=spool,
        batching=voxloop.Batching(interval=0.05),
        retry=voxloop.Retry(backoff=0.05, cap=0.2),
        flush_at_exit=False,
    )
    client = voxloop.Client(endpoint, key, config=config)
    for i in range(int(n)):
        client.capture(channel="web", form=form, metric="nps", score=i % 11, comment=f"#{i}")
    delivered = client.flush(timeout=0.5)
    print("ready", delivered, flush=True)
    time.sleep(120)
    """
)

#: The app restarted: the same spool, the gateway back; flush and report.
RESTART_AND_FLUSH = textwrap.dedent(
    """
    import json, sys, voxloop
    endpoint, key, spool = sys.argv[1:]
    config = voxloop.Config(spool_path=spool, flush_at_exit=False)
    with voxloop.Client(endpoint, key, config=config) as client:
        done = client.flush(timeout=30)
        stats = client.stats()
    print(json.dumps({"done": done, "delivered": stats.delivered, "dropped": stats.dropped}))
    """
)


def python(code: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def spooled(path: Path) -> int:
    with sqlite3.connect(path) as db:
        count: int = db.execute("SELECT count(*) FROM events").fetchone()[0]
    return count


def kill_with_events_unsent(key: str, spool: Path, n: int, form: str) -> None:
    """Run the app against a dead port until it says its events are spooled, then SIGKILL it."""
    app = python(
        CAPTURE_THEN_HANG, f"http://127.0.0.1:{free_port()}", key, str(spool), str(n), form
    )
    try:
        assert app.stdout is not None
        readable, _, _ = select.select([app.stdout], [], [], 30)
        assert readable, "the app never said it was ready"
        line = app.stdout.readline()
        assert line.split() == ["ready", "False"], line
    finally:
        app.send_signal(signal.SIGKILL)
        app.communicate(timeout=10)  # reaps it and closes the pipes
    assert app.returncode == -signal.SIGKILL


def restart(url: str, key: str, spool: Path) -> dict[str, Any]:
    app = python(RESTART_AND_FLUSH, url, key, str(spool))
    out, err = app.communicate(timeout=60)
    assert app.returncode == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def test_events_of_a_killed_app_arrive_exactly_once_after_a_restart(tmp_path: Path) -> None:
    gateway = serve(tmp_path / "gateway")
    key = gateway.server_key
    spool = tmp_path / "spool" / "voxloop.sqlite3"
    try:
        for round_ in (1, 2):  # twice in a row: nothing of round 1 comes back in round 2
            form = unique_form()
            kill_with_events_unsent(key, spool, 200, form)
            assert spooled(spool) == 200
            assert counted(gateway, form) == 0

            first = restart(gateway.url, key, spool)
            assert first == {"done": True, "delivered": 200, "dropped": _no_drops()}, round_
            assert counted(gateway, form) == 200
            assert spooled(spool) == 0

            again = restart(gateway.url, key, spool)
            assert again["delivered"] == 0
            assert counted(gateway, form) == 200
    finally:
        gateway.stop()


def _no_drops() -> dict[str, int]:
    return {"queue_full": 0, "rejected": 0, "gave_up": 0, "closed": 0}


async def test_an_outage_longer_than_the_app_loses_nothing(tmp_path: Path, twin: MakeTwin) -> None:
    gateway = serve(tmp_path / "gateway")
    key, url = gateway.server_key, gateway.url
    gateway.stop()
    spool = tmp_path / "spool.sqlite3"
    config = FAST.replace(spool_path=spool)
    form = unique_form()

    app = twin(url, key, config=config)
    for i in range(150):
        await app.capture(form=form, score=i % 11)
    assert not await app.flush(timeout=0.3)
    assert spooled(spool) == 150
    assert not await app.close(timeout=0.3)
    stats = app.stats()
    assert stats.delivered == 0 and sum(stats.dropped.values()) == 0  # kept, not dropped

    gateway = serve(tmp_path / "gateway", port=int(url.rsplit(":", 1)[1]))
    try:
        restarted = twin(url, key, config=config)
        assert await restarted.flush(timeout=15)
        assert counted(gateway, form) == 150
        assert restarted.stats().delivered == 150
        assert spooled(spool) == 0
    finally:
        gateway.stop()


async def test_the_spool_is_used_in_sync_mode_too(tmp_path: Path, twin: MakeTwin) -> None:
    spool = tmp_path / "spool.sqlite3"
    config = FAST.replace(spool_path=spool, sync_mode=True, flush_timeout=0.3)
    app = twin(f"http://127.0.0.1:{free_port()}", "sk_x", config=config)
    await app.capture()
    assert spooled(spool) == 1
    assert app.stats().dropped["gave_up"] == 0


def test_the_spool_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "spool.sqlite3"
    spool = Spool(path)
    spool.put([("a", b"{}")])
    spool.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_spool_that_cannot_be_opened_fails_at_construction(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(voxloop.ConfigError, match="spool_path"):
        voxloop.Client(
            "http://127.0.0.1:1",
            "sk_x",
            config=voxloop.Config(spool_path=tmp_path / "a-file" / "spool.sqlite3"),
        )


def test_rows_of_a_live_process_stay_theirs_until_their_lease_lapses(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    Spool(path).close()
    with sqlite3.connect(path) as db:  # rows of our parent, alive, leased for a minute
        db.execute(
            "INSERT INTO events (id, body, owner, lease_until) VALUES ('live', x'7b7d', ?, ?)",
            (os.getppid(), time.time() + 60),
        )
        db.execute(
            "INSERT INTO events (id, body, owner, lease_until) VALUES ('lapsed', x'7b7d', ?, ?)",
            (os.getppid(), time.time() - 1),
        )
    spool = Spool(path)
    assert [event_id for event_id, _ in spool.take(10, 10_000)] == ["lapsed"]
    spool.close()


def test_rows_of_an_exited_process_are_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    Spool(path).close()
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO events (id, body, owner, lease_until) VALUES ('orphan', x'7b7d', ?, ?)",
            (int(exited.stdout), time.time() + 60),
        )
    spool = Spool(path)
    assert spool.take(10, 10_000) == [("orphan", b"{}")]
    spool.delete(["orphan"])
    assert spool.pending() == 0
    spool.close()


async def test_on_error_is_called_on_the_event_loop_even_with_a_spool(
    tmp_path: Path, script: Any
) -> None:
    import threading

    from .conftest import answer

    server = script(answer(400))
    seen: list[tuple[str, threading.Thread]] = []
    config = FAST.replace(spool_path=tmp_path / "spool.sqlite3")
    async with voxloop.AsyncClient(
        server.url,
        "sk_x",
        config=config,
        on_error=lambda error: seen.append((error.ids[0], threading.current_thread())),
    ) as client:
        event_id = await client.capture(channel="web", form="f", metric="nps", score=1)
        assert not await client.flush(timeout=5)  # refused: settled, not delivered
    assert seen == [(event_id, threading.main_thread())]
    assert spooled(tmp_path / "spool.sqlite3") == 0
