"""``GET /v1/stats``: histograms, headline scores and their intervals, from the stores' aggregates.

The stores keep hourly histograms; a query adds the hours of the channels and forms asked for,
then rolls them up to the interval. A query's window is the hours that start at or after ``from``
(rounded down to its hour) and before ``to``, so the answer always equals a scan of the stored
events over those hours.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response

import voxloop_core
from voxloop_core import HOUR_MS, INTERVALS, METRIC_RANGES, Interval

from ..errors import ApiError
from ..http.auth import authenticate
from ..http.responses import json_response
from ..service import Service

_FORM = re.compile(voxloop_core.FORM_PATTERN)


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
    """A validated stats query."""

    metric: str
    channels: tuple[str, ...]
    forms: tuple[str, ...] | None
    start_ms: int | None
    end_ms: int | None
    interval: Interval | None


def parse_query(request: Request, project_channels: frozenset[str]) -> StatsQuery:
    """Read and check the query string; ApiError 400 naming the parameter and the rule."""
    params = request.query_params
    unknown = sorted(set(params) - {"metric", "channel", "form", "from", "to", "interval", "key"})
    if unknown:
        raise ApiError(400, f"unknown query parameter {unknown[0]!r}")
    metric = params.get("metric")
    if metric not in METRIC_RANGES:
        expected = ", ".join(METRIC_RANGES)
        raise ApiError(400, f"metric is required, one of {expected}; got {metric!r}")
    channels = tuple(params.getlist("channel")) or tuple(sorted(project_channels))
    for channel in channels:
        if channel not in project_channels:
            allowed = ", ".join(sorted(project_channels))
            raise ApiError(400, f"channel {channel!r} is not one of this project's: {allowed}")
    forms = tuple(params.getlist("form")) or None
    for form in forms or ():
        if not _FORM.fullmatch(form):
            raise ApiError(400, f"form {form!r} must be 1-64 characters of A-Z a-z 0-9 . _ -")
    interval = params.get("interval")
    if interval is not None and interval not in INTERVALS:
        raise ApiError(400, f"interval must be one of {', '.join(INTERVALS)}; got {interval!r}")
    start = _instant(params.get("from"), "from")
    end = _instant(params.get("to"), "to")
    if start is not None:
        start -= start % HOUR_MS
    if start is not None and end is not None and end <= start:
        raise ApiError(400, "to must be after from")
    return StatsQuery(
        metric=metric,
        channels=channels,
        forms=forms,
        start_ms=start,
        end_ms=end,
        interval=interval,
    )


def _instant(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an RFC 3339 time, got {text!r}") from None
    if moment.tzinfo is None:
        raise ApiError(400, f"{name} must carry a time zone (Z or +hh:mm), got {text!r}")
    return int(moment.timestamp() * 1000)


def _bucket(metric: str, histogram: list[int], start_ms: int | None = None) -> Bucket:
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


async def compute(service: Service, project: str, query: StatsQuery) -> StatsAnswer:
    """The stats of ``project`` for ``query``, from the aggregate rows of each channel."""
    hourly: dict[voxloop_core.BucketKey, list[int]] = {}
    quarantined = 0
    for channel in query.channels:
        store = await service.store(channel)
        window = (project, query.metric)
        rows = await store.hourly(
            *window, forms=query.forms, start_ms=query.start_ms, end_ms=query.end_ms
        )
        for (form, hour), counts in rows.items():
            hourly[(channel, form, query.metric, hour)] = counts
        held = await store.quarantined(
            *window, forms=query.forms, start_ms=query.start_ms, end_ms=query.end_ms
        )
        quarantined += sum(sum(counts) for counts in held.values())
    total = voxloop_core.empty_histogram(query.metric)
    for counts in hourly.values():
        total = [a + b for a, b in zip(total, counts, strict=True)]
    answer = StatsAnswer(
        metric=query.metric, total=_bucket(query.metric, total), quarantined=quarantined
    )
    if query.interval is not None:
        by_start: dict[int, list[int]] = {}
        for (_, _, _, start), counts in voxloop_core.rollup(hourly, query.interval).items():
            into = by_start.setdefault(start, voxloop_core.empty_histogram(query.metric))
            for i, n in enumerate(counts):
                into[i] += n
        answer.series = [_bucket(query.metric, by_start[s], s) for s in sorted(by_start)]
    return answer


async def get_stats(request: Request) -> Response:
    """Answer ``GET /v1/stats`` for a server key."""
    service: Service = request.app.state.service
    key, project = authenticate(request, service)
    if key.kind != "server":
        raise ApiError(403, "stats need a server key (sk_...); site keys only write events")
    query = parse_query(request, project.channels)
    answer = await compute(service, project.id, query)  # StoreError: 503
    service.metrics.request("stats", 200)
    return json_response(200, answer, {})
