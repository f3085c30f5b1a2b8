"""Who asks about a project's privacy, for every ``privacy`` route: the policy, access and
erasure requests, erasures by form, time or project.

A server key is its project's owner here: the backend that writes the events may say what is
kept of them, export a person's data and erase it. A read key has no part of it (403). A person
has what their groups grant on the ``privacy`` section; a change (``edit``) is theirs only with
their session's CSRF token, and one that holds for the whole project (a policy, an erasure)
needs the section over all of it: a person scoped to some channels may look, not change.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request

from ..control.access import Access, Denied, Grant, Level, Scope
from ..control.registry import Project
from ..http.auth import authenticate, person_changing, reader, request_address
from ..privacy import audit
from ..service import Service


class Asker(msgspec.Struct, frozen=True):
    """Who asks about a project's privacy: their access, the project, and the audit's actor."""

    access: Access
    project: Project
    actor: str
    address: str


async def privacy_asker(
    request: Request, service: Service, level: Level, changing: str = "privacy is"
) -> Asker:
    """The asker of a privacy route, with ``level`` on the ``privacy`` section.

    ``changing`` says what a change is (``"an erasure is"``), for the refusal of one made
    without a person's session.
    """
    address = request_address(request, service)
    header = request.headers.get("authorization", "")
    raw = header.partition(" ")[2].strip()
    if header and service.registry.kind_of(raw) == "server":
        key, project = authenticate(request, service)  # 401, 403 from a browser, 429
        asked = request.query_params.getlist("project")
        if asked and asked != [project.id]:
            raise Denied(f"this key reads project {project.id!r} only")
        actor = audit.key_actor(key.id)
        grant = Grant(actor, {"privacy": "edit"}, (Scope(project.id),))
        return Asker(Access(actor, (grant,)), project, actor, address)
    access, project = await reader(request, service, "privacy")
    if level == "edit":
        await person_changing(request, service, access, "privacy", project, changing)
    access.require("privacy", level, project.id)
    return Asker(access, project, access.who, address)


def whole_project(asker: Asker, what: str) -> None:
    """Refuse (403) ``what`` to whoever may not see the whole project on ``privacy``."""
    project = asker.project
    seen = asker.access.visible("privacy", project.id, project.channels)
    if seen.keys() != project.channels or any(forms is not None for forms in seen.values()):
        raise Denied(
            f"{what} every channel and form of project {project.id!r}:"
            " it needs privacy edit on the whole project"
        )


__all__ = ["Asker", "privacy_asker", "whole_project"]
