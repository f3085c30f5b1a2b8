"""Every field rule of CONTRACT.md that ``validate`` applies, on both implementations."""

from __future__ import annotations

import unicodedata
import uuid
from types import ModuleType, SimpleNamespace
from typing import Any, NamedTuple

import msgspec
import pytest

from voxloop_core import METRIC_RANGES, Event, Policy, Rejection

from .conftest import NONCE, NOW_MS, SECRET
from .helpers import DROP, event, only_record, only_rejection, run

UUID7 = "0193a1f2-7c3e-7b7a-9a55-1f7b2c9d0e11"

RULES = [
    ({"channel": "sms"}, "channel", "unknown channel 'sms'; allowed: app, email, web"),
    ({"channel": ""}, "channel", "unknown channel ''; allowed: app, email, web"),
    ({"form": ""}, "form", "form must be 1-64 characters of A-Z a-z 0-9 . _ -"),
    ({"form": "f" * 65}, "form", "form must be 1-64 characters of A-Z a-z 0-9 . _ -"),
    ({"form": "check out"}, "form", "form must be 1-64 characters of A-Z a-z 0-9 . _ -"),
    ({"form": "café"}, "form", "form must be 1-64 characters of A-Z a-z 0-9 . _ -"),
    ({"form": "a/b"}, "form", "form must be 1-64 characters of A-Z a-z 0-9 . _ -"),
    (
        {"metric": "stars"},
        "metric",
        "unknown metric 'stars'; expected one of nps, csat, ces, likert, thumbs",
    ),
    (
        {"metric": "NPS"},
        "metric",
        "unknown metric 'NPS'; expected one of nps, csat, ces, likert, thumbs",
    ),
    ({"score": 11}, "score", "nps score must be 0..10, got 11"),
    ({"score": -1}, "score", "nps score must be 0..10, got -1"),
    ({"score": 2**70}, "score", f"nps score must be 0..10, got {2**70}"),
    ({"score": -(2**70)}, "score", f"nps score must be 0..10, got {-(2**70)}"),
    ({"metric": "csat", "score": 0}, "score", "csat score must be 1..5, got 0"),
    ({"metric": "csat", "score": 6}, "score", "csat score must be 1..5, got 6"),
    ({"metric": "ces", "score": 8}, "score", "ces score must be 1..7, got 8"),
    ({"metric": "likert", "score": 0}, "score", "likert score must be 1..5, got 0"),
    ({"metric": "thumbs", "score": 2}, "score", "thumbs score must be 0..1, got 2"),
    ({"id": ""}, "id", "id must be 1-64 printable ASCII characters"),
    ({"id": "i" * 65}, "id", "id must be 1-64 printable ASCII characters"),
    ({"id": "naïve"}, "id", "id must be 1-64 printable ASCII characters"),
    ({"id": "tab\there"}, "id", "id must be 1-64 printable ASCII characters"),
    ({"id": "del\x7f"}, "id", "id must be 1-64 printable ASCII characters"),
    ({"ts": NOW_MS + 300_001}, "ts", "ts is more than 300 s ahead of the gateway's clock"),
    (
        {"ts": "2026-11-23T12:05:00.001Z"},
        "ts",
        "ts is more than 300 s ahead of the gateway's clock",
    ),
    (
        {"ts": NOW_MS - 365 * 86_400_000 - 1},
        "ts",
        "ts is older than the retention window of 365 days",
    ),
    ({"ts": -1}, "ts", "ts is older than the retention window of 365 days"),
    ({"ts": 2**80}, "ts", "ts is more than 300 s ahead of the gateway's clock"),
    (
        {"comment": "x" * 4001},
        "comment",
        "comment must be at most 4000 characters after normalisation, got 4001",
    ),
    (
        {"locale": "english!"},
        "locale",
        "locale must be a BCP 47 tag of at most 35 characters, like en or fa-IR",
    ),
    (
        {"locale": "e"},
        "locale",
        "locale must be a BCP 47 tag of at most 35 characters, like en or fa-IR",
    ),
    (
        {"locale": "en-"},
        "locale",
        "locale must be a BCP 47 tag of at most 35 characters, like en or fa-IR",
    ),
    (
        {"locale": "12-en"},
        "locale",
        "locale must be a BCP 47 tag of at most 35 characters, like en or fa-IR",
    ),
    (
        {"locale": "en-" + "-".join(["abcdefgh"] * 4)},
        "locale",
        "locale must be a BCP 47 tag of at most 35 characters, like en or fa-IR",
    ),
    (
        {"locale": ""},
        "locale",
        "locale must be a BCP 47 tag of at most 35 characters, like en or fa-IR",
    ),
]


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    RULES,
    ids=[f"{r[1]}-{i}" for i, r in enumerate(RULES)],
)
def test_each_rule_rejects_with_its_field_and_message(
    pipeline: ModuleType, fields: dict[str, Any], field: str, error: str
) -> None:
    assert only_rejection(pipeline, **fields) == Rejection(0, field, error)


@pytest.mark.parametrize(
    ("metric", "score"),
    [(m, s) for m, (lo, hi) in METRIC_RANGES.items() for s in (lo, hi)],
    ids=[f"{m}-{s}" for m, (lo, hi) in METRIC_RANGES.items() for s in (lo, hi)],
)
def test_every_metric_accepts_its_whole_range(
    pipeline: ModuleType, metric: str, score: int
) -> None:
    assert only_record(pipeline, metric=metric, score=score).score == score


def test_bad_events_never_disturb_good_ones_beside_them(pipeline: ModuleType) -> None:
    records, rejections = run(
        pipeline,
        event(score=1, id="a"),
        event(score=99, id="b"),
        event(score=4.5, id="c"),
        event(score=2, id="d"),
        event(channel="fax", id="e"),
        event(score=3, id="f"),
    )
    assert [(r.id, r.score) for r in records] == [("a", 1), ("d", 2), ("f", 3)]
    assert [(r.index, r.field) for r in rejections] == [(1, "score"), (2, "score"), (4, "channel")]


def test_configured_channels_are_accepted(pipeline: ModuleType) -> None:
    policy = Policy(channels=frozenset({"web", "kiosk"}))
    records, rejections = run(pipeline, event(channel="kiosk"), event(channel="app"), policy=policy)
    assert [r.channel for r in records] == ["kiosk"]
    assert rejections == [Rejection(1, "channel", "unknown channel 'app'; allowed: kiosk, web")]


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (DROP, NOW_MS),
        (NOW_MS - 5, NOW_MS - 5),
        (NOW_MS + 300_000, NOW_MS + 300_000),
        ("2026-11-23T10:00:00Z", NOW_MS - 7_200_000),
        ("2026-11-23T10:00:00.9999Z", NOW_MS - 7_200_000 + 999),
        ("2026-11-23T12:30:00+05:30", NOW_MS - 5 * 3_600_000),
        ("2026-11-22T21:00:00-03:00", NOW_MS - 12 * 3_600_000),
        ("2025-11-24T00:00:00Z", NOW_MS - 364 * 86_400_000 - 12 * 3_600_000),
        ("2026-02-28T23:59:59.999Z", 1_772_323_199_999),
    ],
    ids=[
        "default-now",
        "ms",
        "edge-future",
        "utc",
        "floor-ms",
        "plus-0530",
        "minus-0300",
        "a-year-ago",
        "leap-edge",
    ],
)
def test_ts_becomes_epoch_ms(pipeline: ModuleType, ts: Any, expected: int) -> None:
    assert only_record(pipeline, ts=ts).ts_ms == expected


@pytest.mark.parametrize(
    ("comment", "stored"),
    [
        ("Fast checkout, thanks!", "Fast checkout, thanks!"),
        ("line one\nline two\ttabbed", "line one\nline two\ttabbed"),
        ("bell\x07 and null\x00 and cr\r\n and c1\x85!", "bell and null and cr\n and c1!"),
        ("cafe\u0301", "caf\u00e9"),
        ("e\x01\u0301", "\u00e9"),
        ("شكراً، الدفع كان سريعاً", "شكراً، الدفع كان سريعاً"),
        ("می\u200cخواهم", "می\u200cخواهم"),
        ("Terima kasih, cepat sekali!", "Terima kasih, cepat sekali!"),
        ("결제가 빨라요 👍", "결제가 빨라요 👍"),
        ("\x00\x01", None),
        ("", None),
        ("\u212b", "\u00c5"),
    ],
    ids=[
        "ascii",
        "keeps-newline-tab",
        "drops-controls",
        "nfc",
        "controls-then-nfc",
        "arabic",
        "persian-zwnj",
        "indonesian",
        "cjk-emoji",
        "only-controls",
        "empty",
        "angstrom",
    ],
)
def test_comments_are_cleaned_and_kept_in_any_script(
    pipeline: ModuleType, comment: str, stored: str | None
) -> None:
    assert only_record(pipeline, comment=comment).comment == stored


def test_comment_length_counts_after_normalisation(pipeline: ModuleType) -> None:
    decomposed = "e\u0301" * 4000  # 8000 code points, 4000 once composed
    assert only_record(pipeline, comment=decomposed).comment == "\u00e9" * 4000
    assert only_record(pipeline, comment="x" * 4000 + "\x00" * 10).comment == "x" * 4000


@pytest.mark.parametrize(
    "locale",
    ["en", "ar", "fa-IR", "id", "zh-Hant-TW", "es-419", "en-" + "-".join(["a1b2c3d4"] * 3)],
)
def test_bcp47_locales_are_accepted(pipeline: ModuleType, locale: str) -> None:
    assert only_record(pipeline, locale=locale).locale == locale


def test_respondent_and_vote_key_are_never_kept_raw(pipeline: ModuleType) -> None:
    one = only_record(pipeline, respondent="user-42", vote_key="2026-11-nps:ana@example.com")
    two = only_record(pipeline, respondent="user-42", vote_key="2026-11-nps:ana@example.com")
    assert one.respondent == two.respondent and len(one.respondent or "") == 32
    assert "user-42" not in (one.respondent or "")
    assert one.vote_key == two.vote_key and "ana" not in (one.vote_key or "")
    assert one.respondent != only_record(pipeline, respondent="user-43").respondent


def test_tags_and_meta_pass_through(pipeline: ModuleType) -> None:
    record = only_record(
        pipeline, tags=["mobile"], meta={"plan": "pro", "cart": 129.5, "vip": True}
    )
    assert record.tags == ["mobile"]
    assert record.meta == {"plan": "pro", "cart": 129.5, "vip": True}


class TestDedupKeys:
    def test_a_uuid7_id_is_the_key(self, pipeline: ModuleType) -> None:
        assert only_record(pipeline, id=UUID7).key == uuid.UUID(UUID7).bytes

    @pytest.mark.parametrize(
        "event_id",
        [UUID7.upper(), "order-1234", str(uuid.uuid4()), UUID7.replace("-", ""), UUID7[:-1] + "g"],
        ids=["uppercase-uuid7", "plain", "uuid4", "no-dashes", "not-hex"],
    )
    def test_any_other_id_is_hashed_into_a_v8_key(
        self, pipeline: ModuleType, event_id: str
    ) -> None:
        key = only_record(pipeline, id=event_id).key
        assert len(key) == 16
        assert uuid.UUID(bytes=key).version == 8
        assert key == only_record(pipeline, id=event_id, score=3).key  # the id alone decides

    def test_distinct_ids_give_distinct_keys(self, pipeline: ModuleType) -> None:
        ids = ["a", "A", "a ", UUID7, UUID7.upper()]
        keys = {only_record(pipeline, id=i).key for i in ids}
        assert len(keys) == len(ids)

    def test_without_id_the_content_and_ts_decide(self, pipeline: ModuleType) -> None:
        fields = {"comment": "ok", "meta": {"a": 1, "b": 2}, "ts": NOW_MS - 60_000}
        same = [only_record(pipeline, **fields) for _ in range(2)]
        reordered = only_record(pipeline, **{**fields, "meta": {"b": 2, "a": 1}})
        cleaned = only_record(pipeline, **{**fields, "comment": "o\x00k"})
        as_text = only_record(pipeline, **{**fields, "ts": "2026-11-23T11:59:00Z"})
        assert same[0].key == same[1].key == reordered.key == cleaned.key == as_text.key
        assert same[0].ts_ms == NOW_MS - 60_000
        others = [
            only_record(pipeline, **{**fields, "comment": "ok!"}),
            only_record(pipeline, **fields, respondent="r"),
            only_record(pipeline, **{**fields, "score": 8}),
            only_record(pipeline, **{**fields, "ts": NOW_MS}),
            only_record(pipeline, **fields, id="given"),
        ]
        assert len({o.key for o in others} | {same[0].key}) == 6

    def test_identical_answers_in_one_request_are_each_counted(self, pipeline: ModuleType) -> None:
        answer = event(metric="csat", score=5, ts=NOW_MS - 1000)
        records, _ = run(pipeline, answer, event(score=1, ts=NOW_MS), answer, answer)
        first, other, second, third = (r.key for r in records)
        assert len({first, other, second, third}) == 4
        # the first keeps the key its content alone gives, as a single one would
        assert first == only_record(pipeline, **answer).key
        for key in (first, second, third):
            assert key[:6] == (NOW_MS - 1000).to_bytes(6, "big")
            assert uuid.UUID(bytes=key).version == 8

    def test_a_resent_request_without_ids_gets_the_same_keys(self, pipeline: ModuleType) -> None:
        batch = [event(score=s % 3, ts=NOW_MS - s) for s in (0, 3, 0, 1, 0)]
        keys = [r.key for r in run(pipeline, *batch)[0]]
        again = [r.key for r in run(pipeline, *batch, nonce=b"another-nonce-0123456789")[0]]
        assert keys == again and len(set(keys)) == 5

    def test_without_id_or_ts_each_event_has_a_key_of_its_own(self, pipeline: ModuleType) -> None:
        answer = event(metric="csat", score=5, id=DROP, ts=DROP)
        records, _ = run(pipeline, answer, answer, answer)
        keys = [r.key for r in records]
        assert len(set(keys)) == 3
        resent = [r.key for r in run(pipeline, answer, answer, answer, nonce=NONCE[::-1])[0]]
        assert set(resent).isdisjoint(keys)
        drawn = [r.key for r in run(pipeline, answer, nonce=None)[0]]  # a nonce drawn inside
        assert set(drawn).isdisjoint(keys) and drawn != [r.key for r in run(pipeline, answer)[0]]
        for record in records:
            assert record.ts_ms == NOW_MS
            assert record.key[:6] == NOW_MS.to_bytes(6, "big")  # still time-ordered
            assert uuid.UUID(bytes=record.key).version == 8

    def test_fresh_keys_are_a_function_of_nonce_and_index(self, pipeline: ModuleType) -> None:
        answers = [event(score=s) for s in (9, 9, 3)]
        keys = [r.key for r in run(pipeline, *answers)[0]]
        assert keys == [r.key for r in run(pipeline, *answers)[0]] and len(set(keys)) == 3
        # the index, not the content, decides: the same events elsewhere get other keys
        shifted = [r.key for r in run(pipeline, event(score=11), *answers)[0]]
        assert shifted[0] == keys[1] and shifted[1] == keys[2]
        assert shifted[2] not in keys

    def test_a_short_nonce_is_refused(self, pipeline: ModuleType) -> None:
        with pytest.raises(ValueError, match="a nonce must be at least 16 bytes"):
            run(pipeline, event(), nonce=b"short")

    def test_content_keys_with_a_ts_are_time_ordered(self, pipeline: ModuleType) -> None:
        earlier = only_record(pipeline, ts=NOW_MS - 1000)
        later = only_record(pipeline, ts=NOW_MS)
        assert earlier.key[:6] == (NOW_MS - 1000).to_bytes(6, "big")
        assert earlier.key < later.key
        assert uuid.UUID(bytes=later.key).version == 8

    def test_keys_depend_on_the_project_secret(self, pipeline: ModuleType) -> None:
        from voxloop_core import DEFAULT_POLICY, decode_batch

        from .helpers import body

        events, _ = decode_batch(body(event(id="order-1"), event()))
        mine, _ = pipeline.validate(events, DEFAULT_POLICY, NOW_MS, SECRET)
        theirs, _ = pipeline.validate(events, DEFAULT_POLICY, NOW_MS, b"another-secret")
        assert [r.key for r in mine] != [r.key for r in theirs]


def test_normalisation_matches_unicodedata(pipeline: ModuleType) -> None:
    text = "".join(chr(c) for c in range(0x300, 0x370)) + "Å"
    assert only_record(pipeline, comment=text).comment == unicodedata.normalize("NFC", text)


class KeyOnly(NamedTuple):
    key: bytes


class TestDedupWindow:
    def records(self, pipeline: ModuleType, *ids: str) -> list[Any]:
        records, _ = run(pipeline, *[event(id=i) for i in ids])
        return records

    def test_it_drops_repeats_within_a_batch(self, pipeline: ModuleType) -> None:
        window = pipeline.DedupWindow()
        fresh, duplicates = window.split(self.records(pipeline, "a", "b", "a", "a"), NOW_MS)
        assert [r.id for r in fresh] == ["a", "b"] and duplicates == 2

    def test_it_drops_what_was_remembered_and_only_that(self, pipeline: ModuleType) -> None:
        window = pipeline.DedupWindow()
        first = self.records(pipeline, "a", "b")
        assert window.split(first, NOW_MS) == (first, 0)  # splitting alone remembers nothing
        window.remember(first, NOW_MS)
        fresh, duplicates = window.split(self.records(pipeline, "b", "c", "a"), NOW_MS + 1)
        assert [r.id for r in fresh] == ["c"] and duplicates == 2
        assert len(window) == 2

    def test_it_forgets_the_oldest_past_max_entries(self, pipeline: ModuleType) -> None:
        window = pipeline.DedupWindow(max_entries=2)
        records = self.records(pipeline, "a", "b", "c")
        window.remember(records, NOW_MS)
        assert len(window) == 2
        assert [window.seen(r.key, NOW_MS) for r in records] == [False, True, True]

    def test_it_forgets_past_max_age(self, pipeline: ModuleType) -> None:
        window = pipeline.DedupWindow(max_age_ms=1000)
        a, b = self.records(pipeline, "a", "b")
        window.remember([a], NOW_MS)
        window.remember([b], NOW_MS + 500)
        assert window.seen(a.key, NOW_MS + 999) and not window.seen(a.key, NOW_MS + 1000)
        window.remember([], NOW_MS + 1200)
        assert len(window) == 1 and window.seen(b.key, NOW_MS + 1200)

    def test_remembering_again_keeps_the_first_time(self, pipeline: ModuleType) -> None:
        window = pipeline.DedupWindow(max_age_ms=1000)
        (a,) = self.records(pipeline, "a")
        window.remember([a], NOW_MS)
        window.remember([a], NOW_MS + 900)
        assert len(window) == 1 and not window.seen(a.key, NOW_MS + 1000)

    def test_anything_with_a_key_will_do(self, pipeline: ModuleType) -> None:
        window = pipeline.DedupWindow()
        (a,) = self.records(pipeline, "a")
        window.remember([KeyOnly(a.key)], NOW_MS)
        assert window.split([a, KeyOnly(b"other")], NOW_MS) == ([KeyOnly(b"other")], 1)

    def test_forgetting_erased_keys_lets_them_in_again(self, pipeline: ModuleType) -> None:
        window = pipeline.DedupWindow(max_entries=3, max_age_ms=1000)
        a, b, c, d = self.records(pipeline, "a", "b", "c", "d")
        window.remember([a, b, c], NOW_MS)
        assert window.forget([b.key, b.key, d.key]) == 1  # held once; d never was
        assert len(window) == 2
        assert window.split([a, b, c], NOW_MS + 1) == ([b], 2)
        # Remembered again after forgetting, it is one entry with its new time, and the
        # window still forgets the oldest first, past either bound.
        window.remember([b, d], NOW_MS + 500)
        assert len(window) == 3 and not window.seen(a.key, NOW_MS + 500)
        assert window.seen(b.key, NOW_MS + 1499) and not window.seen(c.key, NOW_MS + 1000)
        window.remember([], NOW_MS + 1000)
        assert len(window) == 2 and window.forget([]) == 0

    @pytest.mark.parametrize(("entries", "age"), [(0, 1), (1, 0)], ids=["entries", "age"])
    def test_bounds_must_be_positive(self, pipeline: ModuleType, entries: int, age: int) -> None:
        with pytest.raises(ValueError, match="max_entries >= 1 and max_age_ms >= 1"):
            pipeline.DedupWindow(max_entries=entries, max_age_ms=age)


def test_aggregate_reads_any_record_like_object(pipeline: ModuleType) -> None:
    records, _ = run(pipeline, event(score=9), event(score=3))
    copies = [SimpleNamespace(**msgspec.structs.asdict(r)) for r in records]
    assert pipeline.aggregate(copies) == pipeline.aggregate(records)


def test_validate_reads_any_event_like_object(pipeline: ModuleType) -> None:
    class Subclassed(Event, kw_only=True):
        pass

    from voxloop_core import DEFAULT_POLICY

    plain = Event(channel="web", form="f", metric="nps", score=3, comment="e\u0301")
    sub = Subclassed(channel="web", form="f", metric="nps", score=3, comment="e\u0301")
    assert pipeline.validate([sub], DEFAULT_POLICY, NOW_MS, SECRET, NONCE) == pipeline.validate(
        [plain], DEFAULT_POLICY, NOW_MS, SECRET, NONCE
    )


def test_aggregate_counts_per_channel_form_metric_and_hour(pipeline: ModuleType) -> None:
    hour = NOW_MS - NOW_MS % 3_600_000
    records, _ = run(
        pipeline,
        event(score=9),
        event(score=9, ts=hour - 1),
        event(score=0),
        event(metric="csat", score=5),
        event(form="onboarding", score=10),
        event(channel="app", score=10),
    )
    assert pipeline.aggregate(records) == {
        ("web", "checkout", "nps", hour): [1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
        ("web", "checkout", "nps", hour - 3_600_000): [0] * 9 + [1, 0],
        ("web", "checkout", "csat", hour): [0, 0, 0, 0, 1],
        ("web", "onboarding", "nps", hour): [0] * 10 + [1],
        ("app", "checkout", "nps", hour): [0] * 10 + [1],
    }
