"""``GET /v1/followups/sla``: the share of follow-up items acted on within their SLA.

The benchmark's "feedback is followed up within 48 hours", measured: of the items made in a
window, the share a person first acted on at or before their due time, overall, per team (the
access groups of each item's assignee) and per period (a day or an ISO week), and the median
time from an item's making to that first action. The figures are :func:`..followups.sla.
sla_report`'s, over the items of the channels and forms the asker's inbox scope covers; this
module only picks the window and writes the answer, for the API and the follow-up inbox page
alike (:func:`report`), so the two never disagree.

The window: ``from`` and ``to`` (RFC 3339) when given; by default the last
:data:`DEFAULT_PERIODS` whole days or weeks (UTC; weeks start on Monday), the current one
included, so that every period of the trend has the same length.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from voxloop_core import DAY_MS, bucket_start

from ..errors import ApiError
from ..followups import sla
from ..http.responses import json_response
from ..reading.formats import rfc3339
from ..reading.params import ChannelForms, check_known, instant, single
from ..service import Service
from .followups import asker, now_ms

Step = Literal["day", "week"]
STEPS: Final[tuple[Step, ...]] = get_args(Step)
#: Each step's length.
STEP_MS: Final[dict[Step, int]] = {"day": DAY_MS, "week": 7 * DAY_MS}
#: How many periods the window holds when ``from`` isn't given.
DEFAULT_PERIODS: Final[dict[Step, int]] = {"day": 7, "week": 8}
PARAMS: Final = ("project", "from", "to", "step")


class SlaPeriodFigures(sla.SlaFigures, kw_only=True):
    """The figures of the items made in one period, from ``start`` (RFC 3339)."""

    start: str


class SlaAnswer(msgspec.Struct, kw_only=True):
    """The body of ``GET /v1/followups/sla``: the items made in ``[from, to)`` as of
    ``as_of``, cut into periods of ``step`` from ``from``; the figures are
    :class:`~..followups.sla.SlaFigures` (``share`` a percentage with 1 decimal, null when no
    item was acted on in time or late; ``median_first_action_ms`` in milliseconds)."""

    project: str
    start: str = msgspec.field(name="from")
    end: str = msgspec.field(name="to")
    as_of: str
    step: Step
    overall: sla.SlaFigures
    teams: dict[str, sla.SlaFigures]
    periods: list[SlaPeriodFigures]


def window(step: Step, start_ms: int | None, end_ms: int | None, now_ms: int) -> tuple[int, int]:
    """The report's ``[start, end)``: those given, else the end of the current period and
    :data:`DEFAULT_PERIODS` periods before the end."""
    if end_ms is None:
        end_ms = bucket_start(now_ms, step) + STEP_MS[step]
    if start_ms is None:
        start_ms = end_ms - DEFAULT_PERIODS[step] * STEP_MS[step]
    return start_ms, end_ms


async def report(
    service: Service,
    project: str,
    channels: ChannelForms,
    step: Step,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    now_ms: int,
) -> SlaAnswer:
    """The within-SLA figures of ``project``'s items in ``channels`` (and their forms).

    Raises:
        ApiError: 400 naming ``to`` for an empty window, ``step`` for one cut into too many
            periods (:data:`~..followups.sla.MAX_PERIODS`).
    """
    start, end = window(step, start_ms, end_ms, now_ms)
    found = await sla.sla_report(
        service.registry.db, project, start, end, now_ms, STEP_MS[step], channels
    )
    return SlaAnswer(
        project=project,
        start=rfc3339(found.start_ms),
        end=rfc3339(found.end_ms),
        as_of=rfc3339(found.now_ms),
        step=step,
        overall=found.overall,
        teams=found.teams,
        periods=[
            SlaPeriodFigures(
                start=rfc3339(period.start_ms),
                **{f: getattr(period, f) for f in sla.SlaFigures.__struct_fields__},
            )
            for period in found.periods
        ],
    )


def step_of(text: str | None) -> Step:
    """The ``step`` asked for (``day`` when not given); 400 naming it otherwise."""
    for step in STEPS:
        if text in (None, step):
            return step
    raise ApiError(400, f"step must be one of {', '.join(STEPS)}; got {text!r}")


async def get_sla(request: Request) -> Response:
    """Answer ``GET /v1/followups/sla``: a person's, on the follow-up inbox (``view``)."""
    params = request.query_params
    check_known(params, PARAMS)
    step = step_of(single(params, "step"))
    start_ms = instant(single(params, "from"), "from")
    end_ms = instant(single(params, "to"), "to")
    who = await asker(request, edit=False)
    answer = await report(
        who.service,
        who.project.id,
        who.channels,
        step,
        start_ms=start_ms,
        end_ms=end_ms,
        now_ms=now_ms(),
    )
    who.service.metrics.request("followups", 200)
    return json_response(200, answer, {})


def routes() -> list[Route]:
    """The route, for ``create_app``: before ``/v1/followups/{id}``, which would take it."""
    return [Route("/v1/followups/sla", get_sla, methods=["GET"], name="followups")]


__all__ = [
    "DEFAULT_PERIODS",
    "STEPS",
    "STEP_MS",
    "SlaAnswer",
    "SlaPeriodFigures",
    "Step",
    "report",
    "routes",
    "step_of",
    "window",
]
