"""How a batch reaches the gateway: one seam, ``send(body) -> Response``, and its implementations.

A transport knows the endpoint and the key, compresses, and makes one request; it knows nothing
of batching or retries, which the worker decides from the :class:`Response` or the
:class:`TransportError`. Tests swap it (:class:`MockTransport`), like httpx's ``MockTransport``.

- :class:`HTTPTransport`: the default, the standard library's ``http.client`` with one
  keep-alive connection, gzip, and separate connect and read timeouts. No third-party code.
- :class:`HttpxTransport` / :class:`AsyncHttpxTransport`: the same over httpx, when installed
  (the async client's default then, so its requests never occupy a thread).
"""

from __future__ import annotations

import gzip
import http.client
import os
import select
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable
from urllib.parse import SplitResult, urlsplit

from ._config import DEFAULT_TIMEOUT, Timeout
from ._errors import ConfigError, TransportError
from ._version import __version__

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AsyncHttpxTransport",
    "AsyncTransport",
    "HTTPTransport",
    "HttpxTransport",
    "MockTransport",
    "Response",
    "Transport",
    "check_endpoint",
    "check_key",
]

USER_AGENT: Final = f"voxloop-python/{__version__}"
#: Bodies smaller than this go uncompressed: gzip would save a few bytes for real CPU time.
GZIP_MIN_BYTES: Final = 1024
#: The most of an answer the SDK reads; the gateway's answers are a few hundred bytes.
MAX_ANSWER_BYTES: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Response:
    """The gateway's answer to one request.

    Attributes:
        status: the HTTP status code.
        headers: the response headers, names in lower case.
        body: the response body (at most 1 MiB of it).
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@runtime_checkable
class Transport(Protocol):
    """Sends one request body to the gateway's ``POST /v1/events`` (a blocking call).

    ``body`` is the uncompressed JSON ``{"events": [...]}``. Return the answer, whatever its
    status; raise :class:`TransportError` when there is none. A ``close()`` method, if present,
    is called when the client closes.
    """

    def send(self, body: bytes) -> Response: ...


@runtime_checkable
class AsyncTransport(Protocol):
    """The async twin of :class:`Transport`: ``await send(body)``; ``aclose()`` if present."""

    async def send(self, body: bytes) -> Response: ...


def check_endpoint(endpoint: str) -> str:
    """The events URL of a gateway's base URL, e.g. ``https://fb.example.com`` -> ``.../v1/events``.

    Raises:
        ConfigError: the endpoint is not an http(s) URL with a host.
    """
    if not isinstance(endpoint, str):
        raise ConfigError(f"endpoint must be a URL string, got {type(endpoint).__name__}")
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"endpoint must be the gateway's http(s) URL, like https://feedback.example.com;"
            f" got {endpoint!r}"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"endpoint must not carry a query or fragment, got {endpoint!r}")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ConfigError(f"endpoint has a malformed port: {endpoint!r}") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/v1/events"


def check_key(key: str) -> str:
    """``key`` if it can go in an ``Authorization`` header as is.

    Raises:
        ConfigError: it is empty, or holds spaces, control or non-ASCII characters.
    """
    if not isinstance(key, str) or not key or not key.isascii() or not key.isprintable():
        raise ConfigError("key must be the project's key (pk_... or sk_...), printable ASCII")
    if " " in key:
        raise ConfigError("key must not contain spaces")
    return key


def _origin(url: SplitResult) -> str:
    """``scheme://host:port`` of ``url``, for error messages: never its path or user info."""
    host = url.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{url.scheme}://{host}" + (f":{url.port}" if url.port is not None else "")


def _headers(key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {check_key(key)}",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
    }


def _payload(body: bytes, headers: dict[str, str], compress: bool) -> tuple[bytes, dict[str, str]]:
    if compress and len(body) >= GZIP_MIN_BYTES:
        # mtime=0 makes the same batch compress to the same bytes on every retry.
        return gzip.compress(body, compresslevel=5, mtime=0), {
            **headers,
            "Content-Encoding": "gzip",
        }
    return body, headers


class HTTPTransport:
    """The standard library's HTTP client, keeping one connection alive between batches.

    One connection suffices: the worker sends one batch at a time. A connection the gateway
    closed while idle is noticed before it is reused (it reads as end-of-file), so it never
    costs a failed attempt. Calls are serialised by a lock, and a forked child never touches
    its parent's connection.
    """

    def __init__(
        self, endpoint: str, key: str, *, timeout: Timeout = DEFAULT_TIMEOUT, gzip: bool = True
    ) -> None:
        url = urlsplit(check_endpoint(endpoint))
        self._https = url.scheme == "https"
        self._host = url.hostname or ""
        self._port = url.port
        self._path = url.path
        self._origin = _origin(url)
        self._headers = _headers(key)
        self._headers["Connection"] = "keep-alive"
        self._timeout = timeout
        self._gzip = gzip
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self._pid = os.getpid()
        self._tls: ssl.SSLContext | None = ssl.create_default_context() if self._https else None

    def send(self, body: bytes) -> Response:
        """POST ``body``; the answer, or :class:`TransportError` if none came."""
        payload, headers = _payload(body, self._headers, self._gzip)
        with self._lock:
            connection = self._connect()
            try:
                connection.request("POST", self._path, payload, headers)
                answer = connection.getresponse()
                data = answer.read(MAX_ANSWER_BYTES)
                reusable = not answer.will_close and answer.isclosed()
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                raise TransportError(
                    _describe(exc, self._origin, "waiting for", self._timeout.read)
                ) from None
            if not reusable:
                self._drop()
            return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, data)

    def close(self) -> None:
        """Close the kept-alive connection, if any."""
        with self._lock:
            self._drop()

    def _connect(self) -> http.client.HTTPConnection:
        if self._pid != os.getpid():
            # A forked child shares its parent's socket: let it go without a word on it.
            self._connection, self._pid = None, os.getpid()
        connection = self._connection
        if connection is not None and _dropped(connection):
            self._drop()
            connection = None
        if connection is None:
            if self._https:
                connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout.connect, context=self._tls
                )
            else:
                connection = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout.connect
                )
            try:
                connection.connect()
            except OSError as exc:
                raise TransportError(
                    _describe(exc, self._origin, "connecting to", self._timeout.connect)
                ) from None
            if connection.sock is not None:
                connection.sock.settimeout(self._timeout.read)
            self._connection = connection
        return connection

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether the peer closed an idle kept-alive connection (it is readable: end-of-file)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost ``OSError`` behind ``exc``, else ``exc``.

    httpx and anyio wrap the socket's error (``ConnectError: All connection attempts failed``
    hides a refused connection); the innermost one says what happened.
    """
    found: BaseException = exc
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            found = current
        current = current.__cause__ or current.__context__
    return found


def _describe(exc: BaseException, origin: str, doing: str, timeout: float) -> str:
    """A short account of a network error naming the gateway, for logs and ``on_error``.

    Args:
        exc: what the HTTP client raised.
        origin: the gateway's ``scheme://host:port``.
        doing: ``connecting to`` or ``waiting for``: what a timeout interrupted.
        timeout: the timeout of that step, in seconds.
    """
    root = _root_cause(exc)
    if isinstance(root, socket.gaierror):
        return f"can't resolve the host of {origin}: {root.strerror or root}"
    if isinstance(root, ConnectionRefusedError):
        return f"connection refused by {origin}"
    if isinstance(root, TimeoutError):
        return f"timed out {doing} {origin} after {timeout:g} s"
    if isinstance(root, ssl.SSLError):
        detail = getattr(root, "verify_message", None) or root.reason or root
        return f"TLS error with {origin}: {detail}"[:300]
    if isinstance(root, http.client.RemoteDisconnected | BrokenPipeError):
        return f"{origin} closed the connection without answering"
    if isinstance(root, ConnectionResetError):
        return f"connection reset by {origin}"
    if isinstance(root, OSError) and root.strerror:
        return f"{root.strerror} ({type(root).__name__}) with {origin}"[:300]
    text = str(root) or type(root).__name__
    return f"{type(root).__name__}: {text} ({origin})"[:300]


class MockTransport:
    """A transport that answers with ``handler(body)``, for tests; the body is uncompressed JSON.

    The handler may raise :class:`TransportError` to play a network failure.
    """

    def __init__(self, handler: Callable[[bytes], Response]) -> None:
        self._handler = handler

    def send(self, body: bytes) -> Response:
        """Return what the handler makes of ``body``."""
        return self._handler(body)


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise ConfigError("this transport needs httpx: pip install httpx") from None
    return httpx


def _httpx_timeout(timeout: Timeout) -> httpx.Timeout:
    result: httpx.Timeout = _httpx().Timeout(timeout.read, connect=timeout.connect)
    return result


def _from_httpx(answer: httpx.Response) -> Response:
    return Response(
        answer.status_code,
        {k.lower(): v for k, v in answer.headers.items()},
        answer.content[:MAX_ANSWER_BYTES],
    )


class HttpxTransport:
    """The same requests over ``httpx.Client``: pooled keep-alive, proxies from the environment."""

    def __init__(
        self, endpoint: str, key: str, *, timeout: Timeout = DEFAULT_TIMEOUT, gzip: bool = True
    ) -> None:
        hx = _httpx()
        self._url = check_endpoint(endpoint)
        self._origin = _origin(urlsplit(self._url))
        self._headers = _headers(key)
        self._gzip = gzip
        self._timeout = timeout
        self._client: httpx.Client = hx.Client(timeout=_httpx_timeout(timeout))
        self._error: type[Exception] = hx.TransportError
        self._pid = os.getpid()

    def send(self, body: bytes) -> Response:
        """POST ``body``; the answer, or :class:`TransportError` if none came."""
        payload, headers = _payload(body, self._headers, self._gzip)
        if self._pid != os.getpid():
            # A forked child must not write on its parent's pooled connections: new pool,
            # and the inherited one is left alone rather than closed.
            self._client = _httpx().Client(timeout=_httpx_timeout(self._timeout))
            self._pid = os.getpid()
        try:
            answer = self._client.post(self._url, content=payload, headers=headers)
        except self._error as exc:
            raise TransportError(_describe_httpx(exc, self._origin, self._timeout)) from None
        return _from_httpx(answer)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class AsyncHttpxTransport:
    """The async twin over ``httpx.AsyncClient``: requests never occupy a thread."""

    def __init__(
        self, endpoint: str, key: str, *, timeout: Timeout = DEFAULT_TIMEOUT, gzip: bool = True
    ) -> None:
        hx = _httpx()
        self._url = check_endpoint(endpoint)
        self._origin = _origin(urlsplit(self._url))
        self._headers = _headers(key)
        self._gzip = gzip
        self._timeout = timeout
        self._client: httpx.AsyncClient = hx.AsyncClient(timeout=_httpx_timeout(timeout))
        self._error: type[Exception] = hx.TransportError

    async def send(self, body: bytes) -> Response:
        """POST ``body``; the answer, or :class:`TransportError` if none came."""
        payload, headers = _payload(body, self._headers, self._gzip)
        try:
            answer = await self._client.post(self._url, content=payload, headers=headers)
        except self._error as exc:
            raise TransportError(_describe_httpx(exc, self._origin, self._timeout)) from None
        return _from_httpx(answer)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


def _describe_httpx(exc: Exception, origin: str, timeout: Timeout) -> str:
    """:func:`_describe` for httpx's errors, whose class names the step that timed out."""
    name = type(exc).__name__
    if name == "ConnectTimeout":
        return f"timed out connecting to {origin} after {timeout.connect:g} s"
    if name in ("ReadTimeout", "WriteTimeout"):
        return f"timed out waiting for {origin} after {timeout.read:g} s"
    if name == "PoolTimeout":
        return f"timed out waiting for a free connection to {origin}"
    if name == "RemoteProtocolError" and not isinstance(_root_cause(exc), OSError):
        if "disconnect" in str(exc).lower():
            return f"{origin} closed the connection without answering"
        return f"protocol error with {origin}: {exc}"[:300]
    return _describe(exc, origin, "waiting for", timeout.read)
