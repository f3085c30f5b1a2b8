"""The gateway as an importable ASGI app for any server: ``uvicorn voxloop_gateway.asgi:app``.

Settings come from the ``VOXLOOP_*`` environment, as for ``voxloop-gateway serve``; a variable
nothing reads is logged as a warning naming the closest known one, as the CLI prints it.
"""

from __future__ import annotations

import logging

from . import collector
from .app import create_app
from .settings import load_settings, unknown_variables

for _warning in unknown_variables():
    logging.getLogger("voxloop_gateway").warning("%s", _warning)

app = create_app(load_settings({}))
collector.settle()  # a server process: see the module
