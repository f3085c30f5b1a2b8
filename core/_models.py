"""The wire model of CONTRACT.md as msgspec Structs, and the values the pipeline passes on.

The Structs carry every rule msgspec can check while decoding (types, ints that are really ints,
lengths of short strings, list and dict sizes); the rules that need context or normalisation
(metric ranges, allowed channels, the ``ts`` window, comment cleaning) live in ``validate``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Final

import msgspec

#: Score range (inclusive) of each metric of the contract.
METRIC_RANGES: Final[dict[str, tuple[int, int]]] = {
    "nps": (0, 10),
    "csat": (1, 5),
    "ces": (1, 7),
    "likert": (1, 5),
    "thumbs": (0, 1),
}
BUILTIN_CHANNELS: Final[frozenset[str]] = frozenset({"web", "app", "email"})
MAX_EVENTS_PER_REQUEST: Final = 1000
#: How deep a body may nest arrays and objects; a valid one needs four levels (``meta``).
MAX_NESTING: Final = 32
#: The least random bytes a request's nonce may have (see ``validate``).
MIN_NONCE_BYTES: Final = 16
MAX_COMMENT_CHARS: Final = 4000
MAX_ID_CHARS: Final = 64
MAX_FORM_CHARS: Final = 64
MAX_LOCALE_CHARS: Final = 35
#: The rule of a channel's (and a project's) name: it names files, partitions and URL parts.
CHANNEL_PATTERN: Final = r"[a-z0-9][a-z0-9_-]{0,63}"
#: The form rule, as a regular expression (the compiled core checks the same characters).
FORM_PATTERN: Final = rf"[A-Za-z0-9._-]{{1,{MAX_FORM_CHARS}}}"
#: A BCP 47 tag's shape: a language of 2-8 letters, then subtags of 1-8 letters or digits.
LOCALE_PATTERN: Final = r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*"
HOUR_MS: Final = 3_600_000
#: Unicode category Cc less newline and tab: removed from comments. Format characters (Cf) such
#: as the zero-width non-joiner are kept, because Persian spelling needs them.
CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
DAY_MS: Final = 24 * HOUR_MS

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

ShortText = Annotated[str, msgspec.Meta(max_length=128)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MetaKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MetaValue = (
    Annotated[str, msgspec.Meta(max_length=512)]
    | Annotated[int, msgspec.Meta(ge=_INT64_MIN, le=_INT64_MAX)]
    | float
    | bool
)
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)] | int


class Event(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    """One rating as a client sends it (CONTRACT.md, "Ingest").

    ``gc=False``: decoded JSON can't hold reference cycles, and untracked events spare the
    cyclic collector a pass over every batch (measured: 15% of the hot path's time).
    """

    channel: str
    form: str
    metric: str
    score: int
    id: str | None = None
    comment: str | None = None
    respondent: ShortText | None = None
    vote_key: ShortText | None = None
    ts: Timestamp | None = None
    locale: str | None = None
    tags: Annotated[list[Tag], msgspec.Meta(max_length=16)] | None = None
    meta: Annotated[dict[MetaKey, MetaValue], msgspec.Meta(max_length=32)] | None = None


class Batch(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /v1/events``.

    The bounds are here so that the published schema states them; the decoder reports an empty or
    oversized list with its own messages (400 and 413), not as a field error.
    """

    events: Annotated[list[Event], msgspec.Meta(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)]


class Rejection(msgspec.Struct, frozen=True, gc=False):
    """Why the event at ``index`` of a batch was refused; ``field`` names the culprit."""

    index: int
    field: str
    error: str


class Record(msgspec.Struct, frozen=True, gc=False):
    """A validated, normalised event, ready for its channel's store.

    ``key`` is the 16-byte dedup key (see ``validate``); ``respondent`` and ``vote_key`` are
    keyed hashes (hex), never the raw values; ``ts_ms`` is epoch milliseconds, the client's
    ``ts`` or the time of receipt.
    """

    key: bytes
    id: str | None
    ts_ms: int
    channel: str
    form: str
    metric: str
    score: int
    comment: str | None
    respondent: str | None
    vote_key: str | None
    locale: str | None
    tags: list[str] | None
    meta: dict[str, str | int | float | bool] | None


class Policy(msgspec.Struct, frozen=True):
    """The context-dependent limits ``validate`` applies, with the contract's defaults.

    Attributes:
        channels: channels events may name (``web``, ``app``, ``email`` built in).
        max_future_ms: how far ahead of the gateway's clock a ``ts`` may be.
        retention_ms: how old a ``ts`` may be; older events are outside the retention window.
    """

    channels: frozenset[str] = BUILTIN_CHANNELS
    max_future_ms: int = 5 * 60 * 1000
    retention_ms: int = 365 * DAY_MS


DEFAULT_POLICY: Final = Policy()

#: (channel, form, metric, hour-bucket start in epoch ms) -> histogram of counts per score.
BucketKey = tuple[str, str, str, int]
Histograms = dict[BucketKey, list[int]]
