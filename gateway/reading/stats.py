"""Stats from the stores' aggregates: headline scores, their intervals, and series over time.

The stores keep hourly and daily histograms; a query adds up the rows of the channels asked
for, each of its own forms (those asked that the asker may see there, :func:`~.params.scope`),
in the stores as far as the answer allows (by day for a daily, weekly or monthly series, over
the window for a total), then rolls them up to the interval. A query's window is the hours
that start at or after ``from`` (rounded down to its hour) and before ``to``, so the answer
always equals a scan of the stored events over those hours.

``GET /v1/stats``, the dashboard, the demo and ``voxloop-gateway stats`` all answer through
:func:`compute`, or, for a page that shows one metric many ways (per channel, per form, over
time), through one :func:`read` of its rows and several :func:`answer` calls on them, so the
page reads each store once per metric and still says exactly what ``/v1/stats`` would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import msgspec

import voxloop_core
from voxloop_core import HOUR_MS, INTERVALS, METRIC_RANGES, Interval

from ..control.access import Access
from ..control.registry import Project
from ..errors import ApiError
from ..service import Service
from ..stores import Histograms, Step
from .params import ChannelForms, Params, check_known, instant, repeated, scope, single


class Bucket(msgspec.Struct, kw_only=True):
    """One histogram and what it says: the total, or one interval of the series.

    ``score`` is the headline score, rounded to 1 decimal. ``low`` and ``high`` bound its 95%
    confidence interval, rounded outward to 1 decimal (down and up), never outside the metric's
    scale: adjusted Wald for NPS, Wilson for CSAT and thumbs, Student's t for CES and Likert.
    ``margin`` is half the interval's width, rounded to 1 decimal. All three are null without
    responses, and for CES and Likert below two responses.
    """

    start: str | None = None
    count: int
    histogram: list[int]
    score: float | None
    low: float | None
    high: float | None
    margin: float | None
    high_share: float | None = None


class StatsAnswer(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The body of ``GET /v1/stats``."""

    metric: str
    total: Bucket
    #: Answers held apart as a link scanner's (email bursts): stored, never in the score.
    quarantined: int
    series: list[Bucket] | None = None


class StatsQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A validated stats query: ``channels`` maps each channel counted to the forms counted in
    it (None: every form)."""

    metric: str
    channels: ChannelForms
    start_ms: int | None
    end_ms: int | None
    interval: Interval | None


def parse_query(params: Params, project: Project, access: Access) -> StatsQuery:
    """Read and check the query string; ApiError 400 naming the parameter and the rule.

    The channels and forms are cut to what ``access`` shows of the dashboard, channel by
    channel: a channel, or a form, outside it is a 403 naming it, and each channel counts only
    the forms the asker may see in it.
    """
    check_known(params, ("metric", "channel", "form", "from", "to", "interval", "project"))
    metric = single(params, "metric")
    if metric not in METRIC_RANGES:
        expected = ", ".join(METRIC_RANGES)
        raise ApiError(400, f"metric is required, one of {expected}; got {metric!r}")
    channels = scope(
        access, "dashboard", project, repeated(params, "channel"), repeated(params, "form")
    )
    interval = single(params, "interval")
    if interval is not None and interval not in INTERVALS:
        raise ApiError(400, f"interval must be one of {', '.join(INTERVALS)}; got {interval!r}")
    start = instant(single(params, "from"), "from")
    end = instant(single(params, "to"), "to")
    if start is not None:
        start -= start % HOUR_MS
    if start is not None and end is not None and end <= start:
        raise ApiError(400, "to must be after from")
    return StatsQuery(
        metric=metric,
        channels=channels,
        start_ms=start,
        end_ms=end,
        interval=interval,
    )


def bucket(metric: str, histogram: list[int], start_ms: int | None = None) -> Bucket:
    found = voxloop_core.score(metric, histogram)
    start = None
    if start_ms is not None:
        start = datetime.fromtimestamp(start_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    bottom, top = _SCALES[metric]
    return Bucket(
        start=start,
        count=found.count,
        histogram=histogram,
        score=None if found.value is None else round(found.value, 1),
        low=None if found.low is None else max(bottom, _tenths(found.low, math.floor)),
        high=None if found.high is None else min(top, _tenths(found.high, math.ceil)),
        margin=None if found.margin is None else round(found.margin, 1),
        high_share=None if found.high_share is None else round(found.high_share, 1),
    )


def _tenths(bound: float, direction: Callable[[float], int]) -> float:
    """``bound`` rounded to 1 decimal by ``direction`` (floor or ceil), so the interval only grows.

    The product is first rounded to 9 decimals, so that float noise (``1.1 * 10`` is
    ``11.000000000000002``) does not move a bound a whole tenth.
    """
    return direction(round(bound * 10, 9)) / 10


def _scale(metric: str) -> tuple[float, float]:
    """The lowest and the highest score ``metric`` can have: one response at each end."""
    size = voxloop_core.histogram_size(metric)
    ends = [voxloop_core.score(metric, [1] + [0] * (size - 1))]
    ends.append(voxloop_core.score(metric, [0] * (size - 1) + [1]))
    bottom, top = sorted(end.value for end in ends if end.value is not None)
    return bottom, top


_SCALES = {metric: _scale(metric) for metric in METRIC_RANGES}


class Readings(msgspec.Struct, kw_only=True):
    """One metric's histograms in some channels over one window, as read from the stores.

    ``counted`` and ``held`` map a channel to its (form, bucket start) histograms: of the
    counted answers, and of the votes held as a link scanner's (always per form and hour).
    ``step``: what each counted bucket covers, added up by the store: hours serve every
    interval, days every interval but ``hour``, the window only totals. ``per_form``: the
    counted buckets are per form, else added up over the forms read.
    """

    metric: str
    step: Step
    per_form: bool
    counted: dict[str, Histograms]
    held: dict[str, Histograms]


async def read(
    service: Service,
    project: str,
    metric: str,
    channels: ChannelForms,
    start_ms: int | None,
    end_ms: int | None,
    *,
    step: Step = "hour",
    per_form: bool = True,
) -> Readings:
    """Read ``metric``'s aggregate rows of ``project`` in ``channels``, each of its own forms
    (None: every form), once, for :func:`answer`, added up by ``step`` (and over the forms
    unless ``per_form``) in the stores: the coarser the read, the fewer rows it carries.

    A channel without a store yet has no answers, and reading doesn't make one.
    """
    found = Readings(metric=metric, step=step, per_form=per_form, counted={}, held={})
    for channel, forms in channels.items():
        if not await service.has_store(channel):
            continue
        store = await service.store(channel)
        found.counted[channel] = await store.hourly(
            project,
            metric,
            forms=forms,
            start_ms=start_ms,
            end_ms=end_ms,
            step=step,
            per_form=per_form,
        )
        found.held[channel] = await store.quarantined(
            project, metric, forms=forms, start_ms=start_ms, end_ms=end_ms
        )
    return found


def answer(
    readings: Readings,
    *,
    channels: Iterable[str] | None = None,
    forms: Iterable[str] | None = None,
    interval: Interval | None = None,
) -> StatsAnswer:
    """What ``/v1/stats`` answers for these channels and forms (None: all that were read).

    Raises:
        ValueError: the readings are too coarse for it: a series finer than their step, or
            forms picked out of readings added up over the forms.
    """
    metric = readings.metric
    if interval is not None and _STEPS.index(readings.step) > _STEPS.index(step_for(interval)):
        raise ValueError(f"a series by {interval} needs readings by {step_for(interval)}")
    if forms is not None and not readings.per_form:
        raise ValueError("a breakdown by form needs readings per form")
    wanted_channels = None if channels is None else frozenset(channels)
    wanted_forms = None if forms is None else frozenset(forms)
    total = voxloop_core.empty_histogram(metric)
    by_start: dict[int, list[int]] = {}
    starts: dict[int, int] = {}  # a row's start -> its interval's: each worked out once
    quarantined = 0
    for channel, rows in readings.counted.items():
        if wanted_channels is not None and channel not in wanted_channels:
            continue
        for (form, start), counts in rows.items():
            if wanted_forms is not None and form not in wanted_forms:
                continue
            _add(total, counts)
            if interval is not None:
                at = starts.get(start)
                if at is None:
                    at = starts[start] = voxloop_core.bucket_start(start, interval)
                _add(by_start.setdefault(at, voxloop_core.empty_histogram(metric)), counts)
        for (form, _), counts in readings.held[channel].items():
            if wanted_forms is None or form in wanted_forms:
                quarantined += sum(counts)
    found = StatsAnswer(metric=metric, total=bucket(metric, total), quarantined=quarantined)
    if interval is not None:
        found.series = [bucket(metric, by_start[s], s) for s in sorted(by_start)]
    return found


_STEPS: tuple[Step, ...] = ("hour", "day", "window")


def step_for(interval: Interval | None) -> Step:
    """The coarsest readings that serve ``interval``: hours for hours, days for days, weeks
    and months (UTC days fall wholly inside them), the window for a total."""
    return "window" if interval is None else "hour" if interval == "hour" else "day"


def _add(into: list[int], counts: list[int]) -> None:
    for i, n in enumerate(counts):
        into[i] += n


async def compute(service: Service, project: str, query: StatsQuery) -> StatsAnswer:
    """The stats of ``project`` for ``query``, from the aggregate rows of each channel.

    The stores add the rows up to what the answer needs, over the forms: a year by day is 365
    rows per score instead of 8,760 per form and score, a total one row per score.
    """
    readings = await read(
        service,
        project,
        query.metric,
        query.channels,
        query.start_ms,
        query.end_ms,
        step=step_for(query.interval),
        per_form=False,
    )
    return answer(readings, interval=query.interval)
