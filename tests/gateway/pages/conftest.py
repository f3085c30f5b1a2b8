"""What the page tests share: a request to render pages for, a hostile value, a page's shape."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from starlette.requests import Request

#: A value that would break a page printed unescaped: markup, both quotes, an ampersand, and a
#: right-to-left override (U+202E), which would reverse the text that follows it.
HOSTILE = "<script>alert(\"x\")</script> & 'it' \u202eevil"


@pytest.fixture
def http_request() -> Request:
    """A plain GET request, for the pages to be rendered for outside a server."""
    return Request(
        {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    )


class Parsed(HTMLParser):
    """A page as a browser's parser reads it: its elements, attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    @property
    def shape(self) -> list[tuple[str, tuple[str, ...]]]:
        """Each element's name and attribute names: what a value must not be able to change."""
        return [(tag, tuple(attrs)) for tag, attrs in self.elements]

    @property
    def values(self) -> list[str]:
        """Every attribute value and every run of text, as the browser sees them."""
        attributes = [v for _, attrs in self.elements for v in attrs.values() if v is not None]
        return attributes + self.texts

    def root(self) -> dict[str, str | None]:
        """The ``<html>`` element's attributes."""
        return next(attrs for tag, attrs in self.elements if tag == "html")


def parse(page: str | bytes) -> Parsed:
    """``page`` parsed, to check what it shows rather than how it is spelt."""
    parsed = Parsed()
    parsed.feed(page.decode() if isinstance(page, bytes) else page)
    parsed.close()
    return parsed


def assert_shown_as_text(
    hostile: Parsed, benign: Parsed, raw: str, value: str = HOSTILE, as_code: int = 0
) -> None:
    """``value`` printed into a page: no element or attribute added, and shown whole.

    ``benign`` is the same page with harmless values: the hostile one must have exactly its
    elements and attributes. Every right-to-left override in ``raw`` must belong to a whole
    copy of ``value``, so none was cut off, spilt into markup, or left unescaped; but
    ``as_code`` of them, in copies shown as HTML source (escaped once more).
    """
    assert hostile.shape == benign.shape
    assert "<script>alert" not in raw and "</script> &" not in raw
    shown = sum(text.count(value) for text in hostile.values)
    assert shown > 0
    assert raw.count("\u202e") == shown + as_code
