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
:func:`~.privacy_asker.privacy_asker` is the check, as on every privacy route.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from voxloop_core import FORM_PATTERN

from ..errors import ApiError
from ..http.body import json_body
from ..http.responses import json_response
from ..privacy import erasure
from ..reading.params import check_known, instant
from ..service import Service
from ..stores import Selection
from .privacy_asker import Asker, privacy_asker, whole_project

#: The fields of an erasure's body.
FIELDS: Final = ("form", "from", "to", "all")
_FORM: Final = re.compile(FORM_PATTERN)
_log = logging.getLogger(__name__)


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
    asker = await privacy_asker(request, service, "edit", "an erasure is")
    check_known(request.query_params, ("project",))
    whole_project(asker, "an erasure reaches")
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


__all__ = ["routes", "selection_of"]
