"""``GET /v1/responses``: the responses of a project, filtered, newest first, a page at a time;
``GET /v1/responses/{ref}``: one response, its vote history and its respondent's others.

Both read within the asker's scope on the Feedback inbox section (``responses``): a server key
sees its whole project, a read key its channels and forms, a person what their groups grant.
A ref outside the scope is answered exactly as a ref that doesn't exist (404). A response read
by its ref is recorded in the audit log (``response.read``), by whom and from where.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..errors import ApiError
from ..http.auth import reader
from ..http.responses import json_response
from ..reading import cursor, find
from ..reading.formats import ResponseItem, item
from ..reading.params import ReadQuery, check_known, read_query, scope
from ..service import Service
from ..stores.reads import Position, StoredResponse
from .audit import record_request


class ResponsesAnswer(msgspec.Struct, kw_only=True):
    """A page of responses, and the cursor of the next page (null on the last one)."""

    responses: list[ResponseItem]
    next: str | None


class ResponseDetail(msgspec.Struct, kw_only=True):
    """One response with its vote history (every vote of its vote group, oldest first, itself
    included; empty without a ``vote_key``) and up to 50 of the same respondent's other
    responses that the asker may see (newest first; empty without a respondent)."""

    response: ResponseItem
    history: list[ResponseItem]
    others: list[ResponseItem]


def page_answer(
    query: ReadQuery, secret: bytes, rows: list[StoredResponse], after: Position | None
) -> ResponsesAnswer:
    """The answer for a page: its items and the sealed cursor of the next page."""
    following = None if after is None else cursor.encode(after, secret, query.context())
    return ResponsesAnswer(responses=[item(row) for row in rows], next=following)


async def list_responses(request: Request) -> Response:
    """Answer ``GET /v1/responses``; see CONTRACT.md, "Read: responses"."""
    service: Service = request.app.state.service
    access, project = await reader(request, service, "responses")
    query = read_query(request.query_params, project, access, "responses", paged=True)
    rows, after = await find.page(service, query)  # StoreError: 503
    service.metrics.request("responses", 200)
    return json_response(200, page_answer(query, project.secret, rows, after), {})


async def get_response(request: Request) -> Response:
    """Answer ``GET /v1/responses/{ref}``: 404 alike for a ref unknown and one out of scope."""
    service: Service = request.app.state.service
    access, project = await reader(request, service, "responses")
    check_known(request.query_params, ("project",))
    channels = scope(access, "responses", project, None, None)
    ref = request.path_params["ref"]
    found = await find.detail(service, project.id, ref, channels)
    if found is None:
        raise ApiError(404, "no such response")
    await record_request(
        request, actor=access.who, action="response.read", project=project.id, target=ref
    )
    answer = ResponseDetail(
        response=item(found.response),
        history=[item(row) for row in found.history],
        others=[item(row) for row in found.others],
    )
    service.metrics.request("response", 200)
    return json_response(200, answer, {})
