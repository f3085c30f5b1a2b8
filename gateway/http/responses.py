"""The gateway's JSON answers: encoded once with msgspec, and the contract's ``{"error": ...}``."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from starlette.responses import Response

from ..errors import ApiError


class ErrorAnswer(msgspec.Struct):
    """The body of every other refusal: what was wrong and where."""

    error: str


_encode = msgspec.json.Encoder().encode


class JsonAnswer(Response):
    """A JSON answer, its headers made directly: Starlette's ``Response`` would lower-case and
    search them for a length and a type of their own, on every batch of events answered."""

    media_type = "application/json"

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", b"%d" % len(body)),
            (b"content-type", b"application/json"),
            *[
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in headers.items()
            ],
        ]


def json_response(status: int, body: msgspec.Struct, headers: Mapping[str, str]) -> Response:
    """A JSON answer encoded with msgspec; ``headers`` have neither a length nor a type."""
    return JsonAnswer(status, _encode(body), headers)


def error_response(exc: ApiError, headers: dict[str, str]) -> Response:
    """The contract's ``{"error": ...}`` answer for ``exc``."""
    return json_response(exc.status, ErrorAnswer(exc.message), {**headers, **exc.headers})
