"""Relay widget submissions through your own web backend: first-party, so ad-blockers let it be.

The widget posts ``{"events": [...]}`` to a path on your site; :class:`Relay` checks the request,
adds the page and the browser's user agent to each event's ``meta``, applies a per-visitor limit
(the gateway then sees your backend's address, not the visitor's), and forwards the batch to the
gateway's ``POST /v1/events`` with your server key. The gateway's answer goes back unchanged, so
a 202 to the widget still means the gateway committed the events; no answer from the gateway is a
503 with ``Retry-After``, and the widget sends the same ids again.

One I/O-free core, :meth:`Relay.handle`, and two thin faces over it: :meth:`Relay.asgi` (ASGI 3:
Starlette, FastAPI) and :meth:`Relay.wsgi` (WSGI: Flask, Django). Standard library only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import urlsplit

from ._errors import ConfigError, TransportError
from ._event import MAX_META_KEYS, MAX_META_TEXT
from ._transport import HTTPTransport, Response, Transport, check_endpoint, check_key

__all__ = ["MAX_BODY", "MAX_EVENTS", "Answer", "Relay", "Request", "asgi_app", "wsgi_app"]

log = logging.getLogger("voxloop.web")

#: The contract's limits on one request.
MAX_BODY: Final = 1024 * 1024
MAX_EVENTS: Final = 1000
#: The meta keys the relay adds; an event's own keys of the same name win.
PAGE_KEY: Final = "page"
USER_AGENT_KEY: Final = "user_agent"
#: Seconds the widget is told to wait when the gateway can't be reached.
UNREACHABLE_RETRY_AFTER: Final = 5
_MAX_VISITORS: Final = 65_536

Headers = list[tuple[str, str]]
ASGIReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Request:
    """What the relay needs of one HTTP request: method, headers (names lower case), client."""

    method: str
    headers: Mapping[str, str] = field(default_factory=dict)
    client: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the relay answers: status, headers, body."""

    status: int
    headers: Headers = field(default_factory=list)
    body: bytes = b""


def _json(status: int, payload: object, headers: Headers | None = None) -> Answer:
    body = json.dumps(payload, ensure_ascii=False).encode()
    base = [("content-type", "application/json"), ("cache-control", "no-store")]
    return Answer(status, base + (headers or []), body)


def _error(status: int, message: str, headers: Headers | None = None) -> Answer:
    return _json(status, {"error": message}, headers)


class _Buckets:
    """Token buckets per visitor, the least recently seen forgotten beyond a bound."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, visitor: str) -> float:
        """0 if ``visitor`` may go now, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.pop(visitor, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[visitor] = (tokens - 1 if wait == 0 else tokens, now)
            if len(self._buckets) > _MAX_VISITORS:
                self._buckets.popitem(last=False)
        return wait


def _page(url: object) -> str | None:
    """An http(s) URL without its query and fragment (they may carry tokens or emails)."""
    if not isinstance(url, str):
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:MAX_META_TEXT]


class Relay:
    """Checks widget submissions and forwards them to the gateway with a server key.

    Args:
        endpoint: the gateway's base URL.
        server_key: the project's server key (``sk_...``); it never leaves your backend.
        channel: the channel of events that name none.
        allowed_channels: the channels widgets may write through this relay; an event for any
            other is refused with 403 (the server key could write them all).
        visitor_rate, visitor_burst: requests per second (sustained, burst) each visitor may
            make; ``visitor_rate=None`` turns the limit off.
        visitor: picks the visitor of a request (say, a session id, or the address from
            ``X-Forwarded-For`` behind your own proxy); ``None`` from it, or no function, means
            the client address.
        origins: if given, a request whose ``Origin`` header is not one of them is refused (403).
        max_body: the largest body taken, at most the contract's 1 MiB.
        transport: how batches reach the gateway; by default one keep-alive
            :class:`~voxloop.HTTPTransport` per thread.
    """

    def __init__(
        self,
        endpoint: str,
        server_key: str,
        *,
        channel: str = "web",
        allowed_channels: Collection[str] = ("web",),
        visitor_rate: float | None = 0.5,
        visitor_burst: int = 20,
        visitor: Callable[[Request], str | None] | None = None,
        origins: Collection[str] | None = None,
        max_body: int = MAX_BODY,
        transport: Transport | None = None,
    ) -> None:
        check_endpoint(endpoint)
        self._endpoint, self._key = endpoint, check_key(server_key)
        self.channel = channel
        self.allowed_channels = frozenset(allowed_channels)
        if channel not in self.allowed_channels:
            raise ConfigError(f"channel {channel!r} must be one of allowed_channels")
        if not 0 < max_body <= MAX_BODY:
            raise ConfigError(f"max_body must be 1..{MAX_BODY} bytes, got {max_body}")
        if visitor_rate is not None and (visitor_rate <= 0 or visitor_burst < 1):
            raise ConfigError("visitor_rate must be above 0 and visitor_burst at least 1")
        self.max_body = max_body
        self._visitor = visitor
        self._origins = None if origins is None else frozenset(o.rstrip("/") for o in origins)
        self._buckets = None if visitor_rate is None else _Buckets(visitor_rate, visitor_burst)
        self._transport = transport
        self._local = threading.local()
        self._made: list[HTTPTransport] = []
        self._made_lock = threading.Lock()

    # --- the core: no I/O but the transport call --------------------------------------------

    def precheck(self, request: Request) -> Answer | None:
        """The answer to a request refused on its headers alone, before its body is read."""
        if request.method == "OPTIONS":
            return Answer(204, [("allow", "POST, OPTIONS")])
        if request.method != "POST":
            return _error(405, "POST widget events here", [("allow", "POST, OPTIONS")])
        headers = request.headers
        if self._origins is not None and "origin" in headers:
            if headers["origin"].rstrip("/") not in self._origins:
                return _error(403, f"origin {headers['origin'][:200]!r} is not allowed")
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            return _error(415, "send the events as Content-Type: application/json")
        if headers.get("content-encoding", "identity").strip().lower() != "identity":
            return _error(415, "send the events uncompressed")
        length = headers.get("content-length")
        if length is not None:
            if not (length.strip().isascii() and length.strip().isdigit()):
                return _error(400, "Content-Length is not a number")
            if int(length) > self.max_body:
                return self._too_large()
        if self._buckets is not None:
            visitor = (self._visitor(request) if self._visitor else None) or request.client
            wait = self._buckets.take(visitor)
            if wait > 0:
                retry = str(max(1, math.ceil(wait)))
                return _error(
                    429, "too many submissions; try again later", [("retry-after", retry)]
                )
        return None

    def _too_large(self) -> Answer:
        return _error(413, f"the body must be at most {self.max_body} bytes")

    def handle(self, request: Request, body: bytes) -> Answer:
        """Check, enrich and forward one request whose body is ``body`` (a blocking call).

        ``body`` may be cut at ``max_body + 1`` bytes: longer means too large.
        """
        refused = self.precheck(request)
        return refused if refused is not None else self.forward(request, body)

    def forward(self, request: Request, body: bytes) -> Answer:
        """The part of :meth:`handle` after :meth:`precheck`: check the body, send it on."""
        prepared = self.prepare(request, body)
        if isinstance(prepared, Answer):
            return prepared
        return self.send(prepared)

    def prepare(self, request: Request, body: bytes) -> bytes | Answer:
        """The batch to send the gateway, or the answer that refuses it."""
        if len(body) > self.max_body:
            return self._too_large()
        try:
            batch = json.loads(body)
        except (ValueError, RecursionError) as exc:
            return _error(400, f"the body is not JSON: {exc}"[:300])
        if not isinstance(batch, dict) or not isinstance(batch.get("events"), list):
            return _error(400, 'the body must be {"events": [...]}')
        events: list[Any] = batch["events"]
        if len(events) > MAX_EVENTS:
            return _error(413, f"at most {MAX_EVENTS} events a request, got {len(events)}")
        default_page = _page(batch.pop("page", None)) or _page(request.headers.get("referer"))
        agent = request.headers.get("user-agent", "")[:MAX_META_TEXT] or None
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                continue  # the gateway rejects it by index
            channel = event.setdefault("channel", self.channel)
            if not isinstance(channel, str) or channel not in self.allowed_channels:
                allowed = ", ".join(sorted(self.allowed_channels))
                return _error(
                    403,
                    f"event {index} is for channel {str(channel)[:64]!r};"
                    f" this relay takes channel {allowed} only",
                )
            page = _page(event.pop("page", None)) or default_page
            _enrich(event, ((PAGE_KEY, page), (USER_AGENT_KEY, agent)))
        return json.dumps(batch, ensure_ascii=False, separators=(",", ":")).encode()

    def send(self, batch: bytes) -> Answer:
        """Forward ``batch`` and translate the gateway's answer (a blocking call)."""
        try:
            response = self._sender().send(batch)
        except TransportError as exc:
            log.warning("voxloop relay: the gateway is unreachable (%s)", exc)
            return _error(
                503,
                "the feedback service can't be reached; try again with the same ids",
                [("retry-after", str(UNREACHABLE_RETRY_AFTER))],
            )
        return _passed_on(response)

    def _sender(self) -> Transport:
        if self._transport is not None:
            return self._transport
        made: HTTPTransport | None = getattr(self._local, "transport", None)
        if made is None:
            made = self._local.transport = HTTPTransport(self._endpoint, self._key)
            with self._made_lock:
                self._made.append(made)
        return made

    def close(self) -> None:
        """Close the connections the relay made (a transport passed in is the caller's)."""
        with self._made_lock:
            made, self._made = self._made, []
        for transport in made:
            transport.close()

    # --- ASGI ----------------------------------------------------------------------------------

    async def asgi(
        self, scope: MutableMapping[str, Any], receive: ASGIReceive, send: ASGISend
    ) -> None:
        """An ASGI 3 app: ``app.mount("/feedback", relay.asgi)`` in Starlette or FastAPI."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            raise RuntimeError(f"the voxloop relay serves HTTP, not {scope['type']}")
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", ()):
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        client = scope.get("client") or ("", 0)
        request = Request(scope["method"], headers, str(client[0]))
        answer = self.precheck(request)
        if answer is None:
            chunks: list[bytes] = []
            size, more = 0, True
            while more and size <= self.max_body:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                chunks.append(chunk)
                size += len(chunk)
                more = message.get("more_body", False)
            body = b"".join(chunks)[: self.max_body + 1]
            answer = await asyncio.to_thread(self.forward, request, body)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(k.encode(), v.encode()) for k, v in _with_length(answer)],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})

    # --- WSGI ----------------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """A WSGI app: mount it with werkzeug's ``DispatcherMiddleware``, or call it from a view."""
        headers = {
            name[5:].replace("_", "-").lower(): str(value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(name):
                headers[name.replace("_", "-").lower()] = str(environ[name])
        request = Request(
            environ.get("REQUEST_METHOD", "GET"), headers, environ.get("REMOTE_ADDR", "")
        )
        answer = self.precheck(request)
        if answer is None:
            length = headers.get("content-length")
            if length is not None:
                limit = min(int(length), self.max_body + 1)
            else:
                limit = self.max_body + 1 if environ.get("wsgi.input_terminated") else 0
            stream = environ["wsgi.input"]
            chunks: list[bytes] = []
            size = 0
            while size < limit:
                chunk = stream.read(min(65_536, limit - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            answer = self.forward(request, b"".join(chunks))
        start_response(f"{answer.status} {HTTPStatus(answer.status).phrase}", _with_length(answer))
        return [answer.body]


def asgi_app(
    relay: Relay,
) -> Callable[[MutableMapping[str, Any], ASGIReceive, ASGISend], Awaitable[None]]:
    """``relay.asgi`` as a plain coroutine function, which servers such as uvicorn recognise as
    ASGI 3 by themselves (a bound method they take for ASGI 2)."""

    async def app(scope: MutableMapping[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        await relay.asgi(scope, receive, send)

    return app


def wsgi_app(relay: Relay) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """``relay.wsgi``, the WSGI app, for symmetry with :func:`asgi_app`."""
    return relay.wsgi


def _enrich(event: dict[str, Any], ours: Iterable[tuple[str, str | None]]) -> None:
    """Add our meta keys where the event has no such key and the contract's 32 keys allow."""
    meta = event.get("meta")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        return  # malformed: the gateway rejects the event as sent
    for key, value in ours:
        if value and key not in meta and len(meta) < MAX_META_KEYS:
            meta[key] = value
    if meta:
        event["meta"] = meta


def _passed_on(response: Response) -> Answer:
    headers: Headers = [
        ("content-type", response.headers.get("content-type", "application/json")),
        ("cache-control", "no-store"),
    ]
    if "retry-after" in response.headers:
        headers.append(("retry-after", response.headers["retry-after"]))
    if response.status in (401, 403):
        log.error("voxloop relay: the gateway refused the server key (%d)", response.status)
    return Answer(response.status, headers, response.body)


def _with_length(answer: Answer) -> Headers:
    return [*answer.headers, ("content-length", str(len(answer.body)))]
