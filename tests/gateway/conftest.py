"""A real gateway on a loopback port, over real SQLite files, for the HTTP tests.

``gateway`` runs one in a thread of the test process; ``spawn`` runs ``voxloop-gateway`` as a
process of its own, for what needs one: signals, exit statuses, what it prints. ``reading`` and
``sqlite_reading`` are readers.py's gateways full of responses, seeded once for every module
that only reads them.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn

from voxloop_gateway import Settings, create_app
from voxloop_gateway.cli import main
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.settings import RULES, env_name

if TYPE_CHECKING:
    from .readers import Reading

ORIGIN = "https://shop.example.com"


@dataclass
class Gateway:
    """A running gateway and the keys of its one project, ``shop``."""

    url: str
    data_dir: Path
    site_key: str
    server_key: str
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, key: str | None = None, **headers: str) -> httpx.Client:
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers={**auth, **headers}, timeout=30)

    def post(self, events: list[dict[str, Any]], key: str | None = None) -> httpx.Response:
        with self.client(key or self.server_key) as client:
            return client.post("/v1/events", json={"events": events})

    def stats(self, **params: Any) -> dict[str, Any]:
        with self.client(self.server_key) as client:
            answer = client.get("/v1/stats", params=params)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "the gateway did not stop"


def make_project(data_dir: Path) -> tuple[str, str]:
    registry = Registry(data_dir)
    try:
        registry.create_project("shop", ["kiosk"])
        site, _ = registry.create_key("shop", "site", ["web", "app"], [ORIGIN])
        server, _ = registry.create_key("shop", "server")
    finally:
        registry.close()
    return site, server


def start_gateway(
    data_dir: Path, site: str, server_key: str, *, port: int = 0, **settings: Any
) -> Gateway:
    """A gateway in a thread of this process on ``port`` (0: any free one)."""
    app = create_app(Settings(data_dir=data_dir, **settings))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the gateway failed to start"
        assert time.monotonic() < deadline, "the gateway took too long to start"
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return Gateway(f"http://127.0.0.1:{bound}", data_dir, site, server_key, server, thread)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    """A gateway serving project ``shop`` (site key: web and app from ORIGIN)."""
    site, server = make_project(tmp_path)
    running = start_gateway(tmp_path, site, server)
    yield running
    running.stop()


def free_port() -> int:
    """A TCP port nothing listens on now, on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_environ(**settings: str) -> dict[str, str]:
    """This process's environment without any ``VOXLOOP_<SETTING>``, plus ``settings``."""
    ours = {env_name(name) for name in RULES}
    return {**{k: v for k, v in os.environ.items() if k not in ours}, **settings}


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``voxloop-gateway ARGS...`` as a process of its own in ``cwd``, without our settings: for
    the few tests of what only a whole process shows (its exit status, its one line)."""
    return subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=clean_environ(),
    )


Spawn = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start ``voxloop-gateway --data-dir D ARGS...`` as its own process; killed if left running.

    Call it as ``spawn(data_dir, *args, env={...}, stdout=..., stderr=...)``; ``env`` adds
    ``VOXLOOP_*`` variables to a clean environment. Output goes to DEVNULL unless redirected.
    """
    started: list[subprocess.Popen[str]] = []

    def start(
        data_dir: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdout: Any = subprocess.DEVNULL,
        stderr: Any = subprocess.DEVNULL,
    ) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "voxloop_gateway.cli", "--data-dir", str(data_dir), *args],
            env=clean_environ(**(env or {})),
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


Command = Callable[..., "subprocess.CompletedProcess[str]"]
BinaryCommand = Callable[..., "subprocess.CompletedProcess[bytes]"]


@pytest.fixture
def command(
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> Command:
    """``voxloop-gateway ARGS...`` through the command line's ``main()``, in this process.

    Call it as ``command(*args, env={...})``: a process of its own costs a second of imports,
    this costs none. Made to show what the process would: no ``VOXLOOP_<SETTING>`` but those of
    ``env``; stdout and stderr caught at the file descriptors, whoever writes to them; and the
    log records of WARNING and above added to stderr, as logging's last resort prints them in
    a process that sets no handler. What needs a process (its exit, signals, file locks held
    by another one, a terminal) runs one: ``spawn``, or ``subprocess``.
    """
    return functools.partial(_in_process, capfd, caplog, monkeypatch)


@pytest.fixture
def command_bytes(
    capfdbinary: pytest.CaptureFixture[bytes],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> BinaryCommand:
    """``command``, for a command whose output is bytes to compare exactly (an export)."""
    return functools.partial(_in_process, capfdbinary, caplog, monkeypatch)


def _in_process(
    capture: pytest.CaptureFixture[Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[Any]:
    with monkeypatch.context() as patched:
        for name in RULES:
            patched.delenv(env_name(name), raising=False)
        for name, value in (env or {}).items():
            patched.setenv(name, value)
        with caplog.at_level(logging.WARNING):
            capture.readouterr()  # what came before is not this command's
            caplog.clear()
            status = main(list(args))
            out, err = capture.readouterr()
            logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    said = "".join(f"{message}\n" for message in logged)
    err += said.encode() if isinstance(err, bytes) else said
    return subprocess.CompletedProcess(list(args), status, out, err)


def wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 30) -> None:
    """Wait until the gateway at ``url`` answers /readyz with 200; fail if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the gateway exited with status {process.returncode}"
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the gateway at {url} did not become ready in {timeout} s")


# The seeded gateways of readers.py, shared by the modules that only read them. readers.py
# imports this module: it is imported where the fixtures run, not at the top.


@pytest.fixture(scope="session")
def sqlite_reading(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reading]:
    """The seeded gateway on SQLite files, for the whole run.

    Seeding takes seconds (the email clicks wait out an edit window), and the tests of
    responses, exports and the read schema only read: they share one gateway of each kind.
    """
    from .readers import seed

    running = seed(tmp_path_factory.mktemp("reading-sqlite"), "sqlite")
    yield running
    running.gateway.stop()


@pytest.fixture(scope="session")
def postgresql_reading(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reading]:
    """The seeded gateway on a fresh PostgreSQL database, for the whole run."""
    from .readers import database, seed

    with database("postgresql") as store:
        running = seed(tmp_path_factory.mktemp("reading-postgresql"), store)
        yield running
        running.gateway.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def reading(request: pytest.FixtureRequest) -> Reading:
    """The seeded gateway, once on SQLite files and once on PostgreSQL."""
    found: Reading = request.getfixturevalue(f"{request.param}_reading")
    return found
