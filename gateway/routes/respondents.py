"""``/v1/respondents/{respondent}``: one person's data, read a page at a time, exported whole
(GDPR Art. 15) or erased (Art. 17).

``GET …/responses`` pages through everything they said on every channel the asker may see,
oldest first. ``GET /v1/respondents/{respondent}`` exports everything held about them as one
JSON document (:mod:`..privacy.access_export`), and ``DELETE`` erases it on every channel
(:mod:`..privacy.erasure`), answering the receipt; both need the ``privacy`` section (a server
key has it; a person ``view`` to read, ``edit`` of the whole project to erase).

``{respondent}`` is the id the client sent with its events (a user id, an email address). The
gateway never stored it: it hashes it with the project's secret, as ingest did, and looks the
pseudonym up, so the id is never kept, and the access log shows the path without it.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response

from ..http.auth import reader
from ..http.responses import json_response
from ..privacy import audit, erasure
from ..privacy.access_export import respondent_data
from ..reading import find
from ..reading.params import check_known, read_query, respondent, scope
from ..service import Service
from ..stores import Selection
from .privacy_asker import privacy_asker, whole_project
from .responses import page_answer

#: The route's path: ``{respondent}`` is any text, slashes and line breaks too.
RESPONDENTS_PATH = "/v1/respondents/{respondent:anytext}/responses"
#: The path of one respondent's data. Listed after :data:`RESPONDENTS_PATH`, so that
#: ``…/responses`` is the page of responses.
RESPONDENT_PATH = "/v1/respondents/{respondent:anytext}"


class AnyText(Convertor[str]):
    """Any text (Starlette's ``path`` stops at a line break): a respondent id is whatever the
    client sent, percent-encoded; the route checks its length."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


# Starlette looks convertors up by name when a route is made; the name means the same to all.
register_url_convertor("anytext", AnyText())


async def respondent_responses(request: Request) -> Response:
    """Answer ``GET /v1/respondents/{respondent}/responses``; the filters of /v1/responses."""
    service: Service = request.app.state.service
    access, project = await reader(request, service, "responses")
    client_id = respondent(request.path_params["respondent"])
    query = read_query(
        request.query_params,
        project,
        access,
        "responses",
        paged=True,
        oldest_first=True,
        respondent=find.pseudonym(project.secret, client_id),
    )
    rows, after = await find.page(service, query)  # StoreError: 503
    service.metrics.request("respondents", 200)
    return json_response(200, page_answer(query, project.secret, rows, after), {})


async def get_respondent(request: Request) -> Response:
    """Answer ``GET /v1/respondents/{respondent}``: everything held about them, as JSON."""
    service: Service = request.app.state.service
    asker = await privacy_asker(request, service, "view")
    check_known(request.query_params, ("project",))
    project = asker.project
    pseudonym = find.pseudonym(project.secret, respondent(request.path_params["respondent"]))
    channels = scope(asker.access, "privacy", project, None, None)
    answer = await respondent_data(service, project.id, pseudonym, channels)
    await audit.record(
        service.registry.db,
        actor=asker.actor,
        action="respondent.export",
        project=project.id,
        target=pseudonym,
        detail={
            "channels": list(channels),
            "responses": len(answer.responses),
            "followups": len(answer.followups),
        },
        address=asker.address,
    )
    service.metrics.request("respondents", 200)
    return json_response(200, answer, {})


async def erase_respondent(request: Request) -> Response:
    """Answer ``DELETE /v1/respondents/{respondent}``: erase them everywhere; the receipt."""
    service: Service = request.app.state.service
    asker = await privacy_asker(request, service, "edit", "an erasure is")
    check_known(request.query_params, ("project",))
    whole_project(asker, "an erasure reaches")
    project = asker.project
    pseudonym = find.pseudonym(project.secret, respondent(request.path_params["respondent"]))
    receipt = await erasure.erase(
        service, project, Selection(respondent=pseudonym), asker.actor, address=asker.address
    )  # StoreError: 503, and the receipt stays unfinished until asked again
    service.metrics.request("respondents", 200)
    return json_response(200, receipt, {})
