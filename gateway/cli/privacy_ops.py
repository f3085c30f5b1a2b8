"""``erase`` and ``purge``: answer an erasure request, apply the retention windows now.

``erase PROJECT --respondent ID`` removes one person's events from every channel store, with
what the control plane holds of them (:mod:`..privacy.erasure`); ``--form``, ``--from``/``--to``
and ``--all`` erase by form, by time range, or the whole project. ``--dry-run`` counts what
would go. Each prints the receipt: events removed per channel, and its id. An erasure cut short
(a crash, a kill) is finished by running the same command again.

``purge`` applies each project's retention (:mod:`..privacy.retention`) to the end, as the
gateway's background job does a bit at a time; ``--dry-run`` prints what would go. Both work
on SQLite or PostgreSQL, with or without a gateway running, and leave an audit record
(``cli:operator``).
"""

from __future__ import annotations

import asyncio
import sys
import time

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import ApiError, ConfigError
from ..privacy import erasure, retention
from ..privacy.audit import CLI_ACTOR
from ..reading import find
from ..reading.params import instant, respondent
from ..service import Service
from ..settings import Settings
from ..stores import Selection
from .base import PROG, cli, print_table, registry, settings
from .export import _time
from .stats import TIME_FORMATS


def _progress() -> Progress:
    """A progress bar on stderr, on a terminal only."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


def _moment(text: str | None, flag: str) -> int | None:
    try:
        return instant(_time(text), flag)
    except ApiError as exc:
        raise ConfigError(exc.message) from None


@cli.command(short_help="erase a respondent, a form, a time range or a project, everywhere")
@click.argument("project")
@click.option("--respondent", "who", metavar="ID", help="the id the client sent (never stored)")
@click.option("--form", help="every event of this form")
@click.option("--from", "start", metavar="TIME", help=f"events from this time on: {TIME_FORMATS}")
@click.option("--to", "end", metavar="TIME", help="events before this time")
@click.option("--all", "every", is_flag=True, help="every event of the project")
@click.option("--dry-run", is_flag=True, help="count what would go; change nothing")
@click.option("--yes", is_flag=True, help="don't ask (needed when stdin is not a terminal)")
def erase(
    project: str,
    who: str | None,
    form: str | None,
    start: str | None,
    end: str | None,
    every: bool,
    dry_run: bool,
    yes: bool,
) -> None:
    """Erase PROJECT's events that the flags name from every channel store, with the follow-up
    items, notes, undelivered webhook payloads and emails of them; the aggregates are
    corrected in the same transactions. Prints the receipt.

    Give --respondent alone, or --form and/or --from/--to, or --all. Running it again after a
    crash or a kill finishes the erasure: each store is either erased or untouched.
    """
    named = [who is not None, form is not None or start is not None or end is not None, every]
    if sum(named) != 1:
        raise click.UsageError(
            "name what to erase: --respondent ID, or --form/--from/--to, or --all (one of them)"
        )
    start_ms, end_ms = _moment(start, "--from"), _moment(end, "--to")
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise ConfigError("--to must be after --from")
    if who is not None:
        try:
            respondent(who, lambda _: "--respondent")
        except ApiError as exc:
            raise ConfigError(exc.message) from None
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            raise ConfigError("erase changes what can't be restored: add --yes to go on")
        click.confirm(f"Erase this from project {project!r} for good?", abort=True)
    current = settings()
    with registry(current, needed=True):
        asyncio.run(_erase(current, project, who, form, start_ms, end_ms, dry_run))


async def _erase(
    settings: Settings,
    project_id: str,
    who: str | None,
    form: str | None,
    start_ms: int | None,
    end_ms: int | None,
    dry_run: bool,
) -> None:
    service = Service(settings)
    try:
        await service.connect()
        project = service.registry.project(project_id, reload=True)
        pseudonym = None if who is None else find.pseudonym(project.secret, who)
        selection = Selection(respondent=pseudonym, form=form, start_ms=start_ms, end_ms=end_ms)
        if dry_run:
            counts = await erasure.count(service, project, selection)
            print_table(
                ["channel", ("events", "right")], [[c, f"{n:,}"] for c, n in counts.items()]
            )
            print(f"{PROG}: would erase {sum(counts.values()):,} events; nothing changed")
            return
        for left in await erasure.unfinished(service.registry.db, project.id):
            print(f"{PROG}: erasure {left.id} of {left.requested} was left unfinished", flush=True)
        with _progress() as bar:
            task = bar.add_task(f"erasing from {project.id}", total=len(project.channels))

            def done(channel: str, events: int) -> None:
                bar.advance(task)
                print(f"{channel}: {events:,} events erased", flush=True)

            receipt = await erasure.erase(service, project, selection, CLI_ACTOR, progress=done)
        print(f"erased {receipt.events:,} events; receipt {receipt.id} at {receipt.finished}")
    finally:
        await service.close()


@cli.command(short_help="apply the retention windows now (--dry-run: say what would go)")
@click.option("--project", "projects", multiple=True, help="only this project (repeatable)")
@click.option("--dry-run", is_flag=True, help="count what would go; change nothing")
def purge(projects: tuple[str, ...], dry_run: bool) -> None:
    """Delete (or redact) every event older than its project's retention window, in bounded
    batches, to the end; the aggregates stay. Projects without a window are left alone.
    """
    current = settings()
    with registry(current, needed=True):
        asyncio.run(_purge(current, projects or None, dry_run))


async def _purge(settings: Settings, projects: tuple[str, ...] | None, dry_run: bool) -> None:
    service = Service(settings)
    try:
        await service.connect()
        for name in projects or ():
            service.registry.project(name)  # ConfigError naming the known ones
        now = int(time.time() * 1000)
        windows, would = await retention.pending(service, now, projects)
        if dry_run or not windows:
            rows = [
                [w.project, channel, f"{w.days} days", w.mode, f"{n:,}"]
                for w in windows
                for channel, n in would.counts.get(w.project, {}).items()
            ]
            columns: list[str | tuple[str, str]] = ["project", "channel", "window", "mode"]
            columns.append(("events", "right"))
            print_table(columns, rows)
            if not windows:
                print(f"{PROG}: no project has a retention window; nothing to do")
            else:
                print(f"{PROG}: would change {would.total:,} events; nothing changed")
            return
        with _progress() as bar:
            task = bar.add_task("purging", total=would.total)

            def step(project: str, channel: str, events: int) -> None:
                bar.update(task, advance=events, description=f"{project}/{channel}")

            done = await retention.purge(
                service, now, actor=CLI_ACTOR, projects=projects, progress=step
            )
        modes = {w.project: retention.DONE[w.mode] for w in windows}
        for project, channels in done.counts.items():
            for channel, n in channels.items():
                print(f"{project} {channel}: {n:,} events {modes[project]}")
        print(f"{PROG}: purged {done.total:,} events")
    finally:
        await service.close()
