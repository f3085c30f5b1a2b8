"""capture()'s local checks: the gateway's rules with the gateway's messages, and the ids.

The SDK can't import the core, so it restates the rules; these tests hold the two together by
running the same faulty events through the core (as the gateway does) and through the SDK.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

import voxloop
import voxloop_core
from voxloop._event import encode_event, make_event, new_id

GOOD: dict[str, Any] = {"channel": "web", "form": "checkout", "metric": "nps", "score": 9}

#: Events the contract refuses, each for one reason.
FAULTY: dict[str, dict[str, Any]] = {
    "score-bool": {"score": True},
    "score-float": {"score": 4.0},
    "score-str": {"score": "9"},
    "score-high": {"score": 11},
    "score-low-csat": {"metric": "csat", "score": 0},
    "thumbs-2": {"metric": "thumbs", "score": 2},
    "metric-unknown": {"metric": "stars"},
    "metric-int": {"metric": 5},
    "form-empty": {"form": ""},
    "form-space": {"form": "check out"},
    "form-long": {"form": "f" * 65},
    "channel-int": {"channel": 1},
    "comment-int": {"comment": 5},
    "comment-long": {"comment": "a" * 4001},
    "comment-long-after-nfc": {"comment": "\u0958" * 2001},
    "respondent-long": {"respondent": "r" * 129},
    "vote-key-int": {"vote_key": 1},
    "ts-naive": {"ts": "2026-01-01T00:00:00"},
    "ts-garbage": {"ts": "yesterday"},
    "ts-float": {"ts": 1.5},
    "locale-int": {"locale": 3},
    "locale-long": {"locale": "x" * 40},
    "locale-short": {"locale": "e"},
    "tags-many": {"tags": ["a"] * 17},
    "tags-empty-string": {"tags": [""]},
    "tags-long": {"tags": ["ok", "x" * 65]},
    "tags-str": {"tags": "abc"},
    "tags-int": {"tags": [1]},
    "meta-many": {"meta": {str(i): 1 for i in range(33)}},
    "meta-empty-key": {"meta": {"": 1}},
    "meta-long-key": {"meta": {"k" * 65: 1}},
    "meta-long-value": {"meta": {"k": "v" * 513}},
    "meta-list": {"meta": {"k": [1]}},
    "meta-null": {"meta": {"k": None}},
    "meta-huge-int": {"meta": {"k": 2**63}},
    "meta-array": {"meta": [1]},
    "type-error-before-rule": {"score": 11, "comment": 5},
}


def gateway_verdict(fields: dict[str, Any]) -> tuple[str, str] | None:
    """What the gateway's core says of one event: (field, error) with the path made relative."""
    body = json.dumps({"events": [{**GOOD, **fields}]}).encode()
    events, rejected = voxloop_core.decode_batch(body)
    if not rejected:
        now_ms = int(time.time() * 1000)
        _, rejected = voxloop_core.validate(events, voxloop_core.DEFAULT_POLICY, now_ms, b"s" * 32)
    if not rejected:
        return None
    return rejected[0].field, rejected[0].error.replace("$.events[0]", "$")


@pytest.mark.parametrize("fields", list(FAULTY.values()), ids=list(FAULTY))
def test_faulty_events_are_refused_with_the_gateways_own_message(fields: dict[str, Any]) -> None:
    expected = gateway_verdict(fields)
    assert expected is not None, "the gateway takes this event: fix the case"
    with pytest.raises(voxloop.ValidationError) as raised:
        make_event(**{**GOOD, **fields})
    assert (raised.value.field, raised.value.rule) == expected
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"comment": "", "respondent": "r" * 128, "vote_key": "v" * 128},
        {"comment": "خیلی ممنون\u200c" * 300 + "\x00\x07"},
        {"ts": "2026-01-01T00:00:00Z"},
        {"ts": "2026-01-01t00:00:00.123456789+05:30"},
        {"ts": 1_700_000_000_000},
        {"locale": "fa-IR", "tags": ["x" * 64] * 16},
        {"meta": {"k" * 64: "v" * 512, "n": -(2**63), "f": 0.5, "b": False}},
        {"metric": "likert", "score": 5},
        {"metric": "thumbs", "score": 0},
        {"form": "support-ticket.v2_b"},
    ],
    ids=lambda fields: ",".join(fields) or "required-only",
)
def test_events_the_gateway_takes_pass(fields: dict[str, Any]) -> None:
    assert make_event(**{**GOOD, **fields})["score"] == {**GOOD, **fields}["score"]
    if "ts" not in fields:  # a fixed past ts may fall outside the retention window
        assert gateway_verdict(fields) is None


def test_the_channel_is_checked_for_its_shape_and_left_to_the_gateway_for_membership() -> None:
    with pytest.raises(voxloop.ValidationError, match="unknown channel 'Web!'") as raised:
        make_event(**{**GOOD, "channel": "Web!"})
    assert raised.value.field == "channel"
    assert make_event(**{**GOOD, "channel": "kiosk"})["channel"] == "kiosk"


def test_non_finite_numbers_are_refused_before_they_spoil_a_batch() -> None:
    with pytest.raises(voxloop.ValidationError, match="finite"):
        make_event(**GOOD, meta={"x": float("nan")})


def test_enum_members_are_sent_as_their_plain_values() -> None:
    import enum

    class Metric(enum.StrEnum):
        NPS = "nps"

    class Score(enum.IntEnum):
        TOP = 10

    event = make_event("web", "checkout", Metric.NPS, Score.TOP)
    assert type(event["metric"]) is str and type(event["score"]) is int
    assert json.loads(encode_event(event))["metric"] == "nps"


def test_the_event_holds_copies_of_tags_and_meta() -> None:
    tags, meta = ["a"], {"k": "v"}
    event = make_event(**GOOD, tags=tags, meta=meta)
    tags.append("b")
    meta["k"] = "changed"
    assert (event["tags"], event["meta"]) == (["a"], {"k": "v"})


def test_an_aware_datetime_is_sent_as_rfc3339() -> None:
    when = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert make_event(**GOOD, ts=when)["ts"] == "2026-11-23T10:00:00+00:00"
    with pytest.raises(voxloop.ValidationError, match="timezone"):
        make_event(**GOOD, ts=datetime(2026, 11, 23, 10, 0))


def test_ids_are_canonical_uuid7_in_time_order_and_unique() -> None:
    before = int(time.time() * 1000)
    ids = [new_id() for _ in range(20_000)]
    after = int(time.time() * 1000)
    assert len(set(ids)) == len(ids)
    for text in ids[::997]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical lowercase: the core uses it as its key as is
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after
    stamps = [uuid.UUID(text).int >> 80 for text in ids]
    assert stamps == sorted(stamps)


def test_capture_returns_the_id_it_assigns() -> None:
    bodies: list[bytes] = []

    def keep(body: bytes) -> voxloop.Response:
        bodies.append(body)
        return voxloop.Response(202, {}, b'{"accepted": 1, "duplicates": 0, "rejected": []}')

    config = voxloop.Config(sync_mode=True, flush_at_exit=False)
    with voxloop.Client(
        "http://127.0.0.1:1", "sk_x", config=config, transport=voxloop.MockTransport(keep)
    ) as client:
        event_id = client.capture(**GOOD, comment="hi")
    assert json.loads(bodies[0])["events"] == [{"id": event_id, **GOOD, "comment": "hi"}]


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import json, os
        from voxloop._event import new_id
        reader, writer = os.pipe()
        if os.fork() == 0:
            os.write(writer, json.dumps([new_id() for _ in range(500)]).encode())
            os._exit(0)
        os.close(writer)
        ours = [new_id() for _ in range(500)]
        theirs = json.loads(os.fdopen(reader).read())
        # The random parts, after the timestamp: a generator copied by fork would repeat them.
        print(len({i[14:] for i in ours} | {i[14:] for i in theirs}))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "1000", done.stderr
