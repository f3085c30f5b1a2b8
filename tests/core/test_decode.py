"""The decoder: whole-body errors, and per-event errors that leave the other events alone."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from voxloop_core import BodyError, LimitError, Rejection, decode_batch

from .helpers import body, event


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "body is not valid JSON: Input data was truncated"),
        (b"{", "body is not valid JSON: Input data was truncated"),
        (b"nope", "body is not valid JSON: JSON is malformed: invalid character"),
        (
            '{"events": [é]}'.encode(),
            "body is not valid JSON: JSON is malformed: invalid character",
        ),
        (gzip.compress(b"{}"), "body is not valid UTF-8 (byte 1)"),
        (b"[]", 'body must be {"events": [...]}: Expected `object`, got `array`'),
        (b"{}", 'body must be {"events": [...]}: Object missing required field `events`'),
        (b'{"events": {}}', 'body must be {"events": [...]}: Expected `array`, got `object`'),
        (
            b'{"events": [], "extra": 1}',
            'body must be {"events": [...]}: Object contains unknown field `extra`',
        ),
        (b'{"events": []}', "`events` must hold at least one event - at `$.events`"),
        (body(event(comment="X")).replace(b'"X"', b'"\\ud800"'), "body is not valid JSON"),
    ],
    ids=[
        "empty",
        "truncated",
        "not-json",
        "bad-character",
        "gzip-not-inflated",
        "array",
        "no-events",
        "events-not-array",
        "extra-top-level-field",
        "no-event",
        "lone-surrogate",
    ],
)
def test_body_errors_name_what_is_wrong(raw: bytes, message: str) -> None:
    with pytest.raises(BodyError) as caught:
        decode_batch(raw)
    assert str(caught.value).startswith(message)


COMMENT_AT = len(body(event(comment="X"))) - len(b'X"}]}')
NOT_UTF8 = [
    (b'{"events": [\xff]}', 12),
    (body(event(comment="X")).replace(b'"X"', b'"\xff"'), COMMENT_AT),
    (body(event(comment="X")).replace(b'"X"', b'"ok \xe2\x82"'), COMMENT_AT + 3),
    (body(event(comment="X")).replace(b'"X"', b'"\xed\xa0\x80"'), COMMENT_AT),  # a surrogate
    (body(event(comment="X")).replace(b'"X"', b'"\xc0\x80"'), COMMENT_AT),  # overlong NUL
    (body(event(score=99.5), event(comment="X")).replace(b'"X"', b'"\xff"'), None),
    (body(event(colour="red", comment="X")).replace(b'"X"', b'"\xff"'), None),
    (body(event(meta={"\xff": 1})).replace("\xff".encode(), b"\xff"), None),
]


@pytest.mark.parametrize(
    ("raw", "at"),
    NOT_UTF8,
    ids=[
        "outside-a-string",
        "in-a-string",
        "cut-short",
        "surrogate",
        "overlong",
        "after-a-bad-event",
        "after-an-unknown-field",
        "in-a-key",
    ],
)
def test_a_body_not_utf8_is_refused_at_its_first_bad_byte(raw: bytes, at: int | None) -> None:
    with pytest.raises(UnicodeDecodeError) as python_says:
        raw.decode()
    with pytest.raises(BodyError) as caught:
        decode_batch(raw)
    offset = python_says.value.start
    assert at is None or offset == at
    assert str(caught.value) == f"body is not valid UTF-8 (byte {offset})"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


TOO_DEEP = "body is nested deeper than 32 levels of arrays and objects"


@pytest.mark.parametrize("depth", [33, 975, 1000, 100_000], ids=lambda d: f"{d}-levels")
@pytest.mark.parametrize(
    "make",
    [
        lambda d: b'{"events": ' + nested(d - 1) + b"}",
        lambda d: body(event(), event(meta={"a": "X"})).replace(b'"X"', nested(d - 4)),
        lambda d: body(event(meta={"a": "X"}), event()).replace(b'"X"', nested(d - 4)),
        lambda d: body(event(score=99.5), event(meta={"a": "X"})).replace(b'"X"', nested(d - 4)),
        lambda d: body(event(meta={"a": "X"})).replace(b'"X"', nested(d - 4)[: d - 4]),
        lambda d: b'{"events": [1, ' + nested(d - 2) + b', {"not json"}]}',
    ],
    ids=["events", "meta-last", "meta-first", "meta-after-a-bad-event", "never-closed", "then-bad"],
)
def test_a_body_nested_too_deep_is_refused_by_that_rule(make: Any, depth: int) -> None:
    with pytest.raises(BodyError) as caught:
        decode_batch(make(depth))
    assert str(caught.value) == TOO_DEEP


def test_nesting_up_to_the_limit_leaves_each_event_to_its_own_rejection() -> None:
    events_at_32 = b'{"events": ' + nested(31) + b"}"
    meta_at_32 = body(event(), event(meta={"a": "X"})).replace(b'"X"', nested(28))
    _, rejections = decode_batch(events_at_32)
    assert rejections == [
        Rejection(0, "event", "Expected `object`, got `array` - at `$.events[0]`")
    ]
    events, rejections = decode_batch(meta_at_32)
    assert events[0] is not None and events[1] is None
    assert [(r.index, r.field) for r in rejections] == [(1, "meta")]


def test_brackets_inside_strings_are_not_nesting() -> None:
    brackets = "[{" * 40 + '\\"' + "}]" * 40
    events, rejections = decode_batch(
        body(event(comment=brackets), event(score=99, meta={"a": brackets, "b": [1]}))
    )
    assert events[0] is not None and events[0].comment == brackets
    assert [(r.index, r.field) for r in rejections] == [(1, "meta")]


def test_more_than_1000_events_is_over_the_limit() -> None:
    decode_batch(body(*[event()] * 1000))
    with pytest.raises(LimitError, match="at most 1000 events, got 1001"):
        decode_batch(body(*[event()] * 1001))


def test_a_good_batch_decodes_in_order() -> None:
    events, rejections = decode_batch(body(event(score=1), event(score=2)))
    assert rejections == []
    assert [e.score for e in events if e] == [1, 2]


EVENT_ERRORS = [
    ({"score": 4.0}, "score", "Expected `int`, got `float` - at `$.events[1].score`"),
    ({"score": True}, "score", "Expected `int`, got `bool` - at `$.events[1].score`"),
    ({"score": "9"}, "score", "Expected `int`, got `str` - at `$.events[1].score`"),
    ({"score": None}, "score", "Expected `int`, got `null` - at `$.events[1].score`"),
    ({"channel": 5}, "channel", "Expected `str`, got `int` - at `$.events[1].channel`"),
    ({"colour": "red"}, "colour", "Object contains unknown field `colour` - at `$.events[1]`"),
    ({"form": None}, "form", "Expected `str`, got `null` - at `$.events[1].form`"),
    (
        {"respondent": "r" * 129},
        "respondent",
        "Expected `str` of length <= 128 - at `$.events[1].respondent`",
    ),
    (
        {"vote_key": "v" * 129},
        "vote_key",
        "Expected `str` of length <= 128 - at `$.events[1].vote_key`",
    ),
    (
        {"ts": "2026-11-23T10:00:00"},
        "ts",
        "Expected `datetime` with a timezone component - at `$.events[1].ts`",
    ),
    ({"ts": "yesterday"}, "ts", "Invalid RFC3339 encoded datetime - at `$.events[1].ts`"),
    ({"ts": 1.5}, "ts", "Expected `int | datetime | null`, got `float` - at `$.events[1].ts`"),
    (
        {"tags": ["t"] * 17},
        "tags",
        "Expected `array` of length <= 16 - at `$.events[1].tags`",
    ),
    (
        {"tags": ["x" * 65]},
        "tags",
        "Expected `str` of length <= 64 - at `$.events[1].tags[0]`",
    ),
    ({"tags": [""]}, "tags", "Expected `str` of length >= 1 - at `$.events[1].tags[0]`"),
    (
        {"meta": {f"k{i}": i for i in range(33)}},
        "meta",
        "Expected `object` of length <= 32 - at `$.events[1].meta`",
    ),
    (
        {"meta": {"k" * 65: 1}},
        "meta",
        "Expected `str` of length <= 64 - at `key` in `$.events[1].meta`",
    ),
    (
        {"meta": {"plan": "p" * 513}},
        "meta",
        "Expected `str` of length <= 512 - at `$.events[1].meta[...]`",
    ),
    (
        {"meta": {"nested": {"a": 1}}},
        "meta",
        "Expected `bool | int | float | str`, got `object` - at `$.events[1].meta[...]`",
    ),
    (
        {"meta": {"big": 2**64}},
        "meta",
        "Expected `int` <= 9223372036854775807 - at `$.events[1].meta[...]`",
    ),
]


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    EVENT_ERRORS,
    ids=[f"{e[1]}-{i}" for i, e in enumerate(EVENT_ERRORS)],
)
def test_a_malformed_event_is_rejected_by_field_beside_good_ones(
    fields: dict[str, object], field: str, error: str
) -> None:
    events, rejections = decode_batch(body(event(score=1), event(**fields), event(score=2)))
    assert rejections == [Rejection(1, field, error)]
    assert events[1] is None
    assert [e.score for e in events if e] == [1, 2]


@pytest.mark.parametrize(
    ("fields", "missing"),
    [({"channel": None}, "channel"), ({"metric": None}, "metric")],
    ids=["channel", "metric"],
)
def test_a_missing_required_field_is_named(fields: dict[str, object], missing: str) -> None:
    bad = {k: v for k, v in event().items() if k != missing}
    events, rejections = decode_batch(body(bad))
    assert rejections == [
        Rejection(0, missing, f"Object missing required field `{missing}` - at `$.events[0]`")
    ]


def test_an_event_that_is_not_an_object_is_rejected_as_a_whole() -> None:
    events, rejections = decode_batch(b'{"events": [7, ' + body(event())[11:])
    assert rejections == [Rejection(0, "event", "Expected `object`, got `int` - at `$.events[0]`")]
    assert events[1] is not None
