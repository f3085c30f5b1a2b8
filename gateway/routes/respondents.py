"""``GET /v1/respondents/{respondent}/responses``: everything one person said, on every channel
the asker may see, oldest first, a page at a time.

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
from ..reading import find
from ..reading.params import read_query, respondent
from ..service import Service
from .responses import page_answer

#: The route's path: ``{respondent}`` is any text, slashes and line breaks too.
RESPONDENTS_PATH = "/v1/respondents/{respondent:anytext}/responses"


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
