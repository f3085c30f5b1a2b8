"""Crash safety: a gateway killed with SIGKILL under load loses no event it answered 202 for."""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx

from .conftest import make_project


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "voxloop_gateway.cli", "--data-dir", str(data_dir), "serve"]
        + ["--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("the gateway did not become ready")


def load(url: str, key: str, acked: list[str], stop: threading.Event, seed: int) -> None:
    """Post small batches until ``stop``; remember the ids of every batch answered 202."""
    rng = random.Random(seed)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=5) as c:
        for _ in range(10_000):  # bounded, whatever happens
            if stop.is_set():
                return
            ids = [str(uuid.uuid4()) for _ in range(rng.randint(1, 20))]
            events = [
                {
                    "id": i,
                    "channel": rng.choice(["web", "app"]),
                    "form": "checkout",
                    "metric": "csat",
                    "score": rng.randint(1, 5),
                }
                for i in ids
            ]
            try:
                answer = c.post("/v1/events", json={"events": events})
            except httpx.TransportError:
                return  # the gateway died: this batch's fate is unknown, and that is allowed
            if answer.status_code == 202:
                acked.extend(ids)


def stored(
    data_dir: Path,
) -> tuple[set[str], dict[tuple[str, int], int], dict[tuple[str, int], int]]:
    ids: set[str] = set()
    scanned: dict[tuple[str, int], int] = {}
    aggregated: dict[tuple[str, int], int] = {}
    for channel in ("web", "app"):
        db = sqlite3.connect(data_dir / "stores" / f"{channel}.sqlite3")
        try:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            ids.update(i for (i,) in db.execute("SELECT id FROM events"))
            for score, n in db.execute(
                "SELECT score, count(*) FROM events WHERE counted = 1 GROUP BY score"
            ):
                scanned[(channel, score)] = n
            for score, n in db.execute(
                "SELECT score, sum(count) FROM aggregates GROUP BY score HAVING sum(count) > 0"
            ):
                aggregated[(channel, score)] = n
        finally:
            db.close()
    return ids, scanned, aggregated


def test_every_202_survives_sigkill_and_stats_equal_a_scan(tmp_path: Path) -> None:
    _, server_key = make_project(tmp_path)
    acked: list[str] = []
    rng = random.Random(11)
    for trial in range(4):
        port = free_port()
        process = serve(tmp_path, port)
        stop = threading.Event()
        workers = [
            threading.Thread(
                target=load,
                args=(f"http://127.0.0.1:{port}", server_key, acked, stop, trial * 10 + n),
            )
            for n in range(4)
        ]
        for worker in workers:
            worker.start()
        time.sleep(rng.uniform(0.3, 1.5))
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        ids, scanned, aggregated = stored(tmp_path)
        assert acked, "the load never got an answer"
        missing = set(acked) - ids
        assert not missing, f"trial {trial}: {len(missing)} acknowledged events lost"
        assert scanned == aggregated
