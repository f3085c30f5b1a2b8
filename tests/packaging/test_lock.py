"""requirements/lock.txt pins everything, and the distributions' versions come from one place."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.packaging.conftest import LOCK, ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)( ; .+)?$")
OURS = {"voxloop", "voxloop-server"}


def pins() -> dict[str, str]:
    """The lock's pins, by canonical name."""
    found: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            match = PIN.match(line)
            assert match, f"not a pin: {line!r}"
            found[canonicalize_name(match[1])] = match[2]
    return found


def test_the_lock_pins_the_build_tools_and_not_our_own_distributions() -> None:
    locked = pins()
    assert {"pip", "setuptools", "cython", "wheel", "uv"} <= locked.keys()
    assert not OURS & locked.keys()


def test_the_test_environment_is_installed_from_the_lock() -> None:
    locked = pins()
    unpinned = {}
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name not in OURS and locked.get(name) != dist.version:
            unpinned[name] = dist.version
    assert unpinned == {}, "installed at versions the lock doesn't pin: run `make`"


def test_each_distribution_takes_its_version_from_its_package() -> None:
    server = tomllib.loads((ROOT / "pyproject.toml").read_text())
    sdk = tomllib.loads((ROOT / "sdk" / "pyproject.toml").read_text())
    for project, attr in (
        (server, "voxloop_core.__version__"),
        (sdk, "voxloop._version.__version__"),
    ):
        assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
        assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": attr}


def test_the_server_requires_the_sdk_of_this_tree() -> None:
    import voxloop

    server = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (wanted,) = [
        Requirement(r) for r in server["project"]["dependencies"] if r.startswith("voxloop")
    ]
    assert Version(voxloop.__version__) in wanted.specifier
