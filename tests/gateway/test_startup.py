"""Starting where the gateway can't listen: one line naming the setting, status 2, nothing changed.

``make run`` twice must not break the first run: the second takes its port before it mints or
revokes a key or touches a file, so the first demo's page and keys go on working.
"""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from .conftest import Spawn, free_port, make_project, wait_ready
from .test_cli import read_until, run_demo, stop


def _files(data_dir: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``data_dir`` with its size and modification time."""
    return {
        str(path.relative_to(data_dir)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(data_dir.rglob("*"))
        if path.is_file()
    }


def _registry(data_dir: Path) -> list[tuple[object, ...]]:
    """The projects, keys and email secrets the registry holds: what a second start must not
    touch while the first gateway's background work writes to the same database."""
    with contextlib.closing(sqlite3.connect(data_dir / "registry.sqlite3", timeout=10)) as db:
        return [
            *db.execute("SELECT id, channels FROM projects ORDER BY id"),
            *db.execute("SELECT id, hash, revoked_ms FROM keys ORDER BY id"),
            *db.execute("SELECT id, revoked_ms FROM email_secrets ORDER BY id"),
        ]


def _fails(spawn: Spawn, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the command to its end; assert status 2 and one line on stderr, return that line."""
    process = spawn(data_dir, *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2, (out, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert out == ""
    line: str = err.splitlines()[0]
    assert line.startswith("voxloop-gateway: "), line
    return line


def _works(url: str, site: str, server: str) -> None:
    """The keys of the demo at ``url`` still post and read."""
    event = {"channel": "web", "form": "checkout", "metric": "nps", "score": 9}
    with httpx.Client(base_url=url, timeout=10) as client:
        posted = client.post(
            "/v1/events", json={"events": [event]}, headers={"Authorization": f"Bearer {site}"}
        )
        assert posted.status_code == 202, posted.text
        read = client.get(
            "/v1/stats", params={"metric": "nps"}, headers={"Authorization": f"Bearer {server}"}
        )
        assert read.status_code == 200, read.text


def test_a_second_demo_on_the_same_port_says_so_and_leaves_the_first_one_working(
    tmp_path: Path, spawn: Spawn
) -> None:
    first, _, told = run_demo(spawn, tmp_path)
    try:
        port = told["url"].rsplit(":", 1)[1]
        before = _registry(tmp_path)
        files = set(_files(tmp_path))
        for args, env in (
            (["demo", "--port", port], None),
            (["demo"], {"VOXLOOP_PORT": port}),
            (["serve", "--port", port], None),
        ):
            line = _fails(spawn, tmp_path, *args, env=env)
            assert line.startswith(f"voxloop-gateway: can't listen on 127.0.0.1:{port}: ")
            assert "the port is in use" in line and "--port or VOXLOOP_PORT" in line
        # No key minted or revoked, no file made (the first gateway's workers write on).
        assert _registry(tmp_path) == before
        assert set(_files(tmp_path)) <= files | {"registry.sqlite3-journal"}
        _works(told["url"], told["site"], told["server"])
        with httpx.Client(timeout=10) as client:  # the page's widgets' script is still served
            assert client.get(f"{told['url']}/demo").status_code == 200
    finally:
        stop(first)


def test_a_port_held_by_another_program_stops_serve_and_demo_before_anything_changes(
    tmp_path: Path, spawn: Spawn
) -> None:
    make_project(tmp_path)
    before = _files(tmp_path)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        for command in ("serve", "demo"):
            line = _fails(spawn, tmp_path, command, "--port", port)
            assert line == (
                f"voxloop-gateway: can't listen on 127.0.0.1:{port}: the port is in use (another"
                " gateway or `make run`?); stop it, or choose another port with --port or"
                " VOXLOOP_PORT"
            )
    assert _files(tmp_path) == before


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_a_host_that_does_not_resolve_names_the_host_setting(
    tmp_path: Path, spawn: Spawn, how: str
) -> None:
    make_project(tmp_path)
    before = _files(tmp_path)
    port = str(free_port())
    host = "no-such-host.invalid"
    for command in ("serve", "demo"):
        if how == "flag":
            line = _fails(spawn, tmp_path, command, "--host", host, "--port", port)
        else:
            line = _fails(spawn, tmp_path, command, "--port", port, env={"VOXLOOP_HOST": host})
        assert line.startswith(
            f"voxloop-gateway: can't listen on {host}:{port}: host '{host}' doesn't resolve"
        ), line
        assert line.endswith(
            "set --host or VOXLOOP_HOST to an address of this machine (default 127.0.0.1)"
        ), line
    assert _files(tmp_path) == before


def test_a_host_of_another_machine_names_the_host_setting(tmp_path: Path, spawn: Spawn) -> None:
    make_project(tmp_path)
    line = _fails(spawn, tmp_path, "serve", "--host", "192.0.2.1", "--port", str(free_port()))
    assert "'192.0.2.1' is not an address of this machine; set --host or VOXLOOP_HOST" in line


def test_port_0_serves_on_a_free_port_and_the_demo_prints_that_one(
    tmp_path: Path, spawn: Spawn
) -> None:
    env = {"VOXLOOP_DRAIN_SECONDS": "0"}
    process = spawn(tmp_path, "demo", "--port", "0", env=env, stdout=subprocess.PIPE)
    text = "\n".join(read_until(process, "more:"))
    assert "http://127.0.0.1:0/" not in text
    url = text.split("the demo page, with every widget and a sample email: ")[1].split("/demo")[0]
    assert int(url.rsplit(":", 1)[1]) > 0
    wait_ready(url, process)
    stop(process)


# --- a data dir the gateway can't open: one line and status 2, before serving ----------------


def _break(data_dir: Path, how: str) -> None:
    junk = bytes(range(256)) * 16  # not a SQLite file
    if how == "registry":
        (data_dir / "registry.sqlite3").write_bytes(junk)
    elif how == "store":
        (data_dir / "stores").mkdir()
        (data_dir / "stores" / "web.sqlite3").write_bytes(junk)
    else:  # where the stores go is a file
        (data_dir / "stores").write_bytes(junk)


@pytest.mark.parametrize("how", ["registry", "store", "stores-folder"])
def test_a_data_dir_that_cannot_be_opened_stops_serve_and_demo_in_one_line(
    tmp_path: Path, spawn: Spawn, how: str
) -> None:
    make_project(tmp_path)
    _break(tmp_path, how)
    before = _files(tmp_path)
    for command in ("serve", "demo"):
        line = _fails(spawn, tmp_path, command, "--port", str(free_port()))
        expected = {
            "registry": f"can't open the registry {tmp_path}/registry.sqlite3: file is not a",
            "store": f"can't open the store {tmp_path}/stores/web.sqlite3: file is not a",
            "stores-folder": "File exists",
        }[how]
        assert expected in line, line
    assert _files(tmp_path) == before  # no key minted, no file made
