"""Fixtures of the packaging tests: both wheels, built from a copy of the source tree.

The wheels are built as a release would be: from the files git tracks or would track (nothing
ignored, no stale ``build/`` folder) and the files the build makes copies of (uPlot's, from
``node_modules/``: :data:`VENDORED`), with the build tools the lock pins that the test's own
environment carries (``--no-build-isolation``), and the pip cache reused.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "lock.txt"
#: import name -> source folder, for each wheel
SERVER_PACKAGES = {
    "voxloop_core": "core",
    "voxloop_gateway": "gateway",
    "voxloop_widgets": "widgets",
}
SDK_PACKAGES = {"voxloop": "sdk/voxloop"}
#: what a build reads besides the package folders
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "sdk/pyproject.toml")
#: files of a package folder that no wheel carries on purpose: the folder's notes for developers
NOT_SHIPPED = ("README.md",)
#: what `make` copies from the npm registry's packages (node_modules/) into the server's
#: folders: ignored by git, shipped in the wheel (setup.py refuses to build without them)
VENDORED = {
    "gateway/static/vendor/uPlot.iife.min.js": "node_modules/uplot/dist/uPlot.iife.min.js",
    "gateway/static/vendor/uPlot.min.css": "node_modules/uplot/dist/uPlot.min.css",
}


def copy_tree(source: Path, *, vendored: bool = True) -> None:
    """The files a release builds from, copied into ``source``; ``vendored``: with uPlot's."""
    folders = [*SERVER_PACKAGES.values(), *SDK_PACKAGES.values()]
    names = source_files(*BUILD_INPUTS, *folders)
    if vendored:
        missing = [name for name in VENDORED if not (ROOT / name).is_file()]
        assert not missing, f"{missing} missing: `make` copies them from node_modules/"
        names += list(VENDORED)
    for name in names:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)


def source_files(*paths: str) -> list[str]:
    """The files under ``paths`` that git tracks or would track (ignored ones left out)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *paths],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted({name for name in listed.split("\0") if name and (ROOT / name).is_file()})


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would make a child use the source tree or change
    the build: no ``PYTHON*``, no ``VIRTUAL_ENV``, no ``VOXLOOP_*`` (``VOXLOOP_NO_EXTENSIONS``)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTHON", "VOXLOOP_")) and name != "VIRTUAL_ENV"
    }
    return {**env, **extra}


@dataclass(frozen=True)
class Wheels:
    """The two wheels of one build."""

    sdk: Path
    server: Path


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    """``voxloop`` and ``voxloop-server`` wheels, built from a copy of the source tree."""
    work = tmp_path_factory.mktemp("wheels")
    source, out = work / "source", work / "dist"
    copy_tree(source)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*command, "--wheel-dir", str(out), "./sdk", "."],
        cwd=source,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"the wheels failed to build:\n{done.stdout}\n{done.stderr}"
    (sdk,) = out.glob("voxloop-*.whl")
    (server,) = out.glob("voxloop_server-*.whl")
    return Wheels(sdk=sdk, server=server)


def run(command: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a clean environment, failing the test with its output when it fails."""
    done = subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done


def free_port() -> int:
    """A TCP port free on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def venv(wheels: Wheels, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare virtual environment with both wheels installed (not editable), their runtime
    dependencies constrained by the lock."""
    home = tmp_path_factory.mktemp("install")
    path = home / "venv"
    run([sys.executable, "-m", "venv", str(path)], cwd=home)
    pip = [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    run([*pip, "--constraint", str(LOCK), str(wheels.sdk), str(wheels.server)], home, 300)
    return path


@contextmanager
def serving(venv: Path, data: Path, port: int) -> Iterator[str]:
    """``voxloop-gateway serve`` from ``venv`` on ``data`` until the block ends; yields its URL.

    It must come up ready within 30 s, and stop on SIGTERM with status 0.
    """
    log_path = data.parent / f"serve-{port}.log"
    command = [str(venv / "bin" / "voxloop-gateway"), "--data-dir", str(data), "serve"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=data.parent,
            env=clean_env(VOXLOOP_DRAIN_SECONDS="0"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while not _ready(base):
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
            yield base
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0, log_path.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=2) as answer:
            status: int = answer.status
            return status == 200
    except OSError:
        return False
