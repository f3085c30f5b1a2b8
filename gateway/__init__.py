"""voxloop's gateway: the Starlette service that takes feedback in and serves CX scores out."""

from __future__ import annotations

__version__ = "0.1.0"

from .app import create_app  # noqa: E402 - the app module reads __version__
from .settings import Settings  # noqa: E402

__all__ = ["Settings", "create_app"]
