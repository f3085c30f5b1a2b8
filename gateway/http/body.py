"""Read a request body within a size limit, inflating gzip without ever inflating past it.

The gateway takes bodies from the public internet, so reading one must cost at most about
``limit`` bytes of memory and work whatever the client sends: a ``Content-Length`` that lies, an
endless chunked stream, or a gzip bomb (a few kilobytes that inflate to gigabytes). The limit
applies to the body *after* decompression, as the wire contract says, and also to the compressed
bytes on the wire.

Errors: ``BodyRefused`` (``gateway.errors``) with 413 too large, 400 malformed or 415 an
unsupported encoding.
"""

from __future__ import annotations

import zlib
from typing import Final, TypeVar

import msgspec
from starlette.requests import Request

from ..errors import ApiError, BodyRefused

__all__ = ["BodyRefused", "Head", "head_of", "media_type", "read_body"]

#: ``Content-Encoding`` values that mean "not encoded"; an absent header means the same.
_IDENTITY = frozenset({"", "identity"})
#: ``Content-Encoding`` values we inflate as one gzip member (``x-gzip`` is the RFC 9110 alias).
_GZIP = frozenset({"gzip", "x-gzip"})


class Head(msgspec.Struct, gc=False):
    """The headers the events route reads, each taken from the request once.

    Single headers are the first of their name (as ``request.headers.get`` gives them);
    ``content_length`` and ``content_encoding`` are every header of the name, in order. A
    struct (made in C) rather than a named tuple: it is made for every request.
    """

    authorization: str | None
    origin: str | None
    forwarded_for: str | None
    content_type: str | None
    content_length: list[str]
    content_encoding: list[str]


def head_of(request: Request) -> Head:
    """The :class:`Head` of ``request``, read in one pass over its headers.

    Looking each header up in ``request.headers`` scans and decodes the list again every time,
    which the events route, answering most of a gateway's requests, would pay half a dozen
    times. Names in the scope are lower case (ASGI), as ``request.headers`` expects too.
    """
    raw = request.scope["headers"]
    found = dict(raw) if type(raw) is list else None
    if found is None or len(found) != len(raw):  # a name repeated: the general reading
        headers = request.headers
        return Head(
            headers.get("authorization"),
            headers.get("origin"),
            headers.get("x-forwarded-for"),
            headers.get("content-type"),
            headers.getlist("content-length"),
            headers.getlist("content-encoding"),
        )
    authorization = found.get(b"authorization")
    origin = found.get(b"origin")
    forwarded_for = found.get(b"x-forwarded-for")
    content_type = found.get(b"content-type")
    length = found.get(b"content-length")
    encoding = found.get(b"content-encoding")
    return Head(
        None if authorization is None else authorization.decode("latin-1"),
        None if origin is None else origin.decode("latin-1"),
        None if forwarded_for is None else forwarded_for.decode("latin-1"),
        None if content_type is None else content_type.decode("latin-1"),
        [] if length is None else [length.decode("latin-1")],
        [] if encoding is None else [encoding.decode("latin-1")],
    )


def media_type(request: Request, head: Head | None = None) -> str:
    """The request's ``Content-Type`` without its parameters, lower-cased; ``""`` if none.

    ``head`` is the request's :func:`head_of` when the caller already read it.
    """
    value = request.headers.get("content-type") if head is None else head.content_type
    return (value or "").partition(";")[0].strip().lower()


def _gunzipper() -> zlib._Decompress:
    """A decompressor for one gzip member (a seam so tests can count the work it does)."""
    return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)


def _declared_length(values: list[str], limit: int) -> int | None:
    """The ``Content-Length`` if there is one, refusing a malformed or too large one up front."""
    if not values:
        return None
    # Several Content-Length headers are only acceptable when they agree (RFC 9110 §8.6).
    distinct = {value.strip() for value in values}
    if len(distinct) != 1:
        shown = ", ".join(sorted(repr(value) for value in distinct))
        raise BodyRefused(400, f"Content-Length headers disagree: {shown}")
    (text,) = distinct
    # str.isdigit() also accepts non-ASCII digits such as '١٢', which HTTP does not.
    if not (text.isascii() and text.isdigit()):
        raise BodyRefused(400, f"Content-Length {text!r} is not a non-negative integer")
    length = int(text)
    if length > limit:
        raise BodyRefused(413, f"Content-Length {length} is over the limit of {limit} bytes")
    return length


def _encoding(values: list[str]) -> str:
    """The body's content coding, ``"identity"`` or ``"gzip"``; anything else is a 415."""
    raw = ", ".join(values)
    coding = raw.strip().lower()
    if coding in _IDENTITY:
        return "identity"
    if coding in _GZIP:
        return "gzip"
    raise BodyRefused(415, f"Content-Encoding {raw!r} is not supported; send identity or gzip")


async def read_body(request: Request, *, limit: int, head: Head | None = None) -> bytes:
    """Read the request body, inflating gzip, refusing it once it passes ``limit`` bytes.

    The body is read chunk by chunk from the stream, so a client that lies about
    ``Content-Length`` or streams without one costs at most ``limit`` plus one chunk of memory.
    A gzip body is inflated incrementally and never more than ``limit + 1`` bytes of output are
    produced, so a gzip bomb is refused after a bounded amount of work instead of being inflated
    in full.

    Args:
        request: The incoming request; its body stream must not have been consumed yet.
        limit: The most bytes the body may have after decompression. The compressed body on the
            wire may not be larger than this either.
        head: The request's :func:`head_of`, when the caller already read it.

    Returns:
        The body, decompressed.

    Raises:
        BodyRefused: 413 if the declared length, the wire body or the inflated body is over
            ``limit``; 400 for a malformed ``Content-Length`` or a truncated, corrupt or
            trailing-data gzip body; 415 for a ``Content-Encoding`` other than identity or gzip.
    """
    if head is None:
        head = head_of(request)
    _declared_length(head.content_length, limit)
    coding = _encoding(head.content_encoding)
    if coding == "gzip":
        return await _read_gzip(request, limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyRefused(413, f"body is over the limit of {limit} bytes")
    return bytes(body)


async def _read_gzip(request: Request, limit: int) -> bytes:
    """Inflate a gzip body as it arrives, producing at most ``limit + 1`` bytes of output."""
    inflater = _gunzipper()
    body = bytearray()
    wire = 0
    async for chunk in request.stream():
        if not chunk:
            continue
        wire += len(chunk)
        if wire > limit:
            raise BodyRefused(413, f"compressed body is over the limit of {limit} bytes")
        if inflater.eof:
            raise _trailing_data()
        # One byte more than the limit allows is enough to know the body is too large. The
        # bound is always >= 1 here, which matters: a max_length of 0 would mean "unbounded".
        room = limit + 1 - len(body)
        try:
            body += inflater.decompress(chunk, room)
        except zlib.error as exc:
            raise BodyRefused(400, f"gzip body is corrupt: {exc}") from None
        if len(body) > limit:
            raise BodyRefused(
                413, f"body inflates past the limit of {limit} bytes after decompression"
            )
        # Output stopped short of `room`, so zlib consumed all of the chunk (unconsumed_tail
        # is empty) or reached the end of the gzip member (the rest is in unused_data).
        if inflater.unused_data:
            raise _trailing_data()
    if wire == 0:
        raise BodyRefused(400, "body is empty but Content-Encoding is gzip")
    if not inflater.eof:
        raise BodyRefused(400, "gzip body is truncated: it ends before the end of the gzip stream")
    return bytes(body)


def _trailing_data() -> BodyRefused:
    return BodyRefused(
        400, "gzip body has trailing data after the end of the gzip stream; send one gzip member"
    )


#: The media type of the JSON the routes of people's settings take (follow-ups, rules,
#: webhooks), and the most of it they read.
JSON_TYPE: Final = "application/json"
MAX_JSON_BYTES: Final = 64 * 1024
_T = TypeVar("_T")


async def json_body(request: Request, kind: type[_T], what: str = "the body") -> _T:
    """The request's JSON body as ``kind`` (``Any``: as decoded).

    Raises:
        ApiError: 415 for another media type, 400 for what isn't JSON, 422 naming the field for
            JSON of the wrong shape; BodyRefused for a body over :data:`MAX_JSON_BYTES`.
    """
    if media_type(request) != JSON_TYPE:
        raise ApiError(415, f"send {what} as {JSON_TYPE}")
    raw = await read_body(request, limit=MAX_JSON_BYTES)
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise ApiError(422, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None
