"""``/v1/privacy/policy``: a project's privacy policy, read and changed.

The policy (:mod:`..privacy.policy`) says whether comments are scrubbed of personal data before
they are stored, with which patterns of the operator's own, and how long events are kept.
Reading needs ``view`` on the "Privacy" section (``privacy``), changing it ``edit``. Either a
server key (``sk_…``, all of its project: the backend that writes the events may say what is
kept of them) or a person logged in; a person's change carries the session's CSRF token in
``X-CSRF-Token`` and, as a policy holds for the whole project, needs the section over all of
it (a person scoped to some channels may look, not change). A read key never reads it (it
reads responses, not settings). A change is recorded in the audit log, before and after.

::

    GET /v1/privacy/policy?project=P      the policy
    PUT /v1/privacy/policy?project=P      {"scrub", "patterns", "retention_days",
                                          "retention_mode"}: the fields given replace the
                                          policy's (the others keep theirs); 200 with it
"""

from __future__ import annotations

from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..control.registry import Project
from ..http.body import json_body
from ..http.responses import json_response
from ..privacy import policy as policies
from ..privacy.policy import PatternItem, Policy, RetentionMode
from ..privacy.scrub import TYPES
from ..reading.params import check_known
from ..service import Service
from .privacy_asker import privacy_asker, whole_project

PATH: Final = "/v1/privacy/policy"


class PolicyAnswer(msgspec.Struct, kw_only=True):
    """A project's policy as the API shows it.

    ``detects`` names the built-in types of personal data a scrubbing policy replaces;
    ``retention_days`` null keeps events for ever.
    """

    project: str
    scrub: bool
    detects: list[str]
    patterns: list[PatternItem]
    retention_days: int | None
    retention_mode: RetentionMode


class PolicyChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``PUT``: any of the policy's fields (``retention_days`` null: for ever)."""

    scrub: bool | msgspec.UnsetType = msgspec.UNSET
    patterns: list[PatternItem] | msgspec.UnsetType = msgspec.UNSET
    retention_days: int | None | msgspec.UnsetType = msgspec.UNSET
    retention_mode: RetentionMode | msgspec.UnsetType = msgspec.UNSET


def answer(project: str, policy: Policy) -> PolicyAnswer:
    """What the API shows of ``project``'s ``policy``."""
    return PolicyAnswer(
        project=project,
        scrub=policy.scrub,
        detects=list(TYPES),
        patterns=[PatternItem(name, pattern) for name, pattern in policy.patterns],
        retention_days=policy.retention_days,
        retention_mode=policy.retention_mode,
    )


def changed(policy: Policy, change: PolicyChange) -> Policy:
    """``policy`` with the fields ``change`` gives, checked whole (422 naming the field)."""
    fields = {
        name: getattr(change, name)
        for name in PolicyChange.__struct_fields__
        if getattr(change, name) is not msgspec.UNSET
    }
    if "patterns" in fields:
        fields["patterns"] = tuple((p.name, p.pattern) for p in fields["patterns"])
    return policies.check_policy(msgspec.structs.replace(policy, **fields))


async def _asker(request: Request, *, edit: bool) -> tuple[Service, Project, str]:
    """The service, the project asked about and who asks (as the audit log names them)."""
    service: Service = request.app.state.service
    asker = await privacy_asker(
        request, service, "edit" if edit else "view", "privacy policies are"
    )
    check_known(request.query_params, ("project",))
    if edit:
        whole_project(asker, "a privacy policy holds for")
    return service, asker.project, asker.actor


async def get_policy(request: Request) -> Response:
    """``GET /v1/privacy/policy``: the project's policy."""
    service, project, _ = await _asker(request, edit=False)
    found = await policies.read_policy(service.registry.db, project.id)
    service.metrics.request("privacy", 200)
    return json_response(200, answer(project.id, found), {})


async def put_policy(request: Request) -> Response:
    """``PUT /v1/privacy/policy``: change the policy; 200 with it as it is now.

    Ingest applies it within a second or so: as soon as the registry reloads.
    """
    service, project, actor = await _asker(request, edit=True)
    change = await json_body(request, PolicyChange, "the policy")  # 4xx naming the field
    db = service.registry.db
    policy = changed(await policies.read_policy(db, project.id), change)
    await policies.write_policy(db, project.id, policy, actor)
    service.metrics.request("privacy", 200)
    return json_response(200, answer(project.id, policy), {})


def routes() -> list[Route]:
    """The routes of ``/v1/privacy/policy``, for ``create_app``."""
    return [
        Route(PATH, get_policy, methods=["GET"], name="privacy"),
        Route(PATH, put_policy, methods=["PUT"], name="privacy"),
    ]


__all__ = ["PATH", "PolicyAnswer", "PolicyChange", "answer", "changed", "routes"]
