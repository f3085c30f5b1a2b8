"""The cluster test: replicas behind nginx survive a SIGKILL, and its check fails when it should.

The end-to-end run is ``python -m loadtests.cluster`` in a process of its own (Locust's gevent
patching never touches the test process): 2 replicas, 15 s, one killed at 5 s. It runs on
PostgreSQL (a fresh database on ``VOXLOOP_TEST_PG``'s server). Without a reachable PostgreSQL it
skips, unless ``CI`` is set: then it fails (tests/postgres.py). nginx is installed first when
missing, by the harness's own installer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtests.cluster import (
    NGINX_SITE,
    Scan,
    check,
    ensure_nginx,
    nginx_main_config,
    render_site,
)
from tests.postgres import PG_URL, require_postgres

ROOT = Path(__file__).resolve().parents[2]
KILL = 1_800_000_000.0


def test_replicas_behind_nginx_lose_nothing_when_one_is_killed(tmp_path: Path) -> None:
    ensure_nginx()
    require_postgres()
    store = PG_URL
    summary = tmp_path / "summary.json"
    args = ["--replicas", "2", "--seconds", "15", "--kill-at", "5", "--users", "12"]
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.cluster", *args, "--store", store, "--summary", summary],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    figures = json.loads(summary.read_text())
    assert figures["ok"] and figures["reasons"] == [], output
    assert figures["events_acked"] > 0 and figures["events_acked"] == figures["events_sent"]
    assert figures["stats_equal"] and figures["scan_equal"], output
    killed, survivor = (f"127.0.0.1:{port}" for port in figures["ports"])
    assert figures["served"].get(killed, 0) > 0 and figures["served"][survivor] > 0, output
    assert "result    PASS" in output


# --- the check, fed by hand ----------------------------------------------------------------------


def _run(**changes: Any) -> tuple[dict[str, Any], Scan, dict[str, list[int]]]:
    """A record, scan and stats of a tiny run that passes; ``changes`` replace record fields."""
    record: dict[str, Any] = {
        "forms": ["c.checkout"],
        "metrics": {"nps": [0, 10], "thumbs": [0, 1]},
        "channels": ["web", "app"],
        "requests": 4,
        "acked": {"nps|web|c.checkout": {"a": 9, "b": 10}, "thumbs|app|c.checkout": {"c": 1}},
        "sent": ["a", "b", "c"],
        "outcomes": [],
        "replays": [],
        "settle_problems": [],
        "exceptions": [],
    }
    record.update(changes)
    scan: Scan = {
        "a": ("nps", "web", "c.checkout", 9, True),
        "b": ("nps", "web", "c.checkout", 10, True),
        "c": ("thumbs", "app", "c.checkout", 1, True),
    }
    stats = {"nps|web": [0] * 9 + [1, 1], "nps|app": [0] * 11, "thumbs|web": [0, 0]}
    stats["thumbs|app"] = [0, 1]
    return record, scan, stats


def test_the_check_passes_a_clean_run_with_errors_in_the_failover_window() -> None:
    outcomes = [
        [KILL + 0.01, "POST /v1/events [sdk batch]", 0, "ConnectionResetError"],
        [KILL + 0.3, "POST /v1/events [widget]", 502, "502: Bad Gateway"],
        [KILL + 2.0, "POST /v1/events [widget]", 503, "503: draining"],
    ]
    record, scan, stats = _run(outcomes=outcomes, replays=[[KILL + 0.02, 40]])
    verdict = check(record, KILL, scan, stats, window=10)
    assert verdict.ok, verdict.reasons
    assert verdict.figures["error_window"] == pytest.approx((0.01, 2.0))
    assert verdict.figures["replays"] == 40


def test_the_check_fails_when_an_acked_event_is_lost() -> None:
    record, scan, stats = _run()
    del scan["b"]
    verdict = check(record, KILL, scan, stats)
    assert not verdict.ok
    assert any("1 acknowledged events are not in the store" in r for r in verdict.reasons)
    assert any(r.startswith("nps|web: the store's scan counts 1") for r in verdict.reasons)


@pytest.mark.parametrize(
    ("offset", "status"),
    [(-3.0, 503), (12.0, 503), (11.0, 0)],
    ids=["before-the-kill", "after-the-window", "late-connection-error"],
)
def test_the_check_fails_on_an_error_outside_the_failover_window(
    offset: float, status: int
) -> None:
    record, scan, stats = _run(outcomes=[[KILL + offset, "POST /v1/events", status, "x"]])
    verdict = check(record, KILL, scan, stats, window=10)
    assert not verdict.ok
    assert any("outside 0-10 s" in r for r in verdict.reasons), verdict.reasons


def test_the_check_fails_on_any_error_when_nothing_was_killed() -> None:
    record, scan, stats = _run(outcomes=[[KILL, "POST /v1/events", 503, "503"]])
    verdict = check(record, None, scan, stats)
    assert any("with no replica killed" in r for r in verdict.reasons)


@pytest.mark.parametrize(
    ("status", "problem"),
    [(500, "500: Internal Server Error"), (401, "401: unknown key"), (202, "answered {...}")],
    ids=["500", "401", "202-with-wrong-counts"],
)
def test_the_check_fails_on_an_error_a_cluster_must_never_give(status: int, problem: str) -> None:
    record, scan, stats = _run(outcomes=[[KILL + 0.5, "POST /v1/events", status, problem]])
    verdict = check(record, KILL, scan, stats)
    assert any("a cluster must never fail" in r and problem in r for r in verdict.reasons)


def test_the_check_fails_when_stats_differ_or_a_sent_event_was_never_acked() -> None:
    record, scan, stats = _run(sent=["a", "b", "c", "d"])
    stats["nps|web"] = [0] * 9 + [2, 1]
    verdict = check(record, KILL, scan, stats)
    assert any(r.startswith("nps|web: /v1/stats counts 3") for r in verdict.reasons)
    assert any("1 events sent were never acknowledged" in r for r in verdict.reasons)


def test_the_check_fails_on_stored_events_nobody_sent_and_on_late_replays() -> None:
    record, scan, stats = _run(replays=[[KILL + 30, 5]])
    scan["z"] = ("nps", "app", "c.checkout", 0, True)
    verdict = check(record, KILL, scan, stats)
    assert any("1 stored events no client sent" in r for r in verdict.reasons)
    assert any("unexpected duplicates outside the failover window" in r for r in verdict.reasons)


def test_the_check_fails_when_the_killed_replica_never_served() -> None:
    record, scan, stats = _run()
    served = {"127.0.0.1:8082": 10}
    verdict = check(record, KILL, scan, stats, served=served, killed="127.0.0.1:8081")
    assert any("the kill proved nothing" in r for r in verdict.reasons)


# --- the nginx configuration --------------------------------------------------------------------


def test_the_shipped_nginx_site_renders_for_n_replicas_and_nginx_accepts_it(
    tmp_path: Path,
) -> None:
    nginx = ensure_nginx()
    site = render_site(NGINX_SITE.read_text(), [9101, 9102, 9103, 9104], 9100)
    upstreams = [line.strip() for line in site.splitlines() if "server 127.0.0.1:" in line]
    assert upstreams == [
        f"server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;" for port in range(9101, 9105)
    ]
    assert [line.strip() for line in site.splitlines() if line.strip().startswith("listen")] == [
        "listen 127.0.0.1:9100;"
    ]
    assert "proxy_next_upstream error timeout http_503 non_idempotent;" in site
    (tmp_path / "temp").mkdir()
    (tmp_path / "voxloop.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_main_config(tmp_path, tmp_path / "voxloop.conf"))
    command = [nginx, "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "e.log"), "-t"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
