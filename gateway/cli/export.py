"""``export``: a project's responses as CSV or NDJSON, the rows ``GET /v1/exports/…`` gives.

The command reads the stores directly, as ``stats`` does, through the same filters
(:mod:`..reading.params`) and the same pages (:mod:`..reading.find`) as the API, so the same
filters give the same rows, byte for byte. It is an operator's tool: whoever can read the data
directory or the database reads everything, so it applies no access group; scoped reading is
the API's (a read key, a person's session). Each export is recorded in the audit log as the
operator's (``cli:operator``), with its format, channels and filters.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from starlette.datastructures import QueryParams

import voxloop_core

from ..control.access import BUILTIN_LEVELS, Access, Grant
from ..control.db import PRIVATE_FILE_MODE
from ..errors import ApiError, ConfigError
from ..privacy import audit
from ..reading import find
from ..reading.formats import FORMATS, written
from ..reading.params import HELD_VALUES, read_query
from ..routes.audit import query_detail
from ..service import Service
from ..settings import Settings
from ..stores.reads import StoredResponse
from .base import PROG, Choice, cli, registry, settings
from .stats import TIME_FORMATS

#: The operator's access: every section of every project.
OPERATOR: Access = Access("cli:operator", (Grant("owner", BUILTIN_LEVELS["owner"], None),))
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def flag(name: str) -> str:
    """A filter's name as this command spells it (``score_min``: ``--score-min``)."""
    if name.startswith("meta."):
        return f"--meta {name[5:]}"
    return {"q": "--search", "project": "PROJECT"}.get(name, "--" + name.replace("_", "-"))


@cli.command(short_help="export a project's responses as CSV or NDJSON")
@click.argument("project")
@click.option(
    "--format",
    "kind",
    required=True,
    type=Choice(list(FORMATS)),
    metavar="FORMAT",
    help="csv (RFC 4180, UTF-8) or ndjson (a JSON object a line)",
)
@click.option("--channel", multiple=True, help="only this channel (repeatable)")
@click.option("--form", multiple=True, help="only this form (repeatable)")
@click.option(
    "--metric",
    multiple=True,
    type=Choice(list(voxloop_core.METRIC_RANGES)),
    metavar="METRIC",
    help=f"only this metric (repeatable): {', '.join(voxloop_core.METRIC_RANGES)}",
)
@click.option("--score-min", metavar="N", help="scores at least N")
@click.option("--score-max", metavar="N", help="scores at most N")
@click.option(
    "--has-comment",
    type=Choice(["true", "false"]),
    metavar="BOOL",
    help="true: only responses with a comment; false: only those without",
)
@click.option("--search", metavar="TEXT", help="TEXT in the comment, in any script (1-200)")
@click.option("--tag", multiple=True, help="responses carrying this tag (repeatable: all of them)")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="meta KEY is VALUE (repeatable)")
@click.option("--locale", help="only this locale (a BCP 47 tag)")
@click.option("--from", "start", metavar="TIME", help=f"from this time on: {TIME_FORMATS}")
@click.option("--to", "end", metavar="TIME", help="before this time, after --from")
@click.option(
    "--held",
    type=Choice(list(HELD_VALUES)),
    metavar="HELD",
    help="votes held apart: quarantined, late, any or none",
)
@click.option("--bom", is_flag=True, help="start a CSV with a byte order mark, for Excel")
@click.option("-o", "--output", metavar="FILE", help="write to FILE (private, 0600) not stdout")
def export(
    project: str,
    kind: str,
    channel: tuple[str, ...],
    form: tuple[str, ...],
    metric: tuple[str, ...],
    score_min: str | None,
    score_max: str | None,
    has_comment: str | None,
    search: str | None,
    tag: tuple[str, ...],
    meta: tuple[str, ...],
    locale: str | None,
    start: str | None,
    end: str | None,
    held: str | None,
    bom: bool,
    output: str | None,
) -> None:
    """Write PROJECT's responses that the filters keep, newest first, as CSV or NDJSON: the
    rows GET /v1/exports/responses.csv (or .ndjson) gives for the same filters.

    It reads the stores on SQLite or PostgreSQL and makes nothing. On a terminal, a progress
    bar counts the rows on stderr. With -o, the file appears whole once the export is done.
    """
    pairs: list[tuple[str, str]] = [("channel", c) for c in channel]
    pairs += [("form", f) for f in form] + [("metric", m) for m in metric]
    pairs += [("tag", t) for t in tag] + [_meta(text) for text in meta]
    for name, value in [
        ("score_min", score_min),
        ("score_max", score_max),
        ("has_comment", has_comment),
        ("q", search),
        ("locale", locale),
        ("from", _time(start)),
        ("to", _time(end)),
        ("held", held),
    ]:
        if value is not None:
            pairs.append((name, value))
    current = settings()
    with registry(current, needed=True):
        with _target(output) as sink:
            count = asyncio.run(_export(current, project, kind, QueryParams(pairs), bom, sink))
    if sys.stderr.isatty():
        where = output or "stdout"
        print(f"{PROG}: exported {count:,} responses to {where}", file=sys.stderr)


def _meta(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals:
        raise ConfigError(f"--meta {text!r} must be KEY=VALUE")
    return f"meta.{key}", value


def _time(text: str | None) -> str | None:
    """A date is its midnight, UTC, as ``stats`` takes it; anything else goes to the API's rule."""
    return f"{text}T00:00:00Z" if text is not None and _DATE.fullmatch(text) else text


@contextlib.contextmanager
def _target(output: str | None) -> Iterator[BinaryIO]:
    """stdout, or FILE made private and written beside it, then moved in place when whole."""
    if output is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    path = Path(output)
    part = path.with_name(path.name + ".part")
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    except OSError as exc:
        raise ConfigError(f"-o {output!r} can't be written: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as sink:
            yield sink
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


async def _export(
    settings: Settings, project_id: str, kind: str, params: QueryParams, bom: bool, sink: BinaryIO
) -> int:
    service = Service(settings)
    try:
        await service.connect()
        project = service.registry.project(project_id, reload=True)
        try:
            query = read_query(params, project, OPERATOR, "exports", paged=False, spell=flag)
        except ApiError as exc:
            raise ConfigError(exc.message) from None
        detail = {
            "format": kind,
            "channels": sorted(query.channels),
            "filters": query_detail(params),
        }
        await audit.record(
            service.registry.db,
            actor=audit.CLI_ACTOR,
            action="export",
            project=project.id,
            detail=detail,
        )
        console = Console(stderr=True)
        columns = (SpinnerColumn(), TextColumn("exporting {task.description}"), BarColumn())
        with Progress(
            *columns,
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not sys.stderr.isatty(),
        ) as progress:
            task = progress.add_task(project.id, total=None)
            count = 0

            async def counted() -> AsyncIterator[list[StoredResponse]]:
                nonlocal count
                async for page in find.pages(service, query):
                    yield page
                    count += len(page)
                    progress.update(task, completed=count)

            async for chunk in written(FORMATS[kind], counted(), bom=bom):
                sink.write(chunk)
        return count
    finally:
        await service.close()
