"""The ``voxloop-gateway`` command: the demo ``make run`` serves, and errors in names.

``init``, ``projects`` and ``keys`` on the happy path are in test_app.py.
"""

from __future__ import annotations

import contextlib
import queue
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from voxloop_gateway.cli import main
from voxloop_gateway.settings import RULES, env_name

from .conftest import (
    Command,
    Gateway,
    Spawn,
    clean_environ,
    free_port,
    make_project,
    run_cli,
    wait_ready,
)


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


# --- every bad invocation: one line, an exit status, never a traceback ---------------------

TIME_RULE = (
    "it must be an RFC 3339 time with its zone (2024-05-01T09:30:00Z, 2024-05-01T11:30:00+02:00)"
    " or a date (2024-05-01: its midnight, UTC)"
)
NO_REGISTRY = "no registry in {missing}/registry.sqlite3: run `voxloop-gateway init` first"
#: id -> (arguments after --data-dir D, exit status, how the one line on stderr starts after
#: "voxloop-gateway: ", or after "voxloop-gateway" when it starts with a space).
BAD_INVOCATIONS: dict[str, tuple[list[str], int, str]] = {
    "from-a-word": (
        ["stats", "shop", "--metric", "nps", "--from", "yesterday"],
        2,
        f"--from 'yesterday' is not valid: {TIME_RULE}",
    ),
    "to-without-a-zone": (
        ["stats", "shop", "--metric", "nps", "--to", "2024-05-01T10:00:00"],
        2,
        f"--to '2024-05-01T10:00:00' is not valid: {TIME_RULE}",
    ),
    "from-not-a-day": (
        ["stats", "shop", "--metric", "nps", "--from", "2024-02-30"],
        2,
        f"--from '2024-02-30' is not valid: {TIME_RULE}",
    ),
    "to-before-from": (
        ["stats", "shop", "--metric", "nps", "--from", "2024-05-02", "--to", "2024-05-01"],
        2,
        "--to '2024-05-01' must be later than --from '2024-05-02'",
    ),
    "bad-metric": (
        ["stats", "shop", "--metric", "stars"],
        2,
        " stats: argument --metric: invalid choice: 'stars'",
    ),
    "no-metric": (["stats", "shop"], 2, " stats: the following arguments are required: --metric"),
    "bad-interval": (
        ["stats", "shop", "--metric", "nps", "--interval", "fortnight"],
        2,
        " stats: argument --interval: invalid choice: 'fortnight'",
    ),
    "unknown-command": (["statz"], 2, "argument command: invalid choice: 'statz'"),
    "no-command": ([], 2, "the following arguments are required: command"),
    "no-verb": (["keys"], 2, " keys: the following arguments are required: verb"),
    "unknown-flag": (["keys", "list", "--all"], 2, "unrecognized arguments: --all"),
    "unknown-flag-without-a-command": (["--bogus"], 2, "unrecognized arguments: --bogus"),
    "unknown-flag-without-a-verb": (["keys", "--bogus"], 2, "unrecognized arguments: --bogus"),
    "stats-unknown-project": (
        ["stats", "nope", "--metric", "nps"],
        2,
        "no project 'nope'; projects: shop",
    ),
    "stats-unknown-channel": (
        ["stats", "shop", "--metric", "nps", "--channel", "sms"],
        2,
        "project 'shop' has no channel sms",
    ),
    "revoke-unknown-key": (["keys", "revoke", "pk_nothere"], 2, "no key 'pk_nothere'"),
    "revoke-unknown-secret": (
        ["email-secret", "revoke", "nothere"],
        2,
        "no email secret 'nothere'",
    ),
    "bad-origin": (
        ["keys", "create", "shop", "--kind", "site", "--origin", "shop.example"],
        2,
        "origin 'shop.example' must look like https://shop.example.com[:port]",
    ),
    "bad-project-name": (
        ["projects", "create", "My Shop"],
        2,
        "project 'My Shop' must be 1-64 characters",
    ),
    "stats-missing-data-dir": (["stats", "shop", "--metric", "nps"], 2, NO_REGISTRY),
    "keys-missing-data-dir": (["keys", "list"], 2, NO_REGISTRY),
    "projects-missing-data-dir": (["projects", "list"], 2, NO_REGISTRY),
    "secrets-missing-data-dir": (["email-secret", "list"], 2, NO_REGISTRY),
    "registry-locked": (
        ["keys", "create", "shop", "--kind", "server"],
        2,
        "can't open the registry {data}/registry.sqlite3: database is locked",
    ),
    "store-locked": (
        ["stats", "shop", "--metric", "nps"],
        1,
        "stats failed: StoreUnavailable: can't open the store of channel 'web'",
    ),
}


@pytest.mark.parametrize(
    ("args", "status", "message"), BAD_INVOCATIONS.values(), ids=BAD_INVOCATIONS
)
def test_every_bad_invocation_is_one_line_and_an_exit_status(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    command: Command,
    args: list[str],
    status: int,
    message: str,
) -> None:
    """In this process (``command``), but where another process must hold a file's lock."""
    data = tmp_path / "data"
    make_project(data)
    missing = tmp_path / "missing"
    name = request.node.callspec.id
    where = missing if "missing-data-dir" in name else data
    argv = ["--data-dir", str(where), *args]
    with contextlib.ExitStack() as held:
        if not name.endswith("-locked"):
            done = command(*argv, env={"VOXLOOP_BUSY_TIMEOUT_MS": "200"})
        else:  # another process (this one) holds the file's lock: the command runs in its own
            path = data / "registry.sqlite3"
            if name == "store-locked":
                path = data / "stores" / "web.sqlite3"
                path.parent.mkdir()
            locker = held.enter_context(contextlib.closing(sqlite3.connect(path)))
            locker.isolation_level = None
            locker.execute("PRAGMA locking_mode = EXCLUSIVE")
            locker.execute("BEGIN EXCLUSIVE")
            locker.execute("CREATE TABLE IF NOT EXISTS held (x)")
            done = subprocess.run(
                [sys.executable, "-m", "voxloop_gateway.cli", *argv],
                env=clean_environ(VOXLOOP_BUSY_TIMEOUT_MS="200"),
                capture_output=True,
                text=True,
                timeout=60,
            )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == status, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    message = message.format(missing=missing, data=data)
    expected = "voxloop-gateway" + (message if message.startswith(" ") else f": {message}")
    assert lines[0].startswith(expected), (lines[0], expected)
    assert not missing.exists()  # a read never makes a data dir


def test_stats_help_gives_the_formats() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", "stats", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "RFC 3339 time with its zone (2024-05-01T09:30:00Z" in text
    assert "or a date (2024-05-01: its midnight, UTC)" in text
    assert "a row per hour, day, week, month" in text
    assert "one of nps, csat, ces, likert, thumbs" in text


def test_stats_takes_dates_as_utc_midnights(gateway: Gateway) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=n) for n in (2, 1)]
    events = [
        {"channel": "web", "form": "f", "metric": "nps", "score": score, "ts": ms}
        for score, ms in (
            (9, int((days[0] + timedelta(hours=23)).timestamp() * 1000)),
            (0, int(days[1].timestamp() * 1000)),
        )
    ]
    assert gateway.post(events).json()["accepted"] == 2
    table = subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", "--data-dir", str(gateway.data_dir)]
        + ["stats", "shop", "--metric", "nps"]
        + ["--from", f"{days[0]:%Y-%m-%d}", "--to", f"{days[1]:%Y-%m-%d}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert table.returncode == 0, table.stderr
    header, total = table.stdout.splitlines()[:2]
    assert header.split() == ["bucket", "count", "score", "interval", "histogram"]
    assert total.split()[:3] == ["total", "1", "100.0"]  # the 9 alone
    found = re.search(r"100\.0  \[(-?\d+\.\d), (-?\d+\.\d)\] +\[0, ", total)
    assert found, total  # the score's 95% interval, then the histogram
    assert -100 <= float(found[1]) < float(found[2]) <= 100


def _stats_table(cwd: Path, *args: str) -> list[str]:
    """``voxloop-gateway ARGS... stats shop --metric csat`` run in ``cwd``: the total row."""
    done = run_cli(cwd, *args, "stats", "shop", "--metric", "csat")
    assert done.returncode == 0, done.stderr
    total: list[str] = done.stdout.splitlines()[1].split()
    return total


def test_stats_prints_what_the_api_answers_and_makes_nothing(
    gateway: Gateway, tmp_path: Path
) -> None:
    events = [
        {"channel": channel, "form": "f", "metric": "csat", "score": score}
        for channel, score in (("web", 5), ("app", 4), ("kiosk", 5))
    ]
    assert gateway.post(events).status_code == 202
    answer = gateway.stats(metric="csat")["total"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    total = _stats_table(elsewhere, "--data-dir", str(gateway.data_dir))
    assert total[:2] == ["total", str(answer["count"])] and answer["count"] == 3
    assert " ".join(total).endswith(str(answer["histogram"]))
    assert list(elsewhere.iterdir()) == []  # no ./data where the command ran


def test_stats_of_a_project_without_events_prints_zeros_and_makes_no_store(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    make_project(data)
    before = sorted(p.name for p in data.rglob("*"))
    total = _stats_table(tmp_path, "--data-dir", str(data))
    assert total == ["total", "0", "-", "-", "[0,", "0,", "0,", "0,", "0]"]
    assert sorted(p.name for p in data.rglob("*")) == before == ["registry.sqlite3"]
