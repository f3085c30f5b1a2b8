"""The vote rules on plain values: which vote counts, which clicks are held, which comment stays."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxloop_gateway.ingest.votes import (
    Click,
    Outcome,
    StoredVote,
    VoteRule,
    carried_comment,
    judge_clicks,
    rank,
    ranked,
    settle,
)

RULE = VoteRule(edit_window_ms=60_000, burst_ms=5_000)
T0 = 1_795_435_200_000


def vote(name: str, **fields: Any) -> StoredVote:
    """A stored NPS vote whose key is ``name``; received when it was given unless told."""
    values: dict[str, Any] = {
        "key": name.encode(),
        "id": name,
        "ts_ms": T0,
        "metric": "nps",
        "score": 9,
        "received_ms": fields.get("ts_ms", T0),
        "held": None,
        "counted": False,
        "comment": None,
    }
    values.update(fields)
    return StoredVote(**values)


# --- rank -----------------------------------------------------------------------------------


def test_the_latest_vote_counts() -> None:
    votes = [vote("a", ts_ms=T0), vote("b", ts_ms=T0 + 1), vote("c", ts_ms=T0 - 1)]
    assert rank(votes) == b"b"


def test_ties_are_broken_by_id_then_key() -> None:
    assert rank([vote("a"), vote("b")]) == b"b"
    assert rank([vote("a", id=None), vote("b", id="")]) == b"b"  # no id ranks as ""
    assert rank([vote("b", id="x"), vote("a", id="y")]) == b"a"  # the id before the key
    # Text compares by code point, as SQLite and PostgreSQL's COLLATE "C" do.
    assert rank([vote("a", id="Z"), vote("b", id="a")]) == b"b"
    assert rank([vote("a", id="\uffff"), vote("b", id="\U0001f600")]) == b"b"


def test_held_votes_never_count() -> None:
    votes = [vote("a"), vote("b", ts_ms=T0 + 1, held="late")]
    assert rank(votes) == b"a"
    assert rank([vote("a", held="quarantined")]) is None
    assert rank([]) is None


def test_ranked_puts_the_counted_vote_first_and_leaves_held_ones_out() -> None:
    votes = [vote("a", ts_ms=T0), vote("b", ts_ms=T0 + 2, held="late"), vote("c", ts_ms=T0 + 1)]
    assert [v.key for v in ranked(votes)] == [b"c", b"a"]


stored_votes = st.lists(
    st.builds(
        StoredVote,
        key=st.binary(min_size=1, max_size=3),
        id=st.none() | st.text(max_size=2),
        ts_ms=st.integers(T0 - 3, T0 + 3),
        metric=st.just("nps"),
        score=st.integers(0, 10),
        received_ms=st.integers(T0, T0 + 10_000),
        held=st.sampled_from([None, None, "late", "quarantined"]),
        counted=st.booleans(),
        comment=st.none() | st.text(max_size=3),
    ),
    max_size=12,
    unique_by=lambda v: v.key,  # keys are unique within a project
)


@given(votes=stored_votes, data=st.data())
def test_the_winner_does_not_depend_on_the_order_of_the_votes(
    votes: list[StoredVote], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(votes))
    assert rank(shuffled) == rank(votes)
    free = [v for v in votes if v.held is None]
    if free:
        best = max(free, key=lambda v: (v.ts_ms, v.id or "", v.key))
        assert rank(votes) == best.key
    else:
        assert rank(votes) is None


@given(votes=stored_votes, data=st.data())
def test_settling_leaves_exactly_the_winner_counted(
    votes: list[StoredVote], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(votes))
    outcome = settle(shuffled)
    assert outcome.held == {} and outcome.comments == {}
    flipped = {v.key for v in outcome.flips}
    counted = {v.key for v in votes if v.counted != (v.key in flipped)}
    winner = rank(votes)
    assert counted == ({winner} if winner is not None else set())
    assert sorted(outcome.flips) == sorted(settle(votes).flips)


# --- judge_clicks ---------------------------------------------------------------------------


def test_a_click_within_the_edit_window_is_not_held() -> None:
    votes = [vote("a", score=3), vote("b", score=7, received_ms=T0 + 60_000)]
    assert judge_clicks(votes, [Click(b"b", RULE)]) == {}


def test_a_click_past_the_edit_window_is_late() -> None:
    votes = [vote("a", score=3), vote("b", score=7, received_ms=T0 + 60_001)]
    assert judge_clicks(votes, [Click(b"b", RULE)]) == {b"b": "late"}


def test_a_scanners_burst_does_not_start_the_edit_window() -> None:
    burst = [vote(name, score=s, held="quarantined") for name, s in (("a", 0), ("b", 5))]
    person = vote("p", score=8, received_ms=T0 + 120_000)
    assert judge_clicks([*burst, person], [Click(b"p", RULE)]) == {}


def test_three_scores_within_the_burst_time_are_all_quarantined() -> None:
    votes = [
        vote("a", score=0),
        vote("b", score=5, received_ms=T0 + 2_000),
        vote("c", score=10, received_ms=T0 + 5_000),
    ]
    held = judge_clicks(votes, [Click(b"c", RULE)])
    assert held == {b"a": "quarantined", b"b": "quarantined", b"c": "quarantined"}


def test_clicks_further_apart_than_the_burst_time_are_no_burst() -> None:
    votes = [
        vote("a", score=0),
        vote("b", score=5, received_ms=T0 + 2_000),
        vote("c", score=10, received_ms=T0 + 5_001),
    ]
    assert judge_clicks(votes, [Click(b"c", RULE)]) == {}


def test_repeats_of_one_score_are_no_burst() -> None:
    votes = [vote(n, score=9, received_ms=T0 + i) for i, n in enumerate("abcdef")]
    assert judge_clicks(votes, [Click(b"f", RULE)]) == {}


def test_thumbs_needs_both_scores_for_a_burst() -> None:
    votes = [vote("a", metric="thumbs", score=0), vote("b", metric="thumbs", score=1)]
    assert judge_clicks(votes, [Click(b"b", RULE)]) == {b"a": "quarantined", b"b": "quarantined"}
    assert VoteRule.burst_scores("thumbs") == 2 and VoteRule.burst_scores("csat") == 3


def test_late_votes_are_left_out_of_a_burst() -> None:
    votes = [
        vote("a", score=0, held="late"),
        vote("b", score=5),
        vote("c", score=10, received_ms=T0 + 1),
    ]
    assert judge_clicks(votes, [Click(b"c", RULE)]) == {}


def test_clicks_are_judged_in_order_each_seeing_the_flags_before_it() -> None:
    # One commit holds three clicks; the first is judged with all of them stored, so the burst
    # is found at once; the later clicks see the group as the earlier judgements left it.
    votes = [
        vote("a", score=0),
        vote("b", score=5, received_ms=T0 + 1),
        vote("c", score=10, received_ms=T0 + 2),
    ]
    clicks = [Click(b"a", RULE), Click(b"b", RULE), Click(b"c", RULE)]
    assert set(judge_clicks(votes, clicks).values()) == {"quarantined"}
    # An old vote and a click after the window: the click is late; flags already stored are
    # not reported again.
    votes = [vote("old", held="quarantined"), vote("x"), vote("y", received_ms=T0 + 70_000)]
    assert judge_clicks(votes, [Click(b"y", RULE)]) == {b"y": "late"}


# --- carried_comment ------------------------------------------------------------------------


def test_a_repeated_click_of_the_counted_score_takes_its_comment() -> None:
    first = vote("a", score=9, comment="fast delivery")
    again = vote("b", score=9, ts_ms=T0 + 1)
    assert carried_comment([first, again], again) == "fast delivery"


@pytest.mark.parametrize(
    ("first", "click"),
    [
        (vote("a", score=9, comment="fast"), vote("b", score=8, ts_ms=T0 + 1)),
        (vote("a", score=9, comment="fast"), vote("b", score=9, ts_ms=T0 + 1, comment="mine")),
        (vote("a", score=9, comment=""), vote("b", score=9, ts_ms=T0 + 1)),
        (vote("a", score=9, comment="fast", ts_ms=T0 + 2), vote("b", score=9, ts_ms=T0 + 1)),
        (vote("a", score=9, comment="fast"), vote("b", score=9, ts_ms=T0 + 1, held="late")),
    ],
    ids=["another-score", "own-comment", "empty-comment", "not-counted", "held"],
)
def test_no_comment_is_carried(first: StoredVote, click: StoredVote) -> None:
    assert carried_comment([first, click], click) is None


def test_the_comment_comes_from_the_vote_ranked_next_not_a_held_one() -> None:
    history = vote("a", score=9, comment="old")
    burst = vote("q", score=9, ts_ms=T0 + 1, comment="scanner", held="quarantined")
    click = vote("b", score=9, ts_ms=T0 + 2)
    assert carried_comment([history, burst, click], click) == "old"


# --- settle ---------------------------------------------------------------------------------


def test_settle_moves_the_count_to_the_new_vote() -> None:
    old = vote("a", score=3, counted=True)
    new = vote("b", score=7, ts_ms=T0 + 1)
    assert settle([old, new]) == Outcome({}, {}, [old, new])


def test_settle_judges_then_carries_then_ranks() -> None:
    counted = vote("a", score=9, counted=True, comment="kind staff")
    repeat = vote("b", score=9, ts_ms=T0 + 1, received_ms=T0 + 1)
    outcome = settle([counted, repeat], [Click(b"b", RULE)])
    assert outcome == Outcome({}, {b"b": "kind staff"}, [counted, repeat])

    late = vote("c", score=2, ts_ms=T0 + 2, received_ms=T0 + 60_001)
    outcome = settle([counted, late], [Click(b"c", RULE)])
    assert outcome == Outcome({b"c": "late"}, {}, [])  # nothing flips: the late click is history


def test_settle_takes_a_quarantined_vote_out_of_the_count() -> None:
    votes = [
        vote("a", score=0, counted=True),
        vote("b", score=5, received_ms=T0 + 1),
        vote("c", score=10, received_ms=T0 + 2),
    ]
    held, comments, flips = settle(votes, [Click(b"b", RULE), Click(b"c", RULE)])
    assert set(held) == {b"a", b"b", b"c"} and comments == {}
    assert [(v.key, v.counted) for v in flips] == [(b"a", True)]  # -1: nothing counts now
