"""The SDK's exceptions: one root, so ``except voxloop.VoxloopError`` catches everything ours.

::

    VoxloopError
    ├── ConfigError                  a client or config value is wrong (at construction)
    ├── ValidationError(field, rule) capture() was given an event the contract refuses
    └── DeliveryError(ids, reason)   what became of events the gateway never counted
        ├── Rejected(status)         the gateway refused them: final, never retried
        ├── GaveUp(attempts)         every retry failed; the events are dropped
        └── TransportError           the network failed (raised by transports, then retried)

``ConfigError`` and ``ValidationError`` are programming errors and are raised into the calling
code. Delivery problems never are: ``capture()`` has returned long before the network answers,
so a ``DeliveryError`` is logged on the ``voxloop`` logger and handed to the client's optional
``on_error`` callback instead. It names events by id and says why, never by their comment text,
which may hold personal data.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeliveryError",
    "GaveUp",
    "Rejected",
    "TransportError",
    "ValidationError",
    "VoxloopError",
]


class VoxloopError(Exception):
    """Root of every error the SDK raises or reports."""


class ConfigError(VoxloopError):
    """A client argument or :class:`~voxloop.Config` value is out of its range."""


class ValidationError(VoxloopError, ValueError):
    """``capture()`` was given an event the gateway would refuse.

    The message is the gateway's own for the same rule, so a fix made for one holds for the
    other. It is also a ``ValueError``: code that already guards against bad values catches it.

    Attributes:
        field: the argument at fault (``score``, ``form``, ``meta``...).
        rule: what was wrong and what was expected, e.g. ``nps score must be 0..10, got 11``.
    """

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class DeliveryError(VoxloopError):
    """Events the gateway did not count, and why.

    Attributes:
        ids: the ids of the events concerned, as ``capture()`` returned them.
        reason: what went wrong: the gateway's answer or the network error, never event text.
    """

    def __init__(self, reason: str, ids: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.ids = ids

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, ids=<{len(self.ids)} ids>)"


class Rejected(DeliveryError):
    """The gateway refused the events (a 4xx other than 408 and 429): sending again can't help.

    Attributes:
        status: the HTTP status, or ``None`` when the SDK refused an event it could not encode.
        field: the field the gateway named for a per-event rejection, if any.
    """

    def __init__(
        self,
        reason: str,
        ids: tuple[str, ...] = (),
        *,
        status: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(reason, ids)
        self.status = status
        self.field = field


class GaveUp(DeliveryError):
    """Every attempt to send the events failed (network errors, 5xx, 408 or 429).

    Attributes:
        attempts: how many times the batch was sent.
    """

    def __init__(self, reason: str, ids: tuple[str, ...] = (), *, attempts: int = 0) -> None:
        super().__init__(reason, ids)
        self.attempts = attempts


class TransportError(DeliveryError):
    """The request got no HTTP answer: refused or dropped connection, timeout, DNS, TLS.

    Transports raise it; the worker retries it like a 503.
    """
