"""A server process settles its collector (``collector.settle``) once the app is built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from voxloop_gateway.collector import THRESHOLDS

from .conftest import clean_environ

# Prints the thresholds, how many objects are frozen, and whether a cycle made afterwards is
# still found and freed by a collection.
_PROBE = """
import gc, sys, weakref
{setup}
class Node: pass
node = Node(); node.self = node; alive = weakref.ref(node); del node
gc.collect()
print(gc.get_threshold(), gc.get_freeze_count() > 0, alive() is None)
"""


def _probe(setup: str, tmp_path: Path) -> str:
    env = {**clean_environ(), "VOXLOOP_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(setup=setup)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_asgi_module_settles_the_collector_and_cycles_are_still_freed(tmp_path: Path) -> None:
    assert _probe("import voxloop_gateway.asgi", tmp_path) == f"{THRESHOLDS} True True"


def test_building_an_app_leaves_the_collector_of_the_importer_as_it_was(tmp_path: Path) -> None:
    setup = "from voxloop_gateway.app import create_app; create_app()"
    assert _probe(setup, tmp_path) == "(700, 10, 10) False True"
