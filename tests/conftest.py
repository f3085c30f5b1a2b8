"""Fixtures shared by every test folder: the headless browser (see tests/browser.py).

Passwords are hashed at OWASP's cheapest argon2id cost (7 MiB, 5 passes, one lane) through
``VOXLOOP_PASSWORD_COST``, in this process and in every gateway or command it starts: the
suite makes and checks hundreds of hashes, each 8 times cheaper than at the default cost.
The tests of the default cost itself (tests/gateway/test_passwords.py) unset it.
"""

from __future__ import annotations

import os

import pytest

from tests.browser import browser, context
from voxloop_gateway.control.passwords import COST_VARIABLE

__all__ = ["browser", "context"]

#: OWASP's least argon2id cost that takes the least time: 7 MiB fit in the caches.
TEST_PASSWORD_COST = "m=7168,t=5,p=1"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault(COST_VARIABLE, TEST_PASSWORD_COST)
