"""The clients: :class:`Client` and its async twin :class:`AsyncClient`, over a shared base.

:class:`BaseClient` holds everything that does no network I/O (arguments, the outbox, the
spool, the counters, the process hooks), like httpx's ``BaseClient``; the twins add only
``capture``/``flush``/``close`` in their own colour. ``capture()`` is the hot path: it checks the
event, appends it to the inbox, wakes the worker only when it sleeps or a batch just filled,
and returns the event's id. It never waits on the network and never raises for it.

Every open client is flushed and closed when the interpreter exits (``Config.flush_at_exit``),
and a forked child starts each client empty with a worker of its own.
"""

from __future__ import annotations

import abc
import asyncio
import atexit
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from time import monotonic
from types import TracebackType
from typing import Self

from ._async_worker import AsyncWorker
from ._config import DEFAULT_CONFIG, Config
from ._errors import ConfigError, DeliveryError
from ._event import make_event
from ._outbox import ErrorHook, Outbox, Stats
from ._spool import Spool
from ._transport import (
    AsyncHttpxTransport,
    AsyncTransport,
    HTTPTransport,
    Response,
    Transport,
    check_endpoint,
    check_key,
)
from ._worker import Worker, deliver_inline

__all__ = ["AsyncClient", "BaseClient", "Client"]

logger = logging.getLogger("voxloop")

#: Open clients, held until closed so that exit flushes even those the app let go of.
_open: set[BaseClient] = set()
_open_lock = threading.Lock()


def _check_arguments(endpoint: str, key: str, config: Config, on_error: object) -> None:
    if not isinstance(config, Config):
        raise ConfigError(f"config must be a voxloop.Config, got {type(config).__name__}")
    if on_error is not None and not callable(on_error):
        raise ConfigError("on_error must be callable")
    check_endpoint(endpoint)
    check_key(key)


class BaseClient(abc.ABC):
    """What both clients share; not used directly.

    Args:
        endpoint: the gateway's base URL, e.g. ``https://feedback.example.com``.
        key: a server key (``sk_...``) or a site key (``pk_...``) that names the channels used.
        config: settings; see :class:`~voxloop.Config`.
        on_error: called with each :class:`~voxloop.DeliveryError` (events refused or given up),
            from the worker's thread or task. It must not block; what it raises is logged.

    Raises:
        ConfigError: a malformed endpoint or key, or a spool file that can't be opened.
    """

    def __init__(
        self,
        endpoint: str,
        key: str,
        *,
        config: Config = DEFAULT_CONFIG,
        on_error: ErrorHook | None = None,
    ) -> None:
        _check_arguments(endpoint, key, config, on_error)
        self.endpoint = endpoint
        self._key = key
        self.config = config
        spool = Spool(config.spool_path) if config.spool_path is not None else None
        self._outbox = Outbox(config, spool, on_error, key=key)
        self._inbox = self._outbox.inbox
        self._queue_size = config.queue_size
        self._batch_events = config.batching.max_events
        self._sync_mode = config.sync_mode
        self._closed = False
        self._last_error: DeliveryError | None = None

    def _register(self) -> None:
        with _open_lock:
            _open.add(self)

    def _unregister(self) -> None:
        with _open_lock:
            _open.discard(self)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` (or ``aclose()``) was called."""
        return self._closed

    @property
    def last_error(self) -> DeliveryError | None:
        """Why the last ``flush()`` or ``close()`` returned ``False``; ``None`` after ``True``.

        It is the latest loss since the flush before: the :class:`~voxloop.Rejected` or
        :class:`~voxloop.GaveUp` that ``on_error`` received (a refused key: ``status`` 401 or
        403 and the gateway's message), or a :class:`~voxloop.DeliveryError` for events dropped
        on capture (a full queue, or after ``close()``). Failing those, for events still unsent
        at the timeout, a :class:`~voxloop.DeliveryError` naming the last attempt's failure,
        e.g. ``connection refused by http://127.0.0.1:8080``. ``stats()`` has the counts.
        """
        return self._last_error

    def stats(self) -> Stats:
        """The delivery counters: delivered, retried, dropped by reason, queued now."""
        return self._outbox.stats()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<voxloop.{type(self).__name__} {self.endpoint} {state}>"

    def _refuse(self, event_id: str) -> str:
        """Count an event the inbox can't take; the caller carries on."""
        reason = "closed" if self._closed else "queue_full"
        self._outbox.drop(reason)
        self._outbox.warn_dropping(
            "capture() after close()" if self._closed else "the queue is full"
        )
        return event_id

    def _timeout(self, timeout: float | None) -> float:
        return self.config.flush_timeout if timeout is None else max(0.0, timeout)

    def _conclude(self, settled: bool, timeout: float) -> bool:
        """What ``flush()`` and ``close()`` return: no loss since the last one, and in time."""
        error = self._outbox.take_problem()
        if error is None and not settled:
            error = self._outbox.unsent(timeout)
        self._last_error = error
        return error is None

    # --- process hooks ---------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        self._outbox.after_fork_in_child()
        self._inbox = self._outbox.inbox
        self._last_error = None

    @abc.abstractmethod
    def _at_exit(self) -> None:
        """Deliver what is left when the interpreter exits; each twin in its own way."""


class Client(BaseClient):
    """Sends feedback events to a voxloop gateway from a background thread.

    >>> with voxloop.Client("https://feedback.example.com", "sk_...") as client:
    ...     client.capture(channel="app", form="checkout", metric="nps", score=9)

    Args:
        endpoint, key, config, on_error: see :class:`BaseClient`.
        transport: how requests are made; default :class:`~voxloop.HTTPTransport`.
    """

    def __init__(
        self,
        endpoint: str,
        key: str,
        *,
        config: Config = DEFAULT_CONFIG,
        transport: Transport | None = None,
        on_error: ErrorHook | None = None,
    ) -> None:
        _check_arguments(endpoint, key, config, on_error)
        if transport is not None and not isinstance(transport, Transport):
            raise ConfigError("transport must have a send(body: bytes) -> Response method")
        super().__init__(endpoint, key, config=config, on_error=on_error)
        if transport is None:
            transport = HTTPTransport(endpoint, key, timeout=config.timeout, gzip=config.gzip)
        self._transport = transport
        self._worker = Worker(self._outbox, transport, config)
        self._register()
        if self._outbox.spool is not None and not self._sync_mode:
            self._worker.wake()  # events a previous run left in the spool go out now

    def capture(
        self,
        *,
        channel: str,
        form: str,
        metric: str,
        score: int,
        comment: str | None = None,
        respondent: str | None = None,
        vote_key: str | None = None,
        ts: datetime | int | str | None = None,
        locale: str | None = None,
        tags: Sequence[str] | None = None,
        meta: Mapping[str, str | int | float | bool] | None = None,
    ) -> str:
        """Queue one rating for delivery and return its id at once.

        Args:
            channel: where it came from: ``web``, ``app``, ``email`` or a project's own.
            form: the touchpoint, 1-64 characters of ``A-Z a-z 0-9 . _ -``.
            metric: ``nps``, ``csat``, ``ces``, ``likert`` or ``thumbs``.
            score: an int in the metric's range (``nps`` 0-10, ``csat`` 1-5...).
            comment: free text, up to 4,000 characters, any script.
            respondent: a pseudonymous id of the person (the gateway stores only a keyed hash).
            vote_key: one answer per key: a later event with the same key replaces this one.
            ts: when it was given: an aware ``datetime``, epoch ms or RFC 3339; default now.
            locale: a BCP 47 tag such as ``en`` or ``fa-IR``.
            tags: up to 16 strings of up to 64 characters.
            meta: up to 32 flat keys; values str (up to 512 characters), int, float or bool.

        Returns:
            The event's id (a UUIDv7), which delivery reports name it by.

        Raises:
            ValidationError: the event breaks a rule of the contract. Never for delivery.
        """
        event = make_event(
            channel, form, metric, score, comment, respondent, vote_key, ts, locale, tags, meta
        )
        inbox = self._inbox
        if len(inbox) >= self._queue_size or self._closed:
            return self._refuse(event["id"])
        inbox.append(event)
        if self._sync_mode:
            self._worker.deliver_now(monotonic() + self.config.flush_timeout)
        else:
            worker = self._worker
            if worker.sleeping or len(inbox) == self._batch_events:
                worker.wake()
        event_id: str = event["id"]
        return event_id

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything captured so far and wait for the answers, at most ``timeout`` s.

        With a spool, everything captured so far is on disk when this returns, even when the
        gateway is unreachable.

        Args:
            timeout: seconds to wait; default ``config.flush_timeout``.

        Returns:
            ``True`` only if every event captured since the previous ``flush()`` (or
            ``close()``) was delivered: accepted by the gateway, or already known to it.
            ``False`` if any was refused (a 4xx: a wrong key, an unknown channel...), given up
            after its retries, or dropped on capture, or if some are still unsent when
            ``timeout`` runs out (they stay queued and keep being retried).
            :attr:`last_error` then says why; ``on_error`` and the ``voxloop`` logger have
            each loss by id, ``stats()`` the counts.
        """
        wait = self._timeout(timeout)
        deadline = monotonic() + wait
        if self._sync_mode:
            settled = self._worker.deliver_now(deadline)
        else:
            settled = self._worker.flush(max(0.0, deadline - monotonic()))
        return self._conclude(settled, wait)

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop the worker; events still unsent after ``timeout`` are given up.

        With a spool they stay in it for the next run instead. Closing twice is harmless.

        Returns:
            As :meth:`flush`: ``True`` only if every event since the previous ``flush()`` was
            delivered; else :attr:`last_error` says why. ``True`` when already closed.
        """
        if self._closed:
            return True
        self._closed = True
        wait = self._timeout(timeout)
        settled = self._worker.stop(wait)
        self._unregister()
        return self._conclude(settled, wait)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        self._worker.after_fork_in_child()

    def _at_exit(self) -> None:
        self.close()


class _ThreadedTransport:
    """A blocking :class:`Transport` made awaitable by running each send in a thread."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def send(self, body: bytes) -> Response:
        return await asyncio.to_thread(self.transport.send, body)

    async def aclose(self) -> None:
        close = getattr(self.transport, "close", None)
        if callable(close):
            await asyncio.to_thread(close)


def _default_async_transport(endpoint: str, key: str, config: Config) -> AsyncTransport:
    """httpx's async client when installed (no thread per request), else http.client in a thread."""
    try:
        import httpx  # noqa: F401
    except ImportError:
        return _ThreadedTransport(
            HTTPTransport(endpoint, key, timeout=config.timeout, gzip=config.gzip)
        )
    return AsyncHttpxTransport(endpoint, key, timeout=config.timeout, gzip=config.gzip)


class AsyncClient(BaseClient):
    """The async twin of :class:`Client`, delivering from a task on the running event loop.

    >>> async with voxloop.AsyncClient("https://feedback.example.com", "sk_...") as client:
    ...     await client.capture(channel="app", form="checkout", metric="nps", score=9)

    ``capture()`` is awaited like the rest, but only waits in ``sync_mode``. Call the client
    from its event loop's thread.

    Args:
        endpoint, key, config, on_error: see :class:`BaseClient`.
        transport: an :class:`~voxloop.AsyncTransport`, or a blocking
            :class:`~voxloop.Transport` (run in a thread); default httpx's async client when
            installed, else the standard library's in a thread.
    """

    def __init__(
        self,
        endpoint: str,
        key: str,
        *,
        config: Config = DEFAULT_CONFIG,
        transport: AsyncTransport | Transport | None = None,
        on_error: ErrorHook | None = None,
    ) -> None:
        _check_arguments(endpoint, key, config, on_error)
        chosen: AsyncTransport
        if transport is None:
            chosen = _default_async_transport(endpoint, key, config)
        elif asyncio.iscoroutinefunction(getattr(transport, "send", None)):
            chosen = transport  # type: ignore[assignment]
        elif isinstance(transport, Transport):
            chosen = _ThreadedTransport(transport)
        else:
            raise ConfigError("transport must have a send(body: bytes) -> Response method")
        super().__init__(endpoint, key, config=config, on_error=on_error)
        self._transport = chosen
        self._worker = AsyncWorker(self._outbox, chosen, config)
        self._register()

    async def capture(
        self,
        *,
        channel: str,
        form: str,
        metric: str,
        score: int,
        comment: str | None = None,
        respondent: str | None = None,
        vote_key: str | None = None,
        ts: datetime | int | str | None = None,
        locale: str | None = None,
        tags: Sequence[str] | None = None,
        meta: Mapping[str, str | int | float | bool] | None = None,
    ) -> str:
        """Queue one rating for delivery and return its id; see :meth:`Client.capture`."""
        event = make_event(
            channel, form, metric, score, comment, respondent, vote_key, ts, locale, tags, meta
        )
        inbox = self._inbox
        if len(inbox) >= self._queue_size or self._closed:
            return self._refuse(event["id"])
        inbox.append(event)
        if self._sync_mode:
            await self._worker.deliver_now(monotonic() + self.config.flush_timeout)
        else:
            worker = self._worker
            if worker.sleeping or len(inbox) == self._batch_events:
                worker.wake()
        event_id: str = event["id"]
        return event_id

    async def flush(self, timeout: float | None = None) -> bool:
        """Send everything captured so far and await the answers; see :meth:`Client.flush`.

        Returns:
            ``True`` only if every event captured since the previous ``flush()`` was delivered;
            else :attr:`last_error` says why.
        """
        wait = self._timeout(timeout)
        deadline = monotonic() + wait
        if self._sync_mode:
            settled = await self._worker.deliver_now(deadline)
        else:
            settled = await self._worker.flush(max(0.0, deadline - monotonic()))
        return self._conclude(settled, wait)

    async def aclose(self, timeout: float | None = None) -> bool:
        """Flush, then end the worker task; see :meth:`Client.close`."""
        if self._closed:
            return True
        self._closed = True
        wait = self._timeout(timeout)
        settled = await self._worker.stop(wait)
        aclose = getattr(self._transport, "aclose", None)
        if callable(aclose):
            try:
                await aclose()
            except Exception:
                logger.exception("voxloop: closing the transport failed")
        if self._outbox.spool is not None:
            await asyncio.to_thread(self._outbox.spool.close)
        self._unregister()
        return self._conclude(settled, wait)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        self._worker.after_fork_in_child()

    def _at_exit(self) -> None:
        """The event loop is gone by now: deliver what is left from this thread if we can."""
        self._closed = True
        outbox = self._outbox
        outbox.requeue_current()
        if outbox.spool is not None:
            outbox.absorb()
            return
        transport = self._exit_transport()
        if transport is None:
            outbox.give_up("the event loop ended before aclose(); call aclose() to flush")
            return
        deliver_inline(outbox, transport, monotonic() + self.config.flush_timeout)

    def _exit_transport(self) -> Transport | None:
        chosen = self._transport
        if isinstance(chosen, _ThreadedTransport):
            return chosen.transport
        if isinstance(chosen, AsyncHttpxTransport):
            config = self.config
            return HTTPTransport(self.endpoint, self._key, timeout=config.timeout, gzip=config.gzip)
        return None


def _after_fork_in_child() -> None:
    global _open_lock
    _open_lock = threading.Lock()
    for client in list(_open):
        client._after_fork_in_child()


def _flush_at_exit() -> None:
    for client in list(_open):
        if not client.config.flush_at_exit or client.closed:
            continue
        try:
            client._at_exit()
        except Exception:
            logger.exception("voxloop: flushing at exit failed")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_flush_at_exit)
