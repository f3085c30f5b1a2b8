"""What every channel store does, whatever keeps the events: the gateway's one store interface.

:class:`~voxloop_gateway.stores.SqliteStore` (one file per channel, the embedded default) and
:class:`~voxloop_gateway.stores.PostgresStore` (one partition per channel of shared tables, for
several gateway replicas) both implement it, and one test suite runs against both.

The rules both keep (CONTRACT.md): a write returns only once its records are durable; the
unique ``(project, key)`` is the final word on duplicates; after every commit the aggregates
equal a scan of the counted events; the vote rules of ``ingest.votes`` (which vote
of a ``vote_key`` counts, which email clicks are held, which comment a repeated click keeps)
decide every vote group a commit touches: each store reads the group's votes in the commit's
transaction, and :func:`settle_votes` says what to write.

The read side (``reads``): a store pages through its channel's responses by a filter and a
position (:meth:`Store.responses`), finds one by key, and reads a vote group's history; the
SQL of each is written once in ``_queries``, and every row becomes a
:class:`~.reads.StoredResponse` here.

The log (:meth:`Store.log`, :meth:`Store.revisions`): every event has a ``seq``, its place in
the channel's log, and every comment attached later a revision; what reacts to responses reads
them after they were committed, from a cursor of its own, so the write path does nothing for it.

Erasure and retention (:meth:`Store.erase`, :meth:`Store.expire`) are the only ways events
leave a store. The invariant "the aggregates equal a scan of the counted events" holds after
every commit, every erasure and every redaction, with one exception written here once:
retention's ``delete`` mode removes old events and keeps their counts, so afterwards each
aggregate row equals a scan plus the counted events retention removed from it (the stats of
past months stay as they were; only the events behind them are gone). An erasure instead takes
its events' counts away in the same transaction and re-ranks their vote groups, so after it the
aggregates equal a scan again, whatever retention removed before stays counted. An erased key
leaves a tombstone until a given time: a write of that key before then is a duplicate, neither
stored nor counted, so a client's late retry can't bring the event back.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

import msgspec

from voxloop_core import DAY_MS, HOUR_MS, METRIC_RANGES, Record

from ..ingest.votes import Click, Held, StoredVote, VoteRule, settle
from ._errors import StoreBusy, StoreUnavailable
from ._queries import Dialect
from ._rollups import ALL_FORMS, Step
from .reads import Position, ResponseFilter, Selection, StoredResponse, includes_tie

Histograms = dict[tuple[str, int], list[int]]
"""(form, hour start in epoch ms) -> counts per score of one metric; index i counts score low+i.

A read by day has day starts for hours, a read of the whole window 0; a read that adds the forms
up has :data:`ALL_FORMS` for the form."""


class WriteResult(NamedTuple):
    """What one ``write()`` did.

    Attributes:
        stored: records newly stored by this call.
        duplicates: records the store already held, or that an earlier record of the same call
            or of an earlier write in the same group commit stored first.
    """

    stored: int
    duplicates: int


class Erased(msgspec.Struct, frozen=True):
    """What one :meth:`Store.erase` removed.

    Attributes:
        events: how many events (rows) it removed.
        refs: ``(key, vote_key)`` of each removed event, for what else holds them (follow-up
            items, webhooks' outbox, dedup windows).
    """

    events: int
    refs: list[tuple[bytes, str | None]]


#: How retention treats an expired event: remove it, or clear its comment and meta.
ExpireMode = Literal["delete", "redact"]

#: Most records one transaction takes; a single larger write still goes in one transaction.
MAX_GROUP_RECORDS: Final = 5_000
DEFAULT_MAX_PENDING: Final = 20_000
KEY_BYTES: Final = 16

Row = tuple[object, ...]
#: (project, form, vote_key): one vote group.
VoteGroup = tuple[str, str, str]
#: (project, metric, form, hour, score): one aggregate row's key.
AggregateKey = tuple[str, str, str, int, int]
#: (project, metric, form, hour or day, score, delta): what a commit adds to one aggregate row.
AggregateChange = tuple[str, str, str, int, int, int]
#: Where a store reads histograms from: the hourly aggregates, the daily ones, a scan of the
#: counted events, or of the votes held as quarantined.
HistogramSource = Literal["hourly", "daily", "scan", "quarantined"]


class Part(NamedTuple):
    """One read of a window: its source and the times it covers (epoch ms; None: no bound)."""

    source: HistogramSource
    start_ms: int | None
    end_ms: int | None


def aggregate_parts(step: Step, start_ms: int | None, end_ms: int | None) -> tuple[Part, ...]:
    """Where to read a window's aggregates by ``step``.

    By the hour, from the hourly rows. By day or over the window, its whole days from the daily
    aggregates and the hours of a day it cuts (before its first midnight, after its last) from
    the hourly ones. By day the parts hold different days, so their rows never share a key.
    """
    if step == "hour":
        return (Part("hourly", start_ms, end_ms),)
    first = None if start_ms is None else start_ms + (-start_ms) % DAY_MS  # the first midnight
    last = None if end_ms is None else end_ms - end_ms % DAY_MS  # the last
    if first is not None and last is not None and first >= last:
        return (Part("hourly", start_ms, end_ms),)  # no whole day inside
    parts = [Part("daily", first, last)]
    if start_ms is not None and first is not None and start_ms < first:
        parts.append(Part("hourly", start_ms, first))
    if end_ms is not None and last is not None and last < end_ms:
        parts.append(Part("hourly", last, end_ms))
    return tuple(parts)


def day_changes(changes: Iterable[AggregateChange]) -> list[AggregateChange]:
    """The daily aggregates' changes for the hourly ones: what a commit adds to each UTC day.

    ``changes`` are ``(project, metric, form, hour, score, delta)``; the answer has the same
    shape with day starts for hours, summed per form and, under :data:`ALL_FORMS`, over the
    forms; in key order (rows are locked in one order, so two commits never wait for each
    other in a cycle), and without the days whose changes cancel out. Every write of hourly
    deltas writes these in the same transaction, so for every day ``aggregates_daily`` equals
    its hours of ``aggregates``, per form and over them: a year's stats over every form read 365
    rows per score, not 8,760 per form and score.
    """
    days: collections.Counter[tuple[str, str, str, int, int]] = collections.Counter()
    for project, metric, form, hour, score, delta in changes:
        day = hour - hour % DAY_MS
        days[(project, metric, form, day, score)] += delta
        days[(project, metric, ALL_FORMS, day, score)] += delta
    return sorted((*key, delta) for key, delta in days.items() if delta)


class Body(msgspec.Struct, omit_defaults=True, gc=False):
    """The ``body`` column: what an event says beyond the columns that rules and stats read.

    One JSON text instead of five columns: binding a parameter is the dearest part of an insert
    from Python, and both databases' JSON functions still read it (``body ->> 'comment'``).
    The respondent is a column of its own, indexed: erasure and the read side find a person's
    events by it.
    """

    comment: str | None = None
    locale: str | None = None
    tags: list[str] | None = None
    meta: dict[str, str | int | float | bool] | None = None

    @classmethod
    def of(cls, record: Record) -> Body:
        return cls(record.comment, record.locale, record.tags, record.meta)


encode_body = msgspec.json.Encoder().encode
_decode_body = msgspec.json.Decoder(Body).decode


def stored_response(channel: str, row: Sequence[Any]) -> StoredResponse:
    """A row of the read side's SELECTs (``_queries``) as a reader sees it."""
    (key, id_, ts_ms, received_ms, form, metric, score, counted, held, body, respondent) = row[:11]
    vote_key, revised = row[11:]
    fields = _decode_body(body)
    return StoredResponse(
        channel=channel,
        key=bytes(key),
        id=id_,
        ts_ms=ts_ms,
        received_ms=received_ms,
        form=form,
        metric=metric,
        score=score,
        counted=bool(counted),
        held=held,
        comment=fields.comment,
        locale=fields.locale,
        tags=fields.tags,
        meta=fields.meta,
        respondent=respondent,
        vote_key=vote_key,
        revised=bool(revised),
    )


@dataclass(slots=True)
class Pending:
    """One ``write()`` waiting in the queue: its records, their rows and the caller's future."""

    project: str
    records: Sequence[Record]
    rows: list[Row]
    future: asyncio.Future[WriteResult]
    rule: VoteRule | None = None


class Store(abc.ABC):
    """One channel's events and hourly aggregates: what every store shares.

    Group commit: every ``write()`` joins a queue; the writer tasks take everything pending (up
    to ``MAX_GROUP_RECORDS`` records) and hand it to the store's ``_transact`` as ONE
    transaction, then answer each caller, so under load many requests share one commit (one
    fsync, one round trip). A store says how a group is committed (``_transact``), how an
    event's free-form part is written (``_body``), how histograms are read
    (``_histogram_rows``), and opens, checks and closes itself.

    Attributes:
        channel: the channel whose events the store keeps.
        max_pending: most records that may wait for commit before ``write()`` raises StoreBusy.
    """

    channel: str
    max_pending: int
    #: How this store's database is asked for responses; set by each store.
    _dialect: Dialect

    def __init__(self, channel: str, max_pending: int) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self.channel = channel
        self.max_pending = max_pending
        self._writers: list[asyncio.Task[None]] = []
        self._accepting = False
        self._was_opened = False
        self._queue: collections.deque[Pending] = collections.deque()
        self._wakeup = asyncio.Event()
        self._pending = 0
        self._records_per_second = 0.0
        #: Per project, where redaction stopped (see :meth:`expire`).
        self._redacted: dict[str, tuple[int, bytes]] = {}

    @property
    def pending(self) -> int:
        """Records queued or being committed, not yet committed (for the queue-depth metric)."""
        return self._pending

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and check the schema; StoreUnavailable naming what is wrong."""

    @abc.abstractmethod
    async def writable(self) -> bool:
        """Whether a write can be committed right now (for /readyz); never raises."""

    @abc.abstractmethod
    async def attach_comment(self, project: str, key: bytes, vote_key: str, comment: str) -> bool:
        """Set the comment of the stored vote ``key`` of ``vote_key``; False if there is none.

        The comment a person adds on an email rating page belongs to the vote they just cast;
        it changes no score, so the aggregates stay as they are. A comment that differs from
        the stored one is written with a revision (:meth:`revisions`) in one transaction, so
        the readers of the log learn of it; the same comment sent again changes nothing and
        still answers True.

        Raises:
            StoreUnavailable: the store is not open, or the commit failed.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Let queued writes commit, then release everything; closing twice does nothing."""

    @abc.abstractmethod
    async def erase(self, project: str, selection: Selection, *, tombstone_until_ms: int) -> Erased:
        """Remove the events of ``project`` that ``selection`` names, in ONE transaction.

        In that transaction the events go (with their revisions and their comments' search
        rows), the counted ones leave the hourly and daily aggregates, every vote group they
        were in is ranked again (when the erased vote was the counted one, the next one
        counts), and each removed key gets a tombstone until ``tombstone_until_ms``: a write of
        it before then is a duplicate. Tombstones past their time are removed. Afterwards the
        aggregates equal a scan (module docstring). Erasing again finds nothing: it is safe to
        run an interrupted erasure again.

        It is serialised with the group commits (SQLite: the writer's connection and lock;
        PostgreSQL: the vote groups' advisory locks, then rows and aggregate rows in the order
        every write locks them), so writes meanwhile stay exact.

        Raises:
            StoreUnavailable: the store is not open, or the commit failed (nothing of it
                applied).
        """

    async def count(self, project: str, selection: Selection) -> int:
        """How many events :meth:`erase` would remove now (a dry run).

        Raises:
            StoreUnavailable: the store is not open, or the read failed.
        """
        rows = list(await self._select(self._dialect.selected(project, selection, "count(*)")))
        return int(rows[0][0])

    async def expire(self, project: str, before_ms: int, mode: ExpireMode, limit: int) -> int:
        """Retention: one bounded batch of ``project``'s events whose ``ts`` is before
        ``before_ms``, oldest first, in one transaction; how many rows it changed.

        ``delete`` removes at most ``limit`` such events (with their revisions and search rows)
        and leaves the aggregates as they are: the counts of the past stay (module docstring).
        ``redact`` clears the comment and the meta of at most ``limit`` such events that still
        hold one (tags, locale and score stay: they are the answer, not what the person
        wrote about themselves); a redacted event is not found, nor counted as changed, again.
        0 means nothing is left to do: the caller loops until then. Tombstones past their time
        are removed.

        A vote group whose counted vote ``delete`` removed keeps that count, and a vote the
        group gets afterwards counts as well (the vote it would replace is gone): an answer
        changed after the retention window counts twice. Windows are days to years, far
        longer than votes are changed (an email link's edit window is minutes).

        Redaction goes on from where this store's last batch of the project stopped (every
        event before it holds nothing left to clear), so a long backlog is walked once, not
        once a batch; when nothing is found after it, the batch looks again from the oldest
        (a comment attached since to an old vote), and only then answers 0.

        Raises:
            ValueError: ``limit`` is below 1 or ``mode`` is neither mode.
            StoreUnavailable: the store is not open, or the commit failed.
        """
        if mode not in ("delete", "redact"):
            raise ValueError(f"mode must be delete or redact, got {mode!r}")
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        redact = mode == "redact"
        after = self._redacted.get(project) if redact else None
        select = self._dialect.expiring(project, before_ms, redact, "e.ts_ms, e.key", limit, after)
        changed, last = await self._expire_batch(project, select, redact)
        if not redact:
            return changed
        if last is not None:
            self._redacted[project] = last
            return changed
        self._redacted.pop(project, None)
        if after is not None:  # nothing after where it stopped: once more from the oldest
            return await self.expire(project, before_ms, mode, limit)
        return changed

    @abc.abstractmethod
    async def _expire_batch(
        self, project: str, select: tuple[str, list[object]], redact: bool
    ) -> tuple[int, tuple[int, bytes] | None]:
        """One batch of retention in one transaction: the events ``select`` finds (``ts_ms,
        key``, oldest first) removed or, if ``redact``, cleared; the tombstones past their
        time removed. How many rows changed, and the ``(ts_ms, key)`` of the last one found."""

    async def count_expired(self, project: str, before_ms: int, mode: ExpireMode) -> int:
        """How many rows :meth:`expire` would change, all batches together (a dry run).

        Raises:
            StoreUnavailable: the store is not open, or the read failed.
        """
        select = self._dialect.expiring(project, before_ms, mode == "redact", "count(*)", None)
        rows = list(await self._select(select))
        return int(rows[0][0])

    @abc.abstractmethod
    async def _select(self, sql: tuple[str, list[object]]) -> Iterable[Sequence[Any]]:
        """The rows of one read-side SELECT (``_queries``); StoreUnavailable if unreadable."""

    async def responses(
        self,
        filter: ResponseFilter,
        *,
        after: Position | None,
        limit: int,
        oldest_first: bool = False,
    ) -> list[StoredResponse]:
        """One page of this channel's responses of ``filter.project`` that pass ``filter``.

        Pages are keyset pages (see ``reads``): pass the last row's ``position`` as ``after``
        to get the next one. Rows stored meanwhile never make a page repeat or skip a row that
        was stored when the first page was read.

        Args:
            filter: the project and the conditions every row must pass.
            after: the page starts strictly after this position; None for the first page.
            limit: most rows returned.
            oldest_first: ascending order instead of newest first.

        Returns:
            At most ``limit`` responses in ``(ts_ms, key, channel)`` order, newest first
            unless ``oldest_first``.

        Raises:
            ValueError: ``limit`` is below 1.
            StoreUnavailable: the store is not open, or the read failed.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        tie = after is not None and includes_tie(self.channel, after, oldest_first=oldest_first)
        rows = await self._page(filter, after, tie, limit, oldest_first)
        return [stored_response(self.channel, row) for row in rows]

    async def _page(
        self,
        filter: ResponseFilter,
        after: Position | None,
        tie: bool,
        limit: int,
        oldest_first: bool,
    ) -> Iterable[Sequence[Any]]:
        """The rows of one page (see :meth:`.Dialect.page`); a store may plan it first."""
        return await self._select(self._dialect.page(filter, after, tie, limit, oldest_first))

    async def response(self, project: str, key: bytes) -> StoredResponse | None:
        """The response ``key`` of ``project`` in this channel, or None.

        Raises:
            StoreUnavailable: the store is not open, or the read failed.
        """
        rows = await self._select(self._dialect.one(project, key))
        return next((stored_response(self.channel, row) for row in rows), None)

    async def vote_history(self, project: str, form: str, vote_key: str) -> list[StoredResponse]:
        """Every vote of one vote group, the held and replaced ones too, oldest first.

        Raises:
            StoreUnavailable: the store is not open, or the read failed.
        """
        rows = await self._select(self._dialect.votes(project, form, vote_key))
        return [stored_response(self.channel, row) for row in rows]

    async def log(self, after: int, limit: int) -> list[tuple[int, StoredResponse]]:
        """This channel's events after the position ``after`` of its log, in the order stored.

        What reacts to new responses (follow-up rules, alerts, webhooks) reads the committed
        events here after the fact, each time from where it stopped, so the write path does
        nothing extra for it and loses nothing when a reader stops or crashes. Every project's
        events come, the held and replaced votes too, each with its flags as they are now: a
        vote that a later one replaced reads as no longer counted.

        ``seq`` is the event's place in the log, never reused: on SQLite the order of the
        commits, without gaps; on PostgreSQL each channel's own sequence, taken at insert, so
        several writers (and replicas) may commit a higher ``seq`` before a lower one, and
        numbers taken by a duplicate or a failed commit stay unused. A reader keeps its own
        cursor and copes with gaps: one may fill a moment later, or never.

        Args:
            after: the highest ``seq`` already read; 0 to start at the beginning.
            limit: most events returned.

        Returns:
            ``(seq, response)`` pairs with ``seq > after``, by ``seq``, at most ``limit``.

        Raises:
            ValueError: ``limit`` is below 1.
            StoreUnavailable: the store is not open, or the read failed.
        """
        return await self._sequenced(self._dialect.log, after, limit)

    async def revisions(self, after: int, limit: int) -> list[tuple[int, StoredResponse]]:
        """Responses of this channel changed after they were stored, after ``after``, by seq.

        A comment attached to a stored vote (:meth:`attach_comment`) is such a change: the
        response is not new, so :meth:`log` does not show it again; its revision, written in
        the same transaction as the comment, does. Each comes with the response as it is now
        (the latest comment), once per change that made a difference. ``seq`` follows the rules
        of :meth:`log`'s (gaps on PostgreSQL), in a numbering of its own.

        Args:
            after: the highest revision ``seq`` already read; 0 to start at the beginning.
            limit: most revisions returned.

        Returns:
            ``(seq, response)`` pairs with ``seq > after``, by ``seq``, at most ``limit``.

        Raises:
            ValueError: ``limit`` is below 1.
            StoreUnavailable: the store is not open, or the read failed.
        """
        return await self._sequenced(self._dialect.revisions, after, limit)

    async def last_seq(self) -> tuple[int, int]:
        """The highest ``seq`` of :meth:`log` and of :meth:`revisions` now, 0 where empty.

        A reader that should see only what comes from now on (a project's new feed need not
        replay years of history) starts from here. On PostgreSQL a commit in flight may still
        bring a lower ``seq``: a cursor started here may pass the events of that moment.

        Raises:
            StoreUnavailable: the store is not open, or the read failed.
        """
        rows = list(await self._select((self._dialect.last_seq(), [])))
        events, revisions = rows[0]
        return int(events), int(revisions)

    async def _sequenced(
        self,
        select: Callable[[int, int], tuple[str, list[object]]],
        after: int,
        limit: int,
    ) -> list[tuple[int, StoredResponse]]:
        """The ``(seq, response)`` rows of ``select``, a read of a log (see :meth:`log`)."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        rows = await self._select(select(after, limit))
        found = []
        for row in rows:
            response = stored_response(self.channel, row[2:])
            response.project = row[1]
            found.append((int(row[0]), response))
        return found

    @abc.abstractmethod
    async def _transact(self, group: list[Pending]) -> list[int]:
        """Commit ``group`` in one transaction; how many records each write stored."""

    @abc.abstractmethod
    def _body(self, record: Record) -> str:
        """The ``body`` column of ``record``, as the database takes it."""

    @abc.abstractmethod
    async def _histogram_rows(
        self,
        part: Part,
        project: str,
        metric: str,
        forms: Sequence[str] | None,
        step: Step,
        per_form: bool,
    ) -> Iterable[Sequence[Any]]:
        """``(form, start, score, count)`` rows of ``part``, added up by ``step`` (and over the
        forms unless ``per_form``) in the database; StoreUnavailable if unreadable. A scan and
        the quarantined votes are read by the hour, per form."""

    async def hourly(
        self,
        project: str,
        metric: str,
        *,
        forms: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        step: Step = "hour",
        per_form: bool = True,
    ) -> Histograms:
        """Histograms of ``metric`` for ``project``, read from the aggregate rows.

        This is the fast path of the stats API: it reads one row per form, hour and score, or,
        added up in the database, per form, day and score (``step="day"``), per form and score
        over the window (``"window"``), and without ``per_form`` the same over the forms.

        Args:
            project: the project asked about.
            metric: one of the contract's metrics.
            forms: only these forms (an empty sequence matches none); None for all.
            start_ms: only hours starting at or after this epoch ms.
            end_ms: only hours starting before this epoch ms.
            step: what each histogram covers: an hour, a UTC day (of the window's hours), or
                the window.
            per_form: a histogram per form, else one for :data:`ALL_FORMS`.

        Returns:
            (form, start) -> counts per score, for every hour (or day) with at least one
            response; the start is the hour's, the day's, or 0 for the window.

        Raises:
            ValueError: ``metric`` is not one of the contract's metrics.
            StoreUnavailable: the store is not open, or the read failed.
        """
        parts = aggregate_parts(step, start_ms, end_ms)
        return await self._histograms(parts, project, metric, forms, step, per_form)

    async def scan(
        self,
        project: str,
        metric: str,
        *,
        forms: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> Histograms:
        """The same as :meth:`hourly`, recomputed from the counted events themselves.

        The ground truth the aggregates must equal; it reads every event of the project and
        metric, so it is for tests and audits, not for serving stats.
        """
        parts = (Part("scan", start_ms, end_ms),)
        return await self._histograms(parts, project, metric, forms, "hour", True)

    async def quarantined(
        self,
        project: str,
        metric: str,
        *,
        forms: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> Histograms:
        """Hourly histograms of the votes held as quarantined (a scanner's clicks).

        Kept apart from the score, so that the stats can say how many there were; few rows,
        found through a partial index.
        """
        parts = (Part("quarantined", start_ms, end_ms),)
        return await self._histograms(parts, project, metric, forms, "hour", True)

    async def _histograms(
        self,
        parts: Sequence[Part],
        project: str,
        metric: str,
        forms: Sequence[str] | None,
        step: Step,
        per_form: bool,
    ) -> Histograms:
        """The histograms of ``parts``, read in turn and added up."""
        score_range = METRIC_RANGES.get(metric)
        if score_range is None:
            known = ", ".join(METRIC_RANGES)
            raise ValueError(f"unknown metric {metric!r}; expected one of {known}")
        low, high = score_range
        out: Histograms = {}
        for part in parts:
            rows = await self._histogram_rows(part, project, metric, forms, step, per_form)
            for form, hour, score, count in rows:
                counts = out.get((form, hour))
                if counts is None:
                    counts = out[(form, hour)] = [0] * (high - low + 1)
                counts[score - low] += count
        return out

    def _start_writer(self, writers: int = 1) -> None:
        """Start taking writes, committed by ``writers`` tasks (more than one only where the
        database takes concurrent transactions on several connections)."""
        self._accepting = True
        self._was_opened = True
        self._writers = [
            asyncio.create_task(self._run_writer(), name=f"voxloop-store-{self.channel}-{n}")
            for n in range(writers)
        ]

    async def _stop_writer(self) -> None:
        """Stop taking writes and wait until every queued one is answered."""
        self._accepting = False
        writers, self._writers = self._writers, []
        if writers:
            self._wakeup.set()
            await asyncio.gather(*writers)

    async def write(
        self, project: str, records: Sequence[Record], *, rule: VoteRule | None = None
    ) -> WriteResult:
        """Store ``records`` of ``project``; return once the commit holding them is durable.

        The records join the next group commit. Records whose key the store already holds,
        or that an earlier record of this call or of an earlier write stores first, count as
        duplicates and change nothing.

        Args:
            project: the project the records belong to.
            records: validated records of this store's channel.
            rule: for clicks on email rating links: the edit window and the burst rule that
                judge each new vote against the stored ones of its ``vote_key``.

        Returns:
            How many records this call stored and how many were duplicates.

        Raises:
            StoreBusy: accepting them would put more than ``max_pending`` records in the queue;
                raised at once, nothing queued.
            StoreUnavailable: the store is not open, or their commit failed (nothing of it is
                known to be stored: sending the write again is safe).
            ValueError: a record is of another channel, has a malformed key, or a score outside
                its metric's range (a caller's bug: validate first).
        """
        if not self._accepting:
            state = "closed" if self._was_opened else "not open"
            raise StoreUnavailable(f"the store of channel {self.channel!r} is {state}")
        if not records:
            return WriteResult(0, 0)
        size = len(records)
        if self._pending + size > self.max_pending:
            retry_after = self._retry_after()
            raise StoreBusy(
                f"the store of channel {self.channel!r} has {self._pending} records waiting for"
                f" commit and takes at most {self.max_pending}; retry in {retry_after:.1f} s",
                retry_after,
            )
        rows = self._rows(project, records)
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._queue.append(Pending(project, records, rows, future, rule))
        self._pending += size
        self._wakeup.set()
        return await future

    def _rows(self, project: str, records: Sequence[Record]) -> list[Row]:
        """The ``events`` rows of ``records``, checked against what the aggregates rely on."""
        received_ms = time.time_ns() // 1_000_000
        rows: list[Row] = []
        for record in records:
            score_range = METRIC_RANGES.get(record.metric)
            if (
                record.channel != self.channel
                or len(record.key) != KEY_BYTES
                or score_range is None
                or not score_range[0] <= record.score <= score_range[1]
            ):
                raise ValueError(
                    f"the store of channel {self.channel!r} takes validated records of its"
                    f" channel with {KEY_BYTES}-byte keys; got channel {record.channel!r},"
                    f" {len(record.key)}-byte key, {record.metric} score {record.score}"
                )
            rows.append(
                (
                    project,
                    record.key,
                    record.id,
                    record.ts_ms,
                    record.form,
                    record.metric,
                    record.score,
                    record.vote_key,
                    record.vote_key is None,  # a vote counts once ranked, in the same commit
                    received_ms,
                    self._body(record),
                    record.respondent,
                )
            )
        return rows

    def _retry_after(self) -> float:
        """Seconds until the queue has likely drained, from the last commit's speed."""
        if self._records_per_second <= 0:
            return 1.0
        return min(max(self._pending / self._records_per_second, 0.1), 30.0)

    async def _run_writer(self) -> None:
        """The one writer: commit everything pending, group by group, until closed and empty."""
        while True:
            if not self._queue:
                if not self._accepting:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            group = [self._queue.popleft()]
            size = len(group[0].rows)
            while self._queue and size + len(self._queue[0].rows) <= MAX_GROUP_RECORDS:
                item = self._queue.popleft()
                group.append(item)
                size += len(item.rows)
            await self._commit_group(group, size)

    async def _commit_group(self, group: list[Pending], size: int) -> None:
        """Commit ``group`` in one transaction and answer each write; never raises on failure."""
        started = time.perf_counter()
        try:
            stored = await self._transact(group)
        except asyncio.CancelledError:
            self._fail(group, "the store was stopped before the commit")
            raise
        except Exception as exc:  # every failure must reach the callers, none may kill us
            logging.getLogger(__name__).warning(
                "commit of %d records to channel %r failed: %s", size, self.channel, exc
            )
            self._fail(group, f"{type(exc).__name__}: {exc}")
        else:
            elapsed = time.perf_counter() - started
            self._records_per_second = size / max(elapsed, 1e-6)
            for item, new in zip(group, stored, strict=True):
                if not item.future.done():  # the caller may have given up (cancelled)
                    item.future.set_result(WriteResult(new, len(item.rows) - new))
        finally:
            self._pending -= size

    def _fail(self, group: list[Pending], cause: str) -> None:
        for item in group:
            if not item.future.done():
                item.future.set_exception(
                    StoreUnavailable(
                        f"the store of channel {self.channel!r} could not commit: {cause};"
                        " nothing of this write is known to be stored, send it again"
                    )
                )


@dataclass(slots=True)
class VoteChanges:
    """What a commit writes after settling its vote groups (see :func:`settle_votes`).

    Attributes:
        events: ``(project, key, held, counted)`` of every event whose flags change, sorted.
        comments: ``(comment, project, key, vote_key)`` of every click that takes a comment.
        deltas: what each aggregate row gains (or loses) as votes start or stop counting.
    """

    events: list[tuple[str, bytes, Held | None, bool]]
    comments: list[tuple[str, str, bytes, str]]
    deltas: collections.Counter[AggregateKey]


class Inserted(NamedTuple):
    """What a group's insert stored, sorted for the rest of its transaction.

    Attributes:
        stored: how many records each write of the group stored, in the group's order.
        fresh: the stored events without a vote key, by project: their counts are added.
        touched: the vote groups the stored votes fall in, each with its new email clicks.
    """

    stored: list[int]
    fresh: dict[str, list[Record]]
    touched: dict[VoteGroup, list[Click]]


def sort_inserted(group: Sequence[Pending], inserted: set[tuple[str, bytes]]) -> Inserted:
    """Sort the records of ``group`` by what the insert did with them.

    ``inserted`` holds the ``(project, key)`` of each row the insert stored, which is the first
    record of that key in the group (a later one is a duplicate). Every store settles duplicates
    in its insert and then counts and settles what it stored in the same way, here.
    """
    left = set(inserted)
    fresh: dict[str, list[Record]] = collections.defaultdict(list)
    touched: dict[VoteGroup, list[Click]] = {}
    stored: list[int] = []
    for item in group:
        new = 0
        for record in item.records:
            pair = (item.project, record.key)
            if pair not in left:
                continue
            left.discard(pair)  # later copies are duplicates
            new += 1
            if record.vote_key is None:
                fresh[item.project].append(record)
            else:
                clicks = touched.setdefault((item.project, record.form, record.vote_key), [])
                if item.rule is not None:
                    clicks.append(Click(record.key, item.rule))
        stored.append(new)
    return Inserted(stored, fresh, touched)


def settle_votes(
    groups: Mapping[VoteGroup, Sequence[StoredVote]], clicks: Mapping[VoteGroup, Sequence[Click]]
) -> VoteChanges:
    """Apply the vote rules to every group a commit touched: the rows and counts to write.

    Args:
        groups: every stored vote of each touched group, read in the commit's transaction
            after its new events were inserted (new votes not counted).
        clicks: of each group, its new email clicks in the order they arrived.
    """
    events: list[tuple[str, bytes, Held | None, bool]] = []
    comments: list[tuple[str, str, bytes, str]] = []
    deltas: collections.Counter[AggregateKey] = collections.Counter()
    for group, votes in groups.items():
        project, form, vote_key = group
        held, carried, flips = settle(votes, clicks.get(group, ()))
        for vote in flips:
            hour = vote.ts_ms - vote.ts_ms % HOUR_MS
            deltas[(project, vote.metric, form, hour, vote.score)] += -1 if vote.counted else 1
            events.append((project, vote.key, vote.held, not vote.counted))
        if held:
            flipped = {vote.key for vote in flips}
            events.extend(
                (project, vote.key, held[vote.key], vote.counted)
                for vote in votes
                if vote.key in held and vote.key not in flipped
            )
        comments.extend((comment, project, key, vote_key) for key, comment in carried.items())
    events.sort()
    return VoteChanges(events, comments, deltas)
