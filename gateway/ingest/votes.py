"""The vote rules, written once for every store: which vote counts, which clicks are held.

CONTRACT.md gives each ``vote_key`` one answer, and the email rating links two more rules (the
edit window and the scanner's burst) and a rule for comments. They are plain functions of the
votes a store holds: a store reads the stored votes of each vote group a commit touches, in that
commit's transaction, asks :func:`settle` what changes, and writes it. Nothing here does I/O,
so every store applies the same rules, and the rules are tested apart from any database.

A vote group is the events of one project, channel and form that share a ``vote_key``; a
store reads one group as a sequence of :class:`StoredVote`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple

from voxloop_core import METRIC_RANGES

#: Why a vote is kept as history only: a scanner's burst, or a click after the edit window.
Held = Literal["quarantined", "late"]


class VoteRule(NamedTuple):
    """How clicks on an email's rating links are judged (CONTRACT.md, "Email rating links").

    A comment belongs to its score: a click that becomes the counted vote with the same score
    as the vote it replaces (the person opened the email again and clicked the same link) takes
    that vote's comment along, unless it brings its own, so the answer stays what it was; a
    click on another score starts without a comment (the page offers the box again), and the
    earlier events keep theirs as history.

    Attributes:
        edit_window_ms: after the first recorded click, how long another click may still change
            the vote; a later one is stored as history, ``held = 'late'``.
        burst_ms: clicks on ``burst_scores`` different scores within this time look like a link
            scanner: all the clicks of that burst are held as ``quarantined``.
    """

    edit_window_ms: int
    burst_ms: int

    @staticmethod
    def burst_scores(metric: str) -> int:
        """How many different scores within ``burst_ms`` make a burst: 3, or 2 for thumbs."""
        low, high = METRIC_RANGES[metric]
        return min(3, high - low + 1)


class StoredVote(NamedTuple):
    """One stored event of a vote group, as the rules read it.

    Attributes:
        key: the event's dedup key, unique within its project.
        id: the client's event id, if it sent one.
        ts_ms: when the answer was given (the client's ``ts``), epoch ms.
        metric: the event's metric.
        score: the event's score.
        received_ms: when the gateway received it, epoch ms.
        held: why it is kept as history only, or None.
        counted: whether the aggregates count it now.
        comment: its comment, where the caller needs comments (:func:`carried_comment`).
    """

    key: bytes
    id: str | None
    ts_ms: int
    metric: str
    score: int
    received_ms: int
    held: Held | None
    counted: bool
    comment: str | None = None


class Click(NamedTuple):
    """A vote just stored through an email rating link, to be judged by ``rule``."""

    key: bytes
    rule: VoteRule


class Outcome(NamedTuple):
    """What a commit changes in one vote group.

    Attributes:
        held: the held flag of each vote whose flag changes.
        comments: the comment each click takes from the vote it replaces.
        flips: the votes whose ``counted`` flag flips (``counted`` as read, ``held`` as judged):
            the aggregates move by +1 for one that was not counted, -1 for one that was.
    """

    held: dict[bytes, Held]
    comments: dict[bytes, str]
    flips: list[StoredVote]


def rank_key(vote: StoredVote) -> tuple[int, str, bytes]:
    """The order of votes: the latest ``ts``, then the greatest ``id`` (none is ``""``), then
    the greatest key ranks first. Text and bytes compare by code point and byte, as SQLite and
    PostgreSQL's ``COLLATE "C"`` do."""
    return (vote.ts_ms, vote.id or "", vote.key)


def ranked(votes: Iterable[StoredVote]) -> list[StoredVote]:
    """The votes that aren't held, best first by :func:`rank_key`."""
    return sorted((v for v in votes if v.held is None), key=rank_key, reverse=True)


def rank(votes: Iterable[StoredVote]) -> bytes | None:
    """The key of the one vote of a group that counts; None when every vote is held.

    Among the votes that aren't held, the one with the latest ``ts``, then the greatest ``id``,
    then the greatest key counts; the others stay stored as history and the aggregates leave
    them. The winner depends only on which votes are stored, never on the order they came in
    (or are given in), so every replica and every store agrees.
    """
    # The rank key inline rather than through rank_key: this runs for every vote a commit reads.
    best = max(((v.ts_ms, v.id or "", v.key) for v in votes if v.held is None), default=None)
    return None if best is None else best[2]


def judge_clicks(votes: Sequence[StoredVote], clicks: Sequence[Click]) -> dict[bytes, Held]:
    """The held flags that ``clicks``, just stored, set in their vote group.

    The clicks are judged one by one in the order they arrived, each seeing the flags the
    earlier ones set, against every stored vote of the group (the clicks among them):

    - a click more than ``edit_window_ms`` after the first vote received that isn't held (a
      scanner's burst must not start the window of the person who clicks later) is ``late``:
      history only, it changes nothing;
    - otherwise, when the votes received at most ``burst_ms`` before it (or after it), the
      late ones aside, hold ``burst_scores`` different scores or more, all of them are held as
      ``quarantined``: a link scanner that runs scripts clicked every link.

    Args:
        votes: every stored vote of one group, the clicks included.
        clicks: the clicks to judge, in the order they arrived; each must be one of ``votes``.

    Returns:
        The votes whose held flag changes, and their new flag.
    """
    held: dict[bytes, Held | None] = {vote.key: vote.held for vote in votes}
    by_key = {vote.key: vote for vote in votes}
    for key, rule in clicks:
        click = by_key[key]
        first_ms = min(
            (v.received_ms for v in votes if held[v.key] is None), default=click.received_ms
        )
        if click.received_ms - first_ms > rule.edit_window_ms:
            held[key] = "late"
            continue
        burst = [
            v
            for v in votes
            if held[v.key] != "late" and click.received_ms - v.received_ms <= rule.burst_ms
        ]
        if len({v.score for v in burst}) >= VoteRule.burst_scores(click.metric):
            for vote in burst:
                held[vote.key] = "quarantined"
    return {
        vote.key: flag
        for vote in votes
        if (flag := held[vote.key]) is not None and flag != vote.held
    }


def carried_comment(votes: Sequence[StoredVote], click: StoredVote) -> str | None:
    """The comment ``click`` takes from the vote it replaces, or None.

    Clicking the score already counted again keeps the answer as it was, comment included: when
    the click is the counted vote of its group (:func:`rank`), brings no comment of its own,
    and the vote ranked next (the one it replaces) has the same score and a comment, the click
    takes that comment. A click on another score starts without one; the earlier votes keep
    theirs as history.

    Args:
        votes: every stored vote of the group, with their held flags as judged and comments.
        click: the click, one of ``votes``.
    """
    if click.comment is not None:
        return None
    top = ranked(votes)[:2]
    if len(top) == 2 and top[0].key == click.key and top[1].score == click.score:
        return top[1].comment or None
    return None


def settle(votes: Sequence[StoredVote], clicks: Sequence[Click] = ()) -> Outcome:
    """Everything a commit changes in one vote group, after it stored its new votes.

    ``clicks`` are judged first (:func:`judge_clicks`), then each click may take the comment of
    the vote it replaces (:func:`carried_comment`), then the group is ranked (:func:`rank`):
    the winner must be counted and every other vote not, and each vote whose flag disagrees
    flips, moving the aggregates with it.

    Args:
        votes: every stored vote of one group, the new ones included (stored not counted).
        clicks: the new votes that came through email rating links, in the order they arrived.
    """
    if not clicks:  # the common case, kept lean: one pass to rank, one to compare
        winner = rank(votes)
        return Outcome({}, {}, [vote for vote in votes if (vote.key == winner) != vote.counted])
    held = judge_clicks(votes, clicks)
    if held:
        votes = [v._replace(held=held[v.key]) if v.key in held else v for v in votes]
    by_key = {vote.key: vote for vote in votes}
    comments: dict[bytes, str] = {}
    for key, _ in clicks:
        comment = carried_comment(votes, by_key[key])
        if comment is not None:
            comments[key] = comment
    winner = rank(votes)
    flips = [vote for vote in votes if (vote.key == winner) != vote.counted]
    return Outcome(held, comments, flips)
