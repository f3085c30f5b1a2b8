"""The gateway's exceptions, one root for all of them::

    GatewayError
     ├── ConfigError      bad settings, names or registry state: the CLI prints it and exits 2
     └── ApiError         a request refused: its HTTP status, message and headers

Store failures have their own family in ``stores`` (StoreError → StoreUnavailable | StoreBusy);
the routes turn them into 503 answers.
"""

from __future__ import annotations

from collections.abc import Mapping


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
