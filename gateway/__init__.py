"""voxloop's gateway: the Starlette service that takes feedback in and serves CX scores out."""

from __future__ import annotations

from voxloop_core import __version__ as __version__

from .app import create_app  # noqa: E402 - the app module reads __version__
from .settings import Settings  # noqa: E402

__all__ = ["Settings", "create_app"]
