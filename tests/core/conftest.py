"""Fixtures that run the core's tests against both implementations, ids ``py`` and ``c``."""

from __future__ import annotations

import os
from types import ModuleType

import pytest

from voxloop_core import _pipeline_py

NOW_MS = 1_795_435_200_000  # 2026-11-23T12:00:00Z
SECRET = b"project-secret-0123456789abcdef!"
NONCE = b"request-nonce-0123456789"  # what the gateway draws at random for each request


def _implementations() -> list[object]:
    params: list[object] = [pytest.param(_pipeline_py, id="py")]
    if os.environ.get("VOXLOOP_NO_EXTENSIONS", "") in ("", "0"):
        # Imported here, not skipped on failure: a missing extension must fail the suite.
        from voxloop_core import _pipeline_c  # type: ignore[attr-defined]

        params.append(pytest.param(_pipeline_c, id="c"))
    return params


@pytest.fixture(params=_implementations())
def pipeline(request: pytest.FixtureRequest) -> ModuleType:
    """One implementation of the hot path: ``validate``, ``DedupWindow``, ``aggregate``."""
    module: ModuleType = request.param
    return module
