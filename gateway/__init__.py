"""voxloop's gateway: the Starlette service that takes feedback in and serves CX scores out."""

from __future__ import annotations

from .app import create_app
from .settings import Settings

__version__ = "0.1.0"

__all__ = ["Settings", "create_app"]
