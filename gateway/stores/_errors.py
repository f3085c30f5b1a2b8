"""The errors a channel store raises, under one root so callers can map them to HTTP answers.

::

    StoreError                 anything a store raises on purpose
    ├── StoreUnavailable       the store can't take writes now: disk full, read-only, I/O error,
    │                          locked, closed. Nothing of the failed write was stored.
    └── StoreBusy              the queue of records waiting for commit is full (backpressure);
                               ``retry_after`` says when to try again.

Both leaves mean "answer 503 and let the client send the same events again": a retry never
counts an event twice, because the store's primary key is the final word on duplicates.
"""

from __future__ import annotations


class StoreError(Exception):
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
