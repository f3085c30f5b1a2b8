"""Hypothesis strategies for request bodies: mostly plausible events, with junk mixed in."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import strategies as st

from .conftest import NOW_MS

junk: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**100), max_value=2**100),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
# Where normalisation bites: combining marks, Arabic harakat, Hangul jamo, kana voicing marks,
# characters that never survive NFC, and controls that sit between a letter and its mark.
tricky = st.text(
    st.one_of(
        st.sampled_from("eAoaKkGg\u0627\u0628\u1100\u1112\uac00\u304b\u30cf\x01\x85\n"),
        st.characters(min_codepoint=0x300, max_codepoint=0x36F),
        st.characters(min_codepoint=0x64B, max_codepoint=0x65F),
        st.characters(min_codepoint=0x1161, max_codepoint=0x11C3),
        st.sampled_from("\u3099\u309a\u0958\u212b\u2126\u0344\u0f73\U0001d15e\U0002f800"),
    ),
    max_size=40,
)
forms = st.one_of(st.sampled_from(["checkout", "onboarding", "support-ticket", "a.b_c-1"]), words)
iso_times = st.datetimes(
    min_value=__import__("datetime").datetime(2025, 1, 1),
    max_value=__import__("datetime").datetime(2027, 1, 1),
    timezones=st.timezones(),
).map(lambda d: d.isoformat())


def field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a good value, sometimes junk."""
    return st.one_of(good, good, good, junk)


event_fields = st.fixed_dictionaries(
    {
        "channel": field(st.sampled_from(["web", "app", "email", "sms", ""])),
        "form": field(forms),
        "metric": field(st.sampled_from(["nps", "csat", "ces", "likert", "thumbs", "stars"])),
        "score": field(st.integers(min_value=-2, max_value=12)),
    },
    optional={
        "id": field(
            st.one_of(st.uuids(version=4).map(str), st.text(max_size=70), st.just("x" * 64))
        ),
        "comment": field(st.one_of(words, tricky, tricky, st.text(max_size=300))),
        "respondent": field(st.text(max_size=130)),
        "vote_key": field(st.text(max_size=130)),
        "ts": field(
            st.one_of(
                st.integers(min_value=NOW_MS - 400 * 86_400_000, max_value=NOW_MS + 600_000),
                iso_times,
            )
        ),
        "locale": field(st.sampled_from(["en", "ar", "fa-IR", "id", "zh-Hant-TW", "e", "x--"])),
        "tags": field(st.lists(st.text(max_size=66), max_size=17)),
        "meta": field(
            st.dictionaries(
                st.text(max_size=66),
                st.one_of(
                    st.text(max_size=20),
                    st.integers(),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.booleans(),
                ),
                max_size=4,
            )
        ),
        "unexpected": junk,
    },
)

uuid7s = st.integers(min_value=0, max_value=2**122 - 1).map(
    lambda n: (
        __import__("uuid")
        .UUID(
            int=(NOW_MS << 80) | (0x7 << 76) | ((n >> 62) << 64) | (0b10 << 62) | (n & (2**62 - 1))
        )
        .__str__()
    )
)


def encode(events: list[Any]) -> bytes:
    return msgspec.json.encode({"events": events})
