"""voxloop's Python SDK: capture ratings and comments from apps and web backends.

It depends on the standard library alone (orjson is used when present).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
