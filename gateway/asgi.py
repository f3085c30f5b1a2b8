"""The gateway as an importable ASGI app for any server: ``uvicorn voxloop_gateway.asgi:app``.

Settings come from the ``VOXLOOP_*`` environment, as for ``voxloop-gateway serve``.
"""

from __future__ import annotations

from .app import create_app
from .settings import load_settings

app = create_app(load_settings({}))
