"""docs/CONTRACT.md is the project's own contract: it exists in a clone and agrees with the code.

The tables a client author reads (metrics and their ranges, limits, endpoints, the interval's z)
are checked against the constants the code runs on, so neither can move alone.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import Mount, Route

import voxloop_core
from voxloop_core import MAX_COMMENT_CHARS, MAX_EVENTS_PER_REQUEST, MAX_NESTING, METRIC_RANGES
from voxloop_gateway import Settings, create_app

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "docs" / "CONTRACT.md"


def _contract() -> str:
    return CONTRACT.read_text(encoding="utf-8")


def test_every_local_link_of_the_docs_resolves() -> None:
    """The README once cited a CONTRACT.md that a clone doesn't hold."""
    documents = [ROOT / "README.md", CONTRACT, *ROOT.glob("*/README.md")]
    for document in documents:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text("utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (document.parent / target).exists(), f"{document.name} links to {target}"
    assert "(docs/CONTRACT.md)" in (ROOT / "README.md").read_text("utf-8")


def test_metric_table_matches_the_core() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (\d+)–(\d+) \|", _contract(), flags=re.MULTILINE)
    assert {metric: (int(low), int(high)) for metric, low, high in rows} == METRIC_RANGES


def test_limits_match_the_core_and_the_settings() -> None:
    text = " ".join(_contract().split())
    assert f"≤ {MAX_EVENTS_PER_REQUEST:,} events a request" in text
    assert f"≤ {MAX_COMMENT_CHARS:,} characters" in text
    assert f"at most {MAX_NESTING} levels deep" in text
    assert Settings().max_body == 1 << 20 and "≤ 1 MiB body" in text


def test_interval_z_matches_the_core() -> None:
    from voxloop_core._histograms import Z95

    assert f"z = {Z95!r}" in _contract()
    assert voxloop_core.score("nps", [0] * 11).value is None


def test_every_route_is_in_the_contract() -> None:
    text = _contract()
    app = create_app(Settings(data_dir=ROOT / "build" / "contract-check"))
    paths = set()
    for route in app.routes:
        if isinstance(route, Route):
            paths.add(re.sub(r":\w+}", "}", route.path))  # {respondent:anytext} is {respondent}
        elif isinstance(route, Mount) and route.path.startswith("/widgets"):
            paths.add(f"{route.path}/voxloop.js")
    paths.discard("/static")
    missing = sorted(path for path in paths if f"`{path}`" not in text and path not in text)
    assert not missing, f"routes the contract doesn't name: {missing}"


def test_the_stats_example_is_what_the_gateway_answers() -> None:
    """The example's numbers are the ones the gateway computes from its histograms."""
    from voxloop_gateway.reading.stats import Bucket
    from voxloop_gateway.reading.stats import bucket as _bucket

    text = _contract()
    example = text[text.index('{"metric": "nps",') :]
    example = example[: example.index("```")]
    found = re.findall(
        r'"histogram": \[([\d, ]+)\],\s*"score": ([-\d.]+), "low": ([-\d.]+), '
        r'"high": ([-\d.]+), "margin": ([-\d.]+)',
        example,
    )
    assert len(found) == 2
    for histogram, *numbers in found:
        counts = [int(n) for n in histogram.split(",")]
        bucket: Bucket = _bucket("nps", counts)
        assert [bucket.score, bucket.low, bucket.high, bucket.margin] == [float(n) for n in numbers]
