"""``stats``: a project's score, count and histogram, as ``GET /v1/stats`` answers them."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime
from typing import Any, cast

import click

import voxloop_core

from ..errors import ConfigError
from ..service import Service
from ..settings import Settings
from .base import Choice, cli, print_table, registry, settings

#: What ``stats --from`` and ``--to`` take.
TIME_FORMATS = (
    "an RFC 3339 time with its zone (2024-05-01T09:30:00Z, 2024-05-01T11:30:00+02:00)"
    " or a date (2024-05-01: its midnight, UTC)"
)


@cli.command(short_help="print a project's stats as a table")
@click.argument("project")
@click.option(
    "--metric",
    required=True,
    type=Choice(list(voxloop_core.METRIC_RANGES)),
    metavar="METRIC",
    help=f"one of {', '.join(voxloop_core.METRIC_RANGES)}",
)
@click.option("--channel", multiple=True, help="only this channel (repeatable)")
@click.option("--form", multiple=True, help="only this form (repeatable)")
@click.option("--from", "start", metavar="TIME", help=TIME_FORMATS)
@click.option("--to", "end", metavar="TIME", help="the same, after --from")
@click.option(
    "--interval",
    type=Choice(list(voxloop_core.INTERVALS)),
    metavar="INTERVAL",
    help=f"a row per {', '.join(voxloop_core.INTERVALS)} (weeks start on Monday, UTC)",
)
def stats(
    project: str,
    metric: str,
    channel: tuple[str, ...],
    form: tuple[str, ...],
    start: str | None,
    end: str | None,
    interval: str | None,
) -> None:
    """Print PROJECT's score, count and histogram, in all or over a window of hours: those
    starting at or after --from (rounded down to its hour) and before --to.

    It reads what GET /v1/stats reads, on SQLite or PostgreSQL, and makes nothing: a channel
    with no store yet counts as empty.

    \b
    The table: a header, the total, then a row per --interval bucket:
      bucket     total, or the bucket's start (RFC 3339, UTC)
      count      the answers counted
      score      the metric's score, "-" when there is none
      interval   the score's 95% confidence interval, [low, high]
      histogram  the count of each score, lowest score first
    """
    current = settings()
    with registry(current, needed=True):
        _stats(current, project, metric, channel, form, start, end, interval)


def _instant(text: str | None, flag: str) -> int | None:
    """``--from`` or ``--to`` as epoch milliseconds; ConfigError naming the flag and the forms."""
    if text is None:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(f"{flag} {text!r} is not valid: it must be {TIME_FORMATS}") from None
    return int(moment.timestamp() * 1000)


def _stats(
    settings: Settings,
    project_id: str,
    metric: str,
    channel: tuple[str, ...],
    form: tuple[str, ...],
    start_text: str | None,
    end_text: str | None,
    interval: str | None,
) -> None:
    from ..reading.stats import StatsQuery, compute

    start = _instant(start_text, "--from")
    end = _instant(end_text, "--to")
    if start is not None:
        start -= start % voxloop_core.HOUR_MS  # the window is made of whole hours
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"--to {end_text!r} must be later than --from {start_text!r}")

    async def run() -> Any:
        # What GET /v1/stats reads, through the same code; a store that doesn't exist yet has
        # no events, and a read doesn't make it.
        service = Service(settings)
        try:
            await service.connect()
            project = service.registry.project(project_id, reload=True)
            unknown = sorted(set(channel) - project.channels)
            if unknown:
                raise ConfigError(f"project {project.id!r} has no channel {', '.join(unknown)}")
            channels = channel or tuple(sorted(project.channels))
            query = StatsQuery(
                metric=metric,
                channels={c: form or None for c in channels if await service.has_store(c)},
                start_ms=start,
                end_ms=end,
                interval=cast(voxloop_core.Interval | None, interval),
            )
            return await compute(service, project.id, query)
        finally:
            await service.close()

    answer = asyncio.run(run())
    rows = []
    for label, bucket in [("total", answer.total)] + [
        (b.start or "", b) for b in answer.series or []
    ]:
        score = "-" if bucket.score is None else f"{bucket.score:.1f}"
        between = "-"
        if bucket.low is not None and bucket.high is not None:
            between = f"[{bucket.low:.1f}, {bucket.high:.1f}]"
        rows.append((label, str(bucket.count), score, between, str(bucket.histogram)))
    columns: list[str | tuple[str, str]] = [
        "bucket",
        ("count", "right"),
        ("score", "right"),
        "interval",
        "histogram",
    ]
    print_table(columns, rows)
