"""The errors a channel store raises: part of the gateway's one tree (see ``gateway.errors``)."""

from __future__ import annotations

from ..errors import StoreBusy, StoreError, StoreUnavailable

__all__ = ["StoreBusy", "StoreError", "StoreUnavailable"]
