"""The embedded channel store: one SQLite file per channel, one writer task, group commit.

A :class:`SqliteStore` owns one channel's file. Every ``write()`` joins a queue; a single writer
task takes everything pending (up to ``MAX_GROUP_RECORDS`` records) and commits it in ONE
transaction, then answers each caller. Under load, many requests share one commit, and one
fsync, instead of each paying for its own.

Inside that transaction, the insert itself settles duplicates (the unique ``(project, key)``
is the final word on them): the group's events go into ``events`` in a few multi-row statements
that skip every key the file holds and return the rows they stored. Their histogram deltas (the
core's ``aggregate``) are added to ``aggregates`` with an additive upsert, and their sums per
UTC day to ``aggregates_daily``. So, after every commit, for every project, metric, form and
hour, ``aggregates`` equals the histogram of the counted events in ``events``
(:meth:`SqliteStore.scan` recomputes it that way, for tests and audits), and
``aggregates_daily`` the sum of each day's hours.

Votes (CONTRACT.md, ``vote_key``) follow the rules of ``ingest.votes``. In the same
transaction, after the insert, the store reads every stored vote of the groups the commit
touches (one statement), the rules say which votes are held, which click takes a comment and
which vote counts, and the store writes the flags that change and moves the aggregates with
them. Events without a ``vote_key`` never take that path.

Reads (``reads``) go through connections of their own, so a page being read never holds up a
commit, nor a commit a read (WAL lets readers and the writer work at once). Responses are
walked by ``events_by_time`` (project, ts_ms, key); comments are searched through
``comment_text``, an FTS5 table under the trigram tokenizer keyed by ``events.seq``. It holds
the comments of the events up to ``comment_index.upto``; the newer events' comments (the tail)
are indexed together once there are ``index_every`` of them, and searches read the tail's
comments directly. Triggers keep the index equal to the comments it holds when a comment is
attached later (:meth:`SqliteStore.attach_comment`) and on delete.

The log (:meth:`~.base.Store.log`) is ``events`` by ``seq``: one writer commits in order, so a
reader never finds a gap that fills later. A comment attached later adds a row to
``revisions`` in the same transaction.

Erasure and retention (:meth:`~.base.Store.erase`, :meth:`~.base.Store.expire`) run on the
writer's connection under its lock, each in one transaction between two group commits, so they
see and leave the aggregates exact. An erased key's tombstone is looked up before the insert
(``_tombstoned``), only when the file has tombstones, and such a key is never offered to it.

Durability: the file is in WAL mode. With ``synchronous=FULL`` (the default) SQLite fsyncs the
WAL at every commit, so a committed write survives a power loss or an OS crash: a caller that got
its :class:`WriteResult` can answer 202. With ``synchronous=NORMAL`` the WAL is fsynced only at
checkpoints: a commit survives the process being killed, but the last commits may be lost if the
machine loses power.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import pathlib
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Final, Literal, TypeVar, cast

import aiosqlite

import voxloop_core
from voxloop_core import HOUR_MS, METRIC_RANGES, Record

from ..ingest.votes import Click, StoredVote
from . import _search
from ._erase import COLUMNS, Removed, receipt, uncounted, vote_groups
from ._errors import StoreUnavailable
from ._queries import TEXT_FIRST, SqliteDialect
from ._rollups import ALL_FORMS, Step, day_start, select_of
from .base import (
    DEFAULT_MAX_PENDING,
    AggregateChange,
    Body,
    Erased,
    Part,
    Pending,
    Row,
    Store,
    VoteGroup,
    day_changes,
    encode_body,
    settle_votes,
    sort_inserted,
)
from .reads import Position, ResponseFilter, Selection

#: How long a statement waits for another process's lock before failing with "locked".
DEFAULT_BUSY_TIMEOUT_MS: Final = 5_000
SCHEMA_VERSION: Final = 9
#: Connections that read, besides the writer's: two pages (or a page and the stats) at once.
READERS: Final = 2

_T = TypeVar("_T")


def _hour(ts_column: str) -> str:
    """SQL for the start of the hour holding ``ts_column``, floored like Python's ``%``."""
    return f"({ts_column} - (({ts_column} % {HOUR_MS}) + {HOUR_MS}) % {HOUR_MS})"


# The daily aggregates (version 5): each UTC day's hours of ``aggregates`` added up, per form and
# over the forms (form '*'), kept in the same transactions, so that stats over months read a row
# per day, not per hour and form; and the hourly rows by time, for the hours of a day a window
# cuts, which would otherwise be looked for among every form's hours.
_DAILY_TABLE: Final = """
CREATE INDEX IF NOT EXISTS aggregates_by_hour ON aggregates (project, metric, hour);
CREATE TABLE IF NOT EXISTS aggregates_daily (
    project TEXT NOT NULL,
    metric TEXT NOT NULL,
    form TEXT NOT NULL,
    day INTEGER NOT NULL,
    score INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (project, metric, form, day, score)
) WITHOUT ROWID;
"""

# The log (version 6): events are logged by ``seq``, their rowid, in the order of the commits;
# a comment attached later (``attach_comment``) adds a revision. AUTOINCREMENT keeps a revision's
# seq from being used again once the highest rows are removed (a reader past them would skip the
# new ones), so revisions may be pruned once read. ``events`` has no such guard: erasure and
# retention, which delete events, keep the highest seq they remove in ``log_end`` (version 7),
# and the next insert takes the seq after it rather than SQLite's max + 1.
_LOG_TABLE: Final = """
CREATE TABLE IF NOT EXISTS revisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    key BLOB NOT NULL
);
"""

# Erasure and retention (version 7): a tombstone per erased key refuses a write of that key
# until its time (``_tombstoned``); the revisions are found by event, to be removed with it; and
# ``log_end`` keeps the highest seq ever used once the events holding it are removed (rows are
# deleted now, see ``_LOG_TABLE``): the next event then takes the seq after it, not one a log
# reader already went past.
_PRIVACY_TABLES: Final = """
CREATE TABLE IF NOT EXISTS tombstones (
    project TEXT NOT NULL,
    key BLOB NOT NULL,
    until_ms INTEGER NOT NULL,
    PRIMARY KEY (project, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS revisions_by_key ON revisions (project, key);
CREATE TABLE IF NOT EXISTS log_end (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
"""

# The read side (version 4): responses in time order, and the comments' trigram index with the
# triggers that keep it when a comment changes or goes. ``body ->> '$.comment'`` is the comment
# wherever it is read.
#
# The index holds the comments of the events up to ``comment_index.upto`` (version 9); those of
# the events after it, the tail, are indexed together once there are ``index_every`` of them
# (``_index_comments``), and a search reads the tail's comments themselves (``SqliteDialect``).
# Each commit that indexed its own comments wrote a new FTS5 segment: a third of the pages of a
# small commit, and 13 µs an event at 16 events a commit. Version 8 had already replaced the
# trigger on insert, which ran the index's insert inside each event's statement savepoint, where
# FTS5 writes out what it holds: a segment per event. The triggers below only touch the index
# for events it holds; a tail event's comment is read when the tail is indexed.
_READ_SIDE: Final = """
CREATE INDEX IF NOT EXISTS events_by_time ON events (project, ts_ms, key);
CREATE INDEX IF NOT EXISTS events_held_by_time ON events (project, ts_ms, key)
    WHERE held IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS comment_text
    USING fts5(comment, tokenize = 'trigram', columnsize = 0);
CREATE TABLE IF NOT EXISTS comment_index (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    upto INTEGER NOT NULL
);
INSERT OR IGNORE INTO comment_index (id, upto) SELECT 1, coalesce(max(seq), 0) FROM events;
CREATE TRIGGER IF NOT EXISTS comment_text_update AFTER UPDATE OF body ON events
    WHEN (old.body ->> '$.comment') IS NOT (new.body ->> '$.comment')
        AND old.seq <= (SELECT upto FROM comment_index)
BEGIN
    DELETE FROM comment_text WHERE rowid = old.seq;
    INSERT INTO comment_text (rowid, comment)
        SELECT new.seq, new.body ->> '$.comment' WHERE new.body ->> '$.comment' IS NOT NULL;
END;
CREATE TRIGGER IF NOT EXISTS comment_text_delete AFTER DELETE ON events
    WHEN old.body ->> '$.comment' IS NOT NULL AND old.seq <= (SELECT upto FROM comment_index)
BEGIN
    DELETE FROM comment_text WHERE rowid = old.seq;
END;
"""

_SCHEMA: Final = f"""
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    project TEXT NOT NULL,
    key BLOB NOT NULL,
    id TEXT,
    ts_ms INTEGER NOT NULL,
    form TEXT NOT NULL,
    metric TEXT NOT NULL,
    score INTEGER NOT NULL,
    vote_key TEXT,
    counted INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    held TEXT,
    respondent TEXT,
    UNIQUE (project, key)
);
CREATE INDEX IF NOT EXISTS events_by_vote
    ON events (project, form, vote_key) WHERE vote_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_held
    ON events (project, metric, held) WHERE held IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_by_respondent
    ON events (project, respondent) WHERE respondent IS NOT NULL;
CREATE TABLE IF NOT EXISTS aggregates (
    project TEXT NOT NULL,
    metric TEXT NOT NULL,
    form TEXT NOT NULL,
    hour INTEGER NOT NULL,
    score INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (project, metric, form, hour, score)
) WITHOUT ROWID;
{_DAILY_TABLE}CREATE TABLE IF NOT EXISTS heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at_ms INTEGER NOT NULL
);
{_READ_SIDE}{_LOG_TABLE}{_PRIVACY_TABLES}
PRAGMA user_version = {SCHEMA_VERSION};
COMMIT;
"""

#: How to bring a file of version ``v`` to ``v + 1``, each in one transaction.
_UPGRADES: Final[dict[int, str]] = {
    # 2: ``held`` marks a vote kept as history only: "quarantined" (a scanner's burst) or "late"
    # (after the edit window); held events never count.
    1: """
BEGIN IMMEDIATE;
ALTER TABLE events ADD COLUMN held TEXT;
CREATE INDEX IF NOT EXISTS events_held
    ON events (project, metric, held) WHERE held IS NOT NULL;
PRAGMA user_version = 2;
COMMIT;
""",
    # 3: ``respondent`` (the keyed hash) moves out of ``body`` into an indexed column of its own,
    # so that a person's events are found without reading every body.
    2: """
BEGIN IMMEDIATE;
ALTER TABLE events ADD COLUMN respondent TEXT;
UPDATE events SET respondent = body ->> '$.respondent', body = json_remove(body, '$.respondent')
WHERE body ->> '$.respondent' IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_by_respondent
    ON events (project, respondent) WHERE respondent IS NOT NULL;
PRAGMA user_version = 3;
COMMIT;
""",
    # 4: the read side: the time-order index, and the comments' trigram index filled from the
    # comments already stored.
    3: f"""
BEGIN IMMEDIATE;
{_READ_SIDE}
INSERT INTO comment_text (rowid, comment)
    SELECT seq, body ->> '$.comment' FROM events WHERE body ->> '$.comment' IS NOT NULL;
PRAGMA user_version = 4;
COMMIT;
""",
    # 5: the daily aggregates, filled from the hourly ones.
    4: f"""
BEGIN IMMEDIATE;
{_DAILY_TABLE}
INSERT INTO aggregates_daily (project, metric, form, day, score, count)
    SELECT project, metric, form, {day_start("hour")}, score, sum(count) FROM aggregates
    GROUP BY 1, 2, 3, 4, 5;
INSERT INTO aggregates_daily (project, metric, form, day, score, count)
    SELECT project, metric, '{ALL_FORMS}', {day_start("hour")}, score, sum(count) FROM aggregates
    GROUP BY 1, 2, 4, 5;
PRAGMA user_version = 5;
COMMIT;
""",
    # 6: the revisions of the log; the events' seq is already there.
    5: f"""
BEGIN IMMEDIATE;
{_LOG_TABLE}
PRAGMA user_version = 6;
COMMIT;
""",
    # 7: tombstones, the revisions by event, the log's end (``_PRIVACY_TABLES``).
    6: f"""
BEGIN IMMEDIATE;
{_PRIVACY_TABLES}
PRAGMA user_version = 7;
COMMIT;
""",
    # 8: new comments are indexed by the commit, not by a trigger per event (``_READ_SIDE``).
    7: """
BEGIN IMMEDIATE;
DROP TRIGGER IF EXISTS comment_text_insert;
PRAGMA user_version = 8;
COMMIT;
""",
    # 9: new comments are indexed a tail at a time; every comment stored so far is indexed.
    8: f"""
BEGIN IMMEDIATE;
DROP TRIGGER IF EXISTS comment_text_update;
DROP TRIGGER IF EXISTS comment_text_delete;
{_READ_SIDE}
PRAGMA user_version = 9;
COMMIT;
""",
}

# Per connection, in memory (temp_store = MEMORY): the vote groups a commit touches, each with
# its place in the commit's list (rows come back naming it, cheaper than three texts) and
# whether the commit judges clicks in it (only then are the votes' comments read).
_TEMP_SCHEMA: Final = """
CREATE TEMP TABLE IF NOT EXISTS touched (
    project TEXT NOT NULL,
    form TEXT NOT NULL,
    vote_key TEXT NOT NULL,
    place INTEGER NOT NULL,
    clicks INTEGER NOT NULL,
    PRIMARY KEY (project, form, vote_key)
) WITHOUT ROWID;
"""

#: Most keys one ``IN (...)`` names, well under SQLite's limit on bound parameters.
_KEYS_PER_LOOKUP: Final = 500
_EVENT_COLUMNS: Final = (
    "project, key, id, ts_ms, form, metric, score, vote_key, counted, received_ms, body, respondent"
)
#: Most rows one statement of a commit names: statements for 1, 2, 4 ... 256 rows, so any number
#: of rows is a few of them (100 rows: 64 + 32 + 4) and the connection's cache of prepared
#: statements keeps them all (a statement per size would be parsed again and again).
_ROWS_PER_STATEMENT: Final = 256


def _by_rows(head: str, width: int, tail: str) -> dict[int, str]:
    """``head VALUES (?, ...), ... tail`` for 1, 2, 4 ... :data:`_ROWS_PER_STATEMENT` rows of
    ``width`` values each.

    A commit's rows go in a few such statements rather than one ``executemany`` row by row:
    each execution is a step of SQLite's, and Python's sqlite3 lets go of the GIL around every
    step and takes it back after, which the writer's thread then waits for while the event loop
    runs. A 16-event commit of 1-event writes took about 50 steps so, and about 7 now; its
    median time in the transaction went from 1.46 to 1.17 ms.
    """
    row = "(" + ",".join("?" * width) + ")"
    return {
        size: f"{head} VALUES {','.join([row] * size)} {tail}"
        for size in (1 << n for n in range(_ROWS_PER_STATEMENT.bit_length()))
    }


def _write_rows(conn: sqlite3.Connection, statements: dict[int, str], rows: Sequence[Row]) -> int:
    """Run ``statements`` (of :func:`_by_rows`) over ``rows``; how many rows they changed."""
    changed = at = 0
    while at < len(rows):
        size = min(_ROWS_PER_STATEMENT, 1 << ((len(rows) - at).bit_length() - 1))
        part = rows[at : at + size]
        changed += conn.execute(statements[size], [v for row in part for v in row]).rowcount
        at += size
    return changed


# Duplicates are settled by the insert itself: a row whose (project, key) the file holds is
# skipped.
_INSERT_EVENTS: Final = _by_rows(
    f"INSERT INTO main.events ({_EVENT_COLUMNS})", 12, "ON CONFLICT (project, key) DO NOTHING"
)
# One event with its seq, for the first event after the highest ones were removed.
_INSERT_EVENT_AT: Final = f"""
INSERT INTO main.events (seq, {_EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (project, key) DO NOTHING"""
# What a group's commit reads first, in one statement: whether there are tombstones, the log's
# end when it is past the last event (``_insert``), the last event's seq, the index's end.
_GROUP_STATE: Final = """
SELECT EXISTS (SELECT 1 FROM main.tombstones),
    (SELECT seq FROM main.log_end WHERE seq > last), last, (SELECT upto FROM main.comment_index)
FROM (SELECT coalesce(max(seq), 0) AS last FROM main.events)"""
# The rows an insert stored, when it skipped some: those after the last seq before it.
_INSERTED_AFTER: Final = "SELECT project, key FROM main.events WHERE seq > ?"
#: Events after the trigram index's end that are indexed together (see ``_READ_SIDE``).
INDEX_EVERY: Final = 256
# The tail's comments, into the trigram index in one statement (see ``_READ_SIDE``).
_INDEX_COMMENTS: Final = """
INSERT INTO main.comment_text (rowid, comment)
SELECT seq, body ->> '$.comment' FROM main.events
WHERE seq > ? AND body ->> '$.comment' IS NOT NULL"""
_INDEXED_UPTO: Final = "UPDATE main.comment_index SET upto = (SELECT max(seq) FROM main.events)"
_KEEP_LOG_END: Final = """
INSERT INTO main.log_end (id, seq) VALUES (1, ?)
ON CONFLICT (id) DO UPDATE SET seq = max(seq, excluded.seq)"""
_LAST_SEQ: Final = "SELECT coalesce(max(seq), 0) FROM main.events"
_DROP_TOMBSTONES: Final = "DELETE FROM main.tombstones WHERE until_ms <= ?"
_TOMBSTONE: Final = """
INSERT INTO main.tombstones (project, key, until_ms) VALUES (?, ?, ?)
ON CONFLICT (project, key) DO UPDATE SET until_ms = max(until_ms, excluded.until_ms)"""
_DELETE_EVENT: Final = "DELETE FROM main.events WHERE project = ? AND key = ?"
_DELETE_REVISIONS: Final = "DELETE FROM main.revisions WHERE project = ? AND key = ?"
_REDACT: Final = (
    "UPDATE main.events SET body = json_remove(body, '$.comment', '$.meta')"
    " WHERE project = ? AND key = ?"
)
# The aggregates' changes, added to their rows (each key once in a commit's changes).
_ADD_COUNTS: Final = _by_rows(
    "INSERT INTO main.aggregates (project, metric, form, hour, score, count)",
    6,
    "ON CONFLICT (project, metric, form, hour, score) DO UPDATE SET count = count + excluded.count",
)
_ADD_DAILY: Final = _by_rows(
    "INSERT INTO main.aggregates_daily (project, metric, form, day, score, count)",
    6,
    "ON CONFLICT (project, metric, form, day, score) DO UPDATE SET count = count + excluded.count",
)
_TOUCH: Final = "INSERT INTO temp.touched VALUES (?,?,?,?,?)"
# Every stored vote of the touched groups; CROSS JOIN keeps the groups as the outer loop, so
# each is one search of events_by_vote, not a scan of all votes.
_TOUCHED_VOTES: Final = """
SELECT g.place, e.key, e.id, e.ts_ms, e.metric, e.score, e.received_ms, e.held, e.counted,
    CASE WHEN g.clicks THEN e.body ->> '$.comment' END
FROM temp.touched AS g CROSS JOIN main.events AS e
    ON e.project = g.project AND e.form = g.form AND e.vote_key = g.vote_key
WHERE e.vote_key IS NOT NULL"""
_SET_FLAGS: Final = "UPDATE main.events SET held = ?, counted = ? WHERE project = ? AND key = ?"
_REMOVE_EMPTIED: Final = """
DELETE FROM main.aggregates
WHERE project = ? AND metric = ? AND form = ? AND hour = ? AND score = ? AND count = 0"""
_REMOVE_EMPTIED_DAYS: Final = """
DELETE FROM main.aggregates_daily
WHERE project = ? AND metric = ? AND form = ? AND day = ? AND score = ? AND count = 0"""
_HEARTBEAT: Final = """
INSERT INTO heartbeat (id, at_ms) VALUES (1, ?)
ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms"""
_SCAN: Final = f"""
SELECT form, hour, score, count(*) FROM (
    SELECT form, {_hour("ts_ms")} AS hour, score FROM events
    WHERE project = ? AND metric = ? AND counted = 1
) WHERE true{{filters}}
GROUP BY form, hour, score
ORDER BY form, hour, score"""
_QUARANTINED: Final = f"""
SELECT form, hour, score, count(*) FROM (
    SELECT form, {_hour("ts_ms")} AS hour, score FROM events
    WHERE project = ? AND metric = ? AND held = 'quarantined'
) WHERE true{{filters}}
GROUP BY form, hour, score
ORDER BY form, hour, score"""
_ATTACH_COMMENT: Final = """
UPDATE main.events SET body = json_set(body, '$.comment', ?)
WHERE project = ? AND key = ? AND vote_key = ?"""
_VOTE_COMMENT: Final = """
SELECT seq, body ->> '$.comment' FROM main.events WHERE project = ? AND key = ? AND vote_key = ?"""
_SET_COMMENT: Final = "UPDATE main.events SET body = json_set(body, '$.comment', ?) WHERE seq = ?"
_ADD_REVISION: Final = "INSERT INTO main.revisions (project, key) VALUES (?, ?)"


class SqliteStore(Store):
    """One channel's events and hourly aggregates, in one SQLite file, written by group commit.

    Use ``await open()`` first and ``await close()`` last (the gateway's lifespan does both).
    Any number of tasks may call ``write()`` concurrently; one writer task commits for them all.

    Attributes:
        channel: the channel whose events this store keeps.
        path: the SQLite file.
        max_pending: most records that may wait for commit before ``write()`` raises StoreBusy.
    """

    channel: str
    path: pathlib.Path
    max_pending: int
    _dialect: SqliteDialect

    def __init__(
        self,
        path: pathlib.Path,
        channel: str,
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        max_pending: int = DEFAULT_MAX_PENDING,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        index_every: int = INDEX_EVERY,
    ) -> None:
        """Describe the store; nothing is opened until :meth:`open`.

        Args:
            path: the SQLite file of this channel, created with its folder if missing.
            channel: the channel it serves; ``write()`` refuses records of another channel.
            synchronous: ``FULL`` (a commit survives power loss) or ``NORMAL`` (it survives a
                process kill); see the module docstring.
            max_pending: most records that may wait for commit; past it writes get StoreBusy.
            busy_timeout_ms: how long to wait for another connection's lock on the file
                before a commit fails with StoreUnavailable.
            index_every: events after the trigram index's end that are indexed together
                (1: each commit indexes its own); see ``_READ_SIDE``.

        Raises:
            ValueError: ``synchronous`` is not FULL or NORMAL, or a number is below its minimum.
        """
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        if busy_timeout_ms < 0:
            raise ValueError(f"busy_timeout_ms must be at least 0, got {busy_timeout_ms}")
        if index_every < 1:
            raise ValueError(f"index_every must be at least 1, got {index_every}")
        super().__init__(channel, max_pending)
        self.path = pathlib.Path(path)
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._index_every = index_every
        self._db: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = 0
        self._dialect = SqliteDialect("events")
        # Serialises transactions on the one connection: a read or a heartbeat must never run
        # inside the writer's open transaction.
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r}, {self.channel!r})"

    async def open(self) -> None:
        """Open the file, creating it, its folder and the schema if missing; start the writer.

        The file is switched to WAL (readers never block the writer, and one fsync per commit
        suffices). Opening an open store does nothing.

        Raises:
            StoreUnavailable: the folder or file can't be created or opened, is not a SQLite
                database, can't use WAL, or was made by a newer schema version.
        """
        if self._db is not None:
            return
        where = f"the store of channel {self.channel!r} at {self.path}"
        opened: list[aiosqlite.Connection] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            opened.append(await _connect(self.path))
            await self._prepare(opened[0], where)
            for _ in range(READERS):
                opened.append(await _connect(self.path))
                await self._prepare_reader(opened[-1])
        except BaseException as exc:
            for db in opened:
                await db.close()
            if isinstance(exc, sqlite3.Error | OSError):
                raise StoreUnavailable(f"can't open {where}: {_describe(exc)}") from exc
            raise
        self._db, *self._readers = opened
        self._start_writer()

    async def _prepare(self, db: aiosqlite.Connection, where: str) -> None:
        # busy_timeout first: switching to WAL needs a lock another process may hold.
        await db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        mode = await _scalar(db, "PRAGMA journal_mode = WAL")
        if str(mode).lower() != "wal":
            raise StoreUnavailable(f"{where} can't use WAL journaling (got {mode!r})")
        await db.execute(f"PRAGMA synchronous = {self._synchronous}")
        await db.execute("PRAGMA temp_store = MEMORY")
        version = await _scalar(db, "PRAGMA user_version")
        if version == 0:  # a new file: made at the current version
            await db.executescript(_SCHEMA)
        else:
            check_version(version, where)
        await db.executescript(_TEMP_SCHEMA)

    async def _prepare_reader(self, db: aiosqlite.Connection) -> None:
        await db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        await db.execute("PRAGMA query_only = 1")
        await db.execute("PRAGMA temp_store = MEMORY")
        await db.create_function(_search.CONTAINS_FUNCTION, 2, _search.contains, deterministic=True)
        await asyncio.to_thread(_search.prepare)

    async def _transact(self, group: list[Pending]) -> list[int]:
        """Run the group's transaction on the connection's thread; the records each write stored.

        The whole transaction is one call into aiosqlite's thread rather than one await per
        statement: each hop between the event loop and that thread costs more than a statement
        of a small group, and the transaction holds the lock for the whole time anyway.
        """
        async with self._lock:
            return await _in_thread(self._connection(), _store_group, group, self._index_every)

    def _body(self, record: Record) -> str:
        return encode_body(Body.of(record)).decode()

    async def writable(self) -> bool:
        """Whether a write transaction can be taken and committed right now (for /readyz).

        It commits a one-row heartbeat, so a disk that turned read-only or full, a lock held
        by another process, or a closed store all answer False. After a failed commit, the
        first successful heartbeat answers True again, so a replica taken out of rotation comes
        back without needing traffic. Never raises.
        """
        if self._db is None or not self._accepting:
            return False
        try:
            async with self._lock:
                await _in_thread(self._connection(), _beat, time.time_ns() // 1_000_000)
        except Exception:
            return False
        return True

    async def attach_comment(self, project: str, key: bytes, vote_key: str, comment: str) -> bool:
        try:
            async with self._lock:
                return await _in_thread(
                    self._connection(), _attach, project, key, vote_key, comment
                )
        except sqlite3.Error as exc:
            raise StoreUnavailable(
                f"the store of channel {self.channel!r} could not commit: {_describe(exc)}"
            ) from exc

    async def erase(self, project: str, selection: Selection, *, tombstone_until_ms: int) -> Erased:
        select = self._dialect.selected(project, selection, COLUMNS)
        return await self._change(_erase, project, select, tombstone_until_ms, _now_ms())

    async def _expire_batch(
        self, project: str, select: tuple[str, list[object]], redact: bool
    ) -> tuple[int, tuple[int, bytes] | None]:
        return await self._change(_expire, project, select, redact, _now_ms())

    async def _change(self, work: Callable[..., _T], *args: object) -> _T:
        """Run ``work(connection, *args)``, a transaction of its own, on the writer's connection,
        between two group commits."""
        try:
            async with self._lock:
                return await _in_thread(self._connection(), work, *args)
        except sqlite3.Error as exc:
            raise StoreUnavailable(
                f"the store of channel {self.channel!r} could not commit: {_describe(exc)}"
            ) from exc

    async def _histogram_rows(
        self,
        part: Part,
        project: str,
        metric: str,
        forms: Sequence[str] | None,
        step: Step,
        per_form: bool,
    ) -> Iterable[sqlite3.Row]:
        select, column = select_of(
            part.source,
            tables={"hourly": "aggregates", "daily": "aggregates_daily"},
            scans={"scan": _SCAN, "quarantined": _QUARANTINED},
            where="project = ? AND metric = ?",
            step=step,
            per_form=per_form,
            every_form=forms is None,
        )
        filters: list[str] = []
        params: list[object] = [project, metric]
        if forms is not None:
            filters.append(f" AND form IN ({', '.join('?' * len(forms))})")
            params.extend(forms)
        if part.start_ms is not None:
            filters.append(f" AND {column} >= ?")
            params.append(part.start_ms)
        if part.end_ms is not None:
            filters.append(f" AND {column} < ?")
            params.append(part.end_ms)
        return await self._read(select.format(filters="".join(filters)), params)

    async def _select(self, sql: tuple[str, list[object]]) -> Iterable[sqlite3.Row]:
        return await self._read(*sql)

    async def _page(
        self,
        filter: ResponseFilter,
        after: Position | None,
        tie: bool,
        limit: int,
        oldest_first: bool,
    ) -> Iterable[sqlite3.Row]:
        """A page searched by text starts from the comments holding it when they are few
        (see ``SqliteDialect``): looking them up first costs less than a wrong plan."""
        candidates = None
        if filter.text is not None and "\x00" not in filter.text:
            found = [seq for (seq,) in await self._read(*self._dialect.candidates(filter.text))]
            candidates = found if len(found) < TEXT_FIRST else None
        page = self._dialect.page(filter, after, tie, limit, oldest_first, candidates=candidates)
        return await self._read(*page)

    async def _read(self, sql: str, params: Sequence[object]) -> Iterable[sqlite3.Row]:
        """The rows of ``sql`` read on one of the reader connections, in turn."""
        if not self._readers:
            raise StoreUnavailable(f"the store of channel {self.channel!r} is not open")
        reader = self._readers[self._next_reader % len(self._readers)]
        self._next_reader += 1
        try:
            return await reader.execute_fetchall(sql, params)
        except sqlite3.Error as exc:
            raise StoreUnavailable(
                f"the store of channel {self.channel!r} could not be read: {_describe(exc)}"
            ) from exc

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreUnavailable(f"the store of channel {self.channel!r} is not open")
        return self._db

    async def close(self) -> None:
        """Stop taking writes, let every queued write commit, stop the writer, close the file.

        Writes already queued get their answer as usual; writes after this raise
        StoreUnavailable. Closing a closed (or never opened) store does nothing.
        """
        await self._stop_writer()
        async with self._lock:
            db, self._db = self._db, None
            readers, self._readers = self._readers, []
            for each in readers:
                await each.close()
            if db is not None:
                await db.close()


def check_version(version: object, where: str) -> None:
    """Refuse a file of another schema version than this code's, saying what to do."""
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise StoreUnavailable(
            f"{where} has schema version {version}; this gateway knows up to"
            f" {SCHEMA_VERSION}: upgrade the gateway"
        )
    if version < SCHEMA_VERSION:
        raise StoreUnavailable(
            f"{where} has schema version {version}, this gateway needs {SCHEMA_VERSION}:"
            " run `voxloop-gateway migrate`"
        )


def file_version(path: pathlib.Path) -> int:
    """The schema version of the store file at ``path`` (0: new or empty)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate_file(path: pathlib.Path) -> tuple[int, int]:
    """Bring the store file at ``path`` to this code's schema version; (from, to).

    Each step runs in its own transaction, so an interrupted migration resumes where it
    stopped. A file newer than this code is refused.
    """
    start = file_version(path)
    if start > SCHEMA_VERSION:
        check_version(start, str(path))
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute(f"PRAGMA busy_timeout = {DEFAULT_BUSY_TIMEOUT_MS}")
        if start == 0:
            conn.executescript(_SCHEMA)
        else:
            for step in range(start, SCHEMA_VERSION):
                conn.executescript(_UPGRADES[step])
    return start, SCHEMA_VERSION


def _beat(conn: sqlite3.Connection, now_ms: int) -> None:
    """Commit the one-row heartbeat: proof that the file takes writes now."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_HEARTBEAT, (now_ms,))
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _attach(
    conn: sqlite3.Connection, project: str, key: bytes, vote_key: str, comment: str
) -> bool:
    """Set the comment of a stored vote, and log the change as a revision, in one transaction.

    Whether the vote is there; the same comment again writes nothing, so a form sent twice
    makes one revision.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = conn.execute(_VOTE_COMMENT, (project, key, vote_key)).fetchone()
        if found is not None and found[1] != comment:
            conn.execute(_SET_COMMENT, (comment, found[0]))
            conn.execute(_ADD_REVISION, (project, key))
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return found is not None


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back whatever is open; SQLite may already have done so after an I/O error."""
    try:
        conn.rollback()
    except sqlite3.Error as exc:
        logging.getLogger(__name__).warning("rollback failed: %s", exc)


def _store_group(conn: sqlite3.Connection, group: list[Pending], index_every: int) -> list[int]:
    """Store the group's new events and move the aggregates with them, in one transaction.

    The unique ``(project, key)`` is the final word on duplicates, and the insert applies it:
    the group's records are offered in order, but for those whose erasure left a tombstone, and
    the insert stores the first of each key the file doesn't hold (the write lock is held: no
    other writer can add one meanwhile). The histogram deltas of the new events are
    the core's ``aggregate``; vote events are inserted not counted, and their groups settled
    afterwards.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        any_tombstone, end, last, indexed = conn.execute(_GROUP_STATE).fetchone()
        buried = _tombstoned(conn, group) if any_tombstone else set()
        rows: list[Row] = [
            row
            for item in group
            for record, row in zip(item.records, item.rows, strict=True)
            if not buried or (item.project, record.key) not in buried
        ]
        inserted = _insert(conn, rows, end, last)
        stored, fresh, touched = sort_inserted(group, inserted)
        # The new events' seqs follow one another from the last (or the log's end).
        first = end if end is not None and inserted else last
        _index_comments(conn, first + len(inserted), indexed, index_every)
        _add_counts(conn, list(_count_rows(fresh)))
        if touched:
            _settle(conn, touched)
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return stored


def _insert(
    conn: sqlite3.Connection, rows: list[Row], end: int | None, last: int
) -> set[tuple[str, bytes]]:
    """Insert the events whose key the file doesn't hold and return their ``(project, key)``.

    ``last`` is the last event's seq before, and ``end`` the log's end past it, if any: when the
    events that held the highest seqs were removed (``log_end``), the first event stored takes
    the seq after the log's end, so that no reader past them skips it. When every row is stored
    (the usual case) they are the answer; otherwise the rows after ``last`` are read back.
    """
    offered, stored = rows, 0
    while end is not None and rows and not stored:
        stored = conn.execute(_INSERT_EVENT_AT, (end + 1, *rows[0])).rowcount
        rows = rows[1:]
    stored += _write_rows(conn, _INSERT_EVENTS, rows)
    if stored == len(offered):  # rows begin (project, key): see ``Store._rows``
        return {cast(tuple[str, bytes], row[:2]) for row in offered}
    return set(conn.execute(_INSERTED_AFTER, (last,)))


def _index_comments(conn: sqlite3.Connection, newest: int, indexed: int, every: int) -> None:
    """Index the tail's comments once it spans ``every`` events (see ``_READ_SIDE``): those
    after ``indexed``, the index's end, up to ``newest``, the last seq of the commit."""
    if newest - indexed >= every:
        conn.execute(_INDEX_COMMENTS, (indexed,))
        conn.execute(_INDEXED_UPTO)


def _remove(conn: sqlite3.Connection, project: str, keys: list[bytes]) -> None:
    """Delete events of ``project`` by key with their revisions (their comments' search rows go
    with them, by trigger), keeping the log's end if the highest seq goes."""
    last = conn.execute(_LAST_SEQ).fetchone()[0]
    pairs = [(project, key) for key in keys]
    conn.executemany(_DELETE_EVENT, pairs)
    conn.executemany(_DELETE_REVISIONS, pairs)
    if conn.execute(_LAST_SEQ).fetchone()[0] < last:
        conn.execute(_KEEP_LOG_END, (last,))


def _erase(
    conn: sqlite3.Connection,
    project: str,
    select: tuple[str, list[object]],
    until_ms: int,
    now_ms: int,
) -> Erased:
    """Remove the selected events, take their counts away, rank their vote groups again and
    leave their tombstones, in one transaction (see ``Store.erase``)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        removed = [Removed.of(row) for row in conn.execute(*select)]
        if removed:
            _remove(conn, project, [row.key for row in removed])
            _add_counts(conn, [(*key, delta) for key, delta in uncounted(project, removed).items()])
            groups = vote_groups(project, removed)
            if groups:
                _settle(conn, {group: [] for group in groups})
            conn.executemany(_TOMBSTONE, [(project, row.key, until_ms) for row in removed])
        conn.execute(_DROP_TOMBSTONES, (now_ms,))
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return receipt(removed)


def _expire(
    conn: sqlite3.Connection,
    project: str,
    select: tuple[str, list[object]],
    redact: bool,
    now_ms: int,
) -> tuple[int, tuple[int, bytes] | None]:
    """One batch of retention in one transaction: the selected events removed, or their comment
    and meta cleared (the search rows follow by trigger); the aggregates stay."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = [(ts_ms, bytes(key)) for ts_ms, key in conn.execute(*select)]
        keys = [key for _, key in found]
        if redact:
            conn.executemany(_REDACT, [(project, key) for key in keys])
        elif keys:
            _remove(conn, project, keys)
        conn.execute(_DROP_TOMBSTONES, (now_ms,))
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return len(keys), found[-1] if found else None


def _settle(conn: sqlite3.Connection, touched: dict[VoteGroup, list[Click]]) -> None:
    """Read the touched vote groups, apply the vote rules, write the flags and counts they change.

    Runs inside the group's transaction, after the insert: the rules see every stored vote of
    each group, the new ones included. Temp tables roll back with the transaction too.
    """
    keys = list(touched)
    conn.executemany(_TOUCH, [(*g, n, bool(touched[g])) for n, g in enumerate(keys)])
    votes: list[list[StoredVote]] = [[] for _ in keys]
    for n, key, id_, ts_ms, metric, score, received_ms, held, counted, comment in conn.execute(
        _TOUCHED_VOTES
    ):
        votes[n].append(
            StoredVote(key, id_, ts_ms, metric, score, received_ms, held, counted == 1, comment)
        )
    conn.execute("DELETE FROM temp.touched")
    changes = settle_votes(dict(zip(keys, votes, strict=True)), touched)
    conn.executemany(_SET_FLAGS, [(held, c, p, key) for p, key, held, c in changes.events])
    conn.executemany(_ATTACH_COMMENT, changes.comments)
    _add_counts(conn, [(*key, delta) for key, delta in changes.deltas.items() if delta])


def _add_counts(conn: sqlite3.Connection, changes: list[AggregateChange]) -> None:
    """Add ``changes`` (aggregate key and delta, each key once) to the hourly aggregates and,
    summed by day, to the daily ones; remove the rows they empty."""
    _write_rows(conn, _ADD_COUNTS, changes)
    days = day_changes(changes)
    _write_rows(conn, _ADD_DAILY, days)
    if any(row[5] < 0 for row in changes):  # only votes moved elsewhere take counts away
        conn.executemany(_REMOVE_EMPTIED, [row[:5] for row in changes if row[5] < 0])
        conn.executemany(_REMOVE_EMPTIED_DAYS, [row[:5] for row in days if row[5] < 0])


def _tombstoned(conn: sqlite3.Connection, group: list[Pending]) -> set[tuple[str, bytes]]:
    """The ``(project, key)`` pairs of ``group`` whose erasure left a tombstone that has not
    passed (looked up only when the file has tombstones)."""
    found: set[tuple[str, bytes]] = set()
    wanted: dict[str, set[bytes]] = collections.defaultdict(set)
    for item in group:
        wanted[item.project].update(record.key for record in item.records)
    now_ms = _now_ms()
    for project, keys in wanted.items():
        ordered = sorted(keys)  # neighbouring keys share index pages
        for start in range(0, len(ordered), _KEYS_PER_LOOKUP):
            part = ordered[start : start + _KEYS_PER_LOOKUP]
            marks = ",".join("?" * len(part))
            rows = conn.execute(
                "SELECT key FROM main.tombstones WHERE project = ? AND key IN ("
                + marks
                + ") AND until_ms > ?",
                [project, *part, now_ms],
            )
            found.update((project, key) for (key,) in rows)
    return found


def _count_rows(fresh: dict[str, list[Record]]) -> Iterator[AggregateChange]:
    """``aggregates`` upsert rows for the core's histogram deltas of each project's records."""
    for project, records in fresh.items():
        for (_channel, form, metric, hour), counts in voxloop_core.aggregate(records).items():
            low = METRIC_RANGES[metric][0]
            for offset, count in enumerate(counts):
                if count:
                    yield (project, metric, form, hour, low + offset, count)


async def _connect(path: pathlib.Path) -> aiosqlite.Connection:
    """Open ``path`` with aiosqlite; on failure, wait until its thread has really stopped.

    After a failed connect aiosqlite asks its thread to stop without waiting for it, and the
    thread later answers into the event loop, which may have closed by then. Its thread is
    private (``_thread``), like ``_execute`` in :func:`_in_thread`.
    """
    connecting = aiosqlite.connect(path, isolation_level=None)
    try:
        return await connecting
    except BaseException:
        await asyncio.to_thread(connecting._thread.join, 5.0)
        raise


async def _in_thread(db: aiosqlite.Connection, work: Callable[..., _T], *args: object) -> _T:
    """Run ``work(connection, *args)`` on ``db``'s own thread, where its sqlite3 connection lives.

    aiosqlite queues work for that thread with ``_execute``; it has no public name for running a
    function of ours there, so this is the one place that relies on it.
    """
    run: Callable[[Callable[[], _T]], Awaitable[_T]] = db._execute  # see the docstring
    return await run(lambda: work(db._conn, *args))


async def _scalar(db: aiosqlite.Connection, sql: str) -> object:
    rows = list(await db.execute_fetchall(sql))
    return rows[0][0] if rows else None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
