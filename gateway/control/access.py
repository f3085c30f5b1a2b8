"""Who may see and do what: sections, levels, scopes, and the one check every reader passes.

A person belongs to access groups; a read key (``rk_…``) is its own small group. A group gives
a level (``edit``, ``view`` or ``none``) on each section of the product and a scope: one or
more projects, each optionally narrowed to some of its channels and forms. The built-in
``owner`` group has ``edit`` on every section of every project; ``admin`` has the same but only
``view`` on users & groups (an admin can't make an owner) and nothing of the audit log.

Levels and scopes go together: a person in two groups may edit one project's inbox and only
view another's dashboard. :class:`Access` keeps each group's pair (a :class:`Grant`) and answers
per project: the level on a section, and the channels visible there, each with its own forms.
Every page, API call and export asks :meth:`Access.visible` for them, so a user scoped to
channel ``app`` gets nothing of ``web``, and one scoped to ``app``'s form ``checkout`` nothing
else of ``app``, whichever way they ask and whatever other group they are in (OWASP API1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Literal, get_args

import msgspec

from ..errors import ApiError

Section = Literal[
    "dashboard", "responses", "exports", "inbox", "alerts", "settings", "users", "privacy", "audit"
]
Level = Literal["none", "view", "edit"]

SECTIONS: Final[tuple[Section, ...]] = get_args(Section)
LEVELS: Final[tuple[Level, ...]] = get_args(Level)
#: What each section is called on pages and in the CLI's help.
SECTION_TITLES: Final[dict[Section, str]] = {
    "dashboard": "Dashboard",
    "responses": "Feedback inbox",
    "exports": "Exports",
    "inbox": "Follow-up inbox",
    "alerts": "Alerts & webhooks",
    "settings": "Keys & settings",
    "users": "Users & groups",
    "privacy": "Privacy",
    "audit": "Audit log",
}
_RANK: Final[dict[Level, int]] = {"none": 0, "view": 1, "edit": 2}
#: The built-in groups' levels; their scope is every project. Only owners read the audit log:
#: it records what admins did too.
BUILTIN_LEVELS: Final[dict[str, dict[Section, Level]]] = {
    "owner": {s: "edit" for s in SECTIONS},
    "admin": {
        s: ("view" if s == "users" else "none" if s == "audit" else "edit") for s in SECTIONS
    },
}
#: What a read key (``rk_…``) may do: read, within its scope; never write anything.
READ_KEY_LEVELS: Final[dict[Section, Level]] = {
    "dashboard": "view",
    "responses": "view",
    "exports": "view",
}


#: What one asker sees of a project on a section: each visible channel, and the forms visible
#: in it (None: every form).
Visible = dict[str, frozenset[str] | None]


class Scope(msgspec.Struct, frozen=True):
    """One project, and, when given, only these of its channels and forms (None: all of them)."""

    project: str
    channels: frozenset[str] | None = None
    forms: frozenset[str] | None = None


class Grant(msgspec.Struct, frozen=True):
    """One group's levels and scopes. ``scopes`` None means every project (owner, admin)."""

    group: str
    levels: Mapping[Section, Level]
    scopes: tuple[Scope, ...] | None

    def level(self, section: Section) -> Level:
        return self.levels.get(section, "none")

    def scope_of(self, project: str) -> Scope | None:
        """This grant's scope on ``project``: the whole project, a part of it, or None."""
        if self.scopes is None:
            return Scope(project)
        for scope in self.scopes:
            if scope.project == project:
                return scope
        return None


class Denied(ApiError):
    """The asker may not do this (403); the message says what was missing, never what is there."""

    def __init__(self, message: str) -> None:
        super().__init__(403, message)


class Access(msgspec.Struct, frozen=True):
    """Everything one person or read key may see and do; ``who`` names them in the audit log.

    Attributes:
        who: ``user:EMAIL``, or ``key:`` and a read key's public id (``key:rk_AbCdEfGh``).
        grants: one per group (a read key has one).
    """

    who: str
    grants: tuple[Grant, ...]

    def level(self, section: Section, project: str | None = None) -> Level:
        """The highest level any grant gives on ``section`` (of ``project`` when given)."""
        best: Level = "none"
        for grant in self.grants:
            if project is not None and grant.scope_of(project) is None:
                continue
            if _RANK[grant.level(section)] > _RANK[best]:
                best = grant.level(section)
        return best

    def can(self, section: Section, level: Level = "view", project: str | None = None) -> bool:
        return _RANK[self.level(section, project)] >= _RANK[level]

    def projects(self, known: Iterable[str], section: Section = "dashboard") -> list[str]:
        """The projects among ``known`` on which ``section`` is at least visible, by name."""
        return sorted(p for p in known if self.can(section, "view", p))

    def visible(self, section: Section, project: str, channels: Iterable[str]) -> Visible:
        """The channels (among the project's ``channels``) visible on ``section``, and the forms
        visible in each, from the grants with at least ``view`` on the section.

        Forms are per channel: a grant shows its forms in its own channels only. Grants that show
        the same channel unite there: every form if one of them shows every form, else the union
        of their forms. So a person in two groups that scope one project differently (``app``
        for form ``checkout`` only, ``web`` for every form) sees ``checkout`` in ``app`` and
        every form in ``web``, and nothing else of ``app``.

        Returns:
            The visible channels, in order, each with its forms (None: every form).

        Raises:
            Denied: nothing of ``project`` is visible on ``section``.
        """
        known = frozenset(channels)
        seen: Visible = {}
        for grant in self.grants:
            if _RANK[grant.level(section)] < _RANK["view"]:
                continue
            scope = grant.scope_of(project)
            if scope is None:
                continue
            for channel in known if scope.channels is None else known & scope.channels:
                before = seen.get(channel, frozenset())
                seen[channel] = (
                    None if before is None or scope.forms is None else before | scope.forms
                )
        if not seen:
            raise Denied(f"no access to {SECTION_TITLES[section]} of project {project!r}")
        return dict(sorted(seen.items()))

    def require(self, section: Section, level: Level, project: str | None = None) -> None:
        """Raise Denied unless ``level`` on ``section`` (of ``project``) is granted."""
        if not self.can(section, level, project):
            where = "" if project is None else f" of project {project!r}"
            raise Denied(f"{SECTION_TITLES[section]}{where} needs {level} access")


def narrow(
    asked: tuple[str, ...] | None, allowed: frozenset[str] | None, what: str
) -> tuple[str, ...] | None:
    """The values of a filter (``channel``/``form``) once cut to what the asker may see.

    ``asked`` None: all allowed (None stays None: no limit). A value asked for but not allowed
    raises Denied naming it, so a scoped user learns no more than "not yours".
    """
    if asked is None:
        return None if allowed is None else tuple(sorted(allowed))
    if allowed is not None:
        outside = [v for v in asked if v not in allowed]
        if outside:
            raise Denied(f"{what} {outside[0]!r} is outside your access")
    return asked


def read_key_access(key_id: str, scope: Scope) -> Access:
    """What a read key may do: view the dashboard, responses and exports of its scope."""
    grant = Grant(f"key:{key_id}", READ_KEY_LEVELS, (scope,))
    return Access(f"key:{key_id}", (grant,))
