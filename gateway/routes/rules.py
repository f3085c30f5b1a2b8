"""``/v1/rules``: a project's follow-up and alert rules, listed, made, changed and deleted.

Reading needs ``view`` on the "Alerts & webhooks" section (``alerts``), changing ``edit``; both
are a person's, logged in. A change is a JSON body (``application/json``) sent with the
session's CSRF token in ``X-CSRF-Token``. A person sees and changes only the rules that read
nothing outside their scope (:func:`~..followups.rules.covers`): one outside it is answered as
one that doesn't exist (404), and making one is a 403 naming the channel or form. A rule that
can never match is a 422 naming the field (:func:`~..followups.rules.check_rule`); a rule that
made follow-up items is disabled rather than deleted (409). Each change is recorded in the
audit log (``rule.create``, ``rule.change``, ``rule.delete``).
"""

from __future__ import annotations

import time
from typing import Any, Final

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..control.access import Denied, Visible
from ..control.registry import Project
from ..errors import ApiError
from ..followups import rules
from ..followups.rules import Rule, RuleFields
from ..http.auth import person_changing, reader
from ..http.body import json_body
from ..http.responses import json_response
from ..integrations.outbox import new_id
from ..reading.formats import rfc3339
from ..reading.params import check_known
from ..service import Service
from .audit import record_request

#: The most a rule's body may hold: a few fields and up to 50 words.
NOT_FOUND: Final = "no such rule"


class RuleItem(msgspec.Struct, kw_only=True):
    """One rule as the API shows it; null narrows nothing, ``created`` is RFC 3339."""

    id: str
    name: str
    kind: str
    channels: list[str] | None
    forms: list[str] | None
    metrics: list[str] | None
    score_min: int | None
    score_max: int | None
    low: bool
    has_comment: bool | None
    words: list[str] | None
    sla_hours: int
    escalate_to: str | None
    enabled: bool
    created: str


class RulesAnswer(msgspec.Struct, kw_only=True):
    """The body of ``GET /v1/rules``: the project's rules the asker may see, oldest first."""

    rules: list[RuleItem]


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


def rule_item(rule: Rule) -> RuleItem:
    """What the API shows of ``rule``."""
    return RuleItem(
        id=rule.id,
        name=rule.name,
        kind=rule.kind,
        channels=_listed(rule.channels),
        forms=_listed(rule.forms),
        metrics=_listed(rule.metrics),
        score_min=rule.score_min,
        score_max=rule.score_max,
        low=rule.low,
        has_comment=rule.has_comment,
        words=_listed(rule.words),
        sla_hours=rule.sla_hours,
        escalate_to=rule.escalate_to,
        enabled=rule.enabled,
        created=rfc3339(rule.created_ms),
    )


async def _asker(request: Request, *, edit: bool) -> tuple[Service, Project, Visible]:
    """Who asks, on which project, and what of it they see on ``alerts``; for a change, their
    ``edit`` level and their session's CSRF token too."""
    service: Service = request.app.state.service
    access, project = await reader(request, service, "alerts")
    check_known(request.query_params, ("project",))
    if edit:
        await person_changing(request, service, access, "alerts", project, "rules are")
    return service, project, access.visible("alerts", project.id, project.channels)


async def _body(request: Request) -> dict[str, Any]:
    """The request's JSON object (see :func:`json_body`)."""
    found = await json_body(request, Any, "the rule")
    if not isinstance(found, dict):
        raise ApiError(422, "a rule must be a JSON object")
    return found


def _fields(given: dict[str, Any], project: Project, visible: Visible) -> RuleFields:
    """``given`` as a rule's fields, checked (422 naming the field) and within scope (403)."""
    try:
        fields = msgspec.convert(given, RuleFields)
    except msgspec.ValidationError as exc:
        raise ApiError(422, str(exc)) from None
    fields = rules.check_rule(fields, project.channels)
    if not rules.covers(visible, project.channels, fields):
        for channel in fields.channels or ():
            if channel not in visible:
                raise Denied(f"channel {channel!r} is outside your access")
        for form in fields.forms or ():
            if not any(forms is None or form in forms for forms in visible.values()):
                raise Denied(f"form {form!r} is outside your access")
        what = "channels" if fields.channels is None else "forms"
        raise Denied(f"{what} are required: you may not see every one of the project's")
    return fields


def _settable(rule: Rule) -> dict[str, Any]:
    """The fields of a stored rule, for a change to be laid over."""
    return {name: getattr(rule, name) for name in RuleFields.__struct_fields__}


async def list_rules(request: Request) -> Response:
    """``GET /v1/rules``: the project's rules within the asker's scope."""
    service, project, visible = await _asker(request, edit=False)

    async def read(conn: AsyncConnection) -> list[Rule]:
        return await rules.project_rules(conn, project.id)

    found = await service.registry.db.arun(read)
    shown = [rule_item(r) for r in found if rules.covers(visible, project.channels, r)]
    service.metrics.request("rules", 200)
    return json_response(200, RulesAnswer(rules=shown), {})


async def create_rule(request: Request) -> Response:
    """``POST /v1/rules``: a new rule (201)."""
    service, project, visible = await _asker(request, edit=True)
    fields = _fields(await _body(request), project, visible)
    rule = Rule(
        **msgspec.structs.asdict(fields),
        id=new_id("rule_"),
        project=project.id,
        created_ms=time.time_ns() // 1_000_000,
    )

    async def write(conn: AsyncConnection) -> None:
        await rules.insert_rule(conn, rule)

    await service.registry.db.arun(write, write=True)
    detail = {"name": rule.name, "kind": rule.kind}
    await record_request(
        request, action="rule.create", project=project.id, target=rule.id, detail=detail
    )
    service.metrics.request("rules", 201)
    return json_response(201, rule_item(rule), {})


async def change_rule(request: Request) -> Response:
    """``PATCH /v1/rules/{id}``: the fields given replace the rule's (null widens a narrowing
    field back to "any"); the rule as changed is checked whole."""
    service, project, visible = await _asker(request, edit=True)
    rule_id = request.path_params["id"]
    given = await _body(request)

    async def write(conn: AsyncConnection) -> Rule:
        rule = await rules.get_rule(conn, project.id, rule_id)
        if rule is None or not rules.covers(visible, project.channels, rule):
            raise ApiError(404, NOT_FOUND)
        fields = _fields({**_settable(rule), **given}, project, visible)
        changed = Rule(
            **msgspec.structs.asdict(fields),
            id=rule.id,
            project=rule.project,
            created_ms=rule.created_ms,
        )
        await rules.replace_rule(conn, changed)
        return changed

    changed = await service.registry.db.arun(write, write=True)
    detail = {"name": changed.name, "changed": sorted(given)}
    await record_request(
        request, action="rule.change", project=project.id, target=rule_id, detail=detail
    )
    service.metrics.request("rules", 200)
    return json_response(200, rule_item(changed), {})


async def delete_rule(request: Request) -> Response:
    """``DELETE /v1/rules/{id}``: 204; 409 for a rule whose items name it."""
    service, project, visible = await _asker(request, edit=True)
    rule_id = request.path_params["id"]

    async def write(conn: AsyncConnection) -> None:
        rule = await rules.get_rule(conn, project.id, rule_id)
        if rule is None or not rules.covers(visible, project.channels, rule):
            raise ApiError(404, NOT_FOUND)
        await rules.delete_rule(conn, project.id, rule.id)

    await service.registry.db.arun(write, write=True)
    await record_request(request, action="rule.delete", project=project.id, target=rule_id)
    service.metrics.request("rules", 204)
    return Response(status_code=204)


def routes() -> list[Route]:
    """The routes of ``/v1/rules``, for ``create_app``."""
    return [
        Route("/v1/rules", list_rules, methods=["GET"], name="rules"),
        Route("/v1/rules", create_rule, methods=["POST"], name="rules"),
        Route("/v1/rules/{id}", change_rule, methods=["PATCH"], name="rules"),
        Route("/v1/rules/{id}", delete_rule, methods=["DELETE"], name="rules"),
    ]


__all__ = ["RuleItem", "RulesAnswer", "routes"]
