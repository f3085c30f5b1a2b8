"""The dashboard at ``/app/``: a person's projects, and each project's overview.

``/app/`` lists the projects the person may see (or opens the only one). A project's overview
(``/app/{project}/``, the Dashboard section) shows over a period: the headline score of each
metric with its 95% interval and count, the trend of one metric (uPlot draws it in the browser
from ``/v1/stats``, the interval as a band; a table holds the same numbers without JavaScript),
each channel's headlines side by side, the forms' headlines, and how many email votes were held
apart as a link scanner's.

Every number is what ``/v1/stats`` answers for the same filters: each comes from
:func:`~..reading.stats.answer` on the rows :func:`~..reading.stats.read` reads, as for
``/v1/stats``, cut to the person's scope by the same :func:`~..reading.params.scope` as the
API, so the page and the API can't disagree, and a person scoped to one channel sees that
channel's numbers only (and in each channel, only the forms they may see there). The feedback
inbox, a response and the exports are the pages of :mod:`.inbox`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, NamedTuple, cast
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from voxloop_core import DAY_MS, HOUR_MS, INTERVALS, METRIC_RANGES, Interval

from ..control.access import Access, Section
from ..control.registry import Project
from ..errors import ApiError
from ..http.auth import project_ids
from ..reading.params import Params, check_known, scope, single
from ..reading.stats import Bucket, Readings, StatsAnswer, answer, read, step_for
from ..service import Service
from ..stores import Step
from . import audit, followups, inbox, webhooks
from .app_auth import project_of, signed_in
from .app_i18n import Locale, locale_of
from .app_layout import APP_HEADERS, app_page, link, section_path

__all__ = ["PERIODS", "Overview", "gather_overview", "routes"]

#: The overview's periods, by name: the days they reach back (None: all time).
PERIODS: Final[dict[str, int | None]] = {"7d": 7, "30d": 30, "90d": 90, "365d": 365, "all": None}
DEFAULT_PERIOD: Final = "30d"
DEFAULT_INTERVAL: Final[Interval] = "day"
#: The trend's latest buckets the page lists as a table (the chart draws them all).
TABLE_BUCKETS: Final = 60
#: The forms the overview breaks a metric down by: the most answered ones.
MAX_FORMS: Final = 20
_SECTIONS: Final[tuple[Section, ...]] = ("dashboard", "responses", "inbox", "exports", "alerts")


class Overview(NamedTuple):
    """What a project's overview shows, for one period; each answer is ``/v1/stats``'s.

    Attributes:
        start_ms: the period's first hour (None: all time).
        totals: each metric's answer over the visible channels and forms.
        trend: the chosen metric's answer with its series by the chosen interval.
        channels: per metric with responses, the answer of each visible channel with some.
        forms: the chosen metric's answer per form, the most answered first.
    """

    start_ms: int | None
    totals: dict[str, StatsAnswer]
    trend: StatsAnswer
    channels: dict[str, list[tuple[str, StatsAnswer]]]
    forms: list[tuple[str, StatsAnswer]]


def period_start(period: str, now_ms: int) -> int | None:
    """The first hour of ``period`` ending now: whole hours, as ``/v1/stats`` counts them."""
    days = PERIODS[period]
    return None if days is None else now_ms - now_ms % HOUR_MS - days * DAY_MS


async def gather_overview(
    service: Service,
    project: Project,
    access: Access,
    *,
    start_ms: int | None,
    metric: str | None,
    interval: Interval,
) -> tuple[str, Overview]:
    """Everything the overview shows, and the metric its trend is of.

    Every number on the page is :func:`~..reading.stats.answer` on rows of the aggregates
    ``/v1/stats`` reads, added up in the stores as far as each use allows: every metric over
    the period with the forms added up (its headline and channels), and the chosen one again by
    the trend's step and per form. So the page reads a few rows per metric and store, whatever
    the period. ``metric`` None: the first metric with responses (or held votes) in the period,
    else NPS.
    """
    channels = scope(access, "dashboard", project, None, None)

    async def rows(metric: str, step: Step = "window", per_form: bool = False) -> Readings:
        return await read(
            service, project.id, metric, channels, start_ms, None, step=step, per_form=per_form
        )

    readings = dict(
        zip(METRIC_RANGES, await asyncio.gather(*(rows(m) for m in METRIC_RANGES)), strict=True)
    )
    totals = {m: answer(r) for m, r in readings.items()}
    answered = [m for m, a in totals.items() if a.total.count or a.quarantined]
    chosen = metric or (answered[0] if answered else next(iter(METRIC_RANGES)))
    trend_rows, form_rows = await asyncio.gather(
        rows(chosen, step_for(interval)), rows(chosen, per_form=True)
    )
    names = _forms(form_rows)
    by_channel: dict[str, list[tuple[str, StatsAnswer]]] = {m: [] for m in answered}
    for m in answered:
        for c in channels:
            one = totals[m] if len(channels) == 1 else answer(readings[m], channels=(c,))
            if one.total.count or one.quarantined:
                by_channel[m].append((c, one))
    overview = Overview(
        start_ms=start_ms,
        totals=totals,
        trend=answer(trend_rows, interval=interval),
        channels=by_channel,
        forms=[(f, answer(form_rows, forms=(f,))) for f in names],
    )
    return chosen, overview


def _forms(readings: Readings) -> list[str]:
    """The forms with responses in ``readings``, the most answered first (at most
    :data:`MAX_FORMS`); each channel was read for the forms the person may see there only.
    """
    counts: dict[str, int] = {}
    for rows in readings.counted.values():
        for (form, _), histogram in rows.items():
            counts[form] = counts.get(form, 0) + sum(histogram)
    ranked = sorted(counts, key=lambda form: (-counts[form], form))
    return ranked[:MAX_FORMS]


async def projects_page(request: Request) -> Response:
    """``GET /app/``: the projects the person may see; the only one opens at once."""
    service: Service = request.app.state.service
    locale = locale_of(request)
    who = await signed_in(request)
    check_known(request.query_params, ("lang",))
    access = who.session.access
    known = await project_ids(service)
    entries = []
    for name in sorted(known):
        first = next((s for s in _SECTIONS if access.can(s, "view", name)), None)
        if first is not None:
            entries.append((name, link(locale, section_path(name, first))))
    if len(entries) == 1:
        return RedirectResponse(entries[0][1], 303, APP_HEADERS)
    return app_page(
        request,
        locale,
        "app/projects.html",
        {"projects": entries},
        session=who.session,
        title=locale.words.projects_title,
    )


def _choice(params: Params, name: str, allowed: Sequence[str], default: str | None) -> str | None:
    """The value of ``name`` among ``allowed`` (its default when not given); 400 otherwise."""
    value = single(params, name)
    if value is None:
        return default
    if value not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


async def overview_page(request: Request) -> Response:
    """``GET /app/{project}/``: the project's overview over ``period`` (7d 30d 90d 365d all),
    the trend of ``metric`` by ``interval`` (hour day week month)."""
    service: Service = request.app.state.service
    locale = locale_of(request)
    who = await signed_in(request)
    access = who.session.access
    project = project_of(service, access, request.path_params["project"], "dashboard")
    params = request.query_params
    check_known(params, ("period", "metric", "interval", "lang"))
    period = cast(str, _choice(params, "period", tuple(PERIODS), DEFAULT_PERIOD))
    metric = _choice(params, "metric", tuple(METRIC_RANGES), None)
    interval = cast(Interval, _choice(params, "interval", INTERVALS, DEFAULT_INTERVAL))
    start_ms = period_start(period, int(time.time() * 1000))
    chosen, overview = await gather_overview(
        service, project, access, start_ms=start_ms, metric=metric, interval=interval
    )
    context = _context(locale, project, access, chosen, period, interval, overview)
    return app_page(
        request,
        locale,
        "app/overview.html",
        context,
        session=who.session,
        project=project.id,
        section="dashboard",
        title=f"{locale.words.overview_title} · {project.id}",
    )


def _rows(
    locale: Locale, answers: Sequence[tuple[str, StatsAnswer]], named: bool
) -> list[tuple[str, str, Bucket]]:
    return [(n, locale.channel(n) if named else n, a.total) for n, a in answers]


def _context(
    locale: Locale,
    project: Project,
    access: Access,
    metric: str,
    period: str,
    interval: Interval,
    overview: Overview,
) -> dict[str, object]:
    words = locale.words
    from_iso = None
    if overview.start_ms is not None:
        moment = datetime.fromtimestamp(overview.start_ms / 1000, UTC)
        from_iso = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    stats_params = [("project", project.id), ("metric", metric)]
    if from_iso is not None:
        stats_params.append(("from", from_iso))
    series = overview.trend.series or []
    trend = [(b, _ms(b.start)) for b in series[-TABLE_BUCKETS:]]
    chart_label = words.chart_label.format(locale.metric(metric), "{}")
    held_total = sum(answer.quarantined for answer in overview.totals.values())
    held_url = None
    if access.can("responses", "view", project.id):
        held_params = {"held": "quarantined", "from": from_iso}
        held_url = link(locale, section_path(project.id, "responses"), held_params)
    headlines = [(m, a) for m, a in overview.totals.items() if a.total.count or a.quarantined]
    return {
        "here": section_path(project.id, "dashboard"),
        "period": period,
        "periods": list(words.periods.items()),
        "metric": metric,
        "metrics": [(m, locale.metric(m)) for m in METRIC_RANGES],
        "interval": interval,
        "intervals": [(i, words.intervals[i]) for i in INTERVALS],
        "headlines": headlines,
        "held_total": held_total,
        "held_url": held_url,
        "stats_url": f"/v1/stats?{urlencode(stats_params)}",
        "from_iso": from_iso or "",
        "chart_label": chart_label.format(words.intervals[interval].lower()),
        "chart_label_pattern": chart_label,
        "trend": trend,
        "latest": TABLE_BUCKETS,
        "channel_tables": [
            (m, _rows(locale, answers, True)) for m, answers in overview.channels.items()
        ],
        "form_rows": _rows(locale, overview.forms, False),
    }


def _ms(start: str | None) -> int:
    """A bucket's start (``2026-11-23T00:00:00Z``) as epoch milliseconds."""
    assert start is not None  # a series' buckets always have one
    return int(datetime.fromisoformat(start).timestamp() * 1000)


def routes() -> list[Route]:
    """The dashboard's pages, for the application's table: the projects, the overview,
    :mod:`.inbox`'s (the feedback inbox, a response, the exports), :mod:`.followups`' (the
    follow-up inbox, an item), :mod:`.webhooks`' and :mod:`.audit`'s."""
    return [
        Route("/app/", projects_page, methods=["GET"], name="app.projects"),
        Route("/app/{project}/", overview_page, methods=["GET"], name="app.overview"),
        *inbox.routes(),
        *followups.routes(),
        *webhooks.routes(),
        *audit.routes(),
    ]
