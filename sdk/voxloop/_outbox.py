"""What both workers share: the inbox, batching, the spool, the retry decisions and the counters.

Nothing here touches the network, so the thread worker (``_worker``) and the asyncio worker
(``_async_worker``) differ only in how they wait and how they send, like httpx's ``BaseClient``
and sentry-python's ``HttpTransportCore``. The spool is disk I/O: the async worker calls the
methods that reach it (:meth:`Outbox.take`, :meth:`Outbox.absorb`, :meth:`Outbox.judge`) in a
thread when a spool is configured.

Every event leaves the outbox one way, counted once: ``delivered`` (the gateway answered for it:
accepted or already known), or ``dropped`` by reason: ``queue_full`` (the inbox was full),
``rejected`` (refused for good), ``gave_up`` (retries exhausted, or the client closed first, with
no spool to keep it), ``closed`` (captured after ``close()``). ``retried`` counts events sent
again.

The outbox also keeps what ``flush()`` reports: the latest drop since the last flush took it
(:meth:`Outbox.take_problem`), and the reason of the last failed attempt while a batch is being
retried (:meth:`Outbox.unsent`). An outage is logged once as a WARNING naming its cause, and a
refused key once as an ERROR naming the status and the gateway's message.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from time import time
from typing import Final, Literal

from ._config import Config
from ._errors import DeliveryError, GaveUp, Rejected, TransportError
from ._event import BODY_OVERHEAD, Event, batch_body, encode_body, encode_event
from ._spool import Spool, SpoolError
from ._transport import Response

__all__ = ["DROP_REASONS", "STOP", "Batch", "ErrorHook", "Outbox", "Stats"]

logger = logging.getLogger("voxloop")

#: The reasons an event is dropped, in the order ``Stats.dropped`` lists them.
DROP_REASONS: Final = ("queue_full", "rejected", "gave_up", "closed")
#: Put in the inbox by ``close()``: the worker stops when it reaches it, after what came before.
#: An empty event compared by identity, so that the inbox holds events only.
STOP: Final[Event] = {}
#: The shortest wait before a retry, in seconds.
_MIN_WAIT: Final = 0.01
#: How many ids a log line names; ``on_error`` always gets them all.
_IDS_IN_LOGS: Final = 5
#: The statuses by which a gateway refuses the key itself: every event sent with it fails.
_KEY_REFUSED: Final = (401, 403)

ErrorHook = Callable[[DeliveryError], None]


@dataclass(frozen=True, slots=True)
class Stats:
    """A snapshot of a client's counters, in events.

    Attributes:
        delivered: acknowledged by the gateway (accepted, or already known from a retry).
        retried: sent again after a network error, a 5xx, a 408 or a 429 (once per resend).
        dropped: events lost, by reason: ``queue_full``, ``rejected``, ``gave_up``, ``closed``.
        queued: events in memory awaiting the worker at the time of the snapshot.
    """

    delivered: int
    retried: int
    dropped: dict[str, int]
    queued: int


@dataclass(slots=True)
class Batch:
    """Events sent together, with the ids they were captured with, on every attempt.

    It holds either the events' JSON one by one (``parts``: from the spool, or after a split)
    or the events themselves, encoded in one call with the body (the usual case: cheaper).
    """

    ids: list[str]
    parts: list[bytes] | None = None
    events: list[Event] | None = field(default=None, repr=False)
    attempts: int = 0
    _body: bytes | None = field(default=None, repr=False)

    @property
    def body(self) -> bytes:
        """The request body, built once and resent as it is."""
        if self._body is None:
            if self.parts is None:
                self._body = encode_body(self.events or [])
            else:
                self._body = batch_body(self.parts)
        return self._body

    def encoded(self) -> list[tuple[str, bytes]]:
        """``(id, json)`` of each event, to hand them back one by one."""
        parts = self.parts
        if parts is None:
            parts = [encode_event(event) for event in self.events or []]
        return list(zip(self.ids, parts, strict=True))

    def __len__(self) -> int:
        return len(self.ids)


class Outbox:
    """The events between ``capture()`` and the gateway's answer, and the rules for them.

    ``inbox`` is where ``capture()`` appends, from any thread, without a lock (``deque`` appends
    and pops are atomic). Only the worker takes from it, except :meth:`absorb`, which also runs
    in ``flush()``'s thread and so holds a lock.
    """

    def __init__(
        self,
        config: Config,
        spool: Spool | None,
        on_error: ErrorHook | None,
        *,
        key: str = "",
    ) -> None:
        self.config = config
        self.spool = spool
        self.on_error = on_error
        self.inbox: deque[Event] = deque()
        #: encoded events to send before the inbox's (a batch split after a 413, or events the
        #: spool could not take).
        self._front: deque[tuple[str, bytes]] = deque()
        self._absorb_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.stopping = False
        #: whether ``STOP`` was put in the inbox (only then does taking look for it).
        self.stop_queued = False
        #: the batch taken and not yet settled, so that nothing in flight goes uncounted.
        self.current: Batch | None = None
        self.delivered = 0
        self.retried = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self._max_events = config.batching.max_events
        self._max_bytes = config.batching.max_bytes
        self._last_warning = float("-inf")
        #: Set by the async worker when the outbox runs in a thread (a spool): ``on_error`` is
        #: then called from the event loop, by :meth:`deliver_reports`, not from that thread.
        self.defer_reports = False
        self._reports: deque[DeliveryError] = deque()
        #: masked out of anything the gateway says, should it ever echo it.
        self._key = key
        #: the latest loss since :meth:`take_problem`: the report, or the drop reason alone.
        self._problem: DeliveryError | str | None = None
        #: why the last attempt failed while a batch is retried; ``None`` once one is answered.
        self._failure: str | None = None
        #: the gateway's refusal of the key last logged as an ERROR; ``None`` after a 2xx.
        self._key_refusal: str | None = None

    # --- counters -----------------------------------------------------------------------------

    def drop(self, reason: str, count: int = 1) -> None:
        """Count ``count`` events lost for ``reason``; safe from any thread."""
        with self._count_lock:
            self.dropped[reason] += count
            self._problem = reason

    def take_problem(self) -> DeliveryError | None:
        """The latest loss since the previous call (the error ``on_error`` got), and forget it."""
        with self._count_lock:
            problem, self._problem = self._problem, None
        if isinstance(problem, str):
            return DeliveryError(_DROPPED.get(problem, f"events dropped ({problem})"))
        return problem

    def unsent(self, timeout: float) -> DeliveryError:
        """Why events are still unsent when a ``flush()`` of ``timeout`` seconds gives up."""
        batch = self.current
        reason = f"not every event was delivered within {timeout:g} s"
        failure = self._failure
        if failure is not None:
            reason += f"; the last attempt failed: {failure}"
        elif batch is not None:
            reason += "; a batch is still on its way"
        return DeliveryError(reason, tuple(batch.ids) if batch is not None else ())

    def out_of_time(self) -> str:
        """Why a batch sent inline (``sync_mode``, the exit hook) is given up at its deadline."""
        failure = self._failure
        if failure is None:
            return "no answer within the time allowed"
        return f"not delivered within the time allowed; the last attempt failed: {failure}"

    def warn_dropping(self, reason: str) -> None:
        """Log a lost event, at most once a minute: a full queue would otherwise flood the log."""
        now = time()
        if now - self._last_warning >= 60:
            self._last_warning = now
            logger.warning("voxloop: dropping events (%s); counts so far: %s", reason, self.dropped)

    def stats(self) -> Stats:
        """The counters now."""
        with self._count_lock:
            dropped = dict(self.dropped)
        return Stats(self.delivered, self.retried, dropped, len(self.inbox) + len(self._front))

    # --- taking batches ---------------------------------------------------------------------

    def close_inbox(self) -> None:
        """Put ``STOP`` behind the last event: the worker stops when it gets there."""
        self.stop_queued = True
        self.inbox.append(STOP)

    def has_work(self) -> bool:
        """Whether events wait in memory (the spool is asked by :meth:`take`)."""
        return bool(self.inbox) or bool(self._front)

    def take(self) -> Batch | None:
        """The next batch to send, within the count and byte limits; ``None`` when idle.

        With a spool, the inbox is first moved into it, and batches come from it, oldest first.
        """
        if self.spool is not None:
            self.absorb()
            if not self._front:
                try:
                    rows = self.spool.take(self._max_events, self._max_bytes)
                except SpoolError as exc:
                    logger.error("voxloop: can't read the spool: %s", exc)
                    rows = []
                self.current = _batch(rows) if rows else None
                return self.current
        if not self._front and not self.stop_queued:
            batch = self._take_whole()
            if batch is not False:
                self.current = batch
                return batch
        ids: list[str] = []
        parts: list[bytes] = []
        size = BODY_OVERHEAD
        while len(ids) < self._max_events:
            if self._front:
                event_id, part = self._front.popleft()
            else:
                encoded = self._next_encoded()
                if encoded is None:
                    break
                event_id, part = encoded
            size += len(part) + 1
            if ids and size > self._max_bytes:
                self._front.appendleft((event_id, part))
                break
            ids.append(event_id)
            parts.append(part)
        self.current = Batch(ids, parts) if ids else None
        return self.current

    def _take_whole(self) -> Batch | None | Literal[False]:
        """The usual case: pop a batch's worth and encode it in one call with its body.

        Returns ``False``, with the events put back in front of the inbox, when that body would
        be too large or an event can't be encoded: :meth:`take` then goes event by event.
        """
        inbox = self.inbox
        pop = inbox.popleft
        events = [pop() for _ in range(min(len(inbox), self._max_events))]
        if self.stop_queued:
            # close() ran meanwhile: its sentinel may be among them (it is set before queued).
            for index, event in enumerate(events):
                if event is STOP:
                    self.stopping = True
                    inbox.extendleft(reversed(events[index + 1 :]))
                    events = events[:index]
                    break
        if not events:
            return None
        try:
            body = encode_body(events)
        except (TypeError, ValueError):
            body = None
        if body is None or len(body) > self._max_bytes:
            inbox.extendleft(reversed(events))
            return False
        return Batch([event["id"] for event in events], events=events, _body=body)

    def absorb(self) -> None:
        """Move the inbox into the spool, committed on disk when this returns (spool only)."""
        if self.spool is None:
            return
        with self._absorb_lock:
            encoded: list[tuple[str, bytes]] = []
            while True:
                item = self._next_encoded()
                if item is None:
                    break
                encoded.append(item)
            try:
                self.spool.put(encoded)
            except SpoolError as exc:
                # Still send them, only not durably: better than losing them with the disk.
                logger.error("voxloop: can't write the spool, keeping events in memory: %s", exc)
                self._front.extend(encoded)

    def _next_encoded(self) -> tuple[str, bytes] | None:
        """Pop and encode the inbox's next event; ``None`` when empty or at ``STOP``."""
        inbox = self.inbox
        while inbox:
            event = inbox.popleft()
            if event is STOP:
                self.stopping = True
                return None
            try:
                return event["id"], encode_event(event)
            except (TypeError, ValueError) as exc:
                # A lone surrogate in a string, say: JSON can't carry it, retries can't help.
                self._settle_rejected(
                    [(event["id"], f"can't encode the event as JSON ({type(exc).__name__})", None)],
                    None,
                )
        return None

    def requeue_current(self) -> None:
        """Put the batch in flight back in front (its worker is gone: a closed event loop)."""
        with self._count_lock:
            batch, self.current = self.current, None
        if batch is not None and self.spool is None:
            self._front.extendleft(reversed(batch.encoded()))

    def after_fork_in_child(self) -> None:
        """Start empty: the parent still holds, and sends, what was queued before the fork."""
        self.inbox = deque()
        self._front = deque()
        self._absorb_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.stopping = False
        self.stop_queued = False
        self.current = None
        self.delivered = 0
        self.retried = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self._problem = None
        self._failure = None

    # --- answers --------------------------------------------------------------------------------

    def judge(self, batch: Batch, answer: Response | TransportError) -> float | None:
        """Settle ``batch`` after one attempt, or say how long to wait before sending it again.

        Returns:
            ``None`` when the batch is settled (delivered, refused, given up, or handed back to
            be split), else the seconds to wait before resending it unchanged.
        """
        delay = self._judge(batch, answer)
        if delay is None and self.current is batch:
            self.current = None
        return delay

    def _judge(self, batch: Batch, answer: Response | TransportError) -> float | None:
        batch.attempts += 1
        if isinstance(answer, TransportError):
            return self._retry_or_give_up(batch, answer.reason, None)
        status = answer.status
        if status in (408, 429) or status >= 500:
            return self._retry_or_give_up(
                batch, self._status_reason(answer), _retry_after(answer.headers.get("retry-after"))
            )
        if self._failure is not None:
            self._failure = None
            logger.info("voxloop: the gateway answers again (HTTP %d)", status)
        if 200 <= status < 300 or status == 422:
            if status != 422:
                self._key_refusal = None
            self._settle_answered(batch, answer)
            return None
        if status == 413 and len(batch) > 1:
            # The gateway's limit is lower than ours: halve the batches until they fit, and
            # keep to that size from then on (a gateway's limit changes with its settings only).
            self._max_events = max(1, len(batch) // 2)
            self._max_bytes = max(1024, len(batch.body) // 2)
            if self.spool is None:
                self._front.extendleft(reversed(batch.encoded()))
            return None
        self._settle_rejected([(i, self._status_reason(answer), None) for i in batch.ids], status)
        return None

    def give_up(self, reason: str, *, in_flight: bool = True) -> None:
        """The client is closing with events unsent: drop them, unless the spool keeps them.

        That is everything still in memory and, if ``in_flight``, the batch being sent (leave
        it to a worker still sending it, which settles it when its answer comes).
        """
        batch = None
        if in_flight:
            with self._count_lock:
                batch, self.current = self.current, None
        if self.spool is not None:
            self.absorb()
            return
        ids = list(batch.ids) if batch is not None else []
        ids.extend(event_id for event_id, _ in self._front)
        self._front.clear()
        while True:
            item = self._next_encoded()
            if item is None:
                break
            ids.append(item[0])
        if ids:
            self.drop("gave_up", len(ids))
            self._report(GaveUp(reason, tuple(ids), attempts=batch.attempts if batch else 0))

    def _retry_or_give_up(
        self, batch: Batch, reason: str, retry_after: float | None
    ) -> float | None:
        retry = self.config.retry
        if batch.attempts >= retry.attempts and self.spool is None:
            self.drop("gave_up", len(batch))
            self._report(
                GaveUp(
                    f"gave up after {batch.attempts} attempt(s); last: {reason}",
                    tuple(batch.ids),
                    attempts=batch.attempts,
                )
            )
            return None
        self.retried += len(batch)
        # Never a busy loop, whatever the settings: a spool retries for as long as it takes.
        delay = max(_MIN_WAIT, retry.delay(batch.attempts - 1, retry_after, random.random()))
        # The first failure of an outage is a WARNING saying why; the retries after it, INFO.
        level = logging.INFO if self._failure is not None else logging.WARNING
        self._failure = reason
        logger.log(
            level,
            "voxloop: %d event(s) not delivered: %s; attempt %d, retrying in %.2f s",
            len(batch),
            reason,
            batch.attempts,
            delay,
        )
        return delay

    def _settle_answered(self, batch: Batch, answer: Response) -> None:
        """A 2xx or 422: every event is accepted or known, except those the body rejects."""
        refused: list[tuple[str, str, str | None]] = []
        try:
            rejected = json.loads(answer.body).get("rejected") or []
            for item in rejected:
                index = item["index"]
                if isinstance(index, int) and 0 <= index < len(batch):
                    refused.append((batch.ids[index], str(item["error"]), str(item["field"])))
        except (ValueError, TypeError, KeyError, AttributeError):
            if answer.status == 422:
                refused = [(i, self._status_reason(answer), None) for i in batch.ids]
        self.delivered += len(batch) - len(refused)
        if refused:
            self._settle_rejected(refused, answer.status, forget=False)
        self._forget(batch.ids)

    def _settle_rejected(
        self, refused: list[tuple[str, str, str | None]], status: int | None, forget: bool = True
    ) -> None:
        self.drop("rejected", len(refused))
        by_reason: dict[tuple[str, str | None], list[str]] = {}
        for event_id, reason, field_name in refused:
            by_reason.setdefault((reason, field_name), []).append(event_id)
        for (reason, field_name), ids in by_reason.items():
            self._report(Rejected(reason, tuple(ids), status=status, field=field_name))
        if forget:
            self._forget([event_id for event_id, _, _ in refused])

    def _status_reason(self, answer: Response) -> str:
        reason = _status_reason(answer)
        if self._key and self._key in reason:
            reason = reason.replace(self._key, "<key>")
        return reason

    def _forget(self, ids: list[str]) -> None:
        if self.spool is not None:
            try:
                self.spool.delete(ids)
            except SpoolError as exc:
                # They will be sent again and answered as duplicates: counted once all the same.
                logger.error("voxloop: can't delete delivered events from the spool: %s", exc)

    def _report(self, error: DeliveryError) -> None:
        """Log ``error`` by ids and reason, then hand it to ``on_error``; never raises.

        A refused key is logged as an ERROR once, until a batch is accepted again: every batch
        sent with it fails alike, and the rest go to the DEBUG level.
        """
        with self._count_lock:
            self._problem = error
        if isinstance(error, Rejected) and error.status in _KEY_REFUSED:
            first = self._key_refusal != error.reason
            self._key_refusal = error.reason
            logger.log(
                logging.ERROR if first else logging.DEBUG,
                "voxloop: the gateway refused the key: %s; every event sent with it is dropped"
                " until the key or endpoint is fixed. %d event(s) not delivered; ids: %s",
                error.reason,
                len(error.ids),
                _summary(error.ids),
            )
        else:
            logger.error(
                "voxloop: %d event(s) not delivered: %s (%s); ids: %s",
                len(error.ids),
                error.reason,
                type(error).__name__,
                _summary(error.ids),
            )
        if self.on_error is None:
            return
        if self.defer_reports:
            self._reports.append(error)
        else:
            self._call_on_error(error)

    def deliver_reports(self) -> None:
        """Hand the deferred reports to ``on_error``, from the calling thread."""
        while self._reports:
            self._call_on_error(self._reports.popleft())

    def _call_on_error(self, error: DeliveryError) -> None:
        assert self.on_error is not None
        try:
            self.on_error(error)
        except Exception:
            logger.exception("voxloop: the on_error callback raised")


def _batch(rows: Iterable[tuple[str, bytes]]) -> Batch:
    ids: list[str] = []
    parts: list[bytes] = []
    for event_id, part in rows:
        ids.append(event_id)
        parts.append(part)
    return Batch(ids, parts)


def _summary(ids: tuple[str, ...]) -> str:
    shown = ", ".join(ids[:_IDS_IN_LOGS])
    more = len(ids) - _IDS_IN_LOGS
    return f"{shown} and {more} more" if more > 0 else shown


_DROPPED: Final = {
    "queue_full": "events were dropped: the queue was full (Config.queue_size)",
    "closed": "events were dropped: captured after close()",
}


def _status_reason(answer: Response) -> str:
    """``HTTP 401: unknown key``: the status and the gateway's ``error``, never event text."""
    detail = ""
    try:
        parsed = json.loads(answer.body)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            detail = parsed["error"]
    except ValueError:
        pass
    return f"HTTP {answer.status}: {detail[:300]}" if detail else f"HTTP {answer.status}"


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time())
