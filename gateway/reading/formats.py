"""Responses written out: the API's JSON item, CSV rows and NDJSON lines, a page at a time.

One :class:`ResponseItem` is what every reader sees of a response, in the API, in an NDJSON
export and, a column per field, in a CSV export. CSV follows RFC 4180 (UTF-8, CRLF, fields with
a comma, quote or line break quoted, quotes doubled), optionally after a byte order mark so
that Excel reads it as UTF-8. A cell that a spreadsheet would run as a formula (one beginning
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is neutralised as OWASP's "CSV
injection" advises: a ``'`` before it, so it is shown as the text it is and never evaluated.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import Final

import msgspec

from ..stores.reads import StoredResponse

#: What a spreadsheet reads as the start of a formula, and so is neutralised in a CSV cell.
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
BOM: Final = "\ufeff"


class ResponseItem(msgspec.Struct, kw_only=True):
    """One response as a reader sees it.

    ``ref`` names it for ``GET /v1/responses/{ref}`` (its channel and key); ``ts`` is the
    event's own time and ``received`` when the gateway stored it (RFC 3339, UTC, to the
    millisecond); ``counts`` whether it is in the scores now, ``held`` why a vote is held apart
    (``quarantined``: a link scanner's; ``late``: after the edit window), ``revised`` whether
    its vote group holds other votes (the history); ``respondent`` the stored pseudonym.
    """

    ref: str
    id: str | None
    channel: str
    form: str
    metric: str
    score: int
    comment: str | None
    locale: str | None
    tags: list[str] | None
    meta: dict[str, str | int | float | bool] | None
    ts: str
    received: str
    counts: bool
    held: str | None
    revised: bool
    respondent: str | None


#: The CSV columns, in order: the item's fields.
COLUMNS: Final = ResponseItem.__struct_fields__


def ref_of(row: StoredResponse) -> str:
    """The opaque reference of a stored response: its channel and key (32 hex digits)."""
    return f"{row.channel}.{row.key.hex()}"


def rfc3339(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 in UTC, to the millisecond: ``2026-11-23T10:00:00.000Z``."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def item(row: StoredResponse) -> ResponseItem:
    """What a reader sees of ``row``."""
    return ResponseItem(
        ref=ref_of(row),
        id=row.id,
        channel=row.channel,
        form=row.form,
        metric=row.metric,
        score=row.score,
        comment=row.comment,
        locale=row.locale,
        tags=row.tags,
        meta=row.meta,
        ts=rfc3339(row.ts_ms),
        received=rfc3339(row.received_ms),
        counts=row.counted,
        held=row.held,
        revised=row.revised,
        respondent=row.respondent,
    )


def neutralised(cell: str) -> str:
    """``cell`` as a spreadsheet must show it: a formula's start gets a ``'`` before it."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


_encode_json = msgspec.json.Encoder().encode


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return _encode_json(value).decode()  # tags and meta as JSON: unambiguous, any content
    return str(value)


def csv_head(bom: bool = False) -> bytes:
    """The first bytes of a CSV export: the optional byte order mark, then the header."""
    return ((BOM if bom else "") + _csv_lines([list(COLUMNS)])).encode()


def csv_rows(rows: Iterable[StoredResponse]) -> bytes:
    """``rows`` as CSV lines (RFC 4180), UTF-8, every cell neutralised."""
    return _csv_lines(
        [neutralised(_cell(value)) for value in msgspec.structs.astuple(item(row))] for row in rows
    ).encode()


def _csv_lines(rows: Iterable[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def ndjson_head(bom: bool = False) -> bytes:
    """Nothing: NDJSON has no header (and never a byte order mark)."""
    return b""


def ndjson_rows(rows: Iterable[StoredResponse]) -> bytes:
    """``rows`` as NDJSON: one JSON object (a :class:`ResponseItem`) a line."""
    return b"".join(_encode_json(item(row)) + b"\n" for row in rows)


class Format(msgspec.Struct, frozen=True):
    """An export format: its media type, its file extension, how its head and rows are written."""

    name: str
    media_type: str
    head: Callable[[bool], bytes]
    rows: Callable[[Iterable[StoredResponse]], bytes]


FORMATS: Final[dict[str, Format]] = {
    "csv": Format("csv", "text/csv; charset=utf-8", csv_head, csv_rows),
    "ndjson": Format("ndjson", "application/x-ndjson", ndjson_head, ndjson_rows),
}


async def written(
    form: Format, pages: AsyncIterator[list[StoredResponse]], *, bom: bool = False
) -> AsyncIterator[bytes]:
    """The bytes of an export in ``form``: its head, then each page's rows as they are read."""
    yield form.head(bom)
    async for page in pages:
        yield form.rows(page)
