"""The gateway's JSON answers: encoded once with msgspec, and the contract's ``{"error": ...}``."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from ..errors import ApiError


class ErrorAnswer(msgspec.Struct):
    """The body of every other refusal: what was wrong and where."""

    error: str


_encode = msgspec.json.Encoder().encode


def json_response(status: int, body: msgspec.Struct, headers: dict[str, str]) -> Response:
    """A JSON answer encoded with msgspec."""
    return Response(_encode(body), status, headers, media_type="application/json")


def error_response(exc: ApiError, headers: dict[str, str]) -> Response:
    """The contract's ``{"error": ...}`` answer for ``exc``."""
    return json_response(exc.status, ErrorAnswer(exc.message), {**headers, **exc.headers})
