"""Histogram arithmetic and the headline scores of CONTRACT.md, shared by both implementations.

Every aggregate is a histogram of counts per score value, so aggregates merge by adding counts in
any order, and every headline score and its margin of error is derived from one histogram. This is
the read path: it runs once per stats query, not per event, so one readable implementation serves
the compiled and the pure core alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import msgspec

from ._models import DAY_MS, HOUR_MS, METRIC_RANGES, BucketKey, Histograms

Interval = Literal["hour", "day", "week", "month"]
INTERVALS: Final[tuple[Interval, ...]] = ("hour", "day", "week", "month")
#: z for a two-sided 95% confidence interval (normal approximation).
Z95: Final = 1.959963984540054
_EPOCH_MONDAY_MS: Final = 4 * DAY_MS  # 1970-01-05 was the first Monday after the epoch


class Score(msgspec.Struct, frozen=True):
    """A headline score derived from a histogram.

    Attributes:
        metric: the metric the histogram counts.
        count: how many responses it holds.
        value: the headline score (NPS -100..100; CSAT, Likert and thumbs in %; CES mean 1..7),
            ``None`` when there are no responses.
        margin: the 95% margin of error of ``value`` (same unit), ``None`` below two responses.
        high_share: CES only: % of scores 5..7.
    """

    metric: str
    count: int
    value: float | None
    margin: float | None
    high_share: float | None = None


def histogram_size(metric: str) -> int:
    """How many score values ``metric`` has, i.e. the length of its histograms."""
    low, high = METRIC_RANGES[metric]
    return high - low + 1


def empty_histogram(metric: str) -> list[int]:
    """A histogram of ``metric`` with no responses."""
    return [0] * histogram_size(metric)


def merge(*parts: Mapping[BucketKey, list[int]]) -> Histograms:
    """Add histograms key by key. Order and grouping don't matter: this is plain addition."""
    total: Histograms = {}
    for part in parts:
        for key, counts in part.items():
            into = total.get(key)
            if into is None:
                total[key] = list(counts)
            else:
                for i, n in enumerate(counts):
                    into[i] += n
    return total


def bucket_start(ts_ms: int, interval: Interval) -> int:
    """Start (epoch ms, UTC) of the hour, day, ISO week (Monday) or month holding ``ts_ms``."""
    if interval == "hour":
        return ts_ms - ts_ms % HOUR_MS
    if interval == "day":
        return ts_ms - ts_ms % DAY_MS
    if interval == "week":
        week_ms = 7 * DAY_MS
        return ts_ms - (ts_ms - _EPOCH_MONDAY_MS) % week_ms
    if interval == "month":
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts_ms)
        first = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return int((first - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1000
    raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, got {interval!r}")


def rollup(hourly: Mapping[BucketKey, list[int]], interval: Interval) -> Histograms:
    """Coarsen hour buckets to ``interval`` buckets by summing them."""
    out: Histograms = {}
    for (channel, form, metric, hour), counts in hourly.items():
        key = (channel, form, metric, bucket_start(hour, interval))
        into = out.setdefault(key, [0] * len(counts))
        for i, n in enumerate(counts):
            into[i] += n
    return out


def score(metric: str, histogram: Iterable[int]) -> Score:
    """The headline score of ``metric`` and its 95% margin of error, from its histogram.

    Each response is given a value and the score is their mean (times 100 for percentages), so
    the margin is ``z * sqrt(variance / n)`` with the responses' sample variance; that is the
    usual normal approximation, and for NPS the usual promoter(+1)/passive(0)/detractor(-1) one.

    Raises:
        KeyError: ``metric`` is not one of the contract's metrics.
        ValueError: the histogram has the wrong length for ``metric``.
    """
    low, high = METRIC_RANGES[metric]
    counts = list(histogram)
    if len(counts) != high - low + 1:
        raise ValueError(f"{metric} histogram must have {high - low + 1} counts, got {len(counts)}")
    values = [_response_value(metric, low + i) for i in range(len(counts))]
    n = sum(counts)
    high_share = None
    if metric == "ces" and n:
        high_share = 100.0 * sum(counts[5 - low :]) / n
    if n == 0:
        return Score(metric, 0, None, None, high_share)
    mean = sum(v * c for v, c in zip(values, counts, strict=True)) / n
    margin = None
    if n > 1:
        squares = sum(c * (v - mean) ** 2 for v, c in zip(values, counts, strict=True))
        margin = Z95 * math.sqrt(squares / (n - 1) / n)
    return Score(metric, n, mean, margin, high_share)


def _response_value(metric: str, score_value: int) -> float:
    """What one response adds to the headline score (whose value is the responses' mean)."""
    if metric == "nps":
        return 100.0 if score_value >= 9 else (-100.0 if score_value <= 6 else 0.0)
    if metric == "csat":
        return 100.0 if score_value >= 4 else 0.0
    if metric == "ces":
        return float(score_value)
    if metric == "likert":
        return score_value * 100.0 / 5
    return 100.0 * score_value  # thumbs
