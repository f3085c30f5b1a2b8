"""A regular install works: both wheels into a bare virtual environment, then the gateway runs.

Not editable, from a folder outside the source tree, the runtime dependencies constrained by
``requirements/lock.txt``: as deploy/README.md installs it. Then ``init``, ``serve``, a rating
posted with the printed key, and ``stats`` reading it back.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.conftest import LOCK, ROOT, free_port, run, serving

#: installed by ``python -m venv`` itself, at the interpreter's versions, not the lock's
BOOTSTRAP = {"pip", "setuptools"}
OURS = {"voxloop", "voxloop-server"}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working folder outside the source tree, so nothing is imported from it."""
    assert not tmp_path.resolve().is_relative_to(ROOT)
    return tmp_path


@pytest.fixture
def served(venv: Path, outside: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """``init`` a project, then ``serve`` it: the base URL, the printed keys, the data dir."""
    data = outside / "data"
    init = [str(venv / "bin" / "voxloop-gateway"), "--data-dir", str(data), "init"]
    printed = run([*init, "--project", "shop", "--origin", "https://shop.example"], outside).stdout
    keys = dict(re.findall(r"(site|server) key\s+(\S+)", printed))
    assert keys.keys() == {"site", "server"}, printed
    with serving(venv, data, free_port()) as base:
        yield base, keys, data


def test_the_installed_gateway_serves_a_rating_and_its_stats(
    venv: Path, served: tuple[str, dict[str, str], Path], outside: Path
) -> None:
    base, keys, data = served
    events = {"events": [{"channel": "web", "form": "checkout", "metric": "nps", "score": 9}]}
    request = urllib.request.Request(
        f"{base}/v1/events",
        data=json.dumps(events).encode(),
        headers={"Authorization": f"Bearer {keys['server']}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202
        assert json.load(answer)["accepted"] == 1
    # The data files: the widgets and the rating pages' assets.
    for path in ("/widgets/v1/voxloop.js", "/widgets/v1/voxloop.css", "/static/rating.css"):
        with urllib.request.urlopen(f"{base}{path}", timeout=10) as answer:
            assert answer.status == 200 and answer.read(), path
    gateway = str(venv / "bin" / "voxloop-gateway")
    stats = [gateway, "--data-dir", str(data), "stats", "shop", "--metric", "nps"]
    table = run(stats, cwd=outside).stdout
    rows = [line.split() for line in table.splitlines()[1:] if line.strip()]
    assert rows and all(row[1] == "1" for row in rows), table


def test_the_installed_gateway_runs_the_compiled_core(venv: Path, outside: Path) -> None:
    gateway = str(venv / "bin" / "voxloop-gateway")
    banner = run([gateway, "core"], cwd=outside).stderr
    assert "compiled extension loaded" in banner, banner


def test_the_installed_distributions_versions_are_the_packages(venv: Path, outside: Path) -> None:
    script = """
import importlib.metadata as metadata, json, voxloop, voxloop_core, voxloop_gateway
print(json.dumps({
    "voxloop": [metadata.version("voxloop"), voxloop.__version__],
    "voxloop-server": [
        metadata.version("voxloop-server"), voxloop_core.__version__, voxloop_gateway.__version__
    ],
    "files": [voxloop.__file__, voxloop_core.__file__, voxloop_gateway.__file__],
}))
"""
    found = json.loads(run([str(venv / "bin" / "python"), "-c", script], cwd=outside).stdout)
    assert len(set(found["voxloop"])) == 1, found
    assert len(set(found["voxloop-server"])) == 1, found
    assert all(Path(f).is_relative_to(venv) for f in found["files"]), found
    gateway = str(venv / "bin" / "voxloop-gateway")
    version = run([gateway, "--version"], cwd=outside).stdout.split()
    assert version == ["voxloop-gateway", found["voxloop-server"][0]]


def test_every_installed_dependency_is_pinned_by_the_lock(venv: Path, outside: Path) -> None:
    pins = dict(
        re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", LOCK.read_text(), flags=re.M),
    )
    pins = {normalise(name): version for name, version in pins.items()}
    listed = run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"], outside)
    installed = {normalise(d["name"]): d["version"] for d in json.loads(listed.stdout)}
    assert OURS <= installed.keys()
    unpinned = {
        name: version
        for name, version in installed.items()
        if name not in OURS | BOOTSTRAP and pins.get(name) != version
    }
    assert unpinned == {}, "installed at versions the lock doesn't pin"


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()
