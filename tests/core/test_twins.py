"""The compiled core and the pure reference give identical results on every input."""

from __future__ import annotations

import hashlib
import os
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxloop_core import DEFAULT_POLICY, CoreError, decode_batch, merge
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
