"""The read side of the stores: stored responses, their filters and their order.

Every store answers :meth:`~.base.Store.responses` with the events of one channel that pass a
:class:`ResponseFilter`, newest first (or oldest first), after a :class:`Position`, at most
``limit`` of them. The order is ``(ts_ms, key, channel)``, the event's own time first, and a
position names one row exactly, so keyset pages stay stable while events arrive: a page never
repeats a row of an earlier page and never skips one that was stored when the first page was
read. A reader of several channels asks each store for a page after the same position and
:func:`merge` keeps the first ``limit`` of all of them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Literal, NamedTuple

import msgspec

#: Which responses a filter keeps by their vote state: held apart as a link scanner's
#: (``quarantined``), after the edit window (``late``), either (``any``), or neither (``none``).
HeldFilter = Literal["quarantined", "late", "any", "none"]


class ResponseFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What a reader asks for within one project. Every field given must hold (AND).

    Attributes:
        project: the project read; the only field always required.
        forms, metrics: one of these (an empty tuple keeps nothing); None for any.
        score_min, score_max: the score lies within them, both included.
        has_comment: whether the response has a comment.
        text: a substring of the comment in any script, case-insensitive (see
            ``stores._search`` for the exact rule); it may span words.
        tags: every one of them is on the response.
        meta: ``(KEY, VALUE)`` pairs; the meta value's text equals VALUE: a string as
            written, a number or a bool in JSON (``pro``, ``3``, ``1.5``, ``true``).
        locale: a BCP 47 language range, case-insensitive: ``ar`` keeps ``ar`` and ``ar-EG``.
        start_ms, end_ms: the response's ``ts`` is at or after ``start_ms`` and before
            ``end_ms``, epoch ms.
        held: ``quarantined`` or ``late`` for votes held so, ``any`` for both, ``none`` for
            responses not held; None for all.
        respondent: the pseudonym stored in the ``respondent`` column, never the client's id.
    """

    project: str
    forms: tuple[str, ...] | None = None
    metrics: tuple[str, ...] | None = None
    score_min: int | None = None
    score_max: int | None = None
    has_comment: bool | None = None
    text: str | None = None
    tags: tuple[str, ...] = ()
    meta: tuple[tuple[str, str], ...] = ()
    locale: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    held: HeldFilter | None = None
    respondent: str | None = None


class Selection(msgspec.Struct, frozen=True):
    """Which of a project's events of one channel an erasure removes (every field given must
    hold; all None: the whole project in this channel).

    Attributes:
        respondent: the pseudonym stored in the ``respondent`` column, never the client's id.
        form: the events of this form.
        start_ms, end_ms: the event's ``ts`` is at or after ``start_ms`` and before
            ``end_ms``, epoch ms.
    """

    respondent: str | None = None
    form: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None


class Position(NamedTuple):
    """One row's place in the order: a page starts after (or before) it."""

    ts_ms: int
    key: bytes
    channel: str


class StoredResponse(msgspec.Struct, kw_only=True):
    """One stored event as a reader sees it.

    ``counted``: whether it is in the aggregates now; ``held``: why not, for a vote held apart;
    ``revised``: its vote group holds other votes (the person changed their answer, or a
    scanner's click came first); ``respondent``: the pseudonym, for the respondent view;
    ``project``: whose it is, given by a read of the log (:meth:`Store.log`), which reads every
    project's events of a channel, and None where the reader asked for one project's.
    """

    channel: str
    key: bytes
    id: str | None
    ts_ms: int
    received_ms: int
    form: str
    metric: str
    score: int
    counted: bool
    held: str | None
    comment: str | None
    locale: str | None
    tags: list[str] | None
    meta: dict[str, str | int | float | bool] | None
    respondent: str | None
    vote_key: str | None
    revised: bool
    project: str | None = None

    @property
    def position(self) -> Position:
        return Position(self.ts_ms, self.key, self.channel)


def includes_tie(channel: str, after: Position, *, oldest_first: bool = False) -> bool:
    """Whether the row of ``channel`` at ``after``'s ``(ts_ms, key)`` comes after ``after``.

    A key is unique within a channel, not across channels: another channel may hold a row at
    the same ``(ts_ms, key)``, and the channel decides which comes first. A store of ``channel``
    asks for rows strictly after ``(ts_ms, key)``, or from it on when this is True.
    """
    if oldest_first:
        return channel > after.channel
    return channel < after.channel


def merge(
    pages: Iterable[list[StoredResponse]], limit: int, *, oldest_first: bool = False
) -> list[StoredResponse]:
    """The first ``limit`` rows of several channels' pages, each already in the order."""

    def place(row: StoredResponse) -> Position:
        return row.position

    merged = heapq.merge(*pages, key=place, reverse=not oldest_first)
    return [row for row, _ in zip(merged, range(limit), strict=False)]
