"""``core``, ``init`` and ``migrate``: what the gateway runs, its first project and owner, its
schema."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

import voxloop_core

from .. import migrate as schema
from ..control.passwords import configured_hasher
from ..control.people import People, check_email
from ..errors import ConfigError
from ..routes.demo import DEMO_PROJECT
from .base import cli, print_keys, registry, settings
from .users import print_one_time


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


@cli.command(short_help="create a data dir, a project, its two keys and the first owner")
@click.option("--project", default=DEMO_PROJECT, show_default=True, help="the project's name")
@click.option(
    "--origin",
    multiple=True,
    metavar="URL",
    help="an origin the site key allows, as https://shop.example.com[:port] (repeatable)",
)
@click.option(
    "--owner",
    metavar="EMAIL",
    default=None,
    help="the first owner, made with a one-time password printed once (on a terminal, asked"
    " for when not given)",
)
def init(project: str, origin: tuple[str, ...], owner: str | None) -> None:
    """Create a data dir (or the registry on PostgreSQL), a project, its two keys, and the
    first owner of the dashboard.

    Prints the site key (public: web pages and apps, channel web, from each --origin) and the
    server key (secret: servers only). Keys are shown once and stored hashed. With --owner, or
    when the answer to the question asked on a terminal is not empty, it makes that user, in
    the owner group, and prints their one-time password, once: they change it at first login.
    """
    if owner is not None:
        owner = check_email(owner)  # before anything is made
    configured_hasher()  # a refused VOXLOOP_PASSWORD_COST too, before anything is made
    with registry(settings(), needed=False) as found:
        found.create_project(project)
        site, _ = found.create_key(project, "site", ["web"], origin)
        server, _ = found.create_key(project, "server")
        print_keys(project, site, server)
        if owner is None and sys.stdin.isatty():
            owner = ask_owner()
        if owner is not None:
            user, password = People(found.db).create_user(owner, ["owner"])
            print_one_time(user, password)


def ask_owner() -> str | None:
    """The first owner's email, asked on the terminal until valid; None for an empty answer."""

    def valid(answer: str) -> str | None:
        if not answer.strip():
            return None
        try:
            return check_email(answer)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None  # click asks again

    answer: str | None = click.prompt(
        "the first owner's email, for the dashboard (empty: none for now)",
        default="",
        show_default=False,
        value_proc=valid,
    )
    return answer


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
