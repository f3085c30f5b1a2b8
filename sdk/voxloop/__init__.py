"""voxloop's Python SDK: capture ratings and comments from apps and web backends.

It depends on the standard library alone (orjson is used when present, httpx when installed).

The simple case, one client for the process::

    import voxloop

    voxloop.init("https://feedback.example.com", "sk_...")
    voxloop.capture(channel="app", form="checkout", metric="nps", score=9)

or clients of your own, :class:`Client` and its async twin :class:`AsyncClient`. ``capture()``
checks the event, queues it and returns at once; a background worker batches, compresses, sends,
and retries with the same ids, so the gateway counts every event once. Everything public is
exported here; the underscore modules may change without notice.
"""

from __future__ import annotations

from collections.abc import Mapping as _Mapping
from collections.abc import Sequence as _Sequence
from datetime import datetime as _datetime

from ._client import AsyncClient, Client
from ._config import (
    DEFAULT_BATCHING,
    DEFAULT_CONFIG,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    Batching,
    Config,
    Retry,
    Timeout,
)
from ._errors import (
    ConfigError,
    DeliveryError,
    GaveUp,
    Rejected,
    TransportError,
    ValidationError,
    VoxloopError,
)
from ._event import METRIC_RANGES, new_id
from ._outbox import ErrorHook, Stats
from ._transport import (
    AsyncHttpxTransport,
    AsyncTransport,
    HTTPTransport,
    HttpxTransport,
    MockTransport,
    Response,
    Transport,
)
from ._version import __version__

__all__ = [
    "DEFAULT_BATCHING",
    "DEFAULT_CONFIG",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "METRIC_RANGES",
    "AsyncClient",
    "AsyncHttpxTransport",
    "AsyncTransport",
    "Batching",
    "Client",
    "Config",
    "ConfigError",
    "DeliveryError",
    "ErrorHook",
    "GaveUp",
    "HTTPTransport",
    "HttpxTransport",
    "MockTransport",
    "Rejected",
    "Response",
    "Retry",
    "Stats",
    "Timeout",
    "Transport",
    "TransportError",
    "ValidationError",
    "VoxloopError",
    "__version__",
    "capture",
    "close",
    "flush",
    "get_client",
    "init",
    "new_id",
]

# The process-wide client of init(): the one piece of module state, as in sentry-python.
_client: Client | None = None


def init(
    endpoint: str,
    key: str,
    *,
    config: Config = DEFAULT_CONFIG,
    transport: Transport | None = None,
    on_error: ErrorHook | None = None,
) -> Client:
    """Create the process-wide client used by :func:`capture`, closing any previous one.

    Args: as :class:`Client`.

    Returns:
        The new client, for its ``stats()`` or a ``with`` block.
    """
    global _client
    previous, _client = (
        _client,
        Client(endpoint, key, config=config, transport=transport, on_error=on_error),
    )
    if previous is not None:
        previous.close()
    return _client


def get_client() -> Client | None:
    """The client :func:`init` made, if any."""
    return _client


def capture(
    *,
    channel: str,
    form: str,
    metric: str,
    score: int,
    comment: str | None = None,
    respondent: str | None = None,
    vote_key: str | None = None,
    ts: _datetime | int | str | None = None,
    locale: str | None = None,
    tags: _Sequence[str] | None = None,
    meta: _Mapping[str, str | int | float | bool] | None = None,
) -> str:
    """Queue one rating on the :func:`init` client; see :meth:`Client.capture`.

    Raises:
        ConfigError: :func:`init` was not called.
        ValidationError: the event breaks a rule of the contract.
    """
    client = _client
    if client is None:
        raise ConfigError("call voxloop.init(endpoint, key) before voxloop.capture()")
    return client.capture(
        channel=channel,
        form=form,
        metric=metric,
        score=score,
        comment=comment,
        respondent=respondent,
        vote_key=vote_key,
        ts=ts,
        locale=locale,
        tags=tags,
        meta=meta,
    )


def flush(timeout: float | None = None) -> bool:
    """Flush the :func:`init` client; ``True`` if there is none. See :meth:`Client.flush`.

    Returns:
        ``True`` only if every event captured since the previous flush was delivered;
        ``get_client().last_error`` says why not.
    """
    return True if _client is None else _client.flush(timeout)


def close(timeout: float | None = None) -> bool:
    """Close the :func:`init` client and forget it; ``True`` if there is none.

    Returns:
        As :func:`flush`; the closed client (returned by :func:`init`) keeps its ``last_error``.
    """
    global _client
    client, _client = _client, None
    return True if client is None else client.close(timeout)
