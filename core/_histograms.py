"""Histogram arithmetic and the headline scores of CONTRACT.md, shared by both implementations.

Every aggregate is a histogram of counts per score value, so aggregates merge by adding counts in
any order, and every headline score and its confidence interval is derived from one histogram.
This is the read path: it runs once per stats query, not per event, so one readable
implementation serves the compiled and the pure core alike.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import msgspec

from ._models import DAY_MS, HOUR_MS, METRIC_RANGES, BucketKey, Histograms

Interval = Literal["hour", "day", "week", "month"]
INTERVALS: Final[tuple[Interval, ...]] = ("hour", "day", "week", "month")
#: The standard normal quantile 0.975: z of a two-sided 95% interval.
Z95: Final = 1.959963984540054
_EPOCH_MONDAY_MS: Final = 4 * DAY_MS  # 1970-01-05 was the first Monday after the epoch


class Score(msgspec.Struct, frozen=True):
    """A headline score derived from a histogram, and its 95% confidence interval.

    Attributes:
        metric: the metric the histogram counts.
        count: how many responses it holds.
        value: the headline score (NPS -100..100; CSAT, Likert and thumbs in %; CES mean 1..7),
            ``None`` when there are no responses.
        low: the lower bound of the 95% confidence interval of ``value`` (same unit), never below
            the scale; ``None`` when there are no responses, and for CES and Likert below two.
        high: its upper bound, never above the scale; ``None`` when ``low`` is.
        margin: half the interval's width, ``(high - low) / 2``; ``None`` when ``low`` is.
        high_share: CES only: % of scores 5..7.
    """

    metric: str
    count: int
    value: float | None
    low: float | None
    high: float | None
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
    """The headline score of ``metric`` and its 95% confidence interval, from its histogram.

    Each response is given a value and the score is their mean (times 100 for percentages). The
    interval's method suits the metric, and it never leaves the scale of the score:

    - ``nps``: the adjusted Wald interval of Rocks (2016), :func:`nps_interval`;
    - ``csat`` and ``thumbs``, which are proportions: the Wilson score interval,
      :func:`wilson_interval`;
    - ``ces`` and ``likert``, which are means: Student's t interval with ``n - 1`` degrees of
      freedom, :func:`mean_interval`, clipped to the scale.

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
        return Score(metric, 0, None, None, None, None, high_share)
    mean = sum(v * c for v, c in zip(values, counts, strict=True)) / n
    bounds = _interval(metric, values, counts)
    if bounds is None:
        return Score(metric, n, mean, None, None, None, high_share)
    lower, upper = bounds
    return Score(metric, n, mean, lower, upper, (upper - lower) / 2, high_share)


def _interval(metric: str, values: list[float], counts: list[int]) -> tuple[float, float] | None:
    """The 95% interval of the score of ``metric`` (its unit), ``None`` where it is undefined."""
    n = sum(counts)
    if metric == "nps":
        promoters = sum(c for v, c in zip(values, counts, strict=True) if v > 0)
        detractors = sum(c for v, c in zip(values, counts, strict=True) if v < 0)
        lower, upper = nps_interval(promoters, detractors, n)
    elif metric in ("csat", "thumbs"):
        lower, upper = wilson_interval(sum(c for v, c in zip(values, counts, strict=True) if v), n)
    else:
        return mean_interval(values, counts)
    return 100.0 * lower, 100.0 * upper


def nps_interval(promoters: int, detractors: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The adjusted Wald interval of a Net Promoter Score, as a fraction in -1..1.

    Rocks (2016), "Interval estimation for the Net Promoter Score", The American Statistician
    70(4): add 3/4 of a response to the promoters and to the detractors (3 to ``n``, the other
    1.5 to the passives), then take the Wald interval of the difference of the two proportions:
    ``centre ± z * sqrt((p + d - centre²) / n')`` with ``n' = n + 3``, clipped to -1..1. The
    centre is pulled towards 0, so the interval is not centred on the raw score; it holds the raw
    score for every sample of two or more responses, and for a single passive.
    """
    if n < 0 or promoters < 0 or detractors < 0 or promoters + detractors > n:
        raise ValueError(
            f"need 0 <= promoters + detractors <= n, got {promoters}, {detractors}, {n}"
        )
    adjusted = n + 3
    pro = (promoters + 0.75) / adjusted
    det = (detractors + 0.75) / adjusted
    centre = pro - det
    half = z * math.sqrt((pro + det - centre * centre) / adjusted)
    return max(-1.0, centre - half), min(1.0, centre + half)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of the proportion ``successes / n``, within 0..1.

    Wilson (1927); method 3 of Newcombe (1998), "Two-sided confidence intervals for the single
    proportion", Statistics in Medicine 17: the proportions whose score test would not reject the
    sample at level ``z``. It always holds ``successes / n``.
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes}, {n}")
    z2 = z * z
    centre = (successes + z2 / 2) / (n + z2)
    half = z * math.sqrt(successes * (n - successes) / n + z2 / 4) / (n + z2)
    lower = 0.0 if successes == 0 else max(0.0, centre - half)
    upper = 1.0 if successes == n else min(1.0, centre + half)
    return lower, upper


def mean_interval(
    values: Iterable[float], counts: Iterable[int], p: float = 0.975
) -> tuple[float, float] | None:
    """Student's t interval of the mean of ``counts[i]`` responses of ``values[i]`` each.

    ``mean ± t(p, n - 1) * s / sqrt(n)``, with ``s`` the sample standard deviation, clipped to
    the smallest and the largest of ``values`` (give every value of the scale, counted or not);
    ``p = 0.975`` gives the two-sided 95% interval.
    ``None`` below two responses. A sample without variance gives the mean as both bounds.
    """
    pairs = [(float(v), c) for v, c in zip(values, counts, strict=True)]
    n = sum(c for _, c in pairs)
    if n < 2:
        return None
    mean = sum(v * c for v, c in pairs) / n
    squares = sum(c * (v - mean) ** 2 for v, c in pairs)
    half = t_quantile(p, n - 1) * math.sqrt(squares / (n - 1) / n)
    scale = [v for v, _ in pairs]
    return max(min(scale), mean - half), min(max(scale), mean + half)


#: Above this many degrees of freedom :func:`t_quantile` uses its expansion in ``1 / df``: both
#: ways agree there to about 1e-13.
_T_EXPANSION_DF: Final = 400


@functools.lru_cache(maxsize=4096)
def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom.

    Up to 400 degrees of freedom, the root of ``P(|T| > t) = 2 (1 - p)``, where
    ``P(|T| > t) = I(df / (df + t²); df/2, 1/2)`` (the regularized incomplete beta function), by
    Newton's method from the normal quantile, which lies below the root: the two-tailed
    probability is convex and decreasing in ``t``, so each step stays below the root and the steps
    rise to it, down to the precision of a float. Above 400, the Cornish-Fisher expansion of
    Abramowitz & Stegun 26.7.5 around the normal quantile. Either way the relative error is below
    1e-13.
    """
    if not 0 < p < 1 or df < 1:
        raise ValueError(f"need 0 < p < 1 and df >= 1, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    if p == 0.5:
        return 0.0
    if df > _T_EXPANSION_DF:
        return _t_expansion(p, df)
    tail = 2 * (1 - p)
    log_density_scale = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - math.log(df * math.pi) / 2
    t = statistics.NormalDist().inv_cdf(p)
    for _ in range(200):
        density = math.exp(log_density_scale - (df + 1) / 2 * math.log1p(t * t / df))
        step = (_t_two_tailed(t, df) - tail) / (2 * density)
        if step <= t * 1e-16:
            return t
        t += step
    raise ArithmeticError(f"t quantile did not converge for p={p}, df={df}")


def _t_two_tailed(t: float, df: int) -> float:
    """``P(|T| > t)`` for Student's t with ``df`` degrees of freedom, ``t >= 0``."""
    square = t * t
    return _regularized_beta(df / 2, 0.5, df / (df + square), square / (df + square))


def _regularized_beta(a: float, b: float, x: float, y: float) -> float:
    """The regularized incomplete beta function ``I(x; a, b)``, given ``y = 1 - x`` exactly.

    The continued fraction of Numerical Recipes (3rd ed., 6.4), evaluated by the modified Lentz
    method on the side of ``x`` where it converges quickly.
    """
    if x <= 0:
        return 0.0
    if y <= 0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1 - front * _beta_fraction(b, a, y) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c = 1.0
    d = 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1) < 1e-16:
            return fraction
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def _t_expansion(p: float, df: int) -> float:
    """Abramowitz & Stegun 26.7.5: the t quantile as the normal one plus terms in ``1 / df``."""
    x = statistics.NormalDist().inv_cdf(p)
    x2 = x * x
    g1 = x * (x2 + 1) / 4
    g2 = x * ((5 * x2 + 16) * x2 + 3) / 96
    g3 = x * (((3 * x2 + 19) * x2 + 17) * x2 - 15) / 384
    g4 = x * ((((79 * x2 + 776) * x2 + 1482) * x2 - 1920) * x2 - 945) / 92160
    return x + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df


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
