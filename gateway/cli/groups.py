"""``groups create``, ``list``, ``grant``, ``scope``, ``add-user`` and ``remove-user``; each
change is recorded in the audit log as the operator's."""

from __future__ import annotations

from typing import Any, cast

import click

from ..control.access import LEVELS, SECTIONS, Level, Scope, Section
from ..control.groups import Group
from ..privacy import audit
from .base import Choice, cli, print_table
from .users import people

COLUMNS = ["group", "project", "channels", "forms", "levels", "members"]


class LevelOf(click.ParamType[tuple[str, str], Any]):
    """``SECTION=LEVEL``, as ``--level`` takes it."""

    name = "SECTION=LEVEL"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        section, equals, level = str(value).partition("=")
        if not equals or section not in SECTIONS or level not in LEVELS:
            self.fail(
                f"{value!r} must be SECTION=LEVEL (SECTION: {', '.join(SECTIONS)};"
                f" LEVEL: {', '.join(LEVELS)})",
                param,
                ctx,
            )
        return section, level


def group_rows(group: Group) -> list[tuple[str, ...]]:
    """A group as ``groups list`` shows it: a row per project it covers (``*``: every one)."""
    granted = [f"{s}={group.levels[s]}" for s in SECTIONS if group.levels.get(s, "none") != "none"]
    common = (",".join(granted) or "-", ",".join(group.members) or "-")
    if group.scopes is None:
        return [(group.name, "*", "*", "*", *common)]
    if not group.scopes:
        return [(group.name, "-", "-", "-", *common)]
    return [
        (group.name, scope.project, _names(scope.channels), _names(scope.forms), *common)
        for scope in group.scopes
    ]


def _names(names: frozenset[str] | None) -> str:
    return "*" if names is None else ",".join(sorted(names))


def _scope_detail(channel: tuple[str, ...], form: tuple[str, ...]) -> dict[str, object]:
    """A scope as the audit log keeps it: its channels and forms, None for all of them."""
    return {"channels": sorted(channel) or None, "forms": sorted(form) or None}


def _show(group: Group) -> None:
    print_table(COLUMNS, group_rows(group), header=False)


def _scope(project: str, channel: tuple[str, ...], form: tuple[str, ...]) -> Scope:
    return Scope(project, frozenset(channel) or None, frozenset(form) or None)


CHANNEL_HELP = "only this channel of the project (repeatable; default: all its channels)"
FORM_HELP = "only this form (repeatable; default: all forms)"


@cli.group(short_help="create, list or change access groups")
def groups() -> None:
    """Create, list or change access groups: what their members may see and do.

    A group gives a level (none, view or edit) on each section (dashboard, responses, exports,
    inbox, alerts, settings, users) over its scope: one or more projects, each optionally
    narrowed to channels and forms. The built-in groups owner (edit everywhere) and admin (the
    same, but only view on users) cover every project and can't be changed.
    """


@groups.command(short_help="create an access group over a project")
@click.argument("name")
@click.option("--project", required=True, help="the project the group covers")
@click.option("--channel", multiple=True, help=CHANNEL_HELP)
@click.option("--form", multiple=True, help=FORM_HELP)
@click.option(
    "--level",
    multiple=True,
    type=LevelOf(),
    help=f"a level on a section, as SECTION=LEVEL: SECTION one of {', '.join(SECTIONS)}, LEVEL"
    f" one of {', '.join(LEVELS)} (repeatable; sections not given: none)",
)
def create(
    name: str,
    project: str,
    channel: tuple[str, ...],
    form: tuple[str, ...],
    level: tuple[tuple[str, str], ...],
) -> None:
    """Create the group NAME (1-64 of a-z 0-9 _ -) over --project, narrowed to each --channel
    and --form given, with each --level. `groups scope` adds more projects.

    Prints the group as `groups list` does.
    """
    levels = cast(dict[Section, Level], dict(level))
    with people() as found:
        made = found.create_group(name, levels, [_scope(project, channel, form)])
        detail = {"levels": dict(levels), "scope": _scope_detail(channel, form)}
        audit.record_sync(
            found.db, action="group.create", project=project, target=name, detail=detail
        )
    _show(made)


@groups.command(name="list", short_help="list the access groups")
def list_() -> None:
    """List the access groups: a row per group and project it covers.

    On a terminal the table has a header; piped, each line is "GROUP  PROJECT  CHANNELS  FORMS
    LEVELS  MEMBERS": "*" for every project, channel or form; LEVELS as SECTION=LEVEL for the
    sections not at none; lists comma-separated, "-" for none; columns aligned.
    """
    with people() as found:
        rows = [row for group in found.groups() for row in group_rows(group)]
    print_table(COLUMNS, rows, header=False)


@groups.command(short_help="set a group's level on a section")
@click.argument("name")
@click.argument("section", type=Choice(list(SECTIONS)), metavar="SECTION")
@click.argument("level", type=Choice(list(LEVELS)), metavar="LEVEL")
def grant(name: str, section: str, level: str) -> None:
    """Set the LEVEL (none, view or edit) of the group NAME on SECTION (dashboard, responses,
    exports, inbox, alerts, settings, users, privacy or audit). Prints the group."""
    with people() as found:
        changed = found.grant(name, cast(Section, section), cast(Level, level))
        detail = {"section": section, "level": level}
        audit.record_sync(found.db, action="group.grant", target=name, detail=detail)
    _show(changed)


@groups.command(short_help="add or change a project in a group's scope, or remove it")
@click.argument("name")
@click.argument("project")
@click.option("--channel", multiple=True, help=CHANNEL_HELP)
@click.option("--form", multiple=True, help=FORM_HELP)
@click.option("--remove", is_flag=True, help="stop covering PROJECT instead")
def scope(
    name: str, project: str, channel: tuple[str, ...], form: tuple[str, ...], remove: bool
) -> None:
    """Make the group NAME cover PROJECT, narrowed to each --channel and --form given (what it
    covered of PROJECT before is replaced); with --remove, stop covering it. Prints the group."""
    if remove and (channel or form):
        raise click.UsageError("--remove takes no --channel or --form")
    with people() as found:
        if remove:
            changed = found.remove_scope(name, project)
        else:
            changed = found.set_scope(name, _scope(project, channel, form))
        detail = {"remove": True} if remove else _scope_detail(channel, form)
        audit.record_sync(
            found.db, action="group.scope", project=project, target=name, detail=detail
        )
    _show(changed)


@groups.command(name="add-user", short_help="put a user in a group")
@click.argument("name")
@click.argument("email")
def add_user(name: str, email: str) -> None:
    """Put the user EMAIL in the group NAME; it counts from their next request. Prints the
    group."""
    with people() as found:
        changed = found.add_user(name, email)
        audit.record_sync(found.db, action="group.add_user", target=name, detail={"user": email})
    _show(changed)


@groups.command(name="remove-user", short_help="take a user out of a group")
@click.argument("name")
@click.argument("email")
def remove_user(name: str, email: str) -> None:
    """Take the user EMAIL out of the group NAME; it counts from their next request. Prints the
    group."""
    with people() as found:
        changed = found.remove_user(name, email)
        detail = {"user": email}
        audit.record_sync(found.db, action="group.remove_user", target=name, detail=detail)
    _show(changed)
