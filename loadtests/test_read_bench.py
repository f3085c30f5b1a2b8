"""The read benchmark's machinery on a small store: it measures what it says, and its checks of
agreement fail when the answers differ.

One bench for the module (2,000 events, 3 timed requests a read): the real gateway served by
``voxloop-gateway serve`` and the naive peer under uvicorn, both on the seeded data. The peers
are found as ``make bench`` finds them (``VOXLOOP_BENCH_PEERS``, else beside the project), so
this check runs with the benchmark, first (``make bench``), not in ``make test``: the peers are
the benchmark's, kept beside the project rather than in it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtests.http_bench import DEFAULT_PEERS
from loadtests.read_bench import (
    DEEP_ROWS,
    METRIC,
    PAGE,
    ReadBench,
    ReadResults,
    print_read,
)
from loadtests.read_http import Disagreement, percentile, timed
from loadtests.read_seed import CHANNELS, RARE_TOPICS, TOPICS
from voxloop_core import METRIC_RANGES

EVENTS = 2_000
REQUESTS = 3
PEERS = Path(os.environ.get("VOXLOOP_BENCH_PEERS", DEFAULT_PEERS)).resolve()


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadBench]:
    assert (PEERS / "naive_fastapi.py").is_file(), f"no naive peer at {PEERS}"
    with ReadBench(tmp_path_factory.mktemp("read"), PEERS, EVENTS, REQUESTS) as running:
        yield running


@pytest.fixture(scope="module")
def results(bench: ReadBench) -> ReadResults:
    return bench.run()


def naive_rows(bench: ReadBench, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(bench.naive_db)) as naive:
        return naive.execute(sql, params).fetchall()


def gateway_rows(bench: ReadBench, channel: str, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(
        sqlite3.connect(bench.data_dir / "stores" / f"{channel}.sqlite3")
    ) as db:
        return db.execute(sql).fetchall()


def test_seeding_stores_the_same_realistic_events_in_both_apps(bench: ReadBench) -> None:
    seeded = bench.seeded
    assert seeded.events == EVENTS
    assert sum(map(sum, seeded.histograms.values())) == EVENTS
    assert naive_rows(bench, "SELECT count(*) FROM events") == [(EVENTS,)]
    stored = [gateway_rows(bench, c, "SELECT count(*) FROM events")[0][0] for c in CHANNELS]
    assert sum(stored) == EVENTS and all(stored), stored
    # a year, oldest first in the naive peer's rowid order as in time
    assert 360 <= (seeded.newest_ms - seeded.oldest_ms) / 86_400_000 <= 365
    times = [row[0] for row in naive_rows(bench, "SELECT ts FROM events ORDER BY rowid")]
    assert times == sorted(times) and len(set(times)) == EVENTS
    # the metrics, scripts, tags, meta and respondents of realistic_batch
    metrics = dict(naive_rows(bench, "SELECT metric, count(*) FROM events GROUP BY metric"))
    assert set(metrics) == set(METRIC_RANGES)
    for script in ("شكراً", "خیلی ممنون", "配送", "Terima kasih"):
        assert naive_rows(bench, "SELECT count(*) FROM events WHERE comment LIKE ?", f"%{script}%")[
            0
        ][0]
    bodies = gateway_rows(bench, "web", "SELECT body, respondent FROM events")
    assert any('"tags":["mobile"]' in body and '"meta":' in body for body, _ in bodies)
    assert any(respondent is not None for _, respondent in bodies)
    # every search word is where it was counted, in both apps' copies of the comments
    for word, _ in (*TOPICS.values(), *RARE_TOPICS.values()):
        like = naive_rows(bench, "SELECT count(*) FROM events WHERE comment LIKE ?", f"%{word}%")
        assert like == [(seeded.matches[word],)]
        assert seeded.matches[word] > 0


def test_a_run_times_every_read_and_every_answer_agrees(
    results: ReadResults, capsys: pytest.CaptureFixture[str]
) -> None:
    assert results.failures == []
    assert results.checks == [
        "filtered",
        "search en",
        "search ar",
        "search fa",
        "search en, rare",
        "search ar, rare",
        "search fa, rare",
        "deep page",
        "stats",
        "dashboard",
        "export",
    ]
    labels = [timing.label for timing in results.gateway]
    assert len(labels) == 11 and len(results.naive) == 8
    assert any(label.startswith("dashboard page") for label in labels)
    for timing in results.gateway + results.naive:
        assert len(timing.samples_ms) == REQUESTS and not timing.cut_short
        assert 0 < timing.p50 <= timing.p95 == max(timing.samples_ms)
    for (what, ratio, goal), ours, theirs in zip(
        results.ratios, results.gateway[1:9], results.naive, strict=True
    ):
        assert ratio == theirs.p50 / ours.p50, what
        common = what in ("search en", "search ar", "search fa")
        assert goal == (None if common else 10.0 if what == "stats" else 5.0), what
    export = results.export
    assert export is not None and export.rows == EVENTS and export.size > 0
    assert 0 < export.rss_before_kb <= export.rss_peak_kb <= export.hwm_after_kb
    print_read(results)
    printed = capsys.readouterr().out
    # 11 latencies, 5 ratios with a goal (3 common searches have none), the export
    assert printed.count("PASS") + printed.count("FAIL") == 11 + 5 + 1
    assert printed.count("no goal") == 3
    assert f"{EVENTS:,} rows" in printed and "FAILED" not in printed


def test_the_deep_page_is_the_one_after_the_first_rows(bench: ReadBench) -> None:
    depth = bench.deep_page()
    # the whole walks of 500 rows that leave a full page after them
    assert (depth - 1) * PAGE == bench.deep_rows() == 1_500 < min(DEEP_ROWS, EVENTS - PAGE)
    ours, theirs = bench.deep()
    assert ours.label == f"page {depth} (cursor)"
    assert f"OFFSET {(depth - 1) * PAGE:,}" in theirs.label


def test_timed_sends_warmups_then_times_each_request_and_refuses_an_error(
    bench: ReadBench,
) -> None:
    assert bench.gateway is not None
    sent: list[httpx.Request] = []
    hooks = {"request": [sent.append]}
    with httpx.Client(base_url=bench.gateway.url, event_hooks=hooks) as anonymous:
        with pytest.raises(Disagreement, match="answered 401"):
            timed(anonymous, "no key", "/v1/stats", {"metric": METRIC}, 5)
        assert len(sent) == 1  # the first error stops it
    with httpx.Client(base_url=f"http://127.0.0.1:{bench.naive.port}", event_hooks=hooks) as peer:
        timing, answer = timed(peer, "scan", "/v1/stats", {"metric": METRIC}, 4, warmups=2)
    assert len(sent) == 1 + 6 and len(timing.samples_ms) == 4
    assert answer.json()["responses"] == sum(bench.seeded.histograms[METRIC])


def test_percentiles_are_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 21)]
    assert percentile(samples, 0.5) == 10 and percentile(samples, 0.95) == 19
    assert percentile([7.0], 0.95) == 7


@contextlib.contextmanager
def without_newest(bench: ReadBench, where: str, *params: object) -> Iterator[None]:
    """The naive peer's table without its newest row matching ``where``, put back after."""
    with contextlib.closing(sqlite3.connect(bench.naive_db)) as naive:
        found = naive.execute(
            f"SELECT rowid, * FROM events WHERE {where} ORDER BY rowid DESC LIMIT 1", params
        )
        columns = [name for name, *_ in found.description]
        row = found.fetchone()
        with naive:
            naive.execute("DELETE FROM events WHERE rowid = ?", (row[0],))
        try:
            yield
        finally:
            marks = ", ".join("?" * len(row))
            with naive:
                naive.execute(f"INSERT INTO events ({', '.join(columns)}) VALUES ({marks})", row)


def test_the_checks_fail_when_the_naive_peer_answers_otherwise(bench: ReadBench) -> None:
    with without_newest(bench, "metric = ?", METRIC):
        with pytest.raises(Disagreement, match=f"{METRIC} stats: the naive peer answered"):
            bench.stats()
        with pytest.raises(Disagreement, match=f"page {bench.deep_page()}: the gateway"):
            bench.deep()
    word = TOPICS["fa"][0]
    with without_newest(bench, "comment LIKE ?", f"%{word}%"):
        with pytest.raises(Disagreement, match=f"search '{word}': the gateway answered"):
            bench.search("fa")
    with without_newest(bench, "channel = 'web' AND metric = ? AND score <= 6", METRIC):
        with pytest.raises(Disagreement, match="filtered page: the gateway answered"):
            bench.filtered()
    # the rows put back, all agree again
    bench.stats()
    bench.deep()
    bench.search("fa")
    bench.filtered()


def test_the_checks_fail_when_the_gateway_differs_from_what_was_stored(bench: ReadBench) -> None:
    seeded = bench.seeded
    seeded.histograms[METRIC][3] += 1
    try:
        with pytest.raises(Disagreement, match=f"{METRIC} stats: the gateway answered"):
            bench.stats()
        with pytest.raises(Disagreement, match="the dashboard's stats: the gateway answered"):
            bench.dashboard()
    finally:
        seeded.histograms[METRIC][3] -= 1
    seeded.events += 1
    try:
        with pytest.raises(Disagreement, match="rows in the CSV export"):
            bench.export()
    finally:
        seeded.events -= 1
    word = TOPICS["en"][0]
    matches, seeded.matches[word] = seeded.matches[word], 0
    try:
        with pytest.raises(Disagreement, match=f"search '{word}', rows"):
            bench.search("en")
    finally:
        seeded.matches[word] = matches
