"""The control plane's Alembic migrations (run by :mod:`voxloop_gateway.control.schema`)."""
