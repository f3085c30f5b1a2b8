"""``projects create`` and ``projects list``."""

from __future__ import annotations

import click

from .base import cli, print_table, registry, settings


@cli.group(short_help="create or list projects")
def projects() -> None:
    """Create or list projects: a project has its own keys, channels, secret and stats."""


@projects.command(short_help="create a project")
@click.argument("name")
@click.option(
    "--channel",
    multiple=True,
    help="a channel besides the built-in ones: 1-64 of a-z 0-9 _ - (repeatable)",
)
def create(name: str, channel: tuple[str, ...]) -> None:
    """Create project NAME (1-64 of a-z 0-9 _ -) with the built-in channels and each --channel.

    Prints "project NAME: channels A, B, ...".
    """
    with registry(settings(), needed=False) as found:
        project = found.create_project(name, channel)
    print(f"project {project.id}: channels {', '.join(sorted(project.channels))}")


@projects.command(name="list", short_help="list the projects and their channels")
def list_() -> None:
    """List the projects: a row per project, its name then its channels (comma-separated).

    On a terminal the table has a header; piped, each line is "PROJECT  CHANNELS", columns
    aligned.
    """
    with registry(settings(), needed=True) as found:
        rows = [(p.id, ",".join(sorted(p.channels))) for p in found.projects()]
    print_table(["project", "channels"], rows, header=False)
