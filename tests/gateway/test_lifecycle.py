"""The gateway's life: settings checked at start-up, a graceful stop, a store that stops writing.

The stop tests run ``voxloop-gateway serve`` as a process of its own and send it real signals.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from voxloop_gateway.cli import main
from voxloop_gateway.settings import RULES, Settings, env_name, load_settings

from .conftest import Spawn, free_port, make_project, start_gateway, wait_ready

# --- settings ------------------------------------------------------------------------------

BAD_SETTINGS = {
    "port-not-a-number": (
        {"VOXLOOP_PORT": "abc"},
        [],
        "VOXLOOP_PORT='abc' is not valid: port must be an integer 0-65535",
    ),
    "port-out-of-range": (
        {"VOXLOOP_PORT": "70000"},
        [],
        "VOXLOOP_PORT='70000' is not valid: port must be an integer 0-65535",
    ),
    "synchronous-unknown": (
        {"VOXLOOP_SYNCHRONOUS": "SOMETIMES"},
        [],
        "VOXLOOP_SYNCHRONOUS='SOMETIMES' is not valid: synchronous must be FULL or NORMAL",
    ),
    "max-body-negative": (
        {"VOXLOOP_MAX_BODY": "-1"},
        [],
        "VOXLOOP_MAX_BODY='-1' is not valid: max_body must be an integer of at least 1024 (bytes)",
    ),
    "proxy-not-an-address": (
        {"VOXLOOP_TRUSTED_PROXIES": "10.0.0.0/8, not-an-ip"},
        [],
        "VOXLOOP_TRUSTED_PROXIES='10.0.0.0/8, not-an-ip' is not valid: trusted_proxies must be"
        " IP addresses or networks, comma-separated; 'not-an-ip' is neither an IP address nor a"
        " network",
    ),
    "rate-zero": (
        {"VOXLOOP_KEY_RATE": "0"},
        [],
        "VOXLOOP_KEY_RATE='0' is not valid: key_rate must be a number above 0 (requests/s)",
    ),
    "drain-too-long": (
        {"VOXLOOP_DRAIN_SECONDS": "60"},
        [],
        "VOXLOOP_DRAIN_SECONDS='60' is not valid: drain_seconds must be a number of seconds"
        " from 0 to 6",
    ),
    "busy-timeout-negative": (
        {"VOXLOOP_BUSY_TIMEOUT_MS": "-5"},
        [],
        "VOXLOOP_BUSY_TIMEOUT_MS='-5' is not valid: busy_timeout_ms must be an integer of at"
        " least 0 (milliseconds)",
    ),
    "bad-flag-over-good-variable": (
        {"VOXLOOP_MAX_PENDING": "10"},
        ["--max-pending", "0"],
        "--max-pending '0' is not valid: max_pending must be an integer of at least 1 (records)",
    ),
    "bad-flag-port": (
        {},
        ["--port", "http"],
        "--port 'http' is not valid: port must be an integer 0-65535",
    ),
}


@pytest.mark.parametrize(("environ", "flags", "message"), BAD_SETTINGS.values(), ids=BAD_SETTINGS)
def test_a_bad_setting_stops_the_start_with_one_line_naming_it_and_the_rule(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
    flags: list[str],
    message: str,
) -> None:
    for name in RULES:
        monkeypatch.delenv(env_name(name), raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    make_project(tmp_path)  # so nothing but the setting can be wrong
    status = main(["--data-dir", str(tmp_path), "serve", *flags])
    out, err = capsys.readouterr()
    assert status == 2
    assert err.splitlines() == [f"voxloop-gateway: {message}"]
    assert out == ""


def test_the_real_process_exits_with_status_2_on_a_bad_setting(
    tmp_path: Path, spawn: Spawn
) -> None:
    make_project(tmp_path)
    process = spawn(tmp_path, "serve", env={"VOXLOOP_PORT": "70000"}, stderr=subprocess.PIPE)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert err.splitlines() == [
        "voxloop-gateway: VOXLOOP_PORT='70000' is not valid: port must be an integer 0-65535"
    ]


# For each setting: (flag text, what it reads as), (variable text, what it reads as).
SAMPLES: dict[str, tuple[tuple[str, Any], tuple[str, Any]]] = {
    "host": (("0.0.0.0", "0.0.0.0"), ("::1", "::1")),
    "port": (("9001", 9001), ("9002", 9002)),
    "data_dir": (("/srv/a", Path("/srv/a")), ("/srv/b", Path("/srv/b"))),
    "store": (("postgresql://a@h/db", "postgresql://a@h/db"), ("sqlite", "sqlite")),
    "pg_pool_size": (("4", 4), ("8", 8)),
    "synchronous": (("normal", "NORMAL"), ("FULL", "FULL")),
    "max_body": (("2048", 2048), ("4096", 4096)),
    "max_pending": (("5", 5), ("6", 6)),
    "dedup_entries": (("7", 7), ("8", 8)),
    "dedup_age_s": (("9", 9), ("10", 10)),
    "key_rate": (("1.5", 1.5), ("2.5", 2.5)),
    "key_burst": (("3", 3.0), ("4", 4.0)),
    "address_rate": (("5", 5.0), ("6", 6.0)),
    "address_burst": (("7", 7.0), ("8", 8.0)),
    "trusted_proxies": (("10.0.0.1", ("10.0.0.1/32",)), ("10.1.0.0/16", ("10.1.0.0/16",))),
    "drain_seconds": (("0", 0.0), ("1.5", 1.5)),
    "busy_timeout_ms": (("0", 0), ("250", 250)),
    "email_edit_days": (("0", 0.0), ("30", 30.0)),
    "email_burst_seconds": (("2.5", 2.5), ("60", 60.0)),
    "audit_retention_days": (("1", 1), ("3650", 3650)),
    "public_url": (("https://cx.example.com/", "https://cx.example.com"), ("", "")),
    "webhook_allow": (("127.0.0.1", ("127.0.0.1/32",)), ("10.0.0.0/8", ("10.0.0.0/8",))),
    "webhook_timeout_s": (("1", 1.0), ("60", 60.0)),
    "smtp_host": (("mail.example.com", "mail.example.com"), ("127.0.0.1", "127.0.0.1")),
    "smtp_port": (("465", 465), ("25", 25)),
    "smtp_tls": (("TLS", "tls"), ("none", "none")),
    "smtp_user": (("cx", "cx"), ("ops@example.com", "ops@example.com")),
    "smtp_password": (("s3cret", "s3cret"), ("other", "other")),
    "mail_from": (("cx@example.com", "cx@example.com"), ("a@b", "a@b")),
}


def _plain(value: object) -> object:
    return tuple(str(v) for v in value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("name", list(SAMPLES))
def test_flags_win_over_the_environment_and_the_environment_over_defaults(name: str) -> None:
    (flag, from_flag), (text, from_text) = SAMPLES[name]
    environ = {env_name(name): text}
    assert _plain(getattr(load_settings({name: flag}, environ), name)) == from_flag
    assert _plain(getattr(load_settings({name: None}, environ), name)) == from_text
    assert getattr(load_settings({}, {env_name(name): ""}), name) == getattr(Settings(), name)


def test_every_setting_has_a_sample() -> None:
    assert set(SAMPLES) == set(RULES) == set(Settings.__struct_fields__)


# --- a graceful stop -----------------------------------------------------------------------


Answers = list[tuple[int, str | None, list[str]]]
"""(status, Retry-After, the ids of the batch) of every answered post."""


def _load(url: str, key: str, answers: Answers, stop: threading.Event) -> None:
    """Post small batches of web events until ``stop`` or the gateway stops listening."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=15) as c:
        for _ in range(20_000):  # bounded, whatever happens
            if stop.is_set():
                return
            ids = [str(uuid.uuid4()) for _ in range(3)]
            events = [
                {"id": i, "channel": "web", "form": "checkout", "metric": "csat", "score": 4}
                for i in ids
            ]
            try:
                answer = c.post("/v1/events", json={"events": events})
            except httpx.TransportError:
                return  # stopped listening: this batch's fate is unknown, and that is allowed
            answers.append((answer.status_code, answer.headers.get("retry-after"), ids))
            if answer.status_code != 202:
                time.sleep(0.01)


def _stored_ids(data_dir: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(data_dir / "stores" / "web.sqlite3")) as db:
        return {i for (i,) in db.execute("SELECT id FROM events")}


def test_sigterm_drains_then_stops_with_status_0_and_every_202_is_stored(
    tmp_path: Path, spawn: Spawn
) -> None:
    _, server_key = make_project(tmp_path)
    port, unused = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "gateway.log"
    with log.open("w") as stderr:
        process = spawn(
            tmp_path,
            "serve",
            "--port",
            str(port),
            "--key-rate=1e6",
            "--key-burst=1e6",
            env={"VOXLOOP_PORT": str(unused), "VOXLOOP_DRAIN_SECONDS": "1.5"},
            stderr=stderr,
        )
    wait_ready(url, process)  # on the flag's port, not the variable's

    answers: Answers = []
    stop = threading.Event()
    workers = [
        threading.Thread(target=_load, args=(url, server_key, answers, stop)) for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 10
        while sum(status == 202 for status, _, _ in answers) < 30:
            assert time.monotonic() < deadline, f"too few answers under load: {answers[-3:]}"
            time.sleep(0.02)

        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        readiness: list[httpx.Response] = []
        while time.monotonic() - signalled < 9:
            try:
                readiness.append(httpx.get(f"{url}/readyz", timeout=2))
            except httpx.TransportError:
                break  # it stopped listening: the drain is over
            time.sleep(0.05)
        process.wait(timeout=max(0.1, 10 - (time.monotonic() - signalled)))
        stopped_after = time.monotonic() - signalled
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)

    output = log.read_text()
    assert process.returncode == 0, output
    assert stopped_after < 10
    assert "for 1.5 s" in output  # the drain came from VOXLOOP_DRAIN_SECONDS
    assert readiness, "/readyz never answered after the signal"
    drained = [r for r in readiness if r.status_code == 503]
    assert drained and all(r.headers["retry-after"] and r.json()["draining"] for r in drained)
    assert all(r.status_code == 503 for r in readiness[1:])  # once draining, never ready again

    statuses = {status for status, _, _ in answers}
    assert statuses <= {202, 503}, f"unexpected answers: {statuses}"
    refused = [retry for status, retry, _ in answers if status == 503]
    assert refused and all(refused), "new events during the drain must get 503 + Retry-After"
    acked = {i for status, _, ids in answers if status == 202 for i in ids}
    sent = {i for _, _, ids in answers for i in ids}
    stored = _stored_ids(tmp_path)
    assert acked <= stored, f"{len(acked - stored)} events answered 202 were lost"
    assert stored <= sent


def test_a_request_in_flight_at_sigterm_finishes_and_its_commit_lands(
    tmp_path: Path, spawn: Spawn
) -> None:
    _, server_key = make_project(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = spawn(tmp_path, "serve", "--port", str(port), "--drain-seconds", "0.2")
    wait_ready(url, process)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    events = [{"id": i, "channel": "web", "form": "f", "metric": "nps", "score": 9} for i in ids]
    answer: list[httpx.Response | httpx.TransportError] = []

    def post() -> None:
        headers = {"Authorization": f"Bearer {server_key}"}
        try:
            answer.append(httpx.post(f"{url}/v1/events", json={"events": events}, headers=headers))
        except httpx.TransportError as exc:
            answer.append(exc)

    # Another connection holds the store's write lock, so the commit waits (busy timeout 5 s).
    blocker = sqlite3.connect(tmp_path / "stores" / "web.sqlite3", isolation_level=None)
    client = threading.Thread(target=post)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        client.start()
        deadline = time.monotonic() + 5
        while "voxloop_queue_depth 3.0" not in httpx.get(f"{url}/metrics").text:
            assert time.monotonic() < deadline, "the request never reached the store"
            time.sleep(0.02)

        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        while time.monotonic() - signalled < 3:  # until the drain ends and it stops listening
            try:
                httpx.get(f"{url}/healthz", timeout=1)
            except httpx.TransportError:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the gateway kept listening after its drain")
        time.sleep(0.5)  # keep it in flight well into uvicorn's wait for requests to finish
        assert client.is_alive(), f"the request in flight was cut short: {answer}"
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()
    client.join(timeout=10)

    assert len(answer) == 1 and isinstance(answer[0], httpx.Response), answer
    assert answer[0].status_code == 202
    assert answer[0].json()["accepted"] == 3
    assert process.wait(timeout=max(0.1, 10 - (time.monotonic() - signalled))) == 0
    assert set(ids) <= _stored_ids(tmp_path)


# --- a store that can't write --------------------------------------------------------------


def test_an_unwritable_store_gives_503_never_2xx_and_recovers_without_a_restart(
    tmp_path: Path,
) -> None:
    site, server_key = make_project(tmp_path)
    gateway = start_gateway(tmp_path, site, server_key, busy_timeout_ms=100)
    store = tmp_path / "stores" / "web.sqlite3"
    batches = [
        [
            {"id": f"b{b}-{n}", "channel": "web", "form": "f", "metric": "nps", "score": n}
            for n in range(3)
        ]
        for b in range(3)
    ]
    try:
        with contextlib.closing(sqlite3.connect(store, isolation_level=None)) as blocker:
            blocker.execute("BEGIN EXCLUSIVE")  # as a stuck process would: no write can commit
            for batch in batches:
                answer = gateway.post(batch)
                assert answer.status_code == 503, answer.text
                assert answer.headers["retry-after"] == "1"
                assert "channel 'web'" in answer.json()["error"]
            with gateway.client() as client:
                ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.headers["retry-after"]
            assert ready.json()["stores"] == {
                "app": True,
                "email": True,
                "kiosk": True,
                "web": False,
            }
            blocker.execute("ROLLBACK")

        with gateway.client() as client:
            assert client.get("/readyz").status_code == 200
        for batch in batches:  # the clients' retries, same ids: nothing of the 503s was kept
            answer = gateway.post(batch)
            assert answer.status_code == 202, answer.text
            assert answer.json()["accepted"] == 3
        assert gateway.stats(metric="nps")["total"]["count"] == 9
    finally:
        gateway.stop()
    assert _stored_ids(tmp_path) == {e["id"] for batch in batches for e in batch}


def test_sigint_drains_too_and_a_second_signal_cuts_the_drain_short(
    tmp_path: Path, spawn: Spawn
) -> None:
    make_project(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = spawn(tmp_path, "serve", "--port", str(port), "--drain-seconds", "6")
    wait_ready(url, process)
    process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 5
    while httpx.get(f"{url}/readyz", timeout=2).status_code != 503:
        assert time.monotonic() < deadline, "SIGINT did not start the drain"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    second = time.monotonic()
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - second < 3, "the second signal should end the 6 s drain at once"
