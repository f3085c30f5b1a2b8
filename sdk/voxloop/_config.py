"""The client's settings as small frozen value objects, each with named defaults.

Grouped by concern, like httpx's ``Timeout`` and ``Limits``, so a caller changes one knob without
restating the others: ``Config(batching=Batching(interval=0.2))``. Every value is checked when
the object is made, so a wrong setting fails at start-up with a :class:`ConfigError` naming it,
not later in a background thread where nobody sees it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any, Final

from ._errors import ConfigError

__all__ = [
    "DEFAULT_BATCHING",
    "DEFAULT_CONFIG",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "Batching",
    "Config",
    "Retry",
    "Timeout",
]

#: The gateway's limits per request (CONTRACT.md, "Ingest"): a batch never goes past them.
MAX_BATCH_EVENTS: Final = 1000
MAX_BATCH_BYTES: Final = 1024 * 1024


def _number(owner: str, name: str, value: object, low: float, high: float) -> None:
    """Refuse ``value`` unless it is a real number (not a bool) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{owner}.{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{owner}.{name} must be within {low:g}..{high:g}, got {value!r}")


def _integer(owner: str, name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{owner}.{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{owner}.{name} must be within {low}..{high}, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Batching:
    """When the worker sends what it holds: a full batch goes at once, a partial one waits.

    Attributes:
        max_events: events per request, at most the gateway's 1,000.
        max_bytes: JSON bytes per request before compression, at most the gateway's 1 MiB.
        interval: seconds a partial batch waits for company after the worker wakes for it.
        jitter: fraction of ``interval`` taken off at random, so many processes started
            together don't send in lockstep.
    """

    max_events: int = 100
    max_bytes: int = 512 * 1024
    interval: float = 1.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        _integer("Batching", "max_events", self.max_events, 1, MAX_BATCH_EVENTS)
        _integer("Batching", "max_bytes", self.max_bytes, 1024, MAX_BATCH_BYTES)
        _number("Batching", "interval", self.interval, 0.0, 3600.0)
        _number("Batching", "jitter", self.jitter, 0.0, 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """How a batch is sent again after a network error, a 5xx, a 408 or a 429.

    The wait before retry ``n`` (0 for the first) is ``min(backoff * 2**n, cap)``, less up to
    ``jitter`` of it at random, and never less than the gateway's ``Retry-After``. Every retry
    carries the same events with the same ids, so the gateway counts each once.

    Attributes:
        attempts: sends of one batch before it is dropped as ``gave_up``. With a spool nothing
            is dropped: the batch stays on disk and is tried every ``cap`` seconds.
        backoff: the first wait, in seconds.
        cap: the longest wait the backoff grows to, in seconds.
        jitter: fraction of each wait taken off at random (0 keeps the exact waits).
        max_retry_after: the most a ``Retry-After`` is believed, in seconds.
    """

    attempts: int = 8
    backoff: float = 1.0
    cap: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 600.0

    def __post_init__(self) -> None:
        _integer("Retry", "attempts", self.attempts, 1, 1_000_000)
        _number("Retry", "backoff", self.backoff, 0.0, 3600.0)
        _number("Retry", "cap", self.cap, 0.0, 86_400.0)
        _number("Retry", "jitter", self.jitter, 0.0, 1.0)
        _number("Retry", "max_retry_after", self.max_retry_after, 0.0, 86_400.0)

    def delay(self, retry: int, retry_after: float | None, unit: float) -> float:
        """Seconds to wait before retry number ``retry`` (0-based).

        Args:
            retry: how many retries came before this one.
            retry_after: the gateway's ``Retry-After`` in seconds, if it sent one.
            unit: a random number in ``[0, 1)``, passed in so the rule is testable.
        """
        wait = min(self.backoff * 2.0 ** min(retry, 64), self.cap)
        wait -= wait * self.jitter * unit
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeout:
    """Network timeouts of one request, in seconds.

    Attributes:
        connect: to open the connection (TCP and TLS).
        read: for each read or write on it; a slower gateway counts as a network error.
    """

    connect: float = 5.0
    read: float = 10.0

    def __post_init__(self) -> None:
        _number("Timeout", "connect", self.connect, 0.001, 600.0)
        _number("Timeout", "read", self.read, 0.001, 600.0)


DEFAULT_BATCHING: Final = Batching()
DEFAULT_RETRY: Final = Retry()
DEFAULT_TIMEOUT: Final = Timeout()


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Everything a client can be told, with defaults fit for a web backend.

    Attributes:
        batching: when batches are sent (:class:`Batching`).
        retry: how failures are retried (:class:`Retry`).
        timeout: network timeouts (:class:`Timeout`).
        queue_size: events held in memory awaiting the worker; past it ``capture()`` drops the
            new event (counted as ``queue_full``) rather than grow or block.
        spool_path: a SQLite file that keeps events until the gateway acknowledges them, so they
            survive an outage and a restart; ``None`` (the default) keeps them in memory only.
        sync_mode: deliver inside ``capture()`` and return after the gateway's answer, for
            scripts, serverless handlers and tests. No background thread is started.
        gzip: compress request bodies of 1 KiB and more.
        flush_timeout: seconds ``flush()`` and ``close()`` wait when given no timeout, and
            what the exit hook waits.
        flush_at_exit: flush and close the client when the interpreter exits.
    """

    batching: Batching = DEFAULT_BATCHING
    retry: Retry = DEFAULT_RETRY
    timeout: Timeout = DEFAULT_TIMEOUT
    queue_size: int = 10_000
    spool_path: str | os.PathLike[str] | None = None
    sync_mode: bool = False
    gzip: bool = True
    flush_timeout: float = 5.0
    flush_at_exit: bool = True

    def __post_init__(self) -> None:
        for name, kind in (("batching", Batching), ("retry", Retry), ("timeout", Timeout)):
            value = getattr(self, name)
            if not isinstance(value, kind):
                raise ConfigError(
                    f"Config.{name} must be a {kind.__name__}, got {type(value).__name__}"
                )
        _integer("Config", "queue_size", self.queue_size, 1, 100_000_000)
        _number("Config", "flush_timeout", self.flush_timeout, 0.0, 3600.0)
        if self.spool_path is not None and not isinstance(self.spool_path, str | os.PathLike):
            raise ConfigError(f"Config.spool_path must be a path, got {self.spool_path!r}")
        if self.spool_path is not None and not os.fspath(self.spool_path):
            raise ConfigError("Config.spool_path must not be empty; use None for no spool")
        for flag in ("sync_mode", "gzip", "flush_at_exit"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"Config.{flag} must be True or False")

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied, checked like a new one."""
        try:
            return dataclasses.replace(self, **changes)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None


DEFAULT_CONFIG: Final = Config()
