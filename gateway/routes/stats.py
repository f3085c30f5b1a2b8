"""``GET /v1/stats``: histograms, headline scores and their intervals (see ``reading.stats``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..http.auth import reader
from ..http.responses import json_response
from ..reading.stats import compute, parse_query
from ..service import Service


async def get_stats(request: Request) -> Response:
    """Answer ``GET /v1/stats`` for a reader of the dashboard: a server or read key, a person."""
    service: Service = request.app.state.service
    access, project = await reader(request, service, "dashboard")
    query = parse_query(request.query_params, project, access)
    answer = await compute(service, project.id, query)  # StoreError: 503
    service.metrics.request("stats", 200)
    return json_response(200, answer, {})
