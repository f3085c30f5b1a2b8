"""The sync client's delivery: a lazy daemon thread that sends what the outbox holds.

Modelled on sentry-python's ``BackgroundWorker`` and posthog-python's ``Consumer``:

- It starts on the first ``capture()``, is a daemon (it never keeps the interpreter alive), is
  made afresh in a forked child (threads don't survive ``fork``), and stops when it reaches the
  ``STOP`` sentinel that ``close()`` puts behind the last event.
- It sleeps until woken. ``capture()`` wakes it only when it sleeps or a batch just filled, so
  the usual call pays for no lock. Once awake it lets a partial batch wait ``interval`` (less
  jitter) for company, unless a ``flush()`` or ``close()`` is waiting on it.
- It sends one batch at a time and resends it unchanged, same ids, after the outbox's backoff.
  With a spool it keeps moving new events to disk while it waits.

``deliver_inline`` is the same loop run in the caller's thread, for ``sync_mode``, and for
``close()`` at interpreter exit, when a new thread can no longer be started.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from time import monotonic
from typing import Final

from ._config import Config
from ._errors import TransportError
from ._outbox import Batch, Outbox
from ._transport import Response, Transport

__all__ = ["Worker", "deliver_inline", "send_once"]

logger = logging.getLogger("voxloop")

#: The longest a sleeping worker waits without being woken: a safety net, and the pace of
#: the spool's lease renewal.
_IDLE_WAKE: Final = 5.0
_CLOSING: Final = "the client closed before they could be delivered"


def send_once(transport: Transport, batch: Batch) -> Response | TransportError:
    """One attempt; a transport's unexpected exception counts as a network error, not a crash."""
    try:
        return transport.send(batch.body)
    except TransportError as exc:
        return exc
    except Exception as exc:
        logger.warning("voxloop: the transport raised %r; treated as a network error", exc)
        return TransportError(f"{type(exc).__name__}: {exc}"[:300])


def deliver_inline(outbox: Outbox, transport: Transport, deadline: float) -> bool:
    """Send everything the outbox holds from this thread, retrying until ``deadline``.

    A retry that would start after ``deadline`` is not made: the batch is given up (or, with
    a spool, left in it for later).

    Returns:
        Whether everything was settled by the deadline.
    """
    while True:
        batch = outbox.take()
        if batch is None:
            return True
        while True:
            delay = outbox.judge(batch, send_once(transport, batch))
            if delay is None:
                break
            if monotonic() + delay > deadline:
                outbox.give_up(outbox.out_of_time())
                return False
            time.sleep(delay)


class Worker:
    """The thread that empties an :class:`Outbox` through a :class:`Transport`.

    ``sleeping`` is read by ``capture()`` without a lock: the worker sets it before it looks at
    the inbox a last time and waits, and ``capture()`` appends before it reads it, so one of the
    two always sees the other (the GIL orders them).
    """

    def __init__(self, outbox: Outbox, transport: Transport, config: Config) -> None:
        self._outbox = outbox
        self._transport = transport
        self._batching = config.batching
        self._spooled = config.spool_path is not None
        self._reset()

    def _reset(self) -> None:
        """Fresh locks and no thread: at creation, and in a forked child."""
        self._start_lock = threading.Lock()
        self._inline_lock = threading.Lock()
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.sleeping = True
        self._flush_gen = 0
        self._idle_gen = 0
        self._stop_requested = False
        self._abandon = False
        self._release_at_exit = False
        self._released = False

    def after_fork_in_child(self) -> None:
        """Forget the parent's thread and locks (either may have been mid-use at the fork)."""
        self._reset()

    # --- from the client's threads -------------------------------------------------------------

    def wake(self) -> None:
        """Rouse the worker, starting it if it isn't running yet."""
        self.sleeping = False
        if self._thread is None and not self._start():
            return
        self._wake.set()

    def _start(self) -> bool:
        with self._start_lock:
            if self._thread is not None:
                return True
            if self._stop_requested:
                return False
            thread = threading.Thread(target=self._run, name="voxloop-worker", daemon=True)
            try:
                thread.start()
            except RuntimeError:
                # Interpreter shutdown: no new threads. close() then delivers inline.
                return False
            self._thread = thread
            return True

    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def flush(self, timeout: float) -> bool:
        """Wait until everything captured so far is settled, at most ``timeout`` seconds.

        With a spool, everything captured so far is on disk when this returns, even on timeout.
        """
        deadline = monotonic() + timeout
        if self._thread is not None and threading.current_thread() is self._thread:
            return False  # called from on_error: waiting on ourselves would only time out
        outbox = self._outbox
        outbox.absorb()
        if not self.running():
            if not outbox.has_work() and outbox.spool is None and outbox.current is None:
                return True  # nothing was ever captured: no thread for nothing
            if not self._start():
                return self._inline(deadline)
        with self._cond:
            self._flush_gen += 1
            gen = self._flush_gen
        self.wake()
        with self._cond:
            while self._idle_gen < gen and self.running():
                remaining = deadline - monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return self._idle_gen >= gen

    def stop(self, timeout: float) -> bool:
        """Send what is queued, then stop the thread; give up on what's left after ``timeout``.

        Returns:
            Whether everything was settled in time.
        """
        deadline = monotonic() + timeout
        self._stop_requested = True
        self._outbox.close_inbox()
        thread = self._thread
        if thread is not None and threading.current_thread() is thread:
            # close() from on_error: the worker stops when it reaches the sentinel.
            self._release_at_exit = True
            return False
        settled = True
        if thread is None or not thread.is_alive():
            settled = self._inline(deadline)
        else:
            self._wake.set()
            thread.join(max(0.0, deadline - monotonic()))
            if thread.is_alive():
                settled = False
                self._abandon = True
                self._wake.set()
                thread.join(0.2)  # a send in progress finishes on its own, read timeout bound
        # Events captured while close() ran, behind the sentinel, and any batch left over.
        self._outbox.give_up(_CLOSING, in_flight=not self.running())
        # A worker still blocked in a send holds the transport: it releases it when it ends.
        self._release_at_exit = True
        if not self.running():
            self._release()
        return settled

    def _release(self) -> None:
        """Close the transport and the spool, once; from whichever thread ends last."""
        with self._start_lock:
            if self._released:
                return
            self._released = True
        close = getattr(self._transport, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                logger.exception("voxloop: closing the transport failed")
        if self._outbox.spool is not None:
            self._outbox.spool.close()

    def _inline(self, deadline: float) -> bool:
        with self._inline_lock:
            return deliver_inline(self._outbox, self._transport, deadline)

    def deliver_now(self, deadline: float) -> bool:
        """``sync_mode``: deliver in the caller's thread, one caller at a time."""
        return self._inline(deadline)

    # --- in the worker thread ------------------------------------------------------------------

    def _run(self) -> None:
        outbox = self._outbox
        while not self._abandon:
            gen = self._flush_gen
            try:
                self._linger(gen)
                batch = outbox.take()
                if batch is not None:
                    if not self._deliver(batch):
                        outbox.give_up(_CLOSING)
                    continue
            except Exception:
                # A bug here must not end delivery for the life of the process.
                logger.exception("voxloop: unexpected error in the delivery worker")
                self._wake.clear()
                self._wake.wait(1.0)
                continue
            with self._cond:
                self._idle_gen = gen
                self._cond.notify_all()
            if outbox.stopping:
                break
            self._sleep(gen)
        with self._cond:
            self._cond.notify_all()
        if self._release_at_exit:
            self._release()

    def _sleep(self, gen: int) -> None:
        self._wake.clear()
        self.sleeping = True
        if not (self._outbox.has_work() or self._flush_gen != gen or self._stop_requested):
            self._wake.wait(_IDLE_WAKE)
        self.sleeping = False

    def _hurry(self, gen: int) -> bool:
        """Whether a partial batch should go now: full, flushing, or closing."""
        return (
            len(self._outbox.inbox) >= self._batching.max_events
            or self._flush_gen != gen
            or self._stop_requested
            or self._abandon
        )

    def _linger(self, gen: int) -> None:
        """Give a partial batch of fresh events ``interval`` (less jitter) to fill up."""
        batching = self._batching
        if not self._outbox.inbox or batching.interval <= 0:
            return
        deadline = monotonic() + batching.interval * (1 - batching.jitter * random.random())
        while not self._hurry(gen):
            remaining = deadline - monotonic()
            if remaining <= 0:
                return
            self._wake.clear()
            if self._hurry(gen):
                return
            self._wake.wait(remaining)

    def _deliver(self, batch: Batch) -> bool:
        """Send ``batch`` until it is settled; ``False`` if abandoned first (close timed out)."""
        while True:
            delay = self._outbox.judge(batch, send_once(self._transport, batch))
            if delay is None:
                return True
            if not self._pause(delay):
                return False

    def _pause(self, delay: float) -> bool:
        """Wait out a backoff, spooling new events meanwhile; ``False`` if abandoned."""
        deadline = monotonic() + delay
        step = max(self._batching.interval, 0.05) if self._spooled else None
        while not self._abandon:
            remaining = deadline - monotonic()
            if remaining <= 0:
                return True
            self._wake.clear()
            if self._abandon:
                break
            self._outbox.absorb()
            self._wake.wait(remaining if step is None else min(remaining, step))
        return False
