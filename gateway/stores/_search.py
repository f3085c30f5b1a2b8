"""Text search in comments: the one rule, and what each database needs to follow it exactly.

The rule: a comment matches a search text when the comment contains the text, both compared in
Unicode NFC (the core stores comments in NFC) with every character in its lowercase, one
character for one (``É`` is ``é``, ``Σ`` is ``σ``; ``İ``, whose lowercase is two characters, stays
as it is). It is a plain substring, so a
text may span two words (``ut pay`` in "checkout payment") and any script is searched as written:
Arabic, Persian and CJK have no case and compare character by character.

SQLite answers it with an FTS5 table of the comments under the trigram tokenizer: a text of three
characters or more becomes a phrase of its trigrams, which finds every comment containing it,
and each row found is rechecked by the rule, so the answer is exact. FTS5 folds case by its own
Unicode tables, older than Python's: where a letter's lowercase is one FTS5 does not fold to
(Cherokee, a few recent additions), the trigram index could miss a row, so a text holding such a
lowercase letter is checked on every comment, as are texts of one or two characters. The check
is SQLite's ``instr(lower(comment), text)`` where that is exact (SQLite's ``lower`` folds A-Z
only, which is enough when the text holds no lowercase letter of another alphabet), else
:func:`contains`, registered on the store's connections. PostgreSQL answers it with ``ILIKE``
under the database's collation, found through a ``pg_trgm`` GIN index and rechecked by ``ILIKE``
itself.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import unicodedata
from typing import Final

#: The name :func:`contains` is registered under on every SQLite connection that reads.
CONTAINS_FUNCTION: Final = "voxloop_contains"
#: Fewest characters the trigram index can look up; shorter texts are searched by a scan.
TRIGRAM: Final = 3
#: Cased letters all lie in Unicode's first two planes.
_CASED_PLANES_END: Final = 0x20000


def normal(text: str) -> str:
    """``text`` as comments are stored (NFC), for both databases."""
    return unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """``text`` with every character in its lowercase, one character for one.

    Python's ``lower`` is that but for two letters: ``Σ``, which it makes ``ς`` at the end of a
    word (here always ``σ``), and ``İ``, whose lowercase is two characters (here kept as is).
    """
    text = text.replace("\u03a3", "\u03c3")
    if "\u0130" not in text:
        return text.lower()
    return "\u0130".join(part.lower() for part in text.split("\u0130"))


def contains(comment: str | None, folded_text: str) -> bool | None:
    """Whether ``comment`` holds ``folded_text`` (already :func:`fold`\\ ed), by the rule."""
    if comment is None:
        return None
    return folded_text in fold(comment)


def fts5_string(text: str) -> str:
    """``text`` as one FTS5 string: a phrase of its trigrams, with no operator in it.

    Inside double quotes FTS5 reads everything literally (``AND``, ``NEAR``, ``*``, ``^``,
    ``col:``); a double quote in the text is written twice.
    """
    return '"' + text.replace('"', '""') + '"'


def like_pattern(text: str) -> str:
    """A LIKE/ILIKE pattern for "contains ``text``", its ``\\``, ``%`` and ``_`` escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def ascii_lower_exact(folded_text: str) -> bool:
    """Whether SQLite's ASCII-only ``lower`` finds ``folded_text`` exactly as :func:`fold` does.

    It does when no character of the text is the lowercase of a letter outside ASCII: then a
    comment's characters that fold to the text's are ASCII letters or the text's own. (A
    SQLite built with ICU has a ``lower`` of its own: then never.)
    """
    return _sqlite_lower_is_ascii() and lowercase_beyond_ascii().isdisjoint(folded_text)


def prepare() -> None:
    """Learn once a process what SQLite's FTS5 and ``lower`` fold (a few tens of ms), so that no
    search pays for it; a SQLite store calls it off the event loop when it opens."""
    unfolded_lowercase()
    lowercase_beyond_ascii()
    _sqlite_lower_is_ascii()


def trigram_searchable(folded_text: str) -> bool:
    """Whether SQLite's trigram index finds every comment that holds ``folded_text``."""
    return len(folded_text) >= TRIGRAM and unfolded_lowercase().isdisjoint(folded_text)


def _cased() -> list[tuple[str, str]]:
    """Every letter that :func:`fold` changes, with its lowercase."""
    return [
        (letter, lower)
        for letter in map(chr, range(_CASED_PLANES_END))
        if (lower := fold(letter)) != letter
    ]


@functools.cache
def _sqlite_lower_is_ascii() -> bool:
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        lowered: str = db.execute("SELECT lower('AZ\u00c9\u0130')").fetchone()[0]
    return lowered == "az\u00c9\u0130"


@functools.cache
def lowercase_beyond_ascii() -> frozenset[str]:
    """The lowercase of every letter outside ASCII that comments can hold (NFC: the Kelvin sign,
    whose lowercase is ``k``, is ``K`` in NFC)."""
    return frozenset(
        lower
        for letter, lower in _cased()
        if letter > "\x7f" and unicodedata.normalize("NFC", letter) == letter
    )


@functools.cache
def unfolded_lowercase() -> frozenset[str]:
    """The lowercase letters whose uppercase FTS5's trigram tokenizer does not fold to them.

    Asked of the SQLite library itself, once a process: each cased letter and its lowercase are
    indexed as trigrams of three alike, and the folded trigrams are read back.
    """
    pairs = _cased()
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.execute("CREATE VIRTUAL TABLE probe USING fts5(text, tokenize = 'trigram')")
        db.execute("CREATE VIRTUAL TABLE probe_terms USING fts5vocab(probe, 'instance')")
        db.executemany(
            "INSERT INTO probe (rowid, text) VALUES (?, ?)",
            [(2 * n + side, pair[side] * 3) for n, pair in enumerate(pairs) for side in (0, 1)],
        )
        folded = dict(db.execute("SELECT doc, term FROM probe_terms"))
    return frozenset(
        lower for n, (_, lower) in enumerate(pairs) if folded[2 * n] != folded[2 * n + 1]
    )
