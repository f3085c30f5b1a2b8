"""One event as ``capture()`` builds it: local validation, its UUIDv7 id, its JSON encoding.

The rules and messages are the gateway's (CONTRACT.md's field table, as the core applies them),
so a mistake shows up in the calling code, with the message the gateway would have sent, instead
of as a rejection reported later from a background thread. The SDK can't import the core, so the
rules are restated here; a test checks the messages against the core's.

This is ``capture()``'s hot path: a few type checks, set lookups for forms and channels already
seen, one dict. The expensive checks (comment normalisation, RFC 3339 parsing) run only for the
fields that need them. Encoding to JSON happens later, in the worker.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from time import time_ns
from typing import Any, Final

from ._errors import ValidationError

try:  # optional: about 5x faster than the json module, used when present
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson isn't installed
    orjson = None  # type: ignore[assignment]

__all__ = [
    "METRIC_RANGES",
    "Event",
    "batch_body",
    "encode_body",
    "encode_event",
    "make_event",
    "new_id",
]

#: An event as the wire contract spells it, ready for the JSON encoder.
Event = dict[str, Any]

#: Score range (inclusive) of each metric of the contract.
METRIC_RANGES: Final[dict[str, tuple[int, int]]] = {
    "nps": (0, 10),
    "csat": (1, 5),
    "ces": (1, 7),
    "likert": (1, 5),
    "thumbs": (0, 1),
}
MAX_COMMENT_CHARS: Final = 4000
MAX_SHORT_TEXT: Final = 128
MAX_FORM_CHARS: Final = 64
MAX_LOCALE_CHARS: Final = 35
MAX_TAGS: Final = 16
MAX_TAG_CHARS: Final = 64
MAX_META_KEYS: Final = 32
MAX_META_KEY_CHARS: Final = 64
MAX_META_TEXT: Final = 512
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

_FORM: Final = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_FORM_CHARS}}}")
_CHANNEL: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_LOCALE: Final = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")
_RFC3339: Final = re.compile(
    r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?P<zone>[Zz]|[+-]\d\d:?\d\d)?"
)
#: Unicode category Cc less newline and tab: the gateway removes them from comments.
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: NFC makes a string at most three times longer, so a comment this short can't pass 4,000
#: characters after normalisation and needs no normalising here.
_SURELY_SHORT_COMMENT: Final = MAX_COMMENT_CHARS // 3
_JSON_NAMES: Final[dict[type, str]] = {
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    list: "array",
    tuple: "array",
    dict: "object",
    type(None): "null",
}
#: Names and forms already found good: most apps use a handful, so most calls skip the regex.
_good_forms: set[str] = set()
_good_channels: set[str] = set()
_MAX_REMEMBERED: Final = 4096

# Ids come from a private generator seeded from os.urandom and reseeded in every forked child.
# os.urandom per id costs a syscall (about a sixth of capture()'s budget); the ids need to be
# unique, not secret: 74 random bits per millisecond make a collision practically impossible.
_random = random.Random(os.urandom(32))
_bits = _random.getrandbits
#: The 32 bits after the timestamp: version 7, 12 random bits, variant 10, 14 random bits.
_RANDOM_MASK: Final = 0xFFFF_FFFF & ~((0xF << 28) | (0x3 << 14))
_VERSION_AND_VARIANT: Final = (0x7 << 28) | (0x2 << 14)
#: The last millisecond seen and its formatted prefix ``tttttttt-tttt-``: one tuple, so a
#: thread reading it never sees one half updated without the other.
_prefix: tuple[int, str] = (-1, "")


def _reseed() -> None:
    _random.seed(os.urandom(32))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A UUIDv7 in canonical lowercase form: 48 bits of Unix milliseconds, then 74 random bits.

    Time-ordered ids let the gateway use them as its dedup key directly and keep its unique
    index growing at the right edge.
    """
    global _prefix
    ms = time_ns() // 1_000_000
    prefix = _prefix
    if prefix[0] != ms:
        t = ms.to_bytes(6).hex()
        prefix = _prefix = (ms, f"{t[:8]}-{t[8:]}-")
    # Two draws formatted by bytes.hex, its separator placing the middle dash: measured the
    # cheapest way to the canonical form (a third of capture()'s time goes to the id).
    middle = ((_bits(32) & _RANDOM_MASK) | _VERSION_AND_VARIANT).to_bytes(4).hex("-", 2)
    return f"{prefix[1]}{middle}-{_bits(48).to_bytes(6).hex()}"


def _kind(value: object) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _expected(field: str, expected: str, value: object, at: str | None = None) -> ValidationError:
    """msgspec's message for a value of the wrong type, as the gateway words it."""
    where = at or f"$.{field}"
    return ValidationError(field, f"Expected `{expected}`, got `{_kind(value)}` - at `{where}`")


def _text(field: str, value: object, expected: str = "str | null") -> str:
    """``value`` as a plain ``str`` (str subclasses such as StrEnum members are unwrapped)."""
    if isinstance(value, str):
        return str(value)
    raise _expected(field, expected, value)


def make_event(
    channel: str,
    form: str,
    metric: str,
    score: int,
    comment: str | None = None,
    respondent: str | None = None,
    vote_key: str | None = None,
    ts: datetime | int | str | None = None,
    locale: str | None = None,
    tags: Sequence[str] | None = None,
    meta: Mapping[str, str | int | float | bool] | None = None,
) -> Event:
    """Check one event against the contract and build it with a fresh id.

    A faulty event is refused for the same reason on both sides: type errors first, in the
    order of the fields on the wire (as msgspec finds them), then the rules in the order the
    gateway applies them.

    Returns:
        The event as a dict with its ``id`` first, holding copies of ``tags`` and ``meta`` so
        that later changes by the caller don't reach the queued event.

    Raises:
        ValidationError: naming the field and the rule broken.
    """
    # The usual event passes four cheap checks; anything else takes the ordered slow path.
    try:
        bounds = METRIC_RANGES[metric]
        usual = (
            type(score) is int
            and bounds[0] <= score <= bounds[1]
            and channel in _good_channels
            and form in _good_forms
        )
    except (KeyError, TypeError):
        usual = False
    if not usual:
        channel, form, metric, score = _check_in_order(
            channel, form, metric, score, comment, respondent, vote_key, ts, locale, tags, meta
        )
    event: Event = {
        "id": new_id(),
        "channel": channel,
        "form": form,
        "metric": metric,
        "score": score,
    }
    if comment is not None:
        event["comment"] = comment = comment if type(comment) is str else _text("comment", comment)
    if respondent is not None:
        event["respondent"] = _short_text("respondent", respondent)
    if vote_key is not None:
        event["vote_key"] = _short_text("vote_key", vote_key)
    if ts is not None:
        event["ts"] = _timestamp(ts)
    if locale is not None:
        event["locale"] = locale = locale if type(locale) is str else _text("locale", locale)
    if tags is not None:
        event["tags"] = _tags(tags)
    if meta is not None:
        event["meta"] = _meta(meta)
    # The rules on optional fields come after every type check, as on the gateway.
    if comment is not None and len(comment) > _SURELY_SHORT_COMMENT:
        _check_comment(comment)
    if locale is not None:
        _check_locale(locale)
    return event


def _check_in_order(
    channel: object,
    form: object,
    metric: object,
    score: object,
    comment: object,
    respondent: object,
    vote_key: object,
    ts: object,
    locale: object,
    tags: object,
    meta: object,
) -> tuple[str, str, str, int]:
    """Raise the error the gateway would report first, or return the four required fields.

    str and int subclasses (enum members) are unwrapped into plain values on the way.
    """
    channel = _text("channel", channel, "str")
    form = _text("form", form, "str")
    metric = _text("metric", metric, "str")
    if not isinstance(score, int) or isinstance(score, bool):
        raise _expected("score", "int", score)
    score = int(score)
    # Type errors of the optional fields come before the rules of the required ones.
    if comment is not None:
        _text("comment", comment)
    if respondent is not None:
        _short_text("respondent", respondent)
    if vote_key is not None:
        _short_text("vote_key", vote_key)
    if ts is not None:
        _timestamp(ts)
    if locale is not None:
        _text("locale", locale)
    if tags is not None:
        _tags(tags)
    if meta is not None:
        _meta(meta)
    _check_channel(channel)
    _check_form(form)
    bounds = METRIC_RANGES.get(metric)
    if bounds is None:
        raise ValidationError(
            "metric", f"unknown metric {metric!r}; expected one of {', '.join(METRIC_RANGES)}"
        )
    if not bounds[0] <= score <= bounds[1]:
        raise ValidationError(
            "score", f"{metric} score must be {bounds[0]}..{bounds[1]}, got {score}"
        )
    return channel, form, metric, score


def _check_locale(locale: str) -> None:
    if len(locale) > MAX_LOCALE_CHARS or _LOCALE.fullmatch(locale) is None:
        raise ValidationError(
            "locale",
            f"locale must be a BCP 47 tag of at most {MAX_LOCALE_CHARS} characters,"
            " like en or fa-IR",
        )


def _remember(seen: set[str], name: str) -> None:
    if len(seen) >= _MAX_REMEMBERED:
        seen.clear()
    seen.add(name)


def _check_channel(channel: str) -> None:
    # The gateway names the project's channels in its message; the SDK can't know them, so it
    # checks the shape every channel name has and leaves membership to the gateway.
    if _CHANNEL.fullmatch(channel) is None:
        raise ValidationError(
            "channel",
            f"unknown channel {channel!r}; channel names are 1-64 characters of a-z 0-9 _ -,"
            " starting with a letter or digit",
        )
    _remember(_good_channels, channel)


def _check_form(form: str) -> None:
    if _FORM.fullmatch(form) is None:
        raise ValidationError(
            "form", f"form must be 1-{MAX_FORM_CHARS} characters of A-Z a-z 0-9 . _ -"
        )
    _remember(_good_forms, form)


def _check_comment(comment: str) -> None:
    # Removal comes first, as on the gateway: a control character between a letter and its
    # combining mark would otherwise keep the pair from composing.
    length = len(unicodedata.normalize("NFC", _CONTROL.sub("", comment)))
    if length > MAX_COMMENT_CHARS:
        raise ValidationError(
            "comment",
            f"comment must be at most {MAX_COMMENT_CHARS} characters after normalisation,"
            f" got {length}",
        )


def _short_text(field: str, value: object) -> str:
    text = value if type(value) is str else _text(field, value)
    if len(text) > MAX_SHORT_TEXT:
        raise ValidationError(
            field, f"Expected `str` of length <= {MAX_SHORT_TEXT} - at `$.{field}`"
        )
    return text


def _timestamp(ts: object) -> str | int:
    """``ts`` as the wire carries it: epoch milliseconds or an RFC 3339 string with a zone."""
    if isinstance(ts, datetime):
        if ts.tzinfo is None or ts.utcoffset() is None:
            raise ValidationError("ts", "Expected `datetime` with a timezone component - at `$.ts`")
        return ts.isoformat()
    if isinstance(ts, int) and not isinstance(ts, bool):
        if not INT64_MIN <= ts <= INT64_MAX:
            raise ValidationError("ts", f"Expected `int` <= {INT64_MAX} - at `$.ts`")
        return int(ts)
    if isinstance(ts, str):
        match = _RFC3339.fullmatch(ts)
        try:
            valid = match is not None and bool(datetime.fromisoformat(ts.upper()))
        except ValueError:
            valid = False
        if not valid:
            raise ValidationError("ts", "Invalid RFC3339 encoded datetime - at `$.ts`")
        if match is not None and match.group("zone") is None:
            raise ValidationError("ts", "Expected `datetime` with a timezone component - at `$.ts`")
        return str(ts)
    raise _expected("ts", "int | datetime | null", ts)


def _tags(tags: object) -> list[str]:
    if not isinstance(tags, list | tuple):
        raise _expected("tags", "array | null", tags)
    if len(tags) > MAX_TAGS:
        raise ValidationError("tags", f"Expected `array` of length <= {MAX_TAGS} - at `$.tags`")
    out: list[str] = []
    for i, tag in enumerate(tags):
        at = f"$.tags[{i}]"
        if not isinstance(tag, str):
            raise _expected("tags", "str", tag, at)
        if not tag:
            raise ValidationError("tags", f"Expected `str` of length >= 1 - at `{at}`")
        if len(tag) > MAX_TAG_CHARS:
            raise ValidationError(
                "tags", f"Expected `str` of length <= {MAX_TAG_CHARS} - at `{at}`"
            )
        out.append(str(tag))
    return out


def _meta(meta: object) -> dict[str, str | int | float | bool]:
    if not isinstance(meta, Mapping):
        raise _expected("meta", "object | null", meta)
    if len(meta) > MAX_META_KEYS:
        raise ValidationError(
            "meta", f"Expected `object` of length <= {MAX_META_KEYS} - at `$.meta`"
        )
    out: dict[str, str | int | float | bool] = {}
    for key, value in meta.items():
        if not isinstance(key, str):
            raise _expected("meta", "str", key, "key` in `$.meta")
        if not key or len(key) > MAX_META_KEY_CHARS:
            bound = ">= 1" if not key else f"<= {MAX_META_KEY_CHARS}"
            raise ValidationError(
                "meta", f"Expected `str` of length {bound} - at `key` in `$.meta`"
            )
        out[str(key)] = _meta_value(value)
    return out


def _meta_value(value: object) -> str | int | float | bool:
    at = "$.meta[...]"
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        if len(value) > MAX_META_TEXT:
            raise ValidationError(
                "meta", f"Expected `str` of length <= {MAX_META_TEXT} - at `{at}`"
            )
        return str(value)
    if isinstance(value, int):
        if value > INT64_MAX:
            raise ValidationError("meta", f"Expected `int` <= {INT64_MAX} - at `{at}`")
        if value < INT64_MIN:
            raise ValidationError("meta", f"Expected `int` >= {INT64_MIN} - at `{at}`")
        return int(value)
    if isinstance(value, float):
        # JSON has no NaN or infinity; sent as they are they would spoil the whole batch.
        if not math.isfinite(value):
            raise ValidationError("meta", f"Expected a finite `float`, got {value} - at `{at}`")
        return float(value)
    raise _expected("meta", "bool | int | float | str", value, at)


if orjson is not None:
    _dumps = orjson.dumps

    def encode_event(event: Event) -> bytes:
        """The event as compact UTF-8 JSON; raises TypeError or ValueError if it can't be."""
        return _dumps(event)

    def encode_body(events: list[Event]) -> bytes:
        """The ``POST /v1/events`` body of ``events``, encoded in one call."""
        return _dumps({"events": events})

else:  # pragma: no cover - exercised where orjson isn't installed
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    def encode_event(event: Event) -> bytes:
        """The event as compact UTF-8 JSON; raises TypeError or ValueError if it can't be."""
        return _encoder.encode(event).encode()

    def encode_body(events: list[Event]) -> bytes:
        """The ``POST /v1/events`` body of ``events``, encoded in one call."""
        return _encoder.encode({"events": events}).encode()


#: Bytes a body adds around its events: ``{"events":[`` and ``]}``.
BODY_OVERHEAD: Final = len(b'{"events":[]}')


def batch_body(parts: Sequence[bytes]) -> bytes:
    """The ``POST /v1/events`` body of events already encoded with :func:`encode_event`."""
    return b'{"events":[' + b",".join(parts) + b"]}"
