"""The gateway's settings: read once, from CLI flags then ``VOXLOOP_*`` variables, validated."""

from __future__ import annotations

from typing import Final

import msgspec

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8080


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the gateway listens.

    Attributes:
        host: address to bind (loopback by default: expose it through a proxy on purpose).
        port: TCP port.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
