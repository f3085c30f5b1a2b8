"""The confidence intervals of the headline scores, against published worked examples."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxloop_core import METRIC_RANGES, score
from voxloop_core._histograms import (
    Z95,
    mean_interval,
    nps_interval,
    t_quantile,
    wilson_interval,
)


def test_z_is_the_normal_quantile() -> None:
    assert Z95 == pytest.approx(1.959963984540054, abs=1e-15)


@pytest.mark.parametrize(
    ("df", "expected"),
    [
        (1, 12.7062),
        (2, 4.3027),
        (3, 3.1824),
        (5, 2.5706),
        (10, 2.2281),
        (20, 2.0860),
        (30, 2.0423),
        (60, 2.0003),
        (120, 1.9799),
    ],
)
def test_t_quantile_matches_the_printed_tables(df: int, expected: float) -> None:
    """The two-sided 95% column of the usual t table (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2)."""
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-5)


def test_t_quantile_matches_the_closed_forms() -> None:
    """Where the t quantile has a closed form, it agrees to the precision of a float.

    df = 1 is the Cauchy distribution, ``tan(pi (p - 1/2))``; df = 2 is
    ``(2p - 1) sqrt(2 / (4p(1 - p)))``; df = 4 is ``2 sqrt(q - 1)`` with
    ``q = cos(arccos(sqrt(a)) / 3) / sqrt(a)``, ``a = 4p(1 - p)``.
    """
    for p in (0.6, 0.9, 0.975, 0.995, 0.9995):
        a = 4 * p * (1 - p)
        q = math.cos(math.acos(math.sqrt(a)) / 3) / math.sqrt(a)
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-13)
        assert t_quantile(p, 2) == pytest.approx((2 * p - 1) * math.sqrt(2 / a), rel=1e-13)
        assert t_quantile(p, 4) == pytest.approx(2 * math.sqrt(q - 1), rel=1e-13)
        assert t_quantile(1 - p, 4) == -t_quantile(p, 4)


def test_t_quantile_falls_to_the_normal_one() -> None:
    """Both of its methods agree where they meet, and it decreases towards z as df grows."""
    from voxloop_core._histograms import _T_EXPANSION_DF, _t_expansion

    edge = _T_EXPANSION_DF
    assert _t_expansion(0.975, edge) == pytest.approx(t_quantile(0.975, edge), rel=1e-13)
    quantiles = [t_quantile(0.975, df) for df in (1, 2, 10, 100, edge, edge + 1, 10**4, 10**9)]
    assert quantiles == sorted(quantiles, reverse=True)
    assert quantiles[-1] == pytest.approx(Z95, rel=1e-8) and quantiles[-1] > Z95


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe(successes: int, n: int, low: float, high: float) -> None:
    """Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison of
    seven methods", Statistics in Medicine 17:857-872, Table II, method 3 (Wilson score)."""
    found = wilson_interval(successes, n)
    assert found == pytest.approx((low, high), abs=5e-5)


def test_wilson_ends_are_exact() -> None:
    assert wilson_interval(0, 5)[0] == 0.0
    assert wilson_interval(5, 5)[1] == 1.0
    assert score("thumbs", [0, 3]).high == 100.0


def test_t_interval_matches_students_sleep_data() -> None:
    """Student (1908), "The probable error of a mean", Biometrika 6: extra hours of sleep of ten
    patients, drug 2 over drug 1 (Cushny and Peebles). The 95% interval of the mean difference,
    1.58 h, is 0.7001142..2.4598858 (9 degrees of freedom; R's ``t.test`` of the ``sleep`` data
    set, paired, prints the same)."""
    differences = [1.2, 2.4, 1.3, 1.3, 0.0, 1.0, 1.8, 0.8, 4.6, 1.4]
    values = sorted(set(differences))
    counts = [differences.count(v) for v in values]
    found = mean_interval(values, counts)
    assert found == pytest.approx((0.7001142, 2.4598858), abs=5e-8)


def test_t_interval_on_a_ces_histogram() -> None:
    """Ten CES answers 3, 4, 4, 5, 5, 5, 6, 6, 6, 7: mean 5.1, s = sqrt(12.9 / 9) = 1.19722,
    half-width t(0.975, 9) * s / sqrt(10) = 2.262157 * 0.378594 = 0.856439."""
    found = score("ces", [0, 0, 1, 2, 3, 3, 1])
    assert found.value == pytest.approx(5.1)
    assert (found.low, found.high) == pytest.approx((5.1 - 0.856439, 5.1 + 0.856439), abs=1e-6)
    assert found.margin == pytest.approx(0.856439, abs=1e-6)


def test_t_interval_needs_two_responses_and_keeps_to_the_scale() -> None:
    one = score("likert", [0, 0, 1, 0, 0])
    assert (one.value, one.low, one.high, one.margin) == (60.0, None, None, None)
    same = score("ces", [0, 0, 0, 0, 0, 0, 4])
    assert (same.low, same.value, same.high, same.margin) == (7.0, 7.0, 7.0, 0.0)
    ends = score("likert", [1, 0, 0, 0, 1])  # 60 ± 12.7 * 56.6 / 1.41 = 60 ± 508, clipped
    assert (ends.low, ends.high) == (20.0, 100.0)
    assert ends.margin == 40.0


def test_adjusted_wald_nps_worked_example() -> None:
    """Adjusted Wald for NPS (Rocks 2016, "Interval estimation for the Net Promoter Score", The
    American Statistician 70(4); the method as MeasuringU describes it in "Evaluating NPS
    confidence intervals with real-world data": add 3 to n, 3/4 to the promoters and 3/4 to the
    detractors, then the standard error of the difference of two proportions). No published
    worked example with its numbers was at hand, so this one is worked by hand, step by step:

    36 responses: 15 promoters, 13 passives, 8 detractors; NPS = (15 - 8) / 36 = 19.44.
      n' = 36 + 3 = 39
      p'_pro = (15 + 0.75) / 39 = 0.403846;  p'_det = (8 + 0.75) / 39 = 0.224359
      centre = 0.403846 - 0.224359 = 0.179487
      variance = (0.403846 + 0.224359 - 0.179487²) / 39 = (0.628205 - 0.032216) / 39 = 0.015282
      half-width = 1.959964 * sqrt(0.015282) = 1.959964 * 0.123620 = 0.242290
      interval = 0.179487 ± 0.242290 = -0.062803 .. 0.421777, i.e. -6.28 .. 42.18
    """
    low, high = nps_interval(15, 8, 36)
    assert (low, high) == pytest.approx((-0.062803, 0.421777), abs=2e-6)
    found = score("nps", [0, 0, 0, 4, 0, 0, 4, 6, 7, 5, 10])
    assert found.value == pytest.approx(700 / 36)
    assert (found.low, found.high) == pytest.approx((100 * low, 100 * high))
    assert found.margin == pytest.approx(24.2290, abs=1e-4)


def test_adjusted_wald_nps_at_three_responses_stays_on_the_scale() -> None:
    """One promoter and two detractors: NPS -33.3, whose normal approximation was ± 130.7.

    n' = 6, p'_pro = 1.75 / 6 = 0.291667, p'_det = 2.75 / 6 = 0.458333, centre -0.166667,
    variance (0.75 - 0.027778) / 6 = 0.120370, half-width 1.959964 * 0.346944 = 0.679998:
    -0.846665 .. 0.513332.
    """
    found = score("nps", [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    assert found.value == pytest.approx(-100 / 3)
    assert (found.low, found.high) == pytest.approx((-84.6665, 51.3332), abs=1e-4)
    assert found.margin == pytest.approx(67.9998, abs=1e-4)
    even = score("nps", [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1])  # centre 0, half-width 0.611126
    assert (even.low, even.value, even.high) == pytest.approx((-61.1126, 0.0, 61.1126), abs=1e-4)
    top = score("nps", [0] * 10 + [3])
    assert (top.value, top.high) == (100.0, 100.0)


def test_a_single_nps_response_has_an_interval_that_leaves_out_its_score() -> None:
    """The adjusted centre is pulled towards 0: one promoter gives a centre of 0.25 and a half-width
    of 0.735, so 100 is just above the interval. It is the only case: from two responses on, and
    for a passive, the interval holds the score (see the property below)."""
    found = score("nps", [0] * 10 + [1])
    assert found.low == pytest.approx(-48.4986, abs=1e-4)
    assert found.high == pytest.approx(98.4986, abs=1e-4)
    assert found.value == 100.0
    passive = score("nps", [0] * 7 + [1, 0, 0, 0])
    assert (passive.low, passive.high) == pytest.approx((-60.0114, 60.0114), abs=1e-4)


SCALES = {"nps": (-100, 100), "csat": (0, 100), "thumbs": (0, 100), "ces": (1, 7)}
SCALES["likert"] = (20, 100)


@st.composite
def histograms(draw: st.DrawFn) -> tuple[str, list[int]]:
    """Any histogram, with small samples and lopsided ones (all in one or two cells) often."""
    metric = draw(st.sampled_from(sorted(METRIC_RANGES)))
    low, high = METRIC_RANGES[metric]
    size = high - low + 1
    shape = draw(st.sampled_from(["small", "lopsided", "any"]))
    if shape == "small":
        cells = st.integers(0, 3)
    elif shape == "lopsided":
        cells = st.sampled_from([0, 0, 0, 1, 10**6])
    else:
        cells = st.integers(0, 10**7)
    return metric, draw(st.lists(cells, min_size=size, max_size=size))


@given(histograms())
def test_every_interval_keeps_to_the_scale_and_holds_the_score(
    case: tuple[str, list[int]],
) -> None:
    """Every bound lies within the scale, ``low <= high``, and the margin is half the width.

    The interval holds the score itself for every metric and sample, except NPS at exactly one
    response (above): the adjusted Wald interval holds its own shrunk centre there instead.
    """
    metric, histogram = case
    found = score(metric, histogram)
    bottom, top = SCALES[metric]
    n = sum(histogram)
    undefined = n == 0 or (n == 1 and metric in ("ces", "likert"))
    if undefined:
        assert found.low is None and found.high is None and found.margin is None
        return
    assert found.value is not None and found.low is not None and found.high is not None
    assert bottom <= found.low <= found.high <= top
    assert found.margin == pytest.approx((found.high - found.low) / 2)
    if metric == "nps" and n == 1:
        promoters, detractors = sum(histogram[9:]), sum(histogram[:7])
        centre = 100 * (promoters - detractors) / 4
        assert found.low <= centre <= found.high
    else:
        assert found.low <= found.value <= found.high
