"""The gateway's exceptions: one tree, and the one place that turns them into HTTP answers.

::

    GatewayError
     ├── ConfigError            settings, names or registry state that can't work: the CLI
     │                          prints the message on one line and exits with status 2
     ├── ApiError               a request refused: its HTTP status, message and headers
     │    └── BodyRefused       the body: 413 too large, 400 malformed, 415 unknown encoding
     └── StoreError             anything a channel store raises on purpose
          ├── StoreUnavailable  the store can't take writes now (disk full, read-only, I/O
          │                     error, locked, closed); nothing of the failed write was stored
          └── StoreBusy         its queue of records waiting for commit is full (backpressure);
                                ``retry_after`` says when to try again

Routes raise; they never catch to answer. ``create_app`` registers one exception handler that
answers every ``GatewayError`` and the core's ``CoreError`` through :func:`as_api_error`: the
contract's ``{"error": ...}`` body with its status. Both store errors mean "503, send the same
events again": a retry never counts an event twice, because a store's unique key on the dedup
key is the final word on duplicates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import voxloop_core


class GatewayError(Exception):
    """Root of the gateway's own errors."""


class ConfigError(GatewayError):
    """Settings, names or registry contents that can't work; the message says what to change."""


class ApiError(GatewayError):
    """A request refused with ``status``; ``message`` names the field and the rule."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r})"


class BodyRefused(ApiError):
    """The request body was refused (400, 413 or 415) before or while it was read."""


class StoreError(GatewayError):
    """Root of every error a store raises on purpose."""


class StoreUnavailable(StoreError):
    """The store can't take writes now; the message names the channel and the cause.

    Nothing of the write that raised it was committed, so sending it again is safe.
    """


class StoreBusy(StoreError):
    """The store's pending queue is full: too many records wait for their commit.

    Refusing at once, rather than queueing without bound, keeps memory and latency bounded
    when clients send faster than the disk commits.

    Attributes:
        retry_after: seconds after which the queue is likely to have room again.
    """

    retry_after: float

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after(seconds: float) -> dict[str, str]:
    """The ``Retry-After`` header for a wait of ``seconds``: whole seconds, rounded up, >= 1."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def as_api_error(exc: Exception) -> ApiError:
    """The HTTP answer to ``exc``: itself for an ``ApiError``, else its status by kind.

    A store error is a 503 with ``Retry-After`` (whole seconds, at least 1); the core's
    ``LimitError`` a 413 and its ``BodyError`` a 400, with the core's own message.
    """
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, StoreBusy):
        return ApiError(503, str(exc), retry_after(exc.retry_after))
    if isinstance(exc, StoreError):
        return ApiError(503, str(exc), retry_after(1))
    if isinstance(exc, voxloop_core.LimitError):
        return ApiError(413, str(exc))
    if isinstance(exc, voxloop_core.BodyError):
        return ApiError(400, str(exc))
    raise TypeError(f"no HTTP answer for {type(exc).__name__}") from exc
