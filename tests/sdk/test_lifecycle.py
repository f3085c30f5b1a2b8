"""The client across a process's life: the module-level API, exit, and fork.

Exit and fork are tested in child processes of their own, so the test process keeps its
threads and its exit hooks to itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import voxloop

from .conftest import FAST, Gateway, counted, unique_form

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_module_level_api(gateway: Gateway) -> None:
    form = unique_form()
    with pytest.raises(voxloop.ConfigError, match="voxloop.init"):
        voxloop.capture(channel="web", form=form, metric="nps", score=9)
    assert voxloop.flush() and voxloop.close()
    client = voxloop.init(gateway.url, gateway.server_key, config=FAST)
    try:
        assert voxloop.get_client() is client
        event_id = voxloop.capture(channel="web", form=form, metric="nps", score=9)
        assert isinstance(event_id, str)
        assert voxloop.flush(timeout=10)
        assert counted(gateway, form) == 1
        again = voxloop.init(gateway.url, gateway.server_key, config=FAST)
        assert client.closed and voxloop.get_client() is again
    finally:
        assert voxloop.close()
    assert voxloop.get_client() is None


def test_events_left_at_exit_are_flushed(gateway: Gateway) -> None:
    form = unique_form()
    run_python(
        """
        import sys, voxloop
        url, key, form = sys.argv[1:]
        # A long interval: without the exit hook these would still be waiting.
        config = voxloop.Config(batching=voxloop.Batching(interval=60))
        voxloop.init(url, key, config=config)
        for i in range(25):
            voxloop.capture(channel="web", form=form, metric="nps", score=i % 11)
        """,
        gateway.url,
        gateway.server_key,
        form,
    )
    assert counted(gateway, form) == 25


def test_an_async_client_never_closed_is_flushed_at_exit(gateway: Gateway) -> None:
    form = unique_form()
    run_python(
        """
        import asyncio, sys, voxloop
        url, key, form = sys.argv[1:]

        async def main():
            config = voxloop.Config(batching=voxloop.Batching(interval=60))
            client = voxloop.AsyncClient(url, key, config=config)
            for i in range(30):
                await client.capture(channel="app", form=form, metric="nps", score=i % 11)

        asyncio.run(main())  # the loop ends with the events still queued
        """,
        gateway.url,
        gateway.server_key,
        form,
    )
    assert counted(gateway, form) == 30


def test_a_forked_child_delivers_its_own_events_once(gateway: Gateway) -> None:
    form = unique_form()
    out = run_python(
        """
        import json, os, sys, voxloop
        url, key, form = sys.argv[1:]
        config = voxloop.Config(batching=voxloop.Batching(interval=60), flush_at_exit=False)
        client = voxloop.Client(url, key, config=config)
        for _ in range(10):  # queued in the parent, not yet sent, at the fork
            client.capture(channel="web", form=form, metric="nps", score=9)
        pid = os.fork()
        if pid == 0:
            for _ in range(5):
                client.capture(channel="web", form=form, metric="nps", score=3)
            ok = client.flush(timeout=20)
            stats = client.stats()
            os.write(1, json.dumps({"child": [ok, stats.delivered]}).encode() + b"\\n")
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        ok = client.flush(timeout=20)
        print(json.dumps({"parent": [ok, client.stats().delivered, status]}))
        client.close()
        """,
        gateway.url,
        gateway.server_key,
        form,
    )
    results = {k: v for line in out.splitlines() for k, v in json.loads(line).items()}
    assert results == {"child": [True, 5], "parent": [True, 10, 0]}
    histogram = gateway.stats(metric="nps", form=form)["total"]["histogram"]
    assert (histogram[9], histogram[3]) == (10, 5)
