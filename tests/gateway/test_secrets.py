"""Secrets at rest and in what the gateway says: a real ``voxloop-gateway`` in a process of its
own, under a permissive umask, its files stat'ed and everything it prints or answers searched.

``init`` and ``serve`` run as processes; the other commands run in this one (``command``, under
the same umask), each test's many commands costing no second of imports each."""

from __future__ import annotations

import base64
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from voxloop import new_id
from voxloop.email import rating_links
from voxloop_gateway.errors import ConfigError
from voxloop_gateway.settings import Settings, redacted_store

from .conftest import Command, Spawn, clean_environ, free_port, run_cli, spawn, wait_ready

__all__ = ["spawn"]  # a fixture

ORIGIN = "https://shop.example.com"
#: The gateways here stop at once: their drain is not what is tested.
NO_DRAIN = {"VOXLOOP_DRAIN_SECONDS": "0"}


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """This process's umask, which its children inherit, set to the common 022 for the test."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def cli(data_dir: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """``voxloop-gateway --data-dir DATA ARGS...`` in a process of its own."""
    done = subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environ(),
    )
    assert (done.returncode == 0) == ok, (args, done.stdout, done.stderr)
    return done


Cli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def local(tmp_path: Path, command: Command) -> Cli:
    """``cli`` on the data dir ``tmp_path/data``, run in this process."""

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = command("--data-dir", str(tmp_path / "data"), *args)
        assert (done.returncode == 0) == ok, (args, done.stdout, done.stderr)
        return done

    return run


def init(data_dir: Path) -> tuple[str, str]:
    """``init`` a project ``shop``; its (site key, server key) as printed, once."""
    out = cli(data_dir, "init", "--project", "shop", "--origin", ORIGIN).stdout
    site = re.search(r"site key\s+(pk_\S+)", out)
    server = re.search(r"server key\s+(sk_\S+)", out)
    assert site and server, out
    return site[1], server[1]


def modes(data_dir: Path) -> dict[str, int]:
    """The permission bits of the data dir and of everything under it, by relative path."""
    found = {".": stat.S_IMODE(data_dir.stat().st_mode)}
    for path in data_dir.rglob("*"):
        found[str(path.relative_to(data_dir))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(data_dir: Path) -> dict[str, int]:
    found = modes(data_dir)
    wrong = {
        name: oct(mode)
        for name, mode in found.items()
        if mode != (0o700 if (data_dir / name).is_dir() else 0o600)
    }
    assert not wrong, f"open to others (folders must be 0700, files 0600): {wrong}"
    return found


def post(url: str, key: str, channel: str, **headers: str) -> httpx.Response:
    event = {"id": new_id(), "channel": channel, "form": "f", "metric": "nps", "score": 9}
    return httpx.post(
        f"{url}/v1/events",
        json={"events": [event]},
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=10,
    )


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0


def test_the_data_dir_is_private_whatever_the_umask(
    tmp_path: Path, spawn: Spawn, permissive_umask: None, local: Cli
) -> None:
    data_dir = tmp_path / "data"
    site, server = init(data_dir)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = spawn(data_dir, "serve", "--port", str(port), env=NO_DRAIN)
    wait_ready(url, gateway)
    for channel in ("web", "app", "email"):
        assert post(url, server, channel).status_code == 202
    assert post(url, site, "web", Origin=ORIGIN).status_code == 202
    local("keys", "create", "shop", "--kind", "server")  # the registry written meanwhile
    local("email-secret", "create", "shop")
    local("projects", "create", "cafe", "--channel", "kiosk")
    assert post(url, server, "web").status_code == 202

    running = assert_private(data_dir)
    for name in ("registry.sqlite3", "stores", "stores/web.sqlite3", "stores/web.sqlite3-wal"):
        assert name in running, sorted(running)
    assert "stores/web.sqlite3-shm" in running
    stop(gateway)
    assert_private(data_dir)


def test_a_data_dir_found_open_to_others_is_closed(
    tmp_path: Path, spawn: Spawn, permissive_umask: None, local: Cli
) -> None:
    data_dir = tmp_path / "data"
    _, server = init(data_dir)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = spawn(data_dir, "serve", "--port", str(port), env=NO_DRAIN)
    wait_ready(url, gateway)
    assert post(url, server, "web").status_code == 202
    stop(gateway)

    def open_up() -> None:  # as a copy, a restore or an older gateway may have left them
        for path in [data_dir, *data_dir.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)

    open_up()
    local("migrate")
    assert_private(data_dir)

    open_up()
    gateway = spawn(data_dir, "serve", "--port", str(port), env=NO_DRAIN)
    wait_ready(url, gateway)
    assert_private(data_dir)
    stop(gateway)

    # Every command that opens the data dir closes it, stores included, as serve does.
    for command in (
        ["keys", "list"],
        ["projects", "list"],
        ["email-secret", "list"],
        ["keys", "create", "shop", "--kind", "server"],
        ["stats", "shop", "--metric", "nps"],
    ):
        open_up()
        (data_dir / "stores").chmod(0o777)
        for path in (data_dir / "stores").iterdir():
            path.chmod(0o666)
        local(*command)
        assert_private(data_dir)


# --- no key or secret in what the gateway prints or answers ------------------------------------


def forms_of(secret: bytes) -> list[str]:
    """The ways a binary secret could be printed."""
    return [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        repr(secret)[2:-1],
    ]


def test_no_key_or_secret_is_ever_printed_or_answered(
    tmp_path: Path, spawn: Spawn, local: Cli
) -> None:
    data_dir = tmp_path / "data"
    site, server = init(data_dir)
    signing = bytes.fromhex(local("email-secret", "create", "shop").stdout.strip())
    revoked = local("keys", "create", "shop", "--kind", "server").stdout.strip()
    said: list[str] = []  # everything printed and answered, but the keys shown once on purpose

    def run(*args: str, ok: bool = True) -> str:
        done = local(*args, ok=ok)
        said.extend((done.stdout, done.stderr))
        return done.stdout

    run("keys", "revoke", revoked[:11])
    near_miss = server[:-1] + ("A" if server[-1] != "A" else "B")  # a key no one made

    log = tmp_path / "gateway.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as output:
        gateway = spawn(
            data_dir, "serve", "--port", str(port), env=NO_DRAIN, stdout=output, stderr=output
        )
    wait_ready(url, gateway)

    # A channel whose store can't open: the project is made once the gateway runs, and its
    # store's file is a folder.
    run("projects", "create", "cafe", "--channel", "broken")
    cafe = local("keys", "create", "cafe", "--kind", "server").stdout.strip()
    (data_dir / "stores" / "broken.sqlite3").mkdir()

    links = rating_links(
        url,
        signing,
        project="shop",
        campaign="c1",
        form="f",
        metric="nps",
        recipient="someone@example.com",
        expires_in=timedelta(days=1),
    )
    stranger = rating_links(
        url,
        signing,
        project="nope",
        campaign="c1",
        form="f",
        metric="nps",
        recipient="someone@example.com",
        expires_in=timedelta(days=1),
    )
    event = {
        "events": [{"id": new_id(), "channel": "web", "form": "f", "metric": "nps", "score": 9}]
    }
    broken = {"events": [{"channel": "broken", "form": "f", "metric": "nps", "score": 9}]}
    bearer = {"Authorization": f"Bearer {server}"}
    requests: list[tuple[str, str, dict[str, str], Any, int]] = [
        ("POST", "/v1/events", {"Authorization": f"Bearer {near_miss}"}, event, 401),
        ("POST", "/v1/events", {"Authorization": f"Bearer {revoked}"}, event, 401),
        ("POST", "/v1/events", {"Authorization": f"Basic {server}"}, event, 401),
        ("POST", f"/v1/events?key={server}", {}, event, 401),
        ("POST", f"/v1/events?key={quote(server, safe='')}&x=1", {"Origin": ORIGIN}, event, 401),
        ("GET", f"/v1/stats?metric=nps&key={server}", {}, None, 401),
        ("POST", "/v1/events", {**bearer, "Origin": ORIGIN}, event, 403),
        ("GET", "/v1/stats?metric=nps", {**bearer, "Origin": ORIGIN}, None, 403),
        (
            "POST",
            "/v1/events",
            {"Authorization": f"Bearer {site}", "Origin": "https://x.example"},
            event,
            403,
        ),
        ("POST", f"/v1/events?key={site}", {"Origin": ORIGIN}, event, 202),
        ("GET", "/v1/stats?metric=nps", {"Authorization": f"Bearer {site}"}, None, 403),
        ("POST", "/v1/events", {"Authorization": f"Bearer {cafe}"}, broken, 503),
        ("GET", f"/r/{stranger[9].token}", {}, None, 403),
        ("GET", f"/r/{links[9].token}", {}, None, 200),
        ("GET", "/v1/stats?metric=nps", bearer, None, 200),
    ]
    with httpx.Client(base_url=url, timeout=10) as client:
        for method, path, headers, body, status in requests:
            answer = client.request(method, path, headers=headers, json=body)
            assert answer.status_code == status, (method, path, answer.text)
            said.append(answer.text)
            said.append(str(answer.headers))

    # The command line's error paths, given keys and secrets where ids or names belong.
    run("keys", "revoke", revoked, ok=False)  # already revoked
    run("keys", "revoke", near_miss, ok=False)
    run("email-secret", "revoke", signing.hex(), ok=False)
    run("keys", "create", server, "--kind", "site", ok=False)
    run("keys", "create", "shop", "--kind", "server", "--origin", ORIGIN, ok=False)
    run("email-secret", "create", server, ok=False)
    run("keys", "list", site, ok=False)
    run("stats", server, "--metric", "nps", ok=False)
    run("keys", "list")
    run("email-secret", "list")
    run("projects", "list")
    assert "revoked" in run("keys", "revoke", site)  # the whole key, pasted as found, works

    stop(gateway)
    printed = log.read_text()
    said.append(printed)
    assert "POST /v1/events?key=sk_" in printed  # the access log is on, and was searched

    with sqlite3.connect(data_dir / "registry.sqlite3") as db:
        project_secrets = [bytes(row[0]) for row in db.execute("SELECT secret FROM projects")]
    secrets = {
        "site key": [site],
        "server key": [server],
        "revoked key": [revoked],
        "cafe's server key": [cafe],
        "a key sent that no one made": [near_miss],
        "email signing secret": forms_of(signing),
        **{f"project secret {i}": forms_of(s) for i, s in enumerate(project_secrets)},
    }
    everything = "\n".join(said)
    for what, shapes in secrets.items():
        for shape in shapes:
            assert shape not in everything, f"the {what} appears in the output"
    # The token of a rating link names its recipient: the access log shows neither.
    for token in (links[9].token, stranger[9].token):
        assert token not in printed
    assert "someone@example.com" not in everything


# --- no database password in what the command line says -------------------------------------

PASSWORD = "Pa55-w0rd-Never-Shown"
#: Every way a store URL may carry a secret: the user part, query parameters (in any case,
#: percent-encoded), a connection string, and URLs refused as invalid.
STORE_URLS = [
    f"postgresql://u:{PASSWORD}@127.0.0.1:1/db",
    f"postgresql://u@127.0.0.1:1/db?password={PASSWORD}",
    f"postgres://u@127.0.0.1:1/db?sslmode=disable&PASSWORD={PASSWORD}",
    f"postgresql://u@127.0.0.1:1/db?passfile=/etc/{PASSWORD}&sslpassword={PASSWORD}",
    f"postgresql://u@127.0.0.1:1/db?sslkey=/k/{PASSWORD}&client_secret={PASSWORD}",
    f"postgresql://u@127.0.0.1:1/db?p%61ssword={PASSWORD}",
    f"postgresql://u:{PASSWORD[:5]}@{PASSWORD[5:]}@127.0.0.1:1/db",
    f"mysql://u:{PASSWORD}@host/db",
    f"mysql://u@host/db?password={PASSWORD}",
    f"host=db user=u password={PASSWORD}",
    f"host=db user=u password='{PASSWORD} x'",
]


@pytest.mark.parametrize("url", STORE_URLS)
def test_no_database_password_is_ever_printed(
    tmp_path: Path, url: str, command: Command, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command with the URL as a flag and as a variable, in this process (``command``),
    and ``stats`` in a process of its own: what a shell sees, to the process's exit."""
    monkeypatch.chdir(tmp_path)
    said = []
    for args in (["projects", "list"], ["keys", "list"], ["stats", "x", "--metric", "nps"]):
        for how in ("flag", "variable"):
            flag = ["--store", url] if how == "flag" else []
            env = {} if how == "flag" else {"VOXLOOP_STORE": url}
            done = command(*flag, *args, env=env)
            assert done.returncode == 2, (args, how, done.stderr)
            assert len(done.stderr.splitlines()) == 1, done.stderr
            said.append(done.stdout + done.stderr)
    process = run_cli(tmp_path, "--store", url, *args)
    assert process.returncode == 2, process.stderr
    assert len(process.stderr.splitlines()) == 1, process.stderr
    said.append(process.stdout + process.stderr)
    everything = "\n".join(said)
    assert "***" in everything  # the URL is shown, its secrets masked
    for shape in (PASSWORD, PASSWORD[:5], PASSWORD[5:], quote(PASSWORD)):
        assert shape not in everything, everything


def test_the_one_redaction_masks_every_form() -> None:
    for url in STORE_URLS:
        shown = redacted_store(url)
        assert PASSWORD[:5] not in shown and PASSWORD[5:] not in shown, shown
        with pytest.raises(ConfigError) as refused:
            Settings(store=url if not url.startswith("postgres") else "x" + url)
        assert PASSWORD[:5] not in str(refused.value), refused.value
    kept = "postgresql://voxloop@db.internal:5432/voxloop?sslmode=require&application_name=gw"
    assert redacted_store(kept) == kept
    assert redacted_store("postgresql://voxloop:pw@db:5432/v?password=pw") == (
        "postgresql://voxloop:***@db:5432/v?password=***"
    )
