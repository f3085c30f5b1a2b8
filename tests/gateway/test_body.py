"""Tests for gateway/body.py: bodies over real HTTP on loopback, plus the cases HTTP can't carry."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from voxloop_gateway.http import body as body_module
from voxloop_gateway.http.body import BodyRefused, Head, head_of, media_type, read_body

MIB = 1_048_576
LIMIT = MIB  # the contract's limit, the default of the test endpoint


class EchoEndpoint:
    """An ASGI endpoint that answers with the body read_body gives, or with its refusal.

    It counts the bytes it pulled from the server (``x-wire-read``), so the tests can see that a
    refused body was not read further than needed. ``?limit=`` sets the limit.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wire_read = 0

        async def counting_receive() -> Message:
            nonlocal wire_read
            message = await receive()
            wire_read += len(message.get("body", b""))
            return message

        request = Request(scope, counting_receive)
        limit = int(request.query_params.get("limit", LIMIT))
        response: Response
        try:
            body = await read_body(request, limit=limit)
        except BodyRefused as exc:
            response = JSONResponse({"error": exc.message}, exc.status)
        else:
            response = Response(body, media_type="application/octet-stream")
        response.headers["x-wire-read"] = str(wire_read)
        await response(scope, receive, send)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """A real gateway-like app served by uvicorn on a loopback port, for the whole module."""
    app = Starlette(routes=[Route("/echo", EchoEndpoint(), methods=["POST"])])
    config = uvicorn.Config(app, http="h11", lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped before it started serving"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not shut down"


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


class CountingInflater:
    """Wraps zlib's decompressor to count the bytes it inflates and the bounds it was given."""

    def __init__(self) -> None:
        self._inner = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self.produced = 0
        self.max_lengths: list[int] = []

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        self.max_lengths.append(max_length)
        out = self._inner.decompress(data, max_length)
        self.produced += len(out)
        return out

    @property
    def eof(self) -> bool:
        return self._inner.eof

    @property
    def unused_data(self) -> bytes:
        return self._inner.unused_data

    @property
    def unconsumed_tail(self) -> bytes:
        return self._inner.unconsumed_tail


@pytest.fixture
def inflaters(monkeypatch: pytest.MonkeyPatch) -> list[CountingInflater]:
    """Every decompressor read_body makes from now on (also in the server's thread)."""
    made: list[CountingInflater] = []

    def make() -> CountingInflater:
        made.append(CountingInflater())
        return made[-1]

    monkeypatch.setattr(body_module, "_gunzipper", make)
    return made


def gzip_of_zeros(mebibytes: int) -> Iterator[bytes]:
    """Yield a gzip stream of ``mebibytes`` MiB of zeros without ever holding it.

    After a full flush the compressor forgets its history, so every further MiB of zeros
    compresses to the same bytes: compress two MiB to learn them, then repeat the second.
    Streaming 1 GiB through zlib instead would take seconds of CPU for the same bytes.
    """
    block = bytes(MIB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    last_block = compressor.flush(zlib.Z_FINISH)[:-8]  # without the trailer for 2 MiB
    yield first
    crc = zlib.crc32(block)
    for _ in range(mebibytes - 1):
        yield repeat
        crc = zlib.crc32(block, crc)
    size = mebibytes * MIB
    yield last_block + crc.to_bytes(4, "little") + (size % 2**32).to_bytes(4, "little")


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    """Send ``data`` as a chunked request body, without Content-Length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_gzip_of_zeros_is_valid_gzip_of_that_many_zeros() -> None:
    assert gzip.decompress(b"".join(gzip_of_zeros(3))) == bytes(3 * MIB)


# --- identity bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-encoding": "identity"}, {"content-encoding": "Identity"}],
    ids=["no-encoding", "identity", "identity-any-case"],
)
def test_plain_body_is_returned_as_sent(client: httpx.Client, headers: dict[str, str]) -> None:
    payload = b'{"events": []}'
    response = client.post("/echo", content=payload, headers=headers)
    assert response.status_code == 200
    assert response.content == payload


def test_empty_body_is_empty(client: httpx.Client) -> None:
    response = client.post("/echo")
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_of_exactly_the_limit_is_accepted(client: httpx.Client, framing: str) -> None:
    payload = os.urandom(1000)
    content = payload if framing == "content-length" else chunked(payload, 300)
    response = client.post("/echo", params={"limit": 1000}, content=content)
    assert response.status_code == 200
    assert response.content == payload


def test_declared_length_over_the_limit_is_refused_before_reading(client: httpx.Client) -> None:
    response = client.post("/echo", params={"limit": 1000}, content=b"x" * 1001)
    assert response.status_code == 413
    assert response.json() == {"error": "Content-Length 1001 is over the limit of 1000 bytes"}
    assert response.headers["x-wire-read"] == "0"


def test_contract_limit_of_one_mib_is_enforced_by_content_length(client: httpx.Client) -> None:
    response = client.post("/echo", content=bytes(MIB + 1))
    assert response.status_code == 413
    assert "over the limit of 1048576 bytes" in response.json()["error"]
    assert response.headers["x-wire-read"] == "0"
    # The connection is still good for the next request.
    assert client.post("/echo", content=bytes(MIB)).status_code == 200


def test_chunked_body_over_the_limit_stops_reading_at_the_limit(client: httpx.Client) -> None:
    response = client.post("/echo", params={"limit": 1000}, content=chunked(bytes(100_000), 100))
    assert response.status_code == 413
    assert response.json() == {"error": "body is over the limit of 1000 bytes"}
    assert int(response.headers["x-wire-read"]) < 100_000


# --- gzip bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize("coding", ["gzip", "GZIP", "x-gzip", "X-Gzip"])
def test_gzip_body_is_inflated(client: httpx.Client, coding: str) -> None:
    payload = b'{"events": [{"form": "checkout", "comment": "\xd8\xb4\xd9\x83\xd8\xb1\xd8\xa7"}]}'
    response = client.post(
        "/echo", content=gzip.compress(payload), headers={"content-encoding": coding}
    )
    assert response.status_code == 200
    assert response.content == payload


def test_gzip_body_sent_in_small_chunks_is_inflated(client: httpx.Client) -> None:
    payload = os.urandom(5000) + bytes(50_000)
    response = client.post(
        "/echo", content=chunked(gzip.compress(payload), 7), headers={"content-encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response.content == payload


@pytest.mark.parametrize(
    ("size", "status"), [(1000, 200), (1001, 413)], ids=["at-limit", "one-over"]
)
def test_limit_applies_after_decompression(client: httpx.Client, size: int, status: int) -> None:
    response = client.post(
        "/echo",
        params={"limit": 1000},
        content=gzip.compress(bytes(size)),
        headers={"content-encoding": "gzip"},
    )
    assert response.status_code == status
    if status == 413:
        assert response.json() == {
            "error": "body inflates past the limit of 1000 bytes after decompression"
        }


def test_ten_megabyte_gzip_bomb_is_refused_without_inflating_it(
    client: httpx.Client, inflaters: list[CountingInflater]
) -> None:
    bomb = gzip.compress(bytes(10 * MIB))
    assert len(bomb) < 20_000
    response = client.post("/echo", content=bomb, headers={"content-encoding": "gzip"})
    assert response.status_code == 413
    assert response.json() == {
        "error": "body inflates past the limit of 1048576 bytes after decompression"
    }
    (inflater,) = inflaters
    assert inflater.produced <= LIMIT + 1


def test_one_gigabyte_gzip_bomb_is_refused_after_bounded_work(
    client: httpx.Client, inflaters: list[CountingInflater]
) -> None:
    response = client.post(
        "/echo", content=gzip_of_zeros(1000), headers={"content-encoding": "gzip"}
    )
    assert response.status_code == 413
    assert "inflates past the limit of 1048576 bytes" in response.json()["error"]
    (inflater,) = inflaters
    # The work done is bounded by the limit, not by the 1000 MiB the body would inflate to;
    # and zlib was never called unbounded (max_length=0 means no bound to zlib).
    assert inflater.produced <= LIMIT + 1
    assert all(bound >= 1 for bound in inflater.max_lengths)
    # Only the start of the ~1 MB wire body was read before refusing it.
    assert int(response.headers["x-wire-read"]) < MIB // 2


def test_compressed_body_over_the_limit_is_refused(client: httpx.Client) -> None:
    incompressible = gzip.compress(os.urandom(2000))
    response = client.post(
        "/echo",
        params={"limit": 1000},
        content=chunked(incompressible, 100),
        headers={"content-encoding": "gzip"},
    )
    assert response.status_code == 413
    assert response.json() == {"error": "compressed body is over the limit of 1000 bytes"}


GOOD_GZIP = gzip.compress(b'{"events": []}')


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (GOOD_GZIP[:-4], "gzip body is truncated"),
        (GOOD_GZIP[:12], "gzip body is truncated"),
        (b"", "body is empty but Content-Encoding is gzip"),
        (b'{"events": []}', "gzip body is corrupt: Error -3 while decompressing data"),
        (GOOD_GZIP[:-8] + b"\0\0\0\0" + GOOD_GZIP[-4:], "gzip body is corrupt"),
        (GOOD_GZIP + b"garbage", "gzip body has trailing data"),
        (GOOD_GZIP + GOOD_GZIP, "gzip body has trailing data"),
    ],
    ids=[
        "truncated-trailer",
        "truncated-data",
        "empty",
        "not-gzip",
        "bad-checksum",
        "trailing-garbage",
        "two-members",
    ],
)
def test_malformed_gzip_is_a_400(client: httpx.Client, content: bytes, error: str) -> None:
    response = client.post("/echo", content=content, headers={"content-encoding": "gzip"})
    assert response.status_code == 400
    assert response.json()["error"].startswith(error)


def test_trailing_data_in_a_later_chunk_is_a_400(client: httpx.Client) -> None:
    def parts() -> Iterator[bytes]:
        yield GOOD_GZIP
        yield b"more"

    response = client.post("/echo", content=parts(), headers={"content-encoding": "gzip"})
    assert response.status_code == 400
    assert "trailing data after the end of the gzip stream" in response.json()["error"]


@pytest.mark.parametrize(
    ("headers", "shown"),
    [
        ([("content-encoding", "br")], "'br'"),
        ([("content-encoding", "deflate")], "'deflate'"),
        ([("content-encoding", "gzip, gzip")], "'gzip, gzip'"),
        ([("content-encoding", "gzip"), ("content-encoding", "br")], "'gzip, br'"),
    ],
    ids=["br", "deflate", "gzip-twice", "two-headers"],
)
def test_unsupported_encoding_is_a_415_naming_the_supported_ones(
    client: httpx.Client, headers: list[tuple[str, str]], shown: str
) -> None:
    response = client.post("/echo", content=GOOD_GZIP, headers=headers)
    assert response.status_code == 415
    assert response.json() == {
        "error": f"Content-Encoding {shown} is not supported; send identity or gzip"
    }
    assert response.headers["x-wire-read"] == "0"


# --- what HTTP servers don't let through, at the ASGI level ------------------------------------


def make_request(headers: list[tuple[str, str]], chunks: Iterator[bytes]) -> Request:
    """A Request whose body arrives as ``chunks``, with ``headers``."""

    async def receive() -> Message:
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/echo",
        "query_string": b"",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
    }
    return Request(scope, receive)


def never() -> Iterator[bytes]:
    raise AssertionError("the body was read")
    yield b""  # pragma: no cover - makes this a generator


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "0x10", "1 000", "", "\xd9\xa1"], ids=repr)
async def test_malformed_content_length_is_a_400_before_reading(value: str) -> None:
    with pytest.raises(BodyRefused) as caught:
        await read_body(make_request([("content-length", value)], never()), limit=LIMIT)
    assert caught.value.status == 400
    assert "is not a non-negative integer" in caught.value.message


async def test_disagreeing_content_lengths_are_a_400() -> None:
    headers = [("content-length", "5"), ("content-length", "6")]
    with pytest.raises(BodyRefused) as caught:
        await read_body(make_request(headers, never()), limit=LIMIT)
    assert (caught.value.status, caught.value.message) == (
        400,
        "Content-Length headers disagree: '5', '6'",
    )


async def test_agreeing_repeated_content_lengths_are_fine() -> None:
    headers = [("content-length", "5"), ("content-length", " 5")]
    body = await read_body(make_request(headers, iter([b"hello"])), limit=LIMIT)
    assert body == b"hello"


async def test_endless_stream_is_refused_after_limit_plus_one_chunk() -> None:
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 100
            yield bytes(100)

    with pytest.raises(BodyRefused) as caught:
        await read_body(make_request([], endless()), limit=1000)
    assert caught.value.status == 413
    assert pulled <= 1000 + 100


def test_body_refused_carries_status_and_message() -> None:
    exc = BodyRefused(413, "body is over the limit of 5 bytes")
    assert (exc.status, exc.message, str(exc)) == (
        413,
        "body is over the limit of 5 bytes",
        exc.message,
    )
    assert repr(exc) == "BodyRefused(413, 'body is over the limit of 5 bytes')"


@settings(max_examples=50, deadline=None)
@given(payload=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 4000), max_size=12))
def test_gzip_split_anywhere_inflates_to_the_payload(payload: bytes, cuts: list[int]) -> None:
    wire = gzip.compress(payload)
    bounds = sorted({0, len(wire), *(cut % (len(wire) + 1) for cut in cuts)})
    pieces = [wire[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    request = make_request([("content-encoding", "gzip")], iter(pieces))
    limit = max(len(payload), len(wire))  # tiny payloads grow when compressed
    assert asyncio.run(read_body(request, limit=limit)) == payload


@settings(max_examples=50, deadline=None)
@given(payload=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 4000), max_size=12))
def test_plain_body_split_anywhere_is_joined_as_sent(payload: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(payload), *(cut % (len(payload) + 1) for cut in cuts)})
    pieces = [payload[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    request = make_request([("content-length", str(len(payload)))], iter(pieces))
    assert asyncio.run(read_body(request, limit=len(payload))) == payload
    # Read as the stream would have been: a second read finds it consumed.
    with pytest.raises(RuntimeError, match="Stream consumed"):
        asyncio.run(read_body(request, limit=len(payload)))


async def test_a_client_gone_while_its_body_is_read_is_a_client_disconnect() -> None:
    messages = iter(
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
    )

    async def receive() -> Message:
        return next(messages)

    request = Request(make_request([], never()).scope, receive)
    with pytest.raises(ClientDisconnect):
        await read_body(request, limit=LIMIT)


async def test_a_body_read_already_is_read_again_from_the_request() -> None:
    request = make_request([], iter([b"hel", b"lo"]))
    assert await request.body() == b"hello"
    assert await read_body(request, limit=LIMIT) == b"hello"


HEADER_CASES = [
    [],
    [("content-type", "application/json"), ("content-length", "12")],
    [
        ("authorization", "Bearer sk_x"),
        ("origin", "https://Shop.example"),
        ("x-forwarded-for", "203.0.113.9, 10.0.0.1"),
        ("content-type", "application/json; charset=utf-8"),
        ("content-length", "5"),
        ("content-encoding", "gzip"),
    ],
    # A name given twice: the first of a single header, every one of a listed header.
    [("origin", "https://a.example"), ("origin", "https://b.example")],
    [("content-length", "5"), ("content-length", " 5"), ("authorization", "Bearer pk_y")],
    [("content-encoding", "gzip"), ("x-forwarded-for", "1.2.3.4"), ("content-encoding", "br")],
    [("authorization", ""), ("origin", "caf\xe9")],
]


@pytest.mark.parametrize("headers", HEADER_CASES, ids=range(len(HEADER_CASES)))
def test_head_reads_each_header_as_request_headers_do(headers: list[tuple[str, str]]) -> None:
    request = make_request(headers, never())
    reading = request.headers
    assert head_of(request) == Head(
        reading.get("authorization"),
        reading.get("origin"),
        reading.get("x-forwarded-for"),
        reading.get("content-type"),
        reading.getlist("content-length"),
        reading.getlist("content-encoding"),
    )
    assert media_type(request, head_of(request)) == media_type(request)
