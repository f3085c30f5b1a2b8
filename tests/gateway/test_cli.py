"""The ``voxloop-gateway`` command: the demo ``make run`` serves, and errors in names.

``init``, ``projects`` and ``keys`` on the happy path are in test_app.py.
"""

from __future__ import annotations

import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from voxloop_gateway.cli import main
from voxloop_gateway.settings import RULES, env_name

from .conftest import Spawn, free_port, make_project, wait_ready


def read_until(process: subprocess.Popen[str], last: str, timeout: float = 30) -> list[str]:
    """The lines ``process`` prints up to the first that starts with ``last``."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:  # to the end of the output, then it closes the pipe
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not seen or not seen[-1].startswith(last):
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no line starting {last!r} in {timeout} s: {seen}") from None
        assert line is not None, f"the demo exited before printing {last!r}: {seen}"
        seen.append(line)
    return seen


def curl(line: str) -> httpx.Request:
    """The request a printed ``curl -s URL [-H header]... [-d body]`` line makes."""
    words = shlex.split(line)
    assert words[:2] == ["curl", "-s"], line
    url, headers, body = None, {}, None
    rest = iter(words[2:])
    for word in rest:
        if word == "-H":
            name, _, value = next(rest).partition(": ")
            headers[name] = value
        elif word == "-d":
            body = next(rest)
        else:
            assert url is None and not word.startswith("-"), f"unexpected {word!r} in {line}"
            url = word
    assert url is not None, line
    return httpx.Request("POST" if body is not None else "GET", url, headers=headers, content=body)


def run_demo(spawn: Spawn, data_dir: Path) -> tuple[subprocess.Popen[str], str, dict[str, Any]]:
    """Start ``demo`` on a free port; the process, its output, and what the output tells."""
    port = free_port()
    process = spawn(
        data_dir,
        "demo",
        "--port",
        str(port),
        env={"VOXLOOP_DRAIN_SECONDS": "0"},
        stdout=subprocess.PIPE,
    )
    lines = read_until(process, "more:")
    text = "\n".join(lines)
    site = re.search(r"site key +(pk_\S+)", text)
    server = re.search(r"server key +(sk_\S+)", text)
    curls = [line.strip() for line in lines if line.strip().startswith("curl ")]
    assert site and server and len(curls) == 2, text
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process)
    told = {"url": url, "site": site[1], "server": server[1], "post": curls[0], "read": curls[1]}
    return process, text, told


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_demo_prints_keys_and_curl_lines_that_work_and_a_second_run_keeps_the_data(
    tmp_path: Path, spawn: Spawn
) -> None:
    process, text, told = run_demo(spawn, tmp_path)
    assert f"created the demo project in {tmp_path}/" in text
    post, read = curl(told["post"]), curl(told["read"])
    assert post.headers["authorization"] == f"Bearer {told['site']}"
    assert read.headers["authorization"] == f"Bearer {told['server']}"
    assert str(post.url).startswith(told["url"]) and str(read.url).startswith(told["url"])
    with httpx.Client(timeout=10) as client:
        posted = client.send(post)
        assert posted.status_code == 202, posted.text
        assert posted.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
        stats = client.send(read)
        assert stats.status_code == 200, stats.text
        assert stats.json()["total"]["count"] == 1
    stop(process)

    process, text, again = run_demo(spawn, tmp_path)
    assert "created the demo project" not in text
    assert again["site"] != told["site"] and again["server"] != told["server"]
    with httpx.Client(base_url=again["url"], timeout=10) as client:
        stats = client.get(
            "/v1/stats",
            params={"metric": "nps"},
            headers={"Authorization": f"Bearer {again['server']}"},
        )
        assert stats.status_code == 200 and stats.json()["total"]["count"] == 1  # data kept
        for old in (told["site"], told["server"]):  # the first run's keys are revoked
            refused = client.get(
                "/v1/stats", params={"metric": "nps"}, headers={"Authorization": f"Bearer {old}"}
            )
            assert refused.status_code == 401, old
    stop(process)

    table = subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", "--data-dir", str(tmp_path)]
        + ["stats", "demo", "--metric", "nps"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert table.returncode == 0, table.stderr
    total = table.stdout.splitlines()[1].split()
    assert total[:3] == ["total", "1", "100.0"]  # one 9: NPS 100


ERRORS = {
    "keys-create-unknown-project": (
        ["keys", "create", "nope", "--kind", "site"],
        "no project 'nope'; projects: shop",
    ),
    "keys-list-unknown-project": (["keys", "list", "nope"], "no project 'nope'; projects: shop"),
    "stats-unknown-project": (
        ["stats", "nope", "--metric", "nps"],
        "no project 'nope'; projects: shop",
    ),
    "stats-unknown-channel": (
        ["stats", "shop", "--metric", "nps", "--channel", "sms"],
        "project 'shop' has no channel sms",
    ),
    "keys-create-unknown-channel": (
        ["keys", "create", "shop", "--kind", "site", "--channel", "sms"],
        "project 'shop' has no channel sms; its channels: app, email, kiosk, web",
    ),
    "server-key-with-channel": (
        ["keys", "create", "shop", "--kind", "server", "--channel", "web"],
        "a server key writes every channel from anywhere: no --channel/--origin",
    ),
    "revoke-unknown-key": (
        ["keys", "revoke", "pk_nothere"],
        "no key 'pk_nothere'; `voxloop-gateway keys list` shows them",
    ),
    "project-exists": (["projects", "create", "shop"], "project 'shop' already exists"),
}


@pytest.mark.parametrize(("args", "message"), ERRORS.values(), ids=ERRORS)
def test_errors_in_names_exit_2_with_one_line_saying_what(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    for name in RULES:
        monkeypatch.delenv(env_name(name), raising=False)
    make_project(tmp_path)
    capsys.readouterr()
    assert main(["--data-dir", str(tmp_path), *args]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"voxloop-gateway: {message}"]
    assert out == ""


def test_serve_without_a_registry_says_how_to_make_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(tmp_path / "empty"), "serve"]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"voxloop-gateway: no registry in {tmp_path / 'empty' / 'registry.sqlite3'}: run"
        " `voxloop-gateway init` first (or `make run` for a demo)"
    ]
    assert out == "" and not (tmp_path / "empty").exists()
