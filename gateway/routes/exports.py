"""``GET /v1/exports/responses.csv`` and ``.ndjson``: every response a filter keeps, streamed.

The filters and scopes of ``/v1/responses`` (without ``limit`` and ``cursor``), on the Exports
section. The rows are those the API's pages give, in the same order (newest first), read through
the keyset a thousand at a time and written as they are read: memory stays flat whatever the
size. The first page is read before the answer starts, so that a store that can't be read is a
503 rather than a cut-off file. Each export is recorded in the audit log (``export``) with its
format, the channels it read and its filters.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..http.auth import reader
from ..reading import find
from ..reading.formats import FORMATS, Format, written
from ..reading.params import boolean, read_query, single
from ..service import Service
from ..stores.reads import StoredResponse
from .audit import query_detail, record_request


async def export_csv(request: Request) -> Response:
    """Answer ``GET /v1/exports/responses.csv`` (``bom=true``: a byte order mark for Excel)."""
    return await _export(request, FORMATS["csv"])


async def export_ndjson(request: Request) -> Response:
    """Answer ``GET /v1/exports/responses.ndjson``."""
    return await _export(request, FORMATS["ndjson"])


async def _export(request: Request, form: Format) -> Response:
    service: Service = request.app.state.service
    access, project = await reader(request, service, "exports")
    extra = ("bom",) if form.name == "csv" else ()
    query = read_query(request.query_params, project, access, "exports", paged=False, extra=extra)
    bom = bool(boolean(single(request.query_params, "bom"), "bom"))
    pages = find.pages(service, query)
    first = await anext(pages, None)  # StoreError: 503, before anything is sent
    filters = query_detail(request.query_params, skip=("project", "bom"))
    detail = {"format": form.name, "channels": sorted(query.channels), "filters": filters}
    await record_request(
        request, actor=access.who, action="export", project=project.id, detail=detail
    )

    async def rows() -> AsyncIterator[list[StoredResponse]]:
        if first is not None:
            yield first
            async for page in pages:
                yield page

    stamp = datetime.fromtimestamp(time.time(), UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{project.id}-responses-{stamp}.{form.name}"
    service.metrics.request("exports", 200)
    return StreamingResponse(
        written(form, rows(), bom=bom),
        media_type=form.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
