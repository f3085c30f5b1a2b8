"""Each wheel carries every module and data file of its packages' source folders, and no more.

A subpackage or a data folder added later without its packaging is caught here, before a
regular install meets it as a ``ModuleNotFoundError`` or a 404.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from tests.packaging.conftest import (
    NOT_SHIPPED,
    ROOT,
    SDK_PACKAGES,
    SERVER_PACKAGES,
    VENDORED,
    Wheels,
    clean_env,
    copy_tree,
    source_files,
)


def shipped(packages: dict[str, str]) -> set[str]:
    """The wheel paths that the source folders of ``packages`` (and what make copies into
    them) call for."""
    expected = set()
    for name, folder in packages.items():
        for path in [*source_files(folder), *(v for v in VENDORED if v.startswith(f"{folder}/"))]:
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


def test_the_server_wheel_ships_the_charts_from_the_npm_registry(wheels: Wheels) -> None:
    """uPlot's built files, as package-lock.json's version installed them, in the wheel."""
    with zipfile.ZipFile(wheels.server) as archive:
        for vendored, installed in VENDORED.items():
            inside = "voxloop_gateway/" + vendored.removeprefix("gateway/")
            assert archive.read(inside) == (ROOT / installed).read_bytes(), inside


def test_a_build_without_the_charts_fails_saying_how_to_get_them(tmp_path: Path) -> None:
    source = tmp_path / "source"
    copy_tree(source, vendored=False)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "."],
        cwd=source,
        env=clean_env(VOXLOOP_NO_EXTENSIONS="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "gateway/static/vendor/uPlot.iife.min.js" in said and "missing" in said
    assert "run `npm ci` then `make wheels`" in said
    assert not list(source.glob("*.whl"))
