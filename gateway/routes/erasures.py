"""``POST /v1/erasures`` and ``GET /v1/erasures/{id}``: erase a form, a time range or a project.

The body names what goes: ``{"form": F}``, ``{"from": T, "to": T}`` (RFC 3339, either or
both, with or without a form), or ``{"all": true}`` for every event of the project. The erasure
runs in the gateway's background and the answer is 202 with its receipt, unfinished, and a
``Location`` to read it again; ``GET /v1/erasures/{id}`` answers the receipt, with ``finished``
and its counts per channel once done. An erasure cut short (a stop, a crash) is finished by the
gateway's background work (:func:`~..privacy.erasure.resume`), or by asking for it again.

Who may: a server key of the project, or a person with ``edit`` on the ``privacy`` section of
the whole project (an erasure reaches every channel and form), with the session's CSRF token in
``X-CSRF-Token``; reading a receipt needs ``view``. Read keys never erase.
:func:`privacy_asker` is the check, for these routes and ``/v1/respondents/{respondent}``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from voxloop_core import FORM_PATTERN

from ..control.access import Access, Denied, Grant, Level, Scope
from ..control.registry import Project
from ..errors import ApiError
from ..http.auth import authenticate, person_changing, reader, request_address
from ..http.body import json_body
from ..http.responses import json_response
from ..privacy import audit, erasure
from ..reading.params import check_known, instant
from ..service import Service
from ..stores import Selection

#: The fields of an erasure's body.
FIELDS: Final = ("form", "from", "to", "all")
_FORM: Final = re.compile(FORM_PATTERN)
_log = logging.getLogger(__name__)


class Asker(msgspec.Struct, frozen=True):
    """Who asks about a project's privacy: their access, the project, and the audit's actor."""

    access: Access
    project: Project
    actor: str
    address: str


async def privacy_asker(request: Request, service: Service, level: Level) -> Asker:
    """The asker of a privacy route, with ``level`` on the ``privacy`` section.

    A server key has every level on its project; a read key none (403); a person what their
    groups grant, and a change (``edit``) carries their session's CSRF token.
    """
    address = request_address(request, service)
    header = request.headers.get("authorization", "")
    raw = header.partition(" ")[2].strip()
    if header and service.registry.kind_of(raw) == "server":
        key, project = authenticate(request, service)
        asked = request.query_params.getlist("project")
        if asked and asked != [project.id]:
            raise Denied(f"this key reads project {project.id!r} only")
        actor = audit.key_actor(key.id)
        grant = Grant(actor, {"privacy": "edit"}, (Scope(project.id),))
        return Asker(Access(actor, (grant,)), project, actor, address)
    access, project = await reader(request, service, "privacy")
    if level == "edit":
        await person_changing(request, service, access, "privacy", project, "an erasure is")
    access.require("privacy", level, project.id)
    return Asker(access, project, access.who, address)


def whole_project(asker: Asker) -> None:
    """Refuse an erasure to whoever may not see the whole project on ``privacy`` (403)."""
    project = asker.project
    seen = asker.access.visible("privacy", project.id, project.channels)
    if seen.keys() != project.channels or any(forms is not None for forms in seen.values()):
        raise Denied(
            f"an erasure reaches every channel and form of project {project.id!r}:"
            " it needs privacy edit on the whole project"
        )


def selection_of(body: Any) -> Selection:
    """The erasure a body asks for; 422 naming the field and its rule."""
    if not isinstance(body, dict):
        raise ApiError(422, "an erasure must be a JSON object")
    for name in body:
        if name not in FIELDS:
            raise ApiError(422, f"unknown field {name!r}; known: {', '.join(FIELDS)}")
    every = body.get("all")
    if every is not None and every is not True:
        raise ApiError(422, "all must be true (or left out)")
    form = body.get("form")
    if form is not None and (not isinstance(form, str) or not _FORM.fullmatch(form)):
        raise ApiError(422, "form must be 1-64 characters of A-Z a-z 0-9 . _ -")
    times = {}
    for name in ("from", "to"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise ApiError(422, f"{name} must be an RFC 3339 time as a string")
        try:
            times[name] = instant(value, name)
        except ApiError as exc:
            raise ApiError(422, exc.message) from None
    start, end = times["from"], times["to"]
    if start is not None and end is not None and end <= start:
        raise ApiError(422, "to must be after from")
    selection = Selection(form=form, start_ms=start, end_ms=end)
    if every and selection != Selection():
        raise ApiError(422, "all erases the whole project: give it alone, without form or times")
    if not every and selection == Selection():
        raise ApiError(422, "name what to erase: form, from/to, or all: true for the project")
    return selection


async def post_erasure(request: Request) -> Response:
    """``POST /v1/erasures``: start an erasure; 202 with its unfinished receipt."""
    service: Service = request.app.state.service
    asker = await privacy_asker(request, service, "edit")
    check_known(request.query_params, ("project",))
    whole_project(asker)
    selection = selection_of(await json_body(request, Any, "the erasure"))
    started = await erasure.begin(service.registry.db, asker.project.id, selection, asker.actor)
    task = asyncio.get_running_loop().create_task(_run(service, asker, selection))
    # Held until done (the loop keeps only a weak reference to a task).
    running: set[asyncio.Task[None]] = getattr(request.app.state, "erasures", set())
    request.app.state.erasures = running
    running.add(task)
    task.add_done_callback(running.discard)
    found = await erasure.receipt(service.registry.db, asker.project.id, started)
    assert found is not None
    service.metrics.request("erasures", 202)
    headers = {"Location": f"/v1/erasures/{found.id}"}
    return json_response(202, found, headers)


async def _run(service: Service, asker: Asker, selection: Selection) -> None:
    try:
        await erasure.erase(service, asker.project, selection, asker.actor, address=asker.address)
    except Exception:
        _log.exception(
            "erasure in project %s failed; the gateway finishes it later", asker.project.id
        )


async def get_erasure(request: Request) -> Response:
    """``GET /v1/erasures/{id}``: the receipt; 404 for one unknown (or another project's)."""
    service: Service = request.app.state.service
    asker = await privacy_asker(request, service, "view")
    check_known(request.query_params, ("project",))
    found = await erasure.receipt(service.registry.db, asker.project.id, request.path_params["id"])
    if found is None:
        raise ApiError(404, "no such erasure")
    service.metrics.request("erasures", 200)
    return json_response(200, found, {})


def routes() -> list[Route]:
    """The routes of ``/v1/erasures``, for ``create_app``."""
    return [
        Route("/v1/erasures", post_erasure, methods=["POST"], name="erasures"),
        Route("/v1/erasures/{id}", get_erasure, methods=["GET"], name="erasures"),
    ]


__all__ = ["Asker", "privacy_asker", "routes", "selection_of", "whole_project"]
