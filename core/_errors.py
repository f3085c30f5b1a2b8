"""The core's exceptions, defined once and raised by both implementations.

::

    CoreError
    ├── BodyError    the request body is not a JSON ``{"events": [...]}`` (HTTP 400)
    └── LimitError   the request is over a size limit (HTTP 413)

A single bad *event* is never an exception: it becomes a :class:`~voxloop_core.Rejection`
beside the good events, so one careless client field can't cost the batch.
"""

from __future__ import annotations


class CoreError(Exception):
    """Root of every error the core raises."""


class BodyError(CoreError):
    """The body is not JSON, not UTF-8, or not shaped ``{"events": [...]}``."""


class LimitError(CoreError):
    """The request carries more than a limit allows (events per request)."""
