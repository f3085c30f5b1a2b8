"""Build the server distribution: voxloop_core (accelerated when it can be) and voxloop_gateway.

The packages live in folders named differently (core/ is voxloop_core), which setuptools'
automatic discovery can't map; so they are found here, every subpackage (a folder with an
``__init__.py``) included, and a new one needs no edit.

The core's ``.pyx`` files are compiled with Cython. Where Cython or a C compiler is missing, or
``VOXLOOP_NO_EXTENSIONS=1`` is set, a pure build is made instead and the pure-Python reference
serves; the build says which it made.

The dashboard's charts are uPlot's built files, which come from the npm registry (pinned in
``package-lock.json``) and which ``make`` copies into ``gateway/static/vendor/``. They are not in
git, so a wheel built without them would serve a dashboard without charts: the build refuses,
saying how to get them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

#: import name -> folder, for every top-level package of the distribution
PACKAGE_DIRS = {"voxloop_core": "core", "voxloop_gateway": "gateway", "voxloop_widgets": "widgets"}
#: the files of the npm registry's uPlot that the dashboard serves, copied there by make
VENDORED = ("gateway/static/vendor/uPlot.iife.min.js", "gateway/static/vendor/uPlot.min.css")


def _packages() -> list[str]:
    """Every package and subpackage under the folders of ``PACKAGE_DIRS``, by import name."""
    found = []
    for name, folder in PACKAGE_DIRS.items():
        found.append(name)
        found.extend(f"{name}.{sub}" for sub in find_packages(folder))
    return sorted(found)


def _say(message: str) -> None:
    print(f"*** voxloop: {message}", file=sys.stderr)


class _OptionalBuildExt(build_ext):
    """Fall back to a pure build when compiling fails, instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure means "pure build"
            _say(f"pure build: the extension failed to build ({exc})")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            _say(f"pure build: {ext.name} failed to compile ({exc})")
        else:
            _say(f"accelerated build: {ext.name} compiled")


class _BuildPyWithAssets(build_py):
    """Refuse to build without the vendored chart files, rather than ship a broken dashboard.

    An editable install reads the source tree, where ``make`` puts them, so it is not checked.
    """

    def run(self) -> None:
        here = Path(__file__).resolve().parent
        missing = [name for name in VENDORED if not (here / name).is_file()]
        if missing and not getattr(self, "editable_mode", False):
            raise SystemExit(
                f"*** voxloop: can't build: {', '.join(missing)} missing. The dashboard's charts"
                " come from the npm registry: run `npm ci` then `make wheels`, which copies"
                " uPlot's built files from node_modules/uplot/dist/ into gateway/static/vendor/."
            )
        super().run()


def _extensions() -> list[Extension]:
    if os.environ.get("VOXLOOP_NO_EXTENSIONS", "") not in ("", "0"):
        _say("pure build: VOXLOOP_NO_EXTENSIONS is set")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        _say("pure build: Cython is not installed")
        return []
    try:
        return cythonize(
            [Extension("voxloop_core._pipeline_c", ["core/_pipeline_c.pyx"])],
            compiler_directives={"language_level": 3},
        )
    except Exception as exc:  # noqa: BLE001 - a Cython error means "pure build", not no install
        _say(f"pure build: Cython could not translate the core ({exc})")
        return []


setup(
    packages=_packages(),
    package_dir=PACKAGE_DIRS,
    ext_modules=_extensions(),
    cmdclass={"build_ext": _OptionalBuildExt, "build_py": _BuildPyWithAssets},
)
