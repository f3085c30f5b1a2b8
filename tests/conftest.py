"""Fixtures shared by every test folder: the headless browser (see tests/browser.py)."""

from tests.browser import browser, context

__all__ = ["browser", "context"]
