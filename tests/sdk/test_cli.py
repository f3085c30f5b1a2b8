"""``python -m voxloop send``: one capture from a shell, the gateway's answer, an exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import Gateway, counted, free_port, unique_form

ROOT = Path(__file__).resolve().parents[2]


def send(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxloop", "send", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_send_prints_the_gateways_answer(gateway: Gateway) -> None:
    form = unique_form()
    done = send(
        *("--endpoint", gateway.url, "--key", gateway.server_key),
        *("--channel", "web", "--form", form, "--metric", "nps", "--score", "9"),
        *("--comment", "Fast checkout", "--tag", "cli", "--meta", "cart=129.5", "--meta", "a=b"),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert counted(gateway, form) == 1


def test_send_takes_the_endpoint_and_key_from_the_environment(gateway: Gateway) -> None:
    form = unique_form()
    env = {"VOXLOOP_ENDPOINT": gateway.url, "VOXLOOP_KEY": gateway.server_key}
    done = send("--channel", "app", "--form", form, "--metric", "thumbs", "--score", "1", env=env)
    assert done.returncode == 0, done.stderr
    assert gateway.stats(metric="thumbs", form=form)["total"]["count"] == 1


def test_a_refused_key_exits_1_saying_why(gateway: Gateway) -> None:
    done = send(
        *("--endpoint", gateway.url, "--key", "sk_wrong"),
        *("--channel", "web", "--form", "checkout", "--metric", "nps", "--score", "9"),
    )
    assert done.returncode == 1
    assert "not delivered: HTTP 401" in done.stderr


def test_an_unreachable_gateway_exits_1_after_a_few_quick_retries() -> None:
    done = send(
        *("--endpoint", f"http://127.0.0.1:{free_port()}", "--key", "sk_x", "--timeout", "3"),
        *("--channel", "web", "--form", "checkout", "--metric", "nps", "--score", "9"),
    )
    assert done.returncode == 1
    assert "connection refused" in done.stderr


def test_a_faulty_event_exits_2_with_the_contracts_message() -> None:
    done = send(
        *("--endpoint", "http://127.0.0.1:1", "--key", "sk_x"),
        *("--channel", "web", "--form", "checkout", "--metric", "nps", "--score", "11"),
    )
    assert done.returncode == 2
    assert "nps score must be 0..10, got 11" in done.stderr


def test_a_missing_key_exits_2() -> None:
    env = {"VOXLOOP_KEY": "", "VOXLOOP_ENDPOINT": ""}
    done = send("--channel", "web", "--form", "f", "--metric", "nps", "--score", "1", env=env)
    assert done.returncode == 2
    assert "--key are required" in done.stderr
