"""``/v1/alert-rules``: a project's alerts on aggregates, listed, made, changed and deleted.

Reading needs ``view`` on the "Alerts & webhooks" section (``alerts``), changing ``edit``; both
are a person's, logged in (keys read the data, not its settings). A change is a JSON body
(``application/json``) sent with the session's CSRF token in ``X-CSRF-Token``, checked before
anything is read or written. A person sees and changes only the rules that read nothing outside
their scope (:func:`~..followups.alerts.covers`): one outside it is answered as one that doesn't
exist (404), and making one is a 403 naming the channel or form. The rules and their checks are
:mod:`..followups.alerts`'s. Each change is recorded in the audit log (``alert_rule.create``,
``alert_rule.change``, ``alert_rule.delete``).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..control.access import Denied, Visible
from ..control.registry import Project
from ..errors import ApiError
from ..followups import alerts
from ..followups.alerts import AlertRule, AlertRuleFields
from ..http.auth import person_changing, reader
from ..http.body import json_body
from ..http.responses import json_response
from ..reading.formats import rfc3339
from ..reading.params import check_known
from ..service import Service
from .audit import record_request

#: The most an alert rule's body may hold: a few fields and up to 50 addresses.


class AlertRuleItem(msgspec.Struct, kw_only=True):
    """One alert rule as the API shows it; ``created`` in RFC 3339."""

    id: str
    name: str
    kind: str
    metric: str
    channel: str | None
    form: str | None
    period: str
    factor: float | None
    min_count: int
    recipients: list[str]
    enabled: bool
    created: str


class AlertRulesAnswer(msgspec.Struct, kw_only=True):
    """The body of ``GET /v1/alert-rules``: the project's rules the asker may see, oldest first."""

    alert_rules: list[AlertRuleItem]


def item(rule: AlertRule) -> AlertRuleItem:
    return AlertRuleItem(
        id=rule.id,
        name=rule.name,
        kind=rule.kind,
        metric=rule.metric,
        channel=rule.channel,
        form=rule.form,
        period=rule.period,
        factor=rule.factor,
        min_count=rule.min_count,
        recipients=list(rule.recipients),
        enabled=rule.enabled,
        created=rfc3339(rule.created_ms),
    )


def _fields(rule: AlertRule) -> dict[str, Any]:
    """The settable fields of a stored rule, for a change to be laid over."""
    return {name: getattr(rule, name) for name in AlertRuleFields.__struct_fields__}


async def _asker(request: Request, *, edit: bool) -> tuple[Service, Project, Visible]:
    """Who asks, on which project, and what of it they see on ``alerts``; for a change, their
    ``edit`` level and their session's CSRF token are checked too."""
    service: Service = request.app.state.service
    access, project = await reader(request, service, "alerts")
    check_known(request.query_params, ("project",))
    if edit:
        await person_changing(request, service, access, "alerts", project, "alert rules are")
    return service, project, access.visible("alerts", project.id, project.channels)


async def _body(request: Request) -> dict[str, Any]:
    """The request's JSON object (see :func:`json_body`)."""
    found = await json_body(request, Any, "the alert rule")
    if not isinstance(found, dict):
        raise ApiError(422, "an alert rule must be a JSON object")
    return found


def _within(visible: Visible, project: Project, rule: AlertRuleFields) -> None:
    """Denied (403) naming what of ``rule`` lies outside the asker's scope."""
    if alerts.covers(visible, project.channels, rule):
        return
    if rule.channel is not None and rule.channel not in visible:
        raise Denied(f"channel {rule.channel!r} is outside your access")
    if rule.form is not None:
        raise Denied(f"form {rule.form!r} is outside your access")
    what = "channel" if rule.channel is None else "form"
    raise Denied(f"{what} is required: you may not see every {what} of the project")


async def _found(service: Service, project: Project, visible: Visible, rule_id: str) -> AlertRule:
    rule = await alerts.get_alert_rule(service.registry.db, project.id, rule_id)
    if rule is None or not alerts.covers(visible, project.channels, rule):
        raise ApiError(404, "no such alert rule")
    return rule


async def list_rules(request: Request) -> Response:
    """``GET /v1/alert-rules``: the project's rules within the asker's scope."""
    service, project, visible = await _asker(request, edit=False)
    rules = await alerts.list_alert_rules(service.registry.db, project.id)
    shown = [item(r) for r in rules if alerts.covers(visible, project.channels, r)]
    service.metrics.request("alert_rules", 200)
    return json_response(200, AlertRulesAnswer(alert_rules=shown), {})


async def create_rule(request: Request) -> Response:
    """``POST /v1/alert-rules``: a new rule (201), checked (422 naming the field)."""
    service, project, visible = await _asker(request, edit=True)
    fields = alerts.check_alert_rule(await _body(request), channels=project.channels)
    _within(visible, project, fields)
    now_ms = time.time_ns() // 1_000_000
    rule = await alerts.create_alert_rule(service.registry.db, project.id, fields, now_ms)
    await record_request(request, action="alert_rule.create", project=project.id, target=rule.id)
    service.metrics.request("alert_rules", 201)
    return json_response(201, item(rule), {})


async def change_rule(request: Request) -> Response:
    """``PATCH /v1/alert-rules/{id}``: the fields given replace the rule's (null clears
    ``channel``, ``form`` or ``factor``); the rule as changed is checked whole."""
    service, project, visible = await _asker(request, edit=True)
    rule = await _found(service, project, visible, request.path_params["id"])
    fields = alerts.check_alert_rule(
        {**_fields(rule), **await _body(request)}, channels=project.channels
    )
    _within(visible, project, fields)
    changed = await alerts.update_alert_rule(service.registry.db, project.id, rule.id, fields)
    if changed is None:  # deleted meanwhile
        raise ApiError(404, "no such alert rule")
    await record_request(request, action="alert_rule.change", project=project.id, target=rule.id)
    service.metrics.request("alert_rules", 200)
    return json_response(200, item(changed), {})


async def delete_rule(request: Request) -> Response:
    """``DELETE /v1/alert-rules/{id}``: 204; the alerts it fired stay recorded."""
    service, project, visible = await _asker(request, edit=True)
    rule = await _found(service, project, visible, request.path_params["id"])
    if not await alerts.delete_alert_rule(service.registry.db, project.id, rule.id):
        raise ApiError(404, "no such alert rule")
    await record_request(request, action="alert_rule.delete", project=project.id, target=rule.id)
    service.metrics.request("alert_rules", 204)
    return Response(status_code=204)


def routes() -> list[Route]:
    """The routes of ``/v1/alert-rules``, for ``create_app``."""
    return [
        Route("/v1/alert-rules", list_rules, methods=["GET"], name="alert_rules"),
        Route("/v1/alert-rules", create_rule, methods=["POST"], name="alert_rules"),
        Route("/v1/alert-rules/{id}", change_rule, methods=["PATCH"], name="alert_rules"),
        Route("/v1/alert-rules/{id}", delete_rule, methods=["DELETE"], name="alert_rules"),
    ]


__all__ = ["AlertRuleItem", "AlertRulesAnswer", "routes"]
