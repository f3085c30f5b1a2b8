"""Pick the compiled pipeline, or the pure-Python reference where it can't or mustn't load.

``VOXLOOP_NO_EXTENSIONS=1`` asks for the reference (for debugging, and to test it); otherwise a
failed import of the extension falls back to it silently here, and the gateway says so at start.
"""

from __future__ import annotations

import os
from types import ModuleType


def _load() -> tuple[ModuleType, str | None]:
    from . import _pipeline_py

    if os.environ.get("VOXLOOP_NO_EXTENSIONS", "") not in ("", "0"):
        return _pipeline_py, "VOXLOOP_NO_EXTENSIONS is set"
    try:
        from . import _pipeline_c  # type: ignore[attr-defined]
    except ImportError as exc:
        return _pipeline_py, f"the compiled core did not load ({exc})"
    return _pipeline_c, None


pipeline, fallback_reason = _load()
