"""Histogram arithmetic and headline scores against a slow, direct computation."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxloop_core import METRIC_RANGES, bucket_start, merge, rollup, score
from voxloop_core._histograms import nps_interval, t_quantile, wilson_interval


def direct(metric: str, scores: list[int]) -> float:
    """The headline score as CONTRACT.md words it, from the individual scores."""
    n = len(scores)
    if metric == "nps":
        return 100 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / n
    if metric == "csat":
        return 100 * sum(s >= 4 for s in scores) / n
    if metric == "ces":
        return statistics.fmean(scores)
    if metric == "likert":
        return sum(scores) / (n * 5) * 100
    return 100 * sum(scores) / n


def per_response(metric: str, s: int) -> float:
    return {
        "nps": 100.0 if s >= 9 else -100.0 if s <= 6 else 0.0,
        "csat": 100.0 if s >= 4 else 0.0,
        "ces": float(s),
        "likert": s * 20.0,
        "thumbs": 100.0 * s,
    }[metric]


@st.composite
def metric_and_scores(draw: st.DrawFn) -> tuple[str, list[int]]:
    metric = draw(st.sampled_from(sorted(METRIC_RANGES)))
    low, high = METRIC_RANGES[metric]
    return metric, draw(st.lists(st.integers(low, high), max_size=300))


def histogram_of(metric: str, scores: list[int]) -> list[int]:
    low, high = METRIC_RANGES[metric]
    return [scores.count(v) for v in range(low, high + 1)]


@given(metric_and_scores())
def test_scores_equal_a_direct_computation(case: tuple[str, list[int]]) -> None:
    metric, scores = case
    result = score(metric, histogram_of(metric, scores))
    assert result.count == len(scores)
    if not scores:
        assert (result.value, result.low, result.high, result.margin) == (None, None, None, None)
        return
    assert result.value == pytest.approx(direct(metric, scores), abs=1e-9)
    if len(scores) == 1 and metric in ("ces", "likert"):
        assert (result.low, result.high, result.margin) == (None, None, None)
    else:
        assert result.low is not None and result.high is not None
        assert result.margin == pytest.approx((result.high - result.low) / 2)
    if metric in ("ces", "likert") and len(scores) > 1:
        values = [per_response(metric, s) for s in scores]
        half = (
            t_quantile(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
        )
        bottom, top = (
            per_response(metric, METRIC_RANGES[metric][0]),
            per_response(metric, METRIC_RANGES[metric][1]),
        )
        mean = statistics.fmean(values)
        assert result.low == pytest.approx(max(bottom, mean - half), abs=1e-6)
        assert result.high == pytest.approx(min(top, mean + half), abs=1e-6)
    if metric in ("csat", "thumbs"):
        low, high = wilson_interval(sum(per_response(metric, s) > 0 for s in scores), len(scores))
        assert (result.low, result.high) == pytest.approx((100 * low, 100 * high))
    if metric == "nps":
        promoters, detractors = sum(s >= 9 for s in scores), sum(s <= 6 for s in scores)
        low, high = nps_interval(promoters, detractors, len(scores))
        assert (result.low, result.high) == pytest.approx((100 * low, 100 * high))
    if metric == "ces":
        assert result.high_share == pytest.approx(100 * sum(s >= 5 for s in scores) / len(scores))


def test_the_contract_example_histogram() -> None:
    # 745 promoters (9-10) and 129 detractors (0-6) of 1234 responses
    result = score("nps", [12, 3, 5, 8, 10, 31, 60, 150, 210, 380, 365])
    assert result.count == 1234
    assert result.value == pytest.approx(100 * (745 - 129) / 1234)
    # adjusted Wald: n' = 1237, p' = 745.75 / 1237 and 129.75 / 1237, centre 0.497979
    assert result.low == pytest.approx(46.0192, abs=1e-4)
    assert result.high == pytest.approx(53.5766, abs=1e-4)


def test_a_histogram_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="nps histogram must have 11 counts, got 5"):
        score("nps", [1, 2, 3, 4, 5])


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("interval", "moment", "start"),
    [
        ("hour", "2026-11-23T10:59:59.999", "2026-11-23T10:00:00"),
        ("day", "2026-11-23T23:59:59", "2026-11-23T00:00:00"),
        ("week", "2026-11-29T23:00:00", "2026-11-23T00:00:00"),  # Sunday -> Monday
        ("week", "2026-11-23T00:00:00", "2026-11-23T00:00:00"),
        ("month", "2026-02-28T23:00:00", "2026-02-01T00:00:00"),
        ("month", "2024-12-31T23:59:59", "2024-12-01T00:00:00"),
    ],
    ids=["hour", "day", "week-sunday", "week-monday", "month-feb", "month-dec"],
)
def test_bucket_starts(interval: str, moment: str, start: str) -> None:
    assert bucket_start(ms(moment), interval) == ms(start)  # type: ignore[arg-type]


def test_an_unknown_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="interval must be one of hour, day, week, month"):
        bucket_start(0, "year")  # type: ignore[arg-type]


def test_coarser_buckets_are_sums_of_hours() -> None:
    h = 3_600_000
    day = ms("2026-11-23T00:00:00")
    hourly = {
        ("web", "f", "thumbs", day): [1, 2],
        ("web", "f", "thumbs", day + 5 * h): [3, 4],
        ("web", "f", "thumbs", day + 24 * h): [5, 6],
    }
    assert rollup(hourly, "day") == {
        ("web", "f", "thumbs", day): [4, 6],
        ("web", "f", "thumbs", day + 24 * h): [5, 6],
    }
    assert rollup(hourly, "week") == {("web", "f", "thumbs", day): [9, 12]}
    assert merge(hourly, hourly)[("web", "f", "thumbs", day)] == [2, 4]
