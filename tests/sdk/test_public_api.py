"""The public surface: one sorted ``__all__``, and an SDK that stands alone.

The SDK is its own distribution with no required dependency: it must install into a bare
virtualenv and import there without pulling in anything outside the standard library.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import textwrap
import types
import venv
from pathlib import Path

import voxloop

from .conftest import Gateway, unique_form

SDK = Path(__file__).resolve().parents[2] / "sdk"


def test_all_is_sorted() -> None:
    # isort's order, as in the core's __init__: constants, then the rest by name.
    assert voxloop.__all__ == sorted(voxloop.__all__, key=lambda name: (not name.isupper(), name))
    assert len(set(voxloop.__all__)) == len(voxloop.__all__)


def test_all_is_complete_and_every_name_in_it_exists() -> None:
    public = {
        name
        for name, value in vars(voxloop).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)  # submodules, e.g. voxloop.email
        and name != "annotations"  # what `from __future__ import annotations` leaves
    }
    assert public | {"__version__"} == set(voxloop.__all__)
    for name in voxloop.__all__:
        assert hasattr(voxloop, name), name


def test_one_exception_root() -> None:
    for name in voxloop.__all__:
        value = getattr(voxloop, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, voxloop.VoxloopError), name


def test_one_version_everywhere() -> None:
    from importlib.metadata import version

    from voxloop._transport import USER_AGENT

    assert version("voxloop") == voxloop.__version__
    assert USER_AGENT == f"voxloop-python/{voxloop.__version__}"


def test_the_package_ships_its_type_marker() -> None:
    assert (SDK / "voxloop" / "py.typed").exists()


def test_the_sdk_imports_nothing_of_the_server() -> None:
    for path in (SDK / "voxloop").glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                assert not name.startswith(("voxloop_core", "voxloop_gateway")), (path, name)


#: Run in the bare virtualenv: import, list what got imported, send one event for real.
PROBE = textwrap.dedent(
    """
    import json, sys
    before = set(sys.modules)
    import voxloop
    imported = sorted(set(sys.modules) - before)
    foreign = sorted(
        {name.partition(".")[0] for name in imported} - set(sys.stdlib_module_names) - {"voxloop"}
    )
    url, key, form = sys.argv[1:]
    config = voxloop.Config(sync_mode=True, flush_at_exit=False)
    with voxloop.Client(url, key, config=config) as client:
        client.capture(channel="app", form=form, metric="csat", score=5, comment="ساده")
        stats = client.stats()
    print(json.dumps({"foreign": foreign, "delivered": stats.delivered,
                      "orjson": "orjson" in sys.modules, "file": voxloop.__file__}))
    """
)


def test_the_sdk_installs_alone_and_needs_only_the_standard_library(
    tmp_path: Path, gateway: Gateway
) -> None:
    # Build the wheel from a copy (the build writes next to the sources), then install it with
    # no index into a virtualenv that sees no site-packages: nothing else can come along.
    source = tmp_path / "sdk"
    shutil.copytree(
        SDK, source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__")
    )
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    run([*build, "--wheel-dir", str(wheels), str(source)])
    (wheel,) = wheels.glob("voxloop-*.whl")

    env_dir = tmp_path / "bare"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    bare = env_dir / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(bare), "install", "--no-index"]
    run([*install, "--no-deps", str(wheel)])

    form = unique_form()
    out = run([str(bare), "-I", "-c", PROBE, gateway.url, gateway.server_key, form])
    probe = json.loads(out)
    assert probe["foreign"] == []
    assert probe["orjson"] is False  # the json module's path, end to end
    assert probe["delivered"] == 1
    assert str(env_dir) in probe["file"]
    assert gateway.stats(metric="csat", form=form)["total"]["count"] == 1


def run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
