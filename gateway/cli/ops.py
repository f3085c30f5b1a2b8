"""``core``, ``init`` and ``migrate``: what the gateway runs, its first project, its schema."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

import voxloop_core

from .. import migrate as schema
from ..routes.demo import DEMO_PROJECT
from .base import cli, print_keys, registry, settings


def core_banner() -> str:
    """One line saying which core serves, and why it is the pure one when it is."""
    if voxloop_core.FALLBACK_REASON is None:
        return f"voxloop core: {voxloop_core.IMPLEMENTATION} (compiled extension loaded)"
    return (
        f"voxloop core: {voxloop_core.IMPLEMENTATION} (pure-Python reference:"
        f" {voxloop_core.FALLBACK_REASON}); ingestion will be slower"
    )


@cli.command(short_help="say which core implementation loads, and exit")
def core() -> None:
    """Say which core implementation loads, and exit.

    Prints one line on stderr: "accelerated" (the compiled extension) or "pure" (the
    pure-Python reference, with the reason it serves). VOXLOOP_NO_EXTENSIONS=1 loads the
    reference even where the extension is built.
    """
    settings()
    print(core_banner(), file=sys.stderr)


@cli.command(short_help="create a data dir, a project and its two keys")
@click.option("--project", default=DEMO_PROJECT, show_default=True, help="the project's name")
@click.option(
    "--origin",
    multiple=True,
    metavar="URL",
    help="an origin the site key allows, as https://shop.example.com[:port] (repeatable)",
)
def init(project: str, origin: tuple[str, ...]) -> None:
    """Create a data dir (or the registry on PostgreSQL), a project and its two keys.

    Prints the site key (public: web pages and apps, channel web, from each --origin) and the
    server key (secret: servers only). Keys are shown once and stored hashed.
    """
    with registry(settings(), needed=False) as found:
        found.create_project(project)
        site, _ = found.create_key(project, "site", ["web"], origin)
        server, _ = found.create_key(project, "server")
    print_keys(project, site, server)


@cli.command(short_help="bring the registry's and the stores' schema to this version")
def migrate() -> None:
    """Bring the registry's and the stores' schema to this version.

    Prints a line per component: "COMPONENT  BEFORE -> AFTER  (WHERE)", or "at N, nothing
    to do". Each step runs in its own transaction (on PostgreSQL under an advisory lock, so two
    runs can't race). On a terminal a progress bar shows on stderr while it works.
    """
    current = settings()
    with registry(current, needed=False):
        console = Console(stderr=True)
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn())
        with Progress(
            *columns,
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not sys.stderr.isatty(),
        ) as progress:
            progress.add_task("migrating the registry and the stores", total=None)
            lines = schema.migrate(current)
    for line in lines:
        print(line)
