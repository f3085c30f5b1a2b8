"""The async client's delivery: the thread worker's twin as an asyncio task.

The rules are the same and live in the shared :class:`~voxloop._outbox.Outbox`; only the waiting
(``asyncio.Event`` rather than ``threading.Event``) and the sending (an awaited transport) differ.
The task starts on the first ``capture()`` on the running loop, and is started afresh if the
client is later used on another loop. The spool's disk writes run in a thread so the loop never
waits on an fsync.

An event loop does not survive ``fork``; a forked child should create its own client.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from time import monotonic
from typing import Final, TypeVar

from ._config import Config
from ._errors import TransportError
from ._outbox import Batch, Outbox
from ._transport import AsyncTransport, Response

__all__ = ["AsyncWorker"]

logger = logging.getLogger("voxloop")

_T = TypeVar("_T")
_IDLE_WAKE: Final = 5.0
_CLOSING: Final = "the client closed before they could be delivered"


class AsyncWorker:
    """The task that empties an :class:`Outbox` through an :class:`AsyncTransport`.

    Every method runs on the event loop's thread, so the flags need no lock.
    """

    def __init__(self, outbox: Outbox, transport: AsyncTransport, config: Config) -> None:
        self._outbox = outbox
        self._transport = transport
        self._batching = config.batching
        self._spooled = config.spool_path is not None
        # The spool's calls run in a thread; on_error must still be called on the loop.
        outbox.defer_reports = self._spooled
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._cond = asyncio.Condition()
        self._inline_lock = asyncio.Lock()
        self.sleeping = True
        self._flush_gen = 0
        self._idle_gen = 0
        self._stop_requested = False
        self._abandon = False

    def after_fork_in_child(self) -> None:
        """Forget the parent's task: its loop does not exist in the child."""
        self._task = None
        self.sleeping = True
        self._flush_gen = self._idle_gen = 0

    async def _io(self, call: Callable[..., _T], *args: object) -> _T:
        """Run ``call`` off the loop when it may touch the spool, inline otherwise."""
        if not self._spooled:
            return call(*args)
        try:
            return await asyncio.to_thread(call, *args)
        finally:
            self._outbox.deliver_reports()

    # --- from the client -----------------------------------------------------------------------

    def wake(self) -> None:
        """Rouse the worker, starting its task on the running loop if needed."""
        self.sleeping = False
        if not self.running() and not self._start():
            return
        self._wake.set()

    def running(self) -> bool:
        """Whether the task is alive on the running loop."""
        task = self._task
        if task is None or task.done():
            return False
        try:
            return task.get_loop() is asyncio.get_running_loop()
        except RuntimeError:
            return False

    def _start(self) -> bool:
        if self._stop_requested:
            return False
        # Fresh primitives: asyncio's bind to the loop they are first used on.
        self._wake = asyncio.Event()
        self._cond = asyncio.Condition()
        self._inline_lock = asyncio.Lock()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="voxloop-worker")
        return True

    async def flush(self, timeout: float) -> bool:
        """Wait until everything captured so far is settled, at most ``timeout`` seconds.

        With a spool, everything captured so far is on disk when this returns, even on timeout.
        """
        deadline = monotonic() + timeout
        if asyncio.current_task() is self._task:
            return False  # called from on_error: waiting on ourselves would only time out
        outbox = self._outbox
        await self._io(outbox.absorb)
        if not self.running():
            if not outbox.has_work() and outbox.spool is None and outbox.current is None:
                return True  # nothing was ever captured: no task for nothing
            if not self._start():
                return await self._inline(deadline)
        self._flush_gen += 1
        gen = self._flush_gen
        self.wake()
        try:
            async with asyncio.timeout(max(0.0, deadline - monotonic())):
                async with self._cond:
                    await self._cond.wait_for(lambda: self._idle_gen >= gen or not self.running())
        except TimeoutError:
            return False
        return self._idle_gen >= gen

    async def stop(self, timeout: float) -> bool:
        """Send what is queued, then end the task; give up on what's left after ``timeout``."""
        deadline = monotonic() + timeout
        self._stop_requested = True
        self._outbox.close_inbox()
        settled = True
        task = self._task
        if task is None or not self.running():
            settled = await self._inline(deadline)
        else:
            self._wake.set()
            await asyncio.wait({task}, timeout=max(0.0, deadline - monotonic()))
            if not task.done():
                settled = False
                self._abandon = True
                self._wake.set()
                await asyncio.wait({task}, timeout=0.2)
                if not task.done():
                    task.cancel()
                    await asyncio.wait({task}, timeout=1.0)
        in_flight = task is None or task.done()
        await self._io(lambda: self._outbox.give_up(_CLOSING, in_flight=in_flight))
        return settled

    async def deliver_now(self, deadline: float) -> bool:
        """``sync_mode``: deliver within the caller's ``await``, one caller at a time."""
        return await self._inline(deadline)

    async def _inline(self, deadline: float) -> bool:
        async with self._inline_lock:
            while True:
                batch = await self._io(self._outbox.take)
                if batch is None:
                    return True
                while True:
                    delay = await self._io(self._outbox.judge, batch, await self._send(batch))
                    if delay is None:
                        break
                    if monotonic() + delay > deadline:
                        await self._io(self._outbox.give_up, self._outbox.out_of_time())
                        return False
                    await asyncio.sleep(delay)

    # --- the task ------------------------------------------------------------------------------

    async def _send(self, batch: Batch) -> Response | TransportError:
        try:
            return await self._transport.send(batch.body)
        except TransportError as exc:
            return exc
        except Exception as exc:
            logger.warning("voxloop: the transport raised %r; treated as a network error", exc)
            return TransportError(f"{type(exc).__name__}: {exc}"[:300])

    async def _run(self) -> None:
        outbox = self._outbox
        while not self._abandon:
            gen = self._flush_gen
            try:
                await self._linger(gen)
                batch = await self._io(outbox.take)
                if batch is not None:
                    if not await self._deliver(batch):
                        await self._io(outbox.give_up, _CLOSING)
                    continue
            except Exception:
                logger.exception("voxloop: unexpected error in the delivery worker")
                await asyncio.sleep(1.0)
                continue
            async with self._cond:
                self._idle_gen = gen
                self._cond.notify_all()
            if outbox.stopping:
                break
            await self._sleep(gen)
        async with self._cond:
            self._cond.notify_all()

    async def _wait(self, timeout: float | None) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _sleep(self, gen: int) -> None:
        self._wake.clear()
        self.sleeping = True
        if not (self._outbox.has_work() or self._flush_gen != gen or self._stop_requested):
            await self._wait(_IDLE_WAKE)
        self.sleeping = False

    def _hurry(self, gen: int) -> bool:
        return (
            len(self._outbox.inbox) >= self._batching.max_events
            or self._flush_gen != gen
            or self._stop_requested
            or self._abandon
        )

    async def _linger(self, gen: int) -> None:
        batching = self._batching
        if not self._outbox.inbox or batching.interval <= 0:
            return
        deadline = monotonic() + batching.interval * (1 - batching.jitter * random.random())
        while not self._hurry(gen):
            remaining = deadline - monotonic()
            if remaining <= 0:
                return
            self._wake.clear()
            await self._wait(remaining)

    async def _deliver(self, batch: Batch) -> bool:
        while True:
            delay = await self._io(self._outbox.judge, batch, await self._send(batch))
            if delay is None:
                return True
            if not await self._pause(delay):
                return False

    async def _pause(self, delay: float) -> bool:
        deadline = monotonic() + delay
        step = max(self._batching.interval, 0.05) if self._spooled else None
        while not self._abandon:
            remaining = deadline - monotonic()
            if remaining <= 0:
                return True
            self._wake.clear()
            await self._io(self._outbox.absorb)
            await self._wait(remaining if step is None else min(remaining, step))
        return False
