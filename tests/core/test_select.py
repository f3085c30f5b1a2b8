"""Which core loads: the compiled one, or the reference and a word saying why."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import voxloop_core

ROOT = Path(__file__).resolve().parents[2]
PURE_ASKED = os.environ.get("VOXLOOP_NO_EXTENSIONS", "") not in ("", "0")


def python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )


def test_compiled_core_loaded_unless_pure_was_asked_for() -> None:
    if PURE_ASKED:
        assert voxloop_core.IMPLEMENTATION == "pure"
        assert not os.environ.get("CI"), "CI must test the compiled core"
    else:
        assert voxloop_core.IMPLEMENTATION == "accelerated", voxloop_core.FALLBACK_REASON
        assert voxloop_core.FALLBACK_REASON is None


def test_no_extensions_selects_the_reference() -> None:
    out = python(
        "import voxloop_core as c; print(c.IMPLEMENTATION, '|', c.FALLBACK_REASON)",
        VOXLOOP_NO_EXTENSIONS="1",
    )
    assert out.stdout.strip() == "pure | VOXLOOP_NO_EXTENSIONS is set"


def test_a_broken_extension_falls_back_to_the_reference() -> None:
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'voxloop_core._pipeline_c':\n"
        "            raise ImportError('simulated: undefined symbol')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import voxloop_core as c\n"
        "print(c.IMPLEMENTATION, '|', c.FALLBACK_REASON)\n"
    )
    out = python(blocker, VOXLOOP_NO_EXTENSIONS="")
    assert out.stdout.strip() == (
        "pure | the compiled core did not load (simulated: undefined symbol)"
    )


def test_the_gateway_says_which_core_serves() -> None:
    gateway = Path(sys.executable).parent / "voxloop-gateway"
    pure = subprocess.run(
        [gateway, "core"],
        env={**os.environ, "VOXLOOP_NO_EXTENSIONS": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "voxloop core: pure (pure-Python reference: VOXLOOP_NO_EXTENSIONS is set)" in pure.stderr
    if not PURE_ASKED:
        fast = subprocess.run([gateway, "core"], capture_output=True, text=True, check=True)
        assert "voxloop core: accelerated (compiled extension loaded)" in fast.stderr


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"VOXLOOP_NO_EXTENSIONS": "1"}, "pure build: VOXLOOP_NO_EXTENSIONS is set"),
        (
            {"CC": "false", "VOXLOOP_NO_EXTENSIONS": ""},
            "pure build: voxloop_core._pipeline_c failed",
        ),
    ],
    ids=["asked", "no-compiler"],
)
def test_setup_makes_a_pure_build_and_says_so(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    # Build from a copy of the sources alone: artefacts of earlier builds must not leak in.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".*", "build", "dist", "*.egg-info", "*.so", "_pipeline_c.c", "__pycache__"
        ),
    )
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-v",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        env={**os.environ, **env, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    assert says in build.stdout + build.stderr
    (wheel,) = (tmp_path / "dist").glob("voxloop_server-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "voxloop_core/_pipeline_py.py" in names
    assert not [n for n in names if n.endswith(".so")]
