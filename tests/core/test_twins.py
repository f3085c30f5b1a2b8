"""The compiled core and the pure reference give identical results on every input."""

from __future__ import annotations

import hashlib
import os
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxloop_core import (
    DEFAULT_POLICY,
    METRIC_RANGES,
    CoreError,
    Event,
    Policy,
    Record,
    decode_batch,
    merge,
)
from voxloop_core import _pipeline_py as py

from .conftest import NONCE, NOW_MS, SECRET
from .strategies import encode, event_fields, junk, uuid7s

if os.environ.get("VOXLOOP_NO_EXTENSIONS", "") not in ("", "0"):
    pytest.skip("a pure build was asked for: there is no compiled twin", allow_module_level=True)

from voxloop_core import _pipeline_c as c  # type: ignore[attr-defined]  # noqa: E402


class KeyOnly(NamedTuple):
    key: bytes


batches = st.lists(
    st.one_of(event_fields, event_fields, event_fields, junk), min_size=1, max_size=8
)
settings.register_profile("twins", max_examples=400, suppress_health_check=[HealthCheck.too_slow])


def both(body: bytes, nonce: bytes = NONCE) -> tuple[Any, Any]:
    try:
        events, _ = decode_batch(body)
    except CoreError:
        return None, None
    return (
        py.validate(events, DEFAULT_POLICY, NOW_MS, SECRET, nonce),
        c.validate(events, DEFAULT_POLICY, NOW_MS, SECRET, nonce),
    )


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(batches)
def test_compiled_equals_reference_on_arbitrary_batches(batch: list[Any]) -> None:
    ref, fast = both(encode(batch))
    assert fast == ref


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(batches, st.binary(min_size=16, max_size=48), st.lists(st.integers(0, 15), max_size=8))
def test_compiled_equals_reference_on_keys_of_repeated_events(
    batch: list[Any], nonce: bytes, repeats: list[int]
) -> None:
    # Repeats are where keys without ids differ: each identical event has its occurrence.
    batch = batch + [batch[i % len(batch)] for i in repeats]
    ref, fast = both(encode(batch), nonce)
    assert fast == ref
    if ref is not None:
        unkeyed = [r.key for r in ref[0] if r.id is None]
        assert len(set(unkeyed)) == len(unkeyed)


@settings(max_examples=200)
@given(st.lists(st.one_of(uuid7s, st.text(min_size=1, max_size=64)), min_size=1, max_size=20))
def test_compiled_equals_reference_on_ids(ids: list[str]) -> None:
    batch = [{"channel": "web", "form": "f", "metric": "nps", "score": 5, "id": i} for i in ids]
    ref, fast = both(encode(batch))
    assert fast == ref


@settings(max_examples=300)
@given(batches, batches)
def test_aggregates_merge_by_addition_and_twins_agree(a: list[Any], b: list[Any]) -> None:
    ref_a, fast_a = both(encode(a))
    ref_b, fast_b = both(encode(b))
    if ref_a is None or ref_b is None:
        return
    records_a, records_b = ref_a[0], ref_b[0]
    for impl in (py, c):
        whole = impl.aggregate(records_a + records_b)
        assert merge(impl.aggregate(records_a), impl.aggregate(records_b)) == whole
        assert sum(map(sum, whole.values())) == len(records_a) + len(records_b)
    assert c.aggregate(records_a) == py.aggregate(records_a)


@settings(max_examples=300)
@given(
    st.lists(st.integers(min_value=0, max_value=30), max_size=60),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=1, max_value=50),
    st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=10),
    st.lists(st.lists(st.integers(min_value=0, max_value=30), max_size=4), min_size=1, max_size=12),
)
def test_dedup_windows_agree_and_are_idempotent(
    stream: list[int],
    max_entries: int,
    max_age: int,
    steps: list[int],
    erasures: list[list[int]],
) -> None:
    keys = [n.to_bytes(16, "big") for n in stream]
    records = [KeyOnly(k) for k in keys]
    ref, fast = py.DedupWindow(max_entries, max_age), c.DedupWindow(max_entries, max_age)
    now = 0
    for start in range(0, len(keys), 5):
        now += steps[start % len(steps)]
        chunk = records[start : start + 5]
        ref.remember(chunk, now)
        fast.remember(chunk, now)
        erased = [n.to_bytes(16, "big") for n in erasures[start // 5 % len(erasures)]]
        assert ref.forget(erased) == fast.forget(erased)
        assert not any(fast.seen(k, now) for k in erased)
        assert len(ref) == len(fast) <= max_entries
        probe = now + steps[-1]
        assert [ref.seen(k, probe) for k in keys] == [fast.seen(k, probe) for k in keys]
        # "seen" only for keys it was given
        assert all(k in keys[: start + 5] for k in keys if fast.seen(k, probe))


@settings(max_examples=200)
@given(batches)
def test_splitting_twice_changes_nothing(batch: list[Any]) -> None:
    ref, _ = both(encode(batch + batch))
    if ref is None:
        return
    for impl in (py, c):
        window = impl.DedupWindow()
        fresh, duplicates = window.split(ref[0], NOW_MS)
        assert window.split(fresh, NOW_MS) == (fresh, 0)
        assert len(fresh) + duplicates == len(ref[0])
        window.remember(fresh, NOW_MS)
        assert window.split(ref[0], NOW_MS) == ([], len(ref[0]))


@settings(max_examples=300)
@given(
    key=st.binary(min_size=1, max_size=64),
    person=st.sampled_from([b"voxloop-id", b"voxloop-who", b"", b"sixteen-bytes-xx"]),
    data=st.one_of(st.binary(max_size=300), st.sampled_from([b"", bytes(128), bytes(129)])),
)
def test_compiled_blake2b_equals_hashlib(key: bytes, person: bytes, data: bytes) -> None:
    expected = hashlib.blake2b(data, key=key, digest_size=16, person=person).digest()
    assert c._Mac(key, person).digest(data) == expected


@pytest.mark.parametrize("at", [at for at in range(36) if at not in (8, 13, 18, 23)])
def test_uuid7_ids_with_any_one_character_changed_agree(at: int) -> None:
    """The compiled core parses a UUIDv7's hex digits itself: every character in every
    digit's place gives the reference's key or rejection."""
    uuid7 = "0193a1f2-7c3e-7b7a-9a55-1f7b2c9d0e11"
    ids = [uuid7[:at] + chr(code) + uuid7[at + 1 :] for code in range(1, 256)]
    events = [
        Event(channel="web", form="checkout", metric="nps", score=9, id=event_id)
        for event_id in ids
    ]
    compiled = c.validate(events, DEFAULT_POLICY, NOW_MS, SECRET, NONCE)
    assert compiled == py.validate(events, DEFAULT_POLICY, NOW_MS, SECRET, NONCE)
    assert len(compiled[0]) == len(range(0x20, 0x7F))  # printable ASCII is a valid id


@pytest.mark.parametrize("size", range(34))
def test_compiled_blake2b_of_short_messages_equals_hashlib(size: int) -> None:
    """Messages of up to 16 bytes take their own copy of the rounds: every length around it."""
    key, data = bytes(range(1, 33)), bytes(range(0x61, 0x61 + size))
    expected = hashlib.blake2b(data, key=key, digest_size=16, person=b"voxloop-who").digest()
    assert c._Mac(key, b"voxloop-who").digest(data) == expected


def test_compiled_core_is_the_one_loaded() -> None:
    import voxloop_core

    assert voxloop_core.IMPLEMENTATION == "accelerated", voxloop_core.FALLBACK_REASON
    assert voxloop_core.validate is c.validate


class Commented(NamedTuple):
    comment: str | None


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(batches, st.lists(st.one_of(st.none(), st.text(max_size=40)), max_size=12))
def test_twins_find_the_same_comments_to_scrub(batch: list[Any], texts: list[str | None]) -> None:
    # Validated records (the compiled twin reads their slots) and any text (its other path),
    # in every storage width: Latin-1, BMP and astral characters all come from st.text.
    ref, _ = both(encode(batch))
    records = list(ref[0]) if ref is not None else []
    assert c.suspects(records) == py.suspects(records)
    others = [Commented(t) for t in texts]
    assert c.suspects(others) == py.suspects(others)


@pytest.mark.parametrize("twin", [py, c], ids=["pure", "compiled"])
def test_a_comment_is_suspect_for_an_at_sign_or_a_digit_of_any_script(twin: Any) -> None:
    texts = [
        "great service, thanks",  # Latin-1
        "خدمة ممتازة",  # Arabic letters only
        "write to me at ana@example.com",
        "order 4412 was late",
        "با ۰۹۱۲ تماس بگیرید",  # Persian digits
        "اتصل ٠٥٠",  # Arabic-Indic digits
        "room ４０４",  # fullwidth digits
        "💙 no digits 💙",  # astral, none
        "💙 ७ 💙",  # Devanagari digit beside astral characters
        None,
    ]
    assert twin.suspects([Commented(t) for t in texts]) == [2, 3, 4, 5, 6, 8]


def outcome(call: Any, *args: Any) -> Any:
    """What ``call(*args)`` gives, or the type and message of what it raises: the twins must
    agree on both."""
    try:
        return call(*args)
    except Exception as exc:  # noqa: BLE001 - the twins must raise the same thing
        return type(exc), str(exc)


# Policies no operator would write, but that the reference handles as Python ints: negative
# values (floor division in the messages) and values whose sum with now overflows 64 bits.
INT64_MAX = 2**63 - 1
policy_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-3 * 86_400_000, max_value=3 * 86_400_000),
    st.sampled_from(
        [INT64_MAX, INT64_MAX - NOW_MS, INT64_MAX - NOW_MS + 1, 2**63, 2**64, -(2**63), -1, -1500]
    ),
)
timestamps = st.one_of(
    st.integers(min_value=NOW_MS - 3 * 86_400_000, max_value=NOW_MS + 3 * 86_400_000),
    st.integers(min_value=-(2**63), max_value=INT64_MAX),
    st.sampled_from([-(2**63), -(2**63) + 1, INT64_MAX, INT64_MAX - 1, 0]),
)


@settings(max_examples=400)
@given(policy_values, policy_values, st.lists(timestamps, min_size=1, max_size=6))
def test_twins_agree_on_the_ts_window_of_any_policy(
    max_future_ms: int, retention_ms: int, stamps: list[int]
) -> None:
    policy = Policy(max_future_ms=max_future_ms, retention_ms=retention_ms)
    batch = [
        {"channel": "web", "form": "f", "metric": "nps", "score": 5, "ts": ts} for ts in stamps
    ]
    events, _ = decode_batch(encode(batch))
    ref = outcome(py.validate, events, policy, NOW_MS, SECRET, NONCE)
    assert outcome(c.validate, events, policy, NOW_MS, SECRET, NONCE) == ref
    # accepted timestamps at the ends of 64 bits: their hour buckets don't fit in 64 bits
    assert outcome(c.aggregate, ref[0]) == outcome(py.aggregate, ref[0])


def event_at(ts: int) -> list[Event | None]:
    """One decoded NPS event of the web channel at ``ts``."""
    events, _ = decode_batch(
        encode([{"channel": "web", "form": "f", "metric": "nps", "score": 1, "ts": ts}])
    )
    return events


@pytest.mark.parametrize(
    ("max_future_ms", "retention_ms", "ts"),
    [
        (-1, 365 * 86_400_000, NOW_MS),  # -1 // 1000 is -1, where C's division gives 0
        (-1500, 365 * 86_400_000, NOW_MS),
        (-999_999, 365 * 86_400_000, NOW_MS - 5),
        (300_000, -1, NOW_MS),
        (300_000, -86_400_001, NOW_MS),
        (300_000, -5 * 86_400_000 - 7, NOW_MS + 1),
    ],
)
def test_ts_messages_floor_negative_policy_values_as_the_reference(
    max_future_ms: int, retention_ms: int, ts: int
) -> None:
    policy = Policy(max_future_ms=max_future_ms, retention_ms=retention_ms)
    events = event_at(ts)
    ref = py.validate(events, policy, NOW_MS, SECRET, NONCE)
    assert ref[0] == [] and ref[1][0].field == "ts"
    assert c.validate(events, policy, NOW_MS, SECRET, NONCE) == ref
    expected = (
        f"ts is more than {max_future_ms // 1000} s ahead of the gateway's clock"
        if ts > NOW_MS + max_future_ms
        else f"ts is older than the retention window of {retention_ms // 86_400_000} days"
    )
    assert ref[1][0].error == expected


@pytest.mark.parametrize(
    ("max_future_ms", "retention_ms", "ts"),
    [
        (INT64_MAX, 365 * 86_400_000, NOW_MS),  # now + max_future_ms overflows 64 bits
        (INT64_MAX, 365 * 86_400_000, INT64_MAX),
        (300_000, INT64_MAX, NOW_MS),  # now - retention_ms underflows
        (300_000, INT64_MAX, -(2**63)),
        (2**64, 2**64, NOW_MS),  # the values themselves don't fit in 64 bits
        (2**64, 300_000, INT64_MAX),
        (300_000, 2**70, -(2**63)),
        (-(2**64), 300_000, NOW_MS),
        (300_000, -(2**64), NOW_MS),
    ],
)
def test_huge_ts_windows_give_the_reference_results(
    max_future_ms: int, retention_ms: int, ts: int
) -> None:
    policy = Policy(max_future_ms=max_future_ms, retention_ms=retention_ms)
    events = event_at(ts)
    ref = py.validate(events, policy, NOW_MS, SECRET, NONCE)
    assert c.validate(events, policy, NOW_MS, SECRET, NONCE) == ref
    assert outcome(c.aggregate, ref[0]) == outcome(py.aggregate, ref[0])


def record_with(metric: str, score: int, ts_ms: int = NOW_MS, form: str = "f") -> Record:
    """A Record made by hand, as ``validate`` never would: any score, any metric."""
    return Record(
        b"k" * 16, None, ts_ms, "web", form, metric, score, None, None, None, None, None, None
    )


@pytest.mark.parametrize("metric", list(METRIC_RANGES))
@pytest.mark.parametrize("offset", [-1, -2, "-size", "-size-1", "size", 2**64, -(2**64)])
def test_aggregate_of_a_score_outside_its_range_is_the_reference_s(
    metric: str, offset: int | str
) -> None:
    # The reference indexes a histogram with ``score - low``: Python's negative indexes count
    # from the end, and past either end it raises. The compiled twin must not read outside
    # the histogram.
    low, high = METRIC_RANGES[metric]
    size = high - low + 1
    shift = {"-size": -size, "-size-1": -size - 1, "size": size}.get(str(offset), offset)
    assert isinstance(shift, int)
    records = [
        record_with(metric, low),
        record_with(metric, low + shift),
        record_with(metric, high),
    ]
    ref = outcome(py.aggregate, records)
    assert outcome(c.aggregate, records) == ref
    assert outcome(c.aggregate, records[1:2]) == outcome(py.aggregate, records[1:2])


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(METRIC_RANGES)),
            st.one_of(st.integers(min_value=-25, max_value=25), st.integers()),
            st.sampled_from(["f", "g"]),
            st.integers(min_value=NOW_MS - 3 * 3_600_000, max_value=NOW_MS),
        ),
        max_size=12,
    )
)
def test_twins_aggregate_any_score_alike(rows: list[tuple[str, int, str, int]]) -> None:
    records = [record_with(metric, score, ts, form) for metric, score, form, ts in rows]
    assert outcome(c.aggregate, records) == outcome(py.aggregate, records)
