"""The SSRF guard: webhooks reach public addresses only, unless the operator allows others.

A webhook URL is typed by whoever may edit a project's alerts, and the gateway then sends
requests to it from inside the operator's network: without a guard, ``http://10.0.0.5/admin``
or ``http://169.254.169.254/`` (a cloud's metadata service) would be reachable through us
(OWASP's Server-Side Request Forgery). So:

- a URL must be ``http`` or ``https`` with a host (:func:`check_syntax`);
- each address its host resolves to is refused when it is unspecified, loopback, link-local,
  multicast, reserved, private or otherwise not public (:func:`refusal`), IPv4 and IPv6 alike,
  an IPv4 address inside an IPv6 one (``::ffff:127.0.0.1``, 6to4, NAT64) judged as that IPv4
  address, unless it is inside a network of ``webhook_allow``;
- the check runs when an endpoint is added (:func:`check_url`: a 422 naming ``url`` and the
  rule) and again on every new connection of a delivery, at the socket, on the address the
  connection then goes to (:class:`GuardedBackend`). Resolving once to check and again to
  connect would let a name that changes its answer in between (DNS rebinding) slip through;
  here the address checked is the address connected to.

Only the connection is pinned: the URL keeps its host name, so the ``Host`` header, TLS's SNI,
the certificate's host check and the pooling of connections are httpx's own, by name. A host
with several addresses is reached on the first that passes; it is refused only when none does.
The client never follows redirects nor reads proxy settings from the environment (a proxy
would resolve the name itself).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Final

import httpcore
import httpx

from ..errors import ApiError
from ..settings import Network

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The longest URL an endpoint may have.
MAX_URL_CHARS: Final = 2000
#: Where an operator lets webhooks through to private addresses.
ALLOW_SETTING: Final = "webhook_allow (VOXLOOP_WEBHOOK_ALLOW)"
_SCHEMES: Final = ("http", "https")
#: NAT64's well-known prefix: its last 32 bits are the IPv4 address reached.
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
#: What makes an address unreachable for webhooks, in the order a refusal names the first.
_RULES: Final = (
    ("unspecified", lambda ip: ip.is_unspecified),
    ("loopback", lambda ip: ip.is_loopback),
    ("link-local", lambda ip: ip.is_link_local),
    ("multicast", lambda ip: ip.is_multicast),
    ("reserved", lambda ip: ip.is_reserved),
    ("private", lambda ip: ip.is_private),
    ("non-public", lambda ip: not ip.is_global),
)


class TargetRefused(ApiError):
    """A webhook URL the guard refuses (422); the message names ``url`` and the rule."""

    def __init__(self, message: str) -> None:
        super().__init__(422, message)


def check_syntax(url: str) -> httpx.URL:
    """``url`` parsed, if it is an ``http`` or ``https`` URL with a host.

    Raises:
        TargetRefused: anything else (another scheme, no host, too long, not a URL).
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise TargetRefused(f"url must be an http or https URL of 1-{MAX_URL_CHARS} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise TargetRefused(f"url is not a valid URL: {exc}") from None
    if parsed.scheme not in _SCHEMES:
        raise TargetRefused(f"url must be http or https, got {parsed.scheme or 'no'} scheme")
    if not parsed.host:
        raise TargetRefused("url must name a host")
    return parsed


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches: IPv4-mapped, 6to4 or NAT64; None otherwise."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: IPAddress, allow: Iterable[Network]) -> str | None:
    """Why webhooks may not reach ``ip`` (``"loopback"``, ``"private"``...), or None if they may.

    An address inside a network of ``allow`` may always be reached. An IPv6 address that
    carries an IPv4 one is judged as that IPv4 address.
    """
    judged: IPAddress = embedded_ipv4(ip) or ip
    allowed = tuple(allow)
    if any(judged in net for net in allowed) or any(ip in net for net in allowed):
        return None
    for name, rule in _RULES:
        if rule(judged):
            return name
    return None


def _refused(host: str, ip: IPAddress, rule: str) -> TargetRefused:
    shown = host if host == str(ip) else f"{host} resolves to {ip}, which"
    return TargetRefused(
        f"url is refused: {shown} is a {rule} address; webhooks reach public addresses only,"
        f" unless {ALLOW_SETTING} includes it"
    )


async def resolve(host: str, port: int, allow: Iterable[Network]) -> list[str]:
    """The addresses of ``host`` that webhooks may reach, in the resolver's order.

    Raises:
        TargetRefused: the host doesn't resolve, or none of its addresses may be reached (the
            message names the first one refused and its rule).
    """
    allowed = tuple(allow)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"url's host {host!r} does not resolve: {exc}") from None
    usable: list[str] = []
    first_refused: tuple[IPAddress, str] | None = None
    for _family, _type, _proto, _name, address in found:
        ip = ipaddress.ip_address(str(address[0]).partition("%")[0])
        rule = refusal(ip, allowed)
        if rule is None:
            if str(ip) not in usable:
                usable.append(str(ip))
        elif first_refused is None:
            first_refused = (ip, rule)
    if not usable:
        if first_refused is None:
            raise TargetRefused(f"url's host {host!r} has no address")
        raise _refused(host, *first_refused)
    return usable


async def check_url(url: str, allow: Iterable[Network]) -> str:
    """``url`` as it will be stored, if it passes the guard now (when an endpoint is added).

    Raises:
        TargetRefused: its syntax, or every address of its host (see :func:`resolve`).
    """
    parsed = check_syntax(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    await resolve(parsed.raw_host.decode("ascii"), port, allow)
    return str(parsed)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving and checking each host where it connects.

    A connection goes to an address :func:`resolve` has just let through, and nowhere else;
    a Unix socket is never reached.
    """

    def __init__(self, allow: Iterable[Network]) -> None:
        self._allow = tuple(allow)
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await asyncio.wait_for(resolve(host, port, self._allow), timeout)
        return await self._inner.connect_tcp(
            addresses[0],
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("url must be http or https")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


#: httpcore's errors and httpx's of the same meaning, as httpx's own transport maps them.
_ERRORS: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


@contextmanager
def _as_httpx(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc) or type(exc).__name__, request=request) from exc
        raise


class _Body(httpx.AsyncByteStream):
    """A response body from httpcore, its errors as httpx's."""

    def __init__(self, stream: AsyncIterable[bytes], request: httpx.Request) -> None:
        self._stream, self._request = stream, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx(self._request):
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class GuardedTransport(httpx.AsyncBaseTransport):
    """httpx's transport over a connection pool whose every connection :class:`GuardedBackend`
    makes."""

    def __init__(self, allow: Iterable[Network], verify: ssl.SSLContext | None = None) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify or httpx.create_ssl_context(),
            network_backend=GuardedBackend(allow),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.AsyncByteStream):
            raise TypeError("a webhook's body is sent from memory, asynchronously")
        asked = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx(request):
            answer = await self._pool.handle_async_request(asked)
        if not isinstance(answer.stream, AsyncIterable):
            raise TypeError("httpcore answered an asynchronous request synchronously")
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream, request),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def guarded_client(
    allow: Iterable[Network], timeout_s: float, verify: ssl.SSLContext | None = None
) -> httpx.AsyncClient:
    """An httpx client for webhook deliveries: guarded connections, ``timeout_s`` per phase,
    no redirects followed, no proxy from the environment.

    Args:
        allow: the networks reachable even though private (``settings.webhook_allow``).
        timeout_s: each phase's timeout (connect, write, read); the caller bounds the whole.
        verify: the TLS context that checks servers' certificates (default: httpx's, from
            certifi).
    """
    return httpx.AsyncClient(
        transport=GuardedTransport(allow, verify),
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
    )


__all__ = [
    "ALLOW_SETTING",
    "MAX_URL_CHARS",
    "GuardedBackend",
    "GuardedTransport",
    "TargetRefused",
    "check_syntax",
    "check_url",
    "embedded_ipv4",
    "guarded_client",
    "refusal",
    "resolve",
]
