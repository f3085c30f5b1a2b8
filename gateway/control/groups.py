"""Access groups as stored: their levels and scopes read into grants, and what a change must obey.

A group's ``levels`` are a JSON map section -> level; its scope is its ``group_scopes`` rows, a
project each with its channels and forms (JSON lists, NULL for all). The built-in groups,
``owner`` and ``admin``, have no scope rows: they cover every project, and can't be changed.
:func:`read_access` turns the groups a user is in into the :class:`~.access.Access` that every
page, API call and export asks; :class:`~.people.People` writes them with the checks here.

Each function runs on a connection in its caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import ConfigError
from .access import LEVELS, SECTIONS, Access, Grant, Level, Scope, Section
from .registry import check_form, check_name
from .tables import group_scopes, groups, memberships, projects, users

_LEVELS_JSON: Final = msgspec.json.Decoder(dict[Section, Level])
_NAMES_JSON: Final = msgspec.json.Decoder(list[str])


class Group(msgspec.Struct, frozen=True):
    """An access group: its levels per section, its scopes (None: every project), its members."""

    name: str
    builtin: bool
    levels: Mapping[Section, Level]
    scopes: tuple[Scope, ...] | None
    members: tuple[str, ...] = ()

    def grant(self) -> Grant:
        return Grant(self.name, self.levels, self.scopes)


def levels_json(levels: Mapping[Section, Level]) -> str:
    """A group's levels as stored."""
    return msgspec.json.encode(levels, order="sorted").decode()


def scope_row(group: str, scope: Scope) -> dict[str, Any]:
    """A ``group_scopes`` row of ``group`` for ``scope``."""
    return {
        "group": group,
        "project": scope.project,
        "channels": _names(scope.channels),
        "forms": _names(scope.forms),
    }


def _names(value: Iterable[str] | None) -> str | None:
    return None if value is None else msgspec.json.encode(sorted(value)).decode()


def checked_levels(levels: Iterable[tuple[str, str]]) -> dict[Section, Level]:
    """The levels given, each section and level checked (the CLI passes what people typed)."""
    checked: dict[Section, Level] = {}
    for section, level in levels:
        if section not in SECTIONS:
            raise ConfigError(f"section {section!r} must be one of {', '.join(SECTIONS)}")
        if level not in LEVELS:
            raise ConfigError(f"level {level!r} must be one of {', '.join(LEVELS)}")
        checked[section] = level
    return checked


async def check_scope(conn: AsyncConnection, scope: Scope) -> None:
    """ConfigError unless ``scope`` names a project and channels of it, and valid forms."""
    found = await conn.execute(select(projects.c.channels).where(projects.c.id == scope.project))
    channels = found.scalar()
    if channels is None:
        known = await conn.execute(select(projects.c.id).order_by(projects.c.id))
        names = ", ".join(known.scalars()) or "none yet"
        raise ConfigError(f"no project {scope.project!r}; projects: {names}")
    have = set(_NAMES_JSON.decode(channels))
    if scope.channels is not None:
        for channel in scope.channels:
            check_name("channel", channel)
        unknown = sorted(scope.channels - have)
        if unknown:
            raise ConfigError(
                f"project {scope.project!r} has no channel {', '.join(unknown)};"
                f" its channels: {', '.join(sorted(have))}"
            )
    for form in scope.forms or ():
        check_form(form)


async def known_groups(conn: AsyncConnection, names: Iterable[str]) -> None:
    """ConfigError naming the first of ``names`` that is no group, and the groups there are."""
    found = set((await conn.execute(select(groups.c.name))).scalars())
    missing = sorted(set(names) - found)
    if missing:
        raise await no_group(conn, missing[0])


async def no_group(conn: AsyncConnection, name: str) -> ConfigError:
    """The error for a group ``name`` that doesn't exist: it names those that do."""
    found = await conn.execute(select(groups.c.name).order_by(groups.c.name))
    return ConfigError(f"no group {name!r}; groups: {', '.join(found.scalars())}")


async def custom_levels(conn: AsyncConnection, name: str) -> dict[Section, Level]:
    """The levels of the group ``name``; ConfigError if it is missing or built in."""
    found = await conn.execute(
        select(groups.c.builtin, groups.c.levels).where(groups.c.name == name)
    )
    row = found.first()
    if row is None:
        raise await no_group(conn, name)
    if row.builtin:
        raise ConfigError(
            f"the built-in group {name!r} can't be changed: it covers every project;"
            " make a group of your own with `groups create`"
        )
    return _LEVELS_JSON.decode(row.levels)


async def read_groups(conn: AsyncConnection) -> list[Group]:
    """Every group with its levels, scopes and members' emails, by name."""
    scopes: dict[str, list[Scope]] = {}
    for row in await conn.execute(select(group_scopes).order_by(group_scopes.c.project)):
        scopes.setdefault(row.group, []).append(_scope(row))
    members: dict[str, list[str]] = {}
    found = await conn.execute(
        select(memberships.c.group, users.c.email)
        .join(users, users.c.id == memberships.c.user)
        .order_by(users.c.email)
    )
    for group, email in found:
        members.setdefault(group, []).append(email)
    return [
        Group(
            row.name,
            bool(row.builtin),
            _LEVELS_JSON.decode(row.levels),
            None if row.builtin else tuple(scopes.get(row.name, ())),
            tuple(members.get(row.name, ())),
        )
        for row in await conn.execute(select(groups).order_by(groups.c.name))
    ]


async def read_access(conn: AsyncConnection, user_id: str, email: str) -> Access:
    """What the user may do, from the groups they are in now: one grant a group."""
    found = await conn.execute(
        select(groups.c.name, groups.c.builtin, groups.c.levels)
        .join(memberships, memberships.c.group == groups.c.name)
        .where(memberships.c.user == user_id)
        .order_by(groups.c.name)
    )
    rows = found.all()
    custom = [row.name for row in rows if not row.builtin]
    scopes: dict[str, list[Scope]] = {}
    if custom:
        for row in await conn.execute(
            select(group_scopes)
            .where(group_scopes.c.group.in_(custom))
            .order_by(group_scopes.c.project)
        ):
            scopes.setdefault(row.group, []).append(_scope(row))
    grants = tuple(
        Grant(
            row.name,
            _LEVELS_JSON.decode(row.levels),
            None if row.builtin else tuple(scopes.get(row.name, ())),
        )
        for row in rows
    )
    return Access(f"user:{email}", grants)


def _scope(row: Any) -> Scope:
    return Scope(
        row.project,
        None if row.channels is None else frozenset(_NAMES_JSON.decode(row.channels)),
        None if row.forms is None else frozenset(_NAMES_JSON.decode(row.forms)),
    )
