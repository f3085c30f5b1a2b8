"""``VOXLOOP_*`` variables that nothing reads: a warning naming the closest known one.

The rules of each setting and the start-up checks are in test_lifecycle.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from voxloop_gateway.settings import RULES, env_name, known_variable, unknown_variables

from .conftest import Spawn, clean_environ, free_port, make_project, wait_ready

ROOT = Path(__file__).resolve().parents[2]
IGNORED = "is not a voxloop variable, so it is ignored"

MISSPELT = {
    "VOXLOOP_PROT": "VOXLOOP_PORT",
    "VOXLOOP_HSOT": "VOXLOOP_HOST",
    "VOXLOOP_DATADIR": "VOXLOOP_DATA_DIR",
    "VOXLOOP_MAXBODY": "VOXLOOP_MAX_BODY",
    "VOXLOOP_DRAIN": "VOXLOOP_DRAIN_SECONDS",
    "voxloop_port": "VOXLOOP_PORT",  # names are case-sensitive: this one is never read
    "VOXLOOP_TEST_GP": "VOXLOOP_TEST_PG",
}


@pytest.mark.parametrize(("name", "meant"), MISSPELT.items(), ids=MISSPELT)
def test_a_misspelt_variable_names_the_closest_known_one(name: str, meant: str) -> None:
    assert unknown_variables({name: "9000"}) == [f"{name} {IGNORED}; did you mean {meant}?"]


def test_a_variable_like_no_known_one_is_said_to_be_unknown() -> None:
    assert unknown_variables({"VOXLOOP_WHATEVER": "1", "PATH": "/bin"}) == [
        f"VOXLOOP_WHATEVER {IGNORED} (`voxloop-gateway serve --help` lists the settings)"
    ]


def test_the_settings_and_what_other_parts_read_never_warn() -> None:
    environ = {env_name(name): "x" for name in RULES}
    environ |= dict.fromkeys(
        ["VOXLOOP_TEST_PG", "VOXLOOP_NO_EXTENSIONS", "VOXLOOP_BENCH_PG", "VOXLOOP_BENCH_PEERS"],
        "x",
    )
    environ |= dict.fromkeys(["VOXLOOP_ENDPOINT", "VOXLOOP_KEY", "VOXLOOP_LOAD_SUMMARY"], "x")
    assert unknown_variables(environ) == []


def _code_files() -> list[Path]:
    """The project's code and build files: what reads variables (the docs only mention them)."""
    skip = {".venv", ".git", "build", "data", "node_modules"}
    found = []
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if parts & skip or any(p.endswith(".egg-info") for p in parts) or not path.is_file():
            continue
        if path.suffix in {".py", ".pyx", ".js", ".toml", ".cfg", ".ini", ".sh", ".conf"} or (
            path.name in {"Makefile", "Dockerfile"} or path.suffix == ".service"
        ):
            found.append(path)
    return found


def test_every_variable_the_project_reads_is_known() -> None:
    here = Path(__file__).resolve()
    files = [path for path in _code_files() if path != here]
    assert len(files) > 50
    used: dict[str, str] = {}
    for path in files:
        for name in re.findall(r"\bVOXLOOP_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(errors="ignore")):
            used.setdefault(name, str(path.relative_to(ROOT)))
    assert "VOXLOOP_TEST_PG" in used and "VOXLOOP_NO_EXTENSIONS" in used
    unknown = {name: where for name, where in used.items() if not known_variable(name)}
    assert not unknown, f"add these to settings.OTHER_VARIABLES or a setting: {unknown}"


def test_a_command_warns_on_stderr_and_goes_on(tmp_path: Path, spawn: Spawn) -> None:
    make_project(tmp_path)
    env = {"VOXLOOP_DATADIR": "elsewhere", "VOXLOOP_TEST_PG": "postgresql://x@h/db"}
    process = spawn(
        tmp_path, "keys", "list", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert err.splitlines() == [
        f"voxloop-gateway: warning: VOXLOOP_DATADIR {IGNORED}; did you mean VOXLOOP_DATA_DIR?"
    ]
    assert len(out.splitlines()) == 2  # shop's two keys


def test_serve_warns_at_start_up(tmp_path: Path, spawn: Spawn) -> None:
    make_project(tmp_path)
    port = free_port()
    log = tmp_path / "gateway.log"
    with log.open("w") as stderr:
        env = {"VOXLOOP_PROT": "9000", "VOXLOOP_DRAIN_SECONDS": "0"}
        process = spawn(tmp_path, "serve", "--port", str(port), env=env, stderr=stderr)
        wait_ready(f"http://127.0.0.1:{port}", process)
        process.terminate()
        assert process.wait(timeout=15) == 0
    lines = log.read_text().splitlines()
    assert lines[0] == (
        f"voxloop-gateway: warning: VOXLOOP_PROT {IGNORED}; did you mean VOXLOOP_PORT?"
    )
    assert sum("warning" in line for line in lines) == 1


def test_the_asgi_app_warns_as_it_is_imported(tmp_path: Path) -> None:
    """``uvicorn voxloop_gateway.asgi:app`` reads the same variables, and says the same."""
    env = {**clean_environ(), "VOXLOOP_DATA_DIR": str(tmp_path), "VOXLOOP_PROT": "9000"}
    done = subprocess.run(
        [sys.executable, "-c", "import voxloop_gateway.asgi"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert f"VOXLOOP_PROT {IGNORED}; did you mean VOXLOOP_PORT?" in done.stderr
