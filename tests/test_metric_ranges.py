"""Every copy of the metric ranges agrees with the core's, the one the gateway enforces.

The SDK may not import the core, the widget is JavaScript and the load tests speak only the wire
contract, so each keeps its own table; this test reads each one as it ships and compares.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import voxloop
from loadtests import http_bench
from voxloop_core import METRIC_RANGES

ROOT = Path(__file__).resolve().parents[1]


def test_the_sdk_knows_the_cores_ranges() -> None:
    assert voxloop.METRIC_RANGES == METRIC_RANGES


def test_the_widget_knows_the_cores_ranges() -> None:
    script = (ROOT / "widgets" / "v1" / "voxloop.js").read_text(encoding="utf-8")
    table = re.search(r"const METRICS = \{([^}]*)\}", script)
    assert table is not None, "the widget's METRICS table is gone"
    found = {
        metric: (int(low), int(high))
        for metric, low, high in re.findall(r"(\w+): \[(\d+), (\d+)\]", table.group(1))
    }
    assert found == METRIC_RANGES


def test_the_load_tests_know_the_cores_ranges() -> None:
    # Read, not imported: importing a locustfile patches the process for gevent.
    tree = ast.parse((ROOT / "loadtests" / "locustfile.py").read_text(encoding="utf-8"))
    (table,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id == "METRICS"
    ]
    assert ast.literal_eval(table) == METRIC_RANGES
    lua = re.findall(r'\{"(\w+)", (\d+), (\d+)\}', http_bench.WRK_SCRIPT)
    assert lua, "the wrk script's metrics table is gone"
    for metric, low, high in lua:
        assert METRIC_RANGES[metric] == (int(low), int(high)), metric
