"""The widget's files: small once gzipped, free of what a strict CSP or safe DOM rules forbid."""

from __future__ import annotations

import gzip
import re

from voxloop_widgets import WIDGETS_DIR

FILES = [WIDGETS_DIR / "v1" / "voxloop.js", WIDGETS_DIR / "v1" / "voxloop.css"]
LIMIT = 15 * 1024


def test_gzip_size_is_at_most_15_kb() -> None:
    size = sum(len(gzip.compress(f.read_bytes(), compresslevel=9)) for f in FILES)
    assert 0 < size <= LIMIT, f"voxloop.js + voxloop.css gzip to {size} bytes (limit {LIMIT})"


def test_no_unsafe_constructs_in_the_script() -> None:
    source = FILES[0].read_text()
    for forbidden in (
        r"\.innerHTML",
        r"\.outerHTML",
        r"insertAdjacentHTML",
        r"document\.write",
        r"\beval\(",
        r"new Function",
        r"setTimeout\(['\"`]",
        r"createElement\(['\"]style",
        r"setAttribute\(['\"]style",
    ):
        assert not re.search(forbidden, source), forbidden
