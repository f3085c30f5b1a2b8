"""The gateway's JSON answers: encoded once with msgspec, and the contract's ``{"error": ...}``."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from ..errors import ApiError


class ErrorAnswer(msgspec.Struct):
    """The body of every other refusal: what was wrong and where."""

    error: str


_encode = msgspec.json.Encoder().encode
_JSON = b"application/json"


class JsonAnswer(Response):
    """A JSON answer whose headers are made directly, as ``Response`` would make them.

    ``Response.__init__`` renders the content and walks the headers to see which it must add;
    every answer of the events route pays that, for a body that is always bytes and headers
    that never carry a length or a type of their own.
    """

    media_type = "application/json"

    def __init__(self, body: bytes, status: int, headers: dict[str, str]) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        if not headers and 200 <= status and status != 204 and status != 304:
            # No header of the caller's (a request without CORS): the two Response would add.
            self.raw_headers = [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", _JSON),
            ]
            return
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        names = {name for name, _ in raw}
        if b"content-length" not in names and not (status < 200 or status in (204, 304)):
            raw.append((b"content-length", str(len(body)).encode("latin-1")))
        if b"content-type" not in names:
            raw.append((b"content-type", _JSON))
        self.raw_headers = raw


def json_response(status: int, body: msgspec.Struct, headers: dict[str, str]) -> Response:
    """A JSON answer encoded with msgspec."""
    return JsonAnswer(_encode(body), status, headers)


def error_response(exc: ApiError, headers: dict[str, str]) -> Response:
    """The contract's ``{"error": ...}`` answer for ``exc``."""
    return json_response(exc.status, ErrorAnswer(exc.message), {**headers, **exc.headers})
