"""The Locust load test end to end: a short run passes, and its gate fails when it should.

Each test runs ``python -m loadtests.loadtest`` as a process of its own (a fresh gateway, Locust
headless), so Locust's gevent patching never touches the test process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load_test(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """Run the load test with ``args``; returns its exit status, summary and output."""
    summary = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.loadtest", "--summary", str(summary), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert summary.exists(), output
    return done.returncode, json.loads(summary.read_text()), output


def test_a_short_run_passes_and_stats_equal_what_was_acked(tmp_path: Path) -> None:
    code, summary, output = load_test(tmp_path, "--seconds", "8")
    assert code == 0, output
    assert summary["ok"] and summary["reasons"] == [], output
    assert summary["requests"] > 0 and summary["failures"] == 0
    assert summary["events_acked"] > 0
    assert summary["stats_ok"] and summary["stats_compared"] == summary["stats_histograms"]
    assert summary["retried_events"] > 0
    assert summary["retries_confirmed"] == summary["retried_events"]
    names = {name for name, _, _ in summary["by_name"]}
    assert {"POST /v1/events [widget]", "POST /v1/events [sdk batch]"} <= names
    assert any(name.startswith("GET /v1/stats") for name in names)
    assert "result    pass" in output


def test_the_gate_fails_on_failed_requests(tmp_path: Path) -> None:
    code, summary, output = load_test(tmp_path, "--seconds", "2", "--site-key", "pk_not_a_key")
    assert code == 1, output
    assert summary["failures"] > 0
    assert any("requests failed" in reason for reason in summary["reasons"])
    assert "401" in output


def test_the_gate_fails_when_stats_differ_from_what_was_acked(tmp_path: Path) -> None:
    code, summary, output = load_test(tmp_path, "--seconds", "2", "--preload", "5")
    assert code == 1, output
    assert summary["failures"] == 0
    assert not summary["stats_ok"]
    [mismatch] = summary["stats_mismatches"]
    assert mismatch.startswith("nps/app:"), mismatch


def test_event_ids_are_uuid7_with_the_time_they_were_made() -> None:
    ms = 1_795_000_000_123
    done = subprocess.run(
        [sys.executable, "-c", f"from loadtests.locustfile import uuid7; print(uuid7({ms}))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    made = uuid.UUID(done.stdout.strip())
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert made.int >> 80 == ms
