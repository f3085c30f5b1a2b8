"""Each wheel carries every module and data file of its packages' source folders, and no more.

A subpackage or a data folder added later without its packaging is caught here, before a
regular install meets it as a ``ModuleNotFoundError`` or a 404.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

import pytest

from tests.packaging.conftest import (
    NOT_SHIPPED,
    SDK_PACKAGES,
    SERVER_PACKAGES,
    Wheels,
    source_files,
)


def shipped(packages: dict[str, str]) -> set[str]:
    """The wheel paths that the source folders of ``packages`` call for."""
    expected = set()
    for name, folder in packages.items():
        for path in source_files(folder):
            relative = PurePosixPath(path).relative_to(folder)
            if relative.name not in NOT_SHIPPED:
                expected.add(f"{name}/{relative}")
    return expected


def contents(wheel: Path) -> set[str]:
    """The files of a wheel, without its ``.dist-info`` metadata."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    return {name for name in names if ".dist-info/" not in name}


@pytest.mark.parametrize(
    ("which", "packages"),
    [("server", SERVER_PACKAGES), ("sdk", SDK_PACKAGES)],
    ids=["voxloop-server", "voxloop"],
)
def test_a_wheel_carries_every_file_of_its_source_folders(
    wheels: Wheels, which: str, packages: dict[str, str]
) -> None:
    wheel: Path = getattr(wheels, which)
    expected = shipped(packages)
    found = contents(wheel)
    # Built files: the compiled core, nothing else.
    built = {name for name in found - expected if name.startswith("voxloop_core/_pipeline_c.")}
    assert sorted(expected - found) == [], f"missing from {wheel.name}"
    assert sorted(found - expected - built) == [], f"in {wheel.name} without a source file"


def test_every_subpackage_is_in_the_server_wheel(wheels: Wheels) -> None:
    packages = {
        f"{name}/{PurePosixPath(path).parent.relative_to(folder)}".rstrip("/.")
        for name, folder in SERVER_PACKAGES.items()
        for path in source_files(folder)
        if path.endswith("/__init__.py")
    }
    assert "voxloop_gateway/stores" in packages
    found = contents(wheels.server)
    assert sorted(p for p in packages if f"{p}/__init__.py" not in found) == []


def test_the_server_wheel_carries_the_compiled_core_and_not_its_generated_source(
    wheels: Wheels,
) -> None:
    found = contents(wheels.server)
    assert [n for n in found if n.startswith("voxloop_core/_pipeline_c.") and n.endswith(".so")]
    assert "voxloop_core/_pipeline_c.pyx" in found
    assert "voxloop_core/_pipeline_c.c" not in found
    assert wheels.server.name.endswith(".whl") and "-py3-none-any" not in wheels.server.name


def test_the_wheels_are_named_after_the_packages_versions(wheels: Wheels) -> None:
    import voxloop
    import voxloop_core

    assert wheels.server.name.startswith(f"voxloop_server-{voxloop_core.__version__}-")
    assert wheels.sdk.name == f"voxloop-{voxloop.__version__}-py3-none-any.whl"
