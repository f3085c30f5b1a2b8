"""``python -m voxloop_gateway.cli``: the ``voxloop-gateway`` command."""

from . import main

raise SystemExit(main())
