"""The scale-out channel store: one partition per channel of shared PostgreSQL tables.

Several gateway replicas share one PostgreSQL database and one ``asyncpg.Pool`` each. A
:class:`PostgresStore` serves one channel: its events and aggregates are the channel's
partitions of the ``events`` and ``aggregates`` tables (``PARTITION BY LIST (channel)``),
created by :meth:`PostgresStore.open` when missing. The tables themselves are made by
:func:`migrate` (``voxloop-gateway migrate``), never by a store.

Group commit, as in the SQLite store: every ``write()`` joins a queue, and one writer task a store
commits everything pending in ONE transaction, then answers each caller. Inside it:

1. ``pg_advisory_xact_lock`` on every vote group (project, form, ``vote_key``) the group's rows
   name, in sorted order: two replicas' transactions on one group serialise, and the second
   re-ranks seeing the first's committed rows (READ COMMITTED: each statement sees what was
   committed before it started).
2. One ``INSERT ... SELECT FROM unnest(...) ON CONFLICT (channel, project, key) DO NOTHING
   RETURNING`` of the rows sorted by key: the unique key is the final word on duplicates, whichever
   replica got there first.
3. The touched vote groups are read in one ``SELECT`` (every stored vote of each, the new ones
   included), the vote rules of ``ingest.votes`` settle them (email clicks judged
   ``late`` or ``quarantined``, a repeated click's comment carried, the winner ranked), and the
   flags that change are written in one ``UPDATE``, sorted by key.
4. The histogram deltas (the core's ``aggregate`` of the new events, plus -1/+1 for every vote
   whose ``counted`` flipped) are added in one additive upsert, sorted by primary key, and rows
   that reach 0 are removed. Replicas never coordinate: counts only add.

Rows are locked in one global order (vote groups, then event keys, then aggregate keys), so
replicas don't deadlock; if PostgreSQL still reports a deadlock or a serialization failure, the
transaction is tried again a few times. A write returns only after its COMMIT; a commit that
failed, or whose answer was lost with the connection, raises StoreUnavailable, and since retries
are deduplicated by the unique key, sending the write again is always safe.

Reads (``reads``) walk the index on ``(channel, project, ts_ms, key)`` of the channel's partition;
comments are searched with ``ILIKE`` through a ``pg_trgm`` GIN index on ``body ->> 'comment'``.

The log (:meth:`~.base.Store.log`): each event's ``seq`` is taken from its channel's sequence
by the partition's default as the row is inserted, so the group commit sends nothing more; the
log is read through the index on ``(channel, seq)``. Numbers are taken before commit, by
concurrent transactions, and those of duplicates (``ON CONFLICT DO NOTHING`` takes one first)
and of failed commits are never used: a reader finds gaps, some filled a moment later. A
comment attached later is logged in ``revisions`` by the same statement that sets it.

Erasure (:meth:`~.base.Store.erase`) locks as a write does: the vote groups of the events it
found (advisory locks, sorted), then the events by key, the re-ranked votes by key, the
aggregate rows in key order, so a replica erasing while others write stays exact and never
waits in a cycle. It erases the events it found as it started; one stored by another replica
meanwhile stays (erasing again removes it). A tombstone is read by the insert of every group
commit (an anti-join, by primary key, only when the channel has tombstones); a retry of an
erased key whose insert began before the erasure committed can still be stored, counted as
any write is, in that instant only. Retention (:meth:`~.base.Store.expire`) runs on one replica
(the caller's lease); each batch is one transaction.

Durability is PostgreSQL's: with ``synchronous_commit`` on (its default) a committed write
survives a crash of the database server.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import os
import random
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import asyncpg  # type: ignore[import-untyped]

import voxloop_core
from voxloop_core import CHANNEL_PATTERN, METRIC_RANGES, Record

from ..ingest.votes import Click, StoredVote
from ._erase import Removed, receipt, uncounted, vote_groups
from ._errors import StoreUnavailable
from ._queries import PostgresDialect
from ._rollups import ALL_FORMS, Step, day_start, select_of
from .base import (
    DEFAULT_MAX_PENDING,
    AggregateKey,
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
from .reads import Selection

_T = TypeVar("_T")

#: The version of this component's tables that this gateway reads and writes.
SCHEMA_VERSION: Final = 6
#: This component's row in ``voxloop_schema``.
COMPONENT: Final = "store"
#: The advisory lock every voxloop migration holds while it runs, whatever its component.
MIGRATION_LOCK: Final = 0x766F786C6F6F7001  # "voxloop" 01
#: The advisory lock held while a channel's partitions are created.
PARTITION_LOCK: Final = 0x766F786C6F6F7002
#: How many times a transaction is tried when PostgreSQL reports a deadlock or a
#: serialization failure.
MAX_ATTEMPTS: Final = 5
#: Group commits one store keeps in flight at once, each on its own connection: while one waits
#: for PostgreSQL (and its fsync), the next group is sent. They are as safe together as two
#: replicas' commits: the unique key, the sorted locks and the advisory locks see to it.
WRITERS: Final = 3
#: Seconds to wait for a pooled connection before a write or read fails.
ACQUIRE_TIMEOUT_S: Final = 10.0
#: Seconds ``writable()`` may take before it answers False.
WRITABLE_TIMEOUT_S: Final = 5.0
_CHANNEL_NAME: Final = re.compile(CHANNEL_PATTERN)
#: PostgreSQL's longest identifier, in bytes.
_MAX_IDENTIFIER: Final = 63


def _hour(ts_column: str) -> str:
    """SQL for the start of the hour holding ``ts_column``, floored like Python's ``%``."""
    hour = voxloop_core.HOUR_MS
    return f"({ts_column} - (({ts_column} % {hour}) + {hour}) % {hour})"


_SCHEMA_TABLE: Final = """
CREATE TABLE IF NOT EXISTS voxloop_schema (
    component text PRIMARY KEY,
    version int NOT NULL
)"""

# The log (version 5): revisions, one table for every channel (a row per comment attached later),
# each numbered from its channel's sequence (see ``_Statements.attach_revised``).
_LOG_TABLES: Final = """
ALTER TABLE events ADD COLUMN seq bigint;
CREATE TABLE revisions (
    channel text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    project text COLLATE "C" NOT NULL,
    key bytea NOT NULL,
    PRIMARY KEY (channel, seq)
);
"""
#: Every partition of ``events``, and its bound (``FOR VALUES IN ('web')``).
_EVENT_PARTITIONS: Final = """
SELECT c.oid::regclass::text, pg_get_expr(c.relpartbound, c.oid)
FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
WHERE i.inhparent = 'events'::regclass"""
_BOUND: Final = re.compile(r"FOR VALUES IN \('((?:[^']|'')*)'\)")
# The events stored so far are numbered in the order they were received.
_NUMBER_EVENTS: Final = """
CREATE SEQUENCE IF NOT EXISTS {sequence} AS bigint;
UPDATE {events} AS e SET seq = o.seq
FROM (SELECT project, key, row_number() OVER (ORDER BY received_ms, ts_ms, project, key) AS seq
      FROM {events}) AS o
WHERE e.project = o.project AND e.key = o.key;
SELECT setval({regclass}, (SELECT coalesce(max(seq), 0) + 1 FROM {events}), false);
ALTER TABLE {events} ALTER COLUMN seq SET DEFAULT nextval({regclass});
"""
# Named apart from the partitions (``events_<channel>``) and the sequences (``seq_...``).
_LOG_INDEX: Final = """
ALTER TABLE events ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX log_of_events ON events (channel, seq);
"""


async def _add_the_log(conn: asyncpg.Connection) -> None:
    """4 -> 5: the log. Each event gets a ``seq`` from its channel's sequence, taken as the row
    is inserted (the partition's default), and the events stored so far are numbered; then the
    log's index, and the revisions.

    A sequence of its own for each channel rather than one for all: a channel's log then skips
    only the numbers of its own duplicates and failed commits, which its readers must wait for a
    moment, not every number another channel took. Numbering the stored events rewrites every
    row, like version 2's step: on a large store, run it at a quiet time.
    """
    await conn.execute(_LOG_TABLES)
    for events, bound in await conn.fetch(_EVENT_PARTITIONS):
        found = _BOUND.fullmatch(bound)
        if found is None:
            raise StoreUnavailable(
                f"the partition {events} of events is not of one channel ({bound}); the stores"
                " make each channel's partition FOR VALUES IN ('channel')"
            )
        sequence = _quote_identifier(sequence_name("events", found[1].replace("''", "'")))
        regclass = _quote_literal(sequence)
        await conn.execute(
            _NUMBER_EVENTS.format(sequence=sequence, events=events, regclass=regclass)
        )
    await conn.execute(_LOG_INDEX)


# Text compared or ordered by the rules is COLLATE "C": ids order like Python's str (the vote
# tie-break must agree with every other replica and with SQLite), and byte comparison is faster.
_STEPS: Final[dict[int, str | Callable[[asyncpg.Connection], Awaitable[None]]]] = {
    # 0 -> 1: the partitioned tables; each store adds its channel's partitions when opened.
    0: """
CREATE TABLE events (
    channel text COLLATE "C" NOT NULL,
    project text COLLATE "C" NOT NULL,
    key bytea NOT NULL,
    id text COLLATE "C",
    ts_ms bigint NOT NULL,
    form text COLLATE "C" NOT NULL,
    metric text COLLATE "C" NOT NULL,
    score smallint NOT NULL,
    vote_key text COLLATE "C",
    counted boolean NOT NULL,
    held text COLLATE "C" CHECK (held IN ('quarantined', 'late')),
    received_ms bigint NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (channel, project, key)
) PARTITION BY LIST (channel);
CREATE INDEX events_by_vote ON events (channel, project, form, vote_key)
    WHERE vote_key IS NOT NULL;
CREATE INDEX events_held ON events (channel, project, metric, held) WHERE held IS NOT NULL;
-- No CHECK (count >= 0): PostgreSQL tests it on the row an upsert proposes, before the
-- conflict, so adding a -1 to a row would fail.
CREATE TABLE aggregates (
    channel text COLLATE "C" NOT NULL,
    project text COLLATE "C" NOT NULL,
    metric text COLLATE "C" NOT NULL,
    form text COLLATE "C" NOT NULL,
    hour bigint NOT NULL,
    score smallint NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (channel, project, metric, form, hour, score)
) PARTITION BY LIST (channel);
CREATE TABLE heartbeat (
    channel text COLLATE "C" NOT NULL,
    replica text COLLATE "C" NOT NULL,
    at_ms bigint NOT NULL,
    PRIMARY KEY (channel, replica)
);
""",
    # 1 -> 2: ``respondent`` (the keyed hash) moves out of ``body`` into an indexed column of its
    # own, so that a person's events are found without reading every body. Columns and indexes
    # of the partitioned table reach every channel's partition, and the partitions made later.
    1: """
ALTER TABLE events ADD COLUMN respondent text COLLATE "C";
UPDATE events SET respondent = body ->> 'respondent', body = body - 'respondent'
WHERE body ? 'respondent';
CREATE INDEX events_by_respondent ON events (channel, project, respondent)
    WHERE respondent IS NOT NULL;
""",
    # 2 -> 3: the read side: responses in time order, and a trigram index of the comments for
    # ILIKE. pg_trgm may already be installed in another schema: its operator class is named
    # with the schema it is in.
    2: """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX events_by_time ON events (channel, project, ts_ms, key);
CREATE INDEX events_held_by_time ON events (channel, project, ts_ms, key) WHERE held IS NOT NULL;
DO $$
BEGIN
    EXECUTE format(
        'CREATE INDEX events_comment_trigrams ON events'
        ' USING gin ((body ->> %L) %s.gin_trgm_ops)',
        'comment',
        (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm')
    );
END
$$;
""",
    # 3 -> 4: the daily aggregates, each UTC day's hours of ``aggregates`` added up, per form and
    # over the forms (form '*'), kept in the same transactions, so that stats over months read
    # a row per day, not per hour and form. One table for every channel (it is small), filled
    # here from the hourly rows. And the hourly rows by time, for the hours of a day a window
    # cuts, which would otherwise be looked for among every form's hours.
    3: f"""
CREATE INDEX aggregates_by_hour ON aggregates (channel, project, metric, hour);
CREATE TABLE aggregates_daily (
    channel text COLLATE "C" NOT NULL,
    project text COLLATE "C" NOT NULL,
    metric text COLLATE "C" NOT NULL,
    form text COLLATE "C" NOT NULL,
    day bigint NOT NULL,
    score smallint NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (channel, project, metric, form, day, score)
);
INSERT INTO aggregates_daily (channel, project, metric, form, day, score, count)
    SELECT channel, project, metric, form, {day_start("hour")}, score, sum(count) FROM aggregates
    GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO aggregates_daily (channel, project, metric, form, day, score, count)
    SELECT channel, project, metric, '{ALL_FORMS}', {day_start("hour")}, score, sum(count)
    FROM aggregates GROUP BY 1, 2, 3, 5, 6;
""",
    # 4 -> 5: the log: each event's ``seq`` and the revisions (``_add_the_log``).
    4: _add_the_log,
    # 5 -> 6: erasure: a tombstone per erased key refuses a write of that key until its time
    # (one table for every channel: few rows, mostly none), and the revisions by event, to be
    # removed with it. Sequences never give a number twice, so the log needs nothing more.
    5: """
CREATE TABLE tombstones (
    channel text COLLATE "C" NOT NULL,
    project text COLLATE "C" NOT NULL,
    key bytea NOT NULL,
    until_ms bigint NOT NULL,
    PRIMARY KEY (channel, project, key)
);
CREATE INDEX revisions_by_key ON revisions (channel, project, key);
""",
}

_VERSION: Final = "SELECT version FROM voxloop_schema WHERE component = $1"
_SET_VERSION: Final = """
INSERT INTO voxloop_schema (component, version) VALUES ($1, $2)
ON CONFLICT (component) DO UPDATE SET version = excluded.version"""
_PARTITION: Final = (
    "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {parent}{columns} FOR VALUES IN ({value})"
)
_SEQUENCE: Final = "CREATE SEQUENCE IF NOT EXISTS {name} AS bigint"
# The array is sorted: unnest yields it in order, and the aggregate takes the locks in that order.
_LOCK_GROUPS: Final = "SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k"
# A row whose key has a live tombstone (an erased event's late retry) is not inserted: a
# duplicate. Whether the channel has any tombstone is asked once a statement (an InitPlan), and
# only then each row's key is looked up by the primary key; OFFSET 0 keeps the planner from
# turning that lookup into a hash of every tombstone of the channel (after a whole project's
# erasure, millions), which each commit would build again.
_INSERT_EVENTS: Final = """
INSERT INTO {events} AS e (channel, project, key, id, ts_ms, form, metric, score, vote_key,
                           counted, received_ms, body, respondent)
SELECT $1, r.project, r.key, r.id, r.ts_ms, r.form, r.metric, r.score, r.vote_key, r.counted,
       r.received_ms, r.body::jsonb, r.respondent
FROM unnest($2::text[], $3::bytea[], $4::text[], $5::bigint[], $6::text[], $7::text[],
            $8::smallint[], $9::text[], $10::boolean[], $11::bigint[], $12::text[], $13::text[])
    AS r(project, key, id, ts_ms, form, metric, score, vote_key, counted, received_ms, body,
         respondent)
WHERE NOT EXISTS (SELECT FROM tombstones WHERE channel = $1) OR NOT EXISTS (
    SELECT FROM tombstones AS t
    WHERE t.channel = $1 AND t.project = r.project AND t.key = r.key AND t.until_ms > $14
    OFFSET 0
)
ON CONFLICT (channel, project, key) DO NOTHING
RETURNING e.project, e.key"""
# Every stored vote of the groups a commit touches, named by the group's place in the arrays
# (from 1), with comments only where the commit judges clicks.
_TOUCHED_VOTES: Final = """
SELECT g.place, e.key, e.id, e.ts_ms, e.metric, e.score, e.received_ms, e.held, e.counted,
    CASE WHEN g.clicks THEN e.body ->> 'comment' END
FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[])
    WITH ORDINALITY AS g(project, form, vote_key, clicks, place)
JOIN {events} AS e ON e.channel = {channel} AND e.project = g.project AND e.form = g.form
    AND e.vote_key = g.vote_key"""
_SET_FLAGS: Final = """
UPDATE {events} AS e SET held = f.held, counted = f.counted
FROM unnest($1::text[], $2::bytea[], $3::text[], $4::boolean[]) AS f(project, key, held, counted)
WHERE e.channel = {channel} AND e.project = f.project AND e.key = f.key"""


def _adding(table: str, time: str) -> str:
    """The additive upsert of aggregate rows (``time`` is their hour or day) into ``table``,
    answering each row's count after it, so that the rows it empties can be removed."""
    return f"""
INSERT INTO {table} AS a (channel, project, metric, form, {time}, score, count)
SELECT $1, d.project, d.metric, d.form, d.{time}, d.score, d.count
FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::smallint[], $7::bigint[])
    AS d(project, metric, form, {time}, score, count)
ON CONFLICT (channel, project, metric, form, {time}, score)
    DO UPDATE SET count = a.count + excluded.count
RETURNING a.project, a.metric, a.form, a.{time}, a.score, a.count"""


def _removing(table: str, time: str) -> str:
    """The removal of the rows of ``table`` an upsert left at 0. It runs only on rows the upsert
    just changed, so it never waits for another transaction's lock."""
    return f"""
DELETE FROM {table} AS a
USING unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::smallint[])
    AS d(project, metric, form, {time}, score)
WHERE a.channel = {{channel}} AND a.project = d.project AND a.metric = d.metric
    AND a.form = d.form AND a.{time} = d.{time} AND a.score = d.score AND a.count = 0"""


_ADD_COUNTS: Final = _adding("{aggregates}", "hour")
_REMOVE_EMPTIED: Final = _removing("{aggregates}", "hour")
_ADD_DAILY: Final = _adding("aggregates_daily", "day")
_REMOVE_EMPTIED_DAYS: Final = _removing("aggregates_daily", "day")
_HEARTBEAT: Final = """
INSERT INTO heartbeat (channel, replica, at_ms) VALUES ($1, $2, $3)
ON CONFLICT (channel, replica) DO UPDATE SET at_ms = excluded.at_ms"""
_SCAN: Final = f"""
SELECT form, hour, score, count(*) FROM (
    SELECT form, {_hour("ts_ms")} AS hour, score FROM {{events}}
    WHERE channel = {{channel}} AND project = $1 AND metric = $2 AND counted
) AS counted_events WHERE true{{filters}}
GROUP BY form, hour, score"""
_QUARANTINED: Final = f"""
SELECT form, hour, score, count(*) FROM (
    SELECT form, {_hour("ts_ms")} AS hour, score FROM {{events}}
    WHERE channel = {{channel}} AND project = $1 AND metric = $2 AND held = 'quarantined'
) AS held_events WHERE true{{filters}}
GROUP BY form, hour, score"""
_ATTACH_COMMENT: Final = """
UPDATE {events} SET body = jsonb_set(body, '{{comment}}', to_jsonb($1::text))
WHERE channel = {channel} AND project = $2 AND key = $3 AND vote_key = $4"""
# The same, for a comment attached after the fact, in one statement (one round trip, one
# transaction): the vote is locked and its comment compared, changed only if it differs, and then
# logged as a revision numbered from the channel's sequence. Answers 1 if the vote is there.
_ATTACH_REVISED: Final = """
WITH found AS (
    SELECT e.project, e.key, (e.body ->> 'comment') IS DISTINCT FROM $1 AS differs
    FROM {events} AS e
    WHERE e.channel = {channel} AND e.project = $2 AND e.key = $3 AND e.vote_key = $4
    FOR UPDATE
), changed AS (
    UPDATE {events} AS e SET body = jsonb_set(e.body, '{{comment}}', to_jsonb($1::text))
    FROM found
    WHERE found.differs AND e.channel = {channel} AND e.project = found.project
        AND e.key = found.key
    RETURNING e.project, e.key
), logged AS (
    INSERT INTO revisions (channel, seq, project, key)
    SELECT {channel}, nextval({revisions_seq}), project, key FROM changed
)
SELECT count(*) FROM found"""
# Erasure and retention (``Store.erase``, ``Store.expire``): rows found by the read side's
# selection are removed or redacted by key, in key order, the order writes lock them in.
_DELETE_KEYS: Final = """
DELETE FROM {events} AS e USING unnest($2::bytea[]) AS k(key)
WHERE e.channel = {channel} AND e.project = $1 AND e.key = k.key
RETURNING e.key, e.vote_key, e.form, e.metric, e.score, e.ts_ms, e.counted"""
_DELETE_REVISIONS: Final = """
DELETE FROM revisions WHERE channel = {channel} AND project = $1 AND key = ANY($2::bytea[])"""
_REDACT: Final = """
UPDATE {events} AS e SET body = e.body - 'comment' - 'meta' FROM unnest($2::bytea[]) AS k(key)
WHERE e.channel = {channel} AND e.project = $1 AND e.key = k.key"""
_TOMBSTONE: Final = """
INSERT INTO tombstones AS t (channel, project, key, until_ms)
SELECT {channel}, $1, k.key, $3 FROM unnest($2::bytea[]) AS k(key)
ON CONFLICT (channel, project, key)
    DO UPDATE SET until_ms = greatest(t.until_ms, excluded.until_ms)"""
_DROP_TOMBSTONES: Final = "DELETE FROM tombstones WHERE channel = {channel} AND until_ms <= $1"
_RETRYABLE: Final = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
#: A ``\u0000`` escape in JSON text: preceded by an even number of backslashes.
_NUL_ESCAPE: Final = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


@dataclass(frozen=True, slots=True)
class _Statements:
    """The SQL of one channel's store, naming its partitions."""

    insert_events: str
    touched_votes: str
    set_flags: str
    add_counts: str
    remove_emptied: str
    add_daily: str
    remove_emptied_days: str
    #: Each aggregate table's name, by the source a read names it.
    aggregates: dict[str, str]
    #: The conditions of a histogram read (``$1`` project, ``$2`` metric).
    histogram_where: str
    scan: str
    quarantined: str
    attach_comment: str
    attach_revised: str
    delete_keys: str
    delete_revisions: str
    redact: str
    tombstone: str
    drop_tombstones: str

    @classmethod
    def of(cls, events: str, aggregates: str, channel: str, revisions_seq: str) -> _Statements:
        # The channel's literal, in statements that look rows up by key: the partition's
        # indexes start with the channel, so without it they would scan the partition.
        def sql(template: str) -> str:
            return template.format(
                events=events,
                aggregates=aggregates,
                channel=channel,
                revisions_seq=revisions_seq,
                filters="{filters}",
            )

        return cls(
            sql(_INSERT_EVENTS),
            sql(_TOUCHED_VOTES),
            sql(_SET_FLAGS),
            sql(_ADD_COUNTS),
            sql(_REMOVE_EMPTIED),
            sql(_ADD_DAILY),
            sql(_REMOVE_EMPTIED_DAYS),
            {"hourly": aggregates, "daily": "aggregates_daily"},
            f"channel = {channel} AND project = $1 AND metric = $2",
            sql(_SCAN),
            sql(_QUARANTINED),
            sql(_ATTACH_COMMENT),
            sql(_ATTACH_REVISED),
            sql(_DELETE_KEYS),
            sql(_DELETE_REVISIONS),
            sql(_REDACT),
            sql(_TOMBSTONE),
            sql(_DROP_TOMBSTONES),
        )


class PostgresStore(Store):
    """One channel's events and hourly aggregates, in its partitions of shared PostgreSQL tables.

    Use ``await open()`` first and ``await close()`` last (the gateway's lifespan does both).
    Any number of tasks may call ``write()`` concurrently; one writer task commits for them all,
    and any number of replicas may write the same channel at once.

    Attributes:
        channel: the channel whose events this store keeps.
        max_pending: most records that may wait for commit before ``write()`` raises StoreBusy.
        replica: the name this gateway's heartbeat row goes by.
    """

    channel: str
    max_pending: int
    replica: str

    def __init__(
        self,
        pool: asyncpg.Pool,
        channel: str,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        replica: str | None = None,
    ) -> None:
        """Describe the store; nothing is read or created until :meth:`open`.

        Args:
            pool: the gateway's pool, shared by all its channel stores; the store never
                closes it.
            channel: the channel it serves; ``write()`` refuses records of another channel.
            max_pending: most records that may wait for commit; past it writes get StoreBusy.
            replica: this gateway's name in the heartbeat table; ``hostname:pid`` if None.

        Raises:
            ValueError: ``channel`` is not a channel name, or ``max_pending`` is below 1.
        """
        if _CHANNEL_NAME.fullmatch(channel) is None:
            raise ValueError(
                f"channel must be 1-64 characters of a-z 0-9 _ -, starting with a letter or"
                f" digit; got {channel!r}"
            )
        super().__init__(channel, max_pending)
        self.replica = replica if replica is not None else f"{socket.gethostname()}:{os.getpid()}"
        self._pool = pool
        self._events = _quote_identifier(partition_name("events", channel))
        self._aggregates = _quote_identifier(partition_name("aggregates", channel))
        self._sequences = [
            _quote_identifier(sequence_name(log, channel)) for log in ("events", "revisions")
        ]
        self._sql = _Statements.of(
            self._events,
            self._aggregates,
            _quote_literal(channel),
            _quote_literal(self._sequences[1]),
        )
        self._dialect = PostgresDialect(self._events, _quote_literal(channel))

    def __repr__(self) -> str:
        return f"PostgresStore({self.channel!r}, replica={self.replica!r})"

    async def open(self) -> None:
        """Check the schema version, create the channel's partitions (and the sequences that number
        its log) if missing, start the writer.

        Opening an open store does nothing.

        Raises:
            StoreUnavailable: PostgreSQL can't be reached, or its schema is not the version this
                gateway needs (never migrated, older, or newer); the message says what to do.
        """
        if self._accepting:
            return
        where = f"the store of channel {self.channel!r}"
        try:
            async with self._connection() as conn:
                version = await schema_version(conn)
                if version < SCHEMA_VERSION:
                    raise StoreUnavailable(
                        f"can't open {where}: its PostgreSQL schema is at version {version},"
                        f" this gateway needs {SCHEMA_VERSION}: run `voxloop-gateway migrate`"
                    )
                if version > SCHEMA_VERSION:
                    raise StoreUnavailable(
                        f"can't open {where}: its PostgreSQL schema is at version {version},"
                        f" this gateway knows up to {SCHEMA_VERSION}: upgrade the gateway"
                    )
                await self._create_partitions(conn)
        except _DATABASE_ERRORS as exc:
            raise StoreUnavailable(f"can't open {where} in PostgreSQL: {_describe(exc)}") from exc
        self._start_writer(WRITERS)

    async def _create_partitions(self, conn: asyncpg.Connection) -> None:
        value = _quote_literal(self.channel)
        async with conn.transaction():
            # Two replicas opening a new channel at once would both try to create it.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK)
            for sequence in self._sequences:
                await conn.execute(_SEQUENCE.format(name=sequence))
            # Each event's seq is taken from the channel's sequence as the row is inserted.
            numbered = f" (seq DEFAULT nextval({_quote_literal(self._sequences[0])}))"
            for parent, name, columns in (
                ("events", self._events, numbered),
                ("aggregates", self._aggregates, ""),
            ):
                await conn.execute(
                    _PARTITION.format(name=name, parent=parent, columns=columns, value=value)
                )

    def _body(self, record: Record) -> str:
        return _body_json(record)

    async def _transact(self, group: list[Pending]) -> list[int]:
        """Commit the group in one transaction, tried again after a deadlock; what each stored."""
        plan = _Plan.of(self.channel, group)
        return await self._retrying("commit", self._store_group, group, plan)

    async def _retrying(self, what: str, work: Callable[..., Awaitable[_T]], *args: object) -> _T:
        """``work(conn, *args)`` in one transaction, tried again after a deadlock or a
        serialization failure (rows are locked in one order, but PostgreSQL may still see one)."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with self._connection() as conn, conn.transaction():
                    return await work(conn, *args)
            except _RETRYABLE as exc:
                if attempt == MAX_ATTEMPTS:
                    raise
                logging.getLogger(__name__).info(
                    "%s to channel %r tried again (attempt %d): %s",
                    what,
                    self.channel,
                    attempt,
                    _describe(exc),
                )
                await asyncio.sleep(random.uniform(0.0, 0.01 * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def erase(self, project: str, selection: Selection, *, tombstone_until_ms: int) -> Erased:
        select = self._dialect.selected(project, selection, "e.key, e.form, e.vote_key")
        return await self._changing(
            "erasure", self._erase, project, select, tombstone_until_ms, _now_ms()
        )

    async def _erase(
        self,
        conn: asyncpg.Connection,
        project: str,
        select: tuple[str, list[object]],
        until_ms: int,
        now_ms: int,
    ) -> Erased:
        """The erasure's transaction, locking as a write does: the vote groups' advisory locks,
        then the events by key, the votes ranked again, the aggregate rows in key order.

        The events are those the selection finds as it starts: one stored meanwhile is not
        erased (an erasure run again removes it), and its vote group, locked or not, stays
        exact either way.
        """
        found = sorted(
            (bytes(key), form, vote_key)
            for key, form, vote_key in await conn.fetch(select[0], *select[1])
        )
        if not found:
            await conn.execute(self._sql.drop_tombstones, now_ms)
            return receipt([])
        locks = sorted(
            {vote_lock(self.channel, project, form, vote) for _, form, vote in found if vote}
        )
        if locks:
            await conn.execute(_LOCK_GROUPS, locks)
        keys = [key for key, _, _ in found]
        removed = [
            Removed.of(row) for row in await conn.fetch(self._sql.delete_keys, project, keys)
        ]
        removed.sort()
        gone = [row.key for row in removed]
        await conn.execute(self._sql.delete_revisions, project, gone)
        deltas = uncounted(project, removed)
        groups = vote_groups(project, removed)
        if groups:
            deltas.update(await self._settle(conn, {group: [] for group in groups}))
        await self._add_counts(conn, deltas)
        await conn.execute(self._sql.tombstone, project, gone, until_ms)
        await conn.execute(self._sql.drop_tombstones, now_ms)
        return receipt(removed)

    async def _expire_batch(
        self, project: str, select: tuple[str, list[object]], redact: bool
    ) -> tuple[int, tuple[int, bytes] | None]:
        return await self._changing("retention", self._expire, project, select, redact, _now_ms())

    async def _expire(
        self,
        conn: asyncpg.Connection,
        project: str,
        select: tuple[str, list[object]],
        redact: bool,
        now_ms: int,
    ) -> tuple[int, tuple[int, bytes] | None]:
        """One batch of retention: the events found removed, or their comment and meta cleared;
        the aggregates stay."""
        found = [(ts_ms, bytes(key)) for ts_ms, key in await conn.fetch(select[0], *select[1])]
        keys = sorted(key for _, key in found)
        changed = 0
        if keys and redact:
            changed = _affected(await conn.execute(self._sql.redact, project, keys))
        elif keys:
            changed = len(await conn.fetch(self._sql.delete_keys, project, keys))
            await conn.execute(self._sql.delete_revisions, project, keys)
        await conn.execute(self._sql.drop_tombstones, now_ms)
        return changed, found[-1] if found else None

    async def _changing(self, what: str, work: Callable[..., Awaitable[_T]], *args: object) -> _T:
        """:meth:`_retrying` for an erasure or a retention batch: StoreUnavailable on failure."""
        self._check_open()
        try:
            return await self._retrying(what, work, *args)
        except _DATABASE_ERRORS as exc:
            raise StoreUnavailable(
                f"the store of channel {self.channel!r} could not commit the {what}:"
                f" {_describe(exc)}"
            ) from exc

    async def _store_group(
        self, conn: asyncpg.Connection, group: list[Pending], plan: _Plan
    ) -> list[int]:
        """The group's transaction: lock vote groups, insert, settle the votes, add the counts."""
        sql = self._sql
        if plan.locks:
            await conn.execute(_LOCK_GROUPS, plan.locks)
        inserted: set[tuple[str, bytes]] = set()
        if plan.rows:
            columns = _columns(plan.rows, 12)
            found = await conn.fetch(sql.insert_events, self.channel, *columns, _now_ms())
            inserted = {(project, bytes(key)) for project, key in found}
        stored, fresh, touched = sort_inserted(group, inserted)
        deltas = _count_deltas(fresh)
        if touched:
            deltas.update(await self._settle(conn, touched))
        await self._add_counts(conn, deltas)
        return stored

    async def _settle(
        self, conn: asyncpg.Connection, touched: dict[VoteGroup, list[Click]]
    ) -> collections.Counter[AggregateKey]:
        """Read the touched vote groups, apply the vote rules, write the flags they change.

        Runs after the insert, under the groups' advisory locks, so it reads every stored vote
        of each group (READ COMMITTED: a statement sees what was committed before it started,
        and no other transaction changes a locked group's votes meanwhile), with one read and
        one update for the whole group commit.

        Returns:
            What the aggregate rows gain or lose as votes start or stop counting.
        """
        keys = sorted(touched)
        votes: list[list[StoredVote]] = [[] for _ in range(len(keys) + 1)]
        params = _columns([(*g, bool(touched[g])) for g in keys], 4)
        for place, *vote in await conn.fetch(self._sql.touched_votes, *params):
            votes[place].append(StoredVote(*vote))
        changes = settle_votes(dict(zip(keys, votes[1:], strict=True)), touched)
        if changes.events:
            await conn.execute(self._sql.set_flags, *_columns(changes.events, 4))
        if changes.comments:
            await conn.executemany(self._sql.attach_comment, changes.comments)
        return changes.deltas

    async def _add_counts(self, conn: asyncpg.Connection, deltas: dict[AggregateKey, int]) -> None:
        """Add ``deltas`` to the hourly aggregate rows and, summed by day, to the daily ones, in
        primary-key order (every commit locks the rows in one order); remove rows emptied."""
        changes = sorted((*key, delta) for key, delta in deltas.items() if delta)
        for add, remove, rows in (
            (self._sql.add_counts, self._sql.remove_emptied, changes),
            (self._sql.add_daily, self._sql.remove_emptied_days, day_changes(changes)),
        ):
            if not rows:
                continue
            added = await conn.fetch(add, self.channel, *_columns(rows, 6))
            emptied = [tuple(row)[:5] for row in added if row[5] == 0]
            if emptied:
                await conn.execute(remove, *_columns(emptied, 5))

    async def writable(self) -> bool:
        """Whether a write can be committed right now (for /readyz).

        It commits this replica's heartbeat row, so a database that is down, unreachable,
        read-only (a standby) or out of disk answers False; once PostgreSQL is back the next
        heartbeat answers True again, without restarting the gateway. Never raises.
        """
        if not self._accepting:
            return False
        try:
            async with asyncio.timeout(WRITABLE_TIMEOUT_S), self._connection() as conn:
                now_ms = time.time_ns() // 1_000_000
                await conn.execute(_HEARTBEAT, self.channel, self.replica, now_ms)
        except Exception:
            return False
        return True

    async def attach_comment(self, project: str, key: bytes, vote_key: str, comment: str) -> bool:
        self._check_open()
        try:
            async with self._connection() as conn:
                found = await conn.fetchval(
                    self._sql.attach_revised, comment.replace("\x00", ""), project, key, vote_key
                )
        except _DATABASE_ERRORS as exc:
            raise StoreUnavailable(
                f"the store of channel {self.channel!r} could not commit: {_describe(exc)}"
            ) from exc
        return bool(found == 1)

    async def _histogram_rows(
        self,
        part: Part,
        project: str,
        metric: str,
        forms: Sequence[str] | None,
        step: Step,
        per_form: bool,
    ) -> Iterable[Sequence[Any]]:
        select, column = select_of(
            part.source,
            tables=self._sql.aggregates,
            scans={"scan": self._sql.scan, "quarantined": self._sql.quarantined},
            where=self._sql.histogram_where,
            step=step,
            per_form=per_form,
            every_form=forms is None,
        )
        filters: list[str] = []
        params: list[object] = [project, metric]
        if forms is not None:
            params.append(list(forms))
            filters.append(f" AND form = ANY(${len(params)}::text[])")
        if part.start_ms is not None:
            params.append(part.start_ms)
            filters.append(f" AND {column} >= ${len(params)}")
        if part.end_ms is not None:
            params.append(part.end_ms)
            filters.append(f" AND {column} < ${len(params)}")
        return await self._fetch(select.format(filters="".join(filters)), params)

    async def _select(self, sql: tuple[str, list[object]]) -> Iterable[Sequence[Any]]:
        return await self._fetch(*sql)

    async def _fetch(self, sql: str, params: Sequence[object]) -> list[Sequence[Any]]:
        """The rows of ``sql``, on a connection of the pool; StoreUnavailable if unreadable."""
        self._check_open()
        try:
            async with self._connection() as conn:
                rows: list[Sequence[Any]] = await conn.fetch(sql, *params)
        except _DATABASE_ERRORS as exc:
            raise StoreUnavailable(
                f"the store of channel {self.channel!r} could not be read: {_describe(exc)}"
            ) from exc
        return rows

    def _check_open(self) -> None:
        if not self._accepting:
            state = "closed" if self._was_opened else "not open"
            raise StoreUnavailable(f"the store of channel {self.channel!r} is {state}")

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the pool, terminated rather than reused if it may be broken.

        A connection that failed for any reason but an error PostgreSQL reported on a healthy
        session (a connection lost mid-statement, asyncpg's protocol in a bad state, a
        timeout, a cancellation) is terminated, so the pool opens a new one the next time
        instead of handing out a broken one.
        """
        conn = await self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S)
        try:
            yield conn
        except BaseException as exc:
            reported = isinstance(exc, asyncpg.PostgresError | StoreUnavailable)
            # InterfaceError: the pool already took the connection back as its socket closed.
            with contextlib.suppress(asyncpg.InterfaceError):
                if not reported or isinstance(exc, _SESSION_LOST) or conn.is_in_transaction():
                    conn.terminate()
            raise
        finally:
            await self._pool.release(conn)

    async def close(self) -> None:
        """Stop taking writes, let every queued write commit, stop the writer.

        Writes already queued get their answer as usual; writes after this raise
        StoreUnavailable. The pool stays open: it belongs to the gateway. Closing a closed (or
        never opened) store does nothing.
        """
        await self._stop_writer()


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a group's transaction sends, computed once and reused when it is tried again.

    Attributes:
        rows: the ``events`` rows, the first of each ``(project, key)`` in the group only,
            sorted by ``(project, key)`` so that replicas inserting the same keys lock them in
            the same order.
        locks: the sorted advisory lock keys of every vote group the rows name.
    """

    rows: list[Row]
    locks: list[int]

    @classmethod
    def of(cls, channel: str, group: list[Pending]) -> _Plan:
        first: dict[tuple[str, bytes], Row] = {}
        locks: set[int] = set()
        for item in group:
            for record, row in zip(item.records, item.rows, strict=True):
                if first.setdefault((item.project, record.key), row) is row and record.vote_key:
                    locks.add(vote_lock(channel, item.project, record.form, record.vote_key))
        return cls([first[k] for k in sorted(first)], sorted(locks))


def vote_lock(channel: str, project: str, form: str, vote_key: str) -> int:
    """The advisory lock key (a signed 64-bit int) of one vote group of one channel."""
    name = "\n".join((channel, project, form, vote_key)).encode()
    return int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True)


def sequence_name(log: str, channel: str) -> str:
    """The name of ``channel``'s sequence that numbers its ``log`` (events or revisions).

    It starts with ``seq_``, which no partition's name does (each starts with its table's), so
    no channel's partition can take it: ``events_seq_web`` is the partition of channel
    ``seq_web``, ``seq_events_web`` the sequence of ``web``.
    """
    return partition_name(f"seq_{log}", channel)


def partition_name(table: str, channel: str) -> str:
    """The name of ``channel``'s partition of ``table``, within PostgreSQL's 63 bytes.

    ``events_web`` for short names; a long channel name is cut and given a hash of the whole,
    so that two long names sharing a beginning still get different partitions.
    """
    name = f"{table}_{channel}"
    if len(name) <= _MAX_IDENTIFIER:
        return name
    digest = hashlib.blake2b(channel.encode(), digest_size=6).hexdigest()
    keep = _MAX_IDENTIFIER - len(table) - len(digest) - 2
    return f"{table}_{channel[:keep]}_{digest}"


async def schema_version(db: asyncpg.Connection | asyncpg.Pool) -> int:
    """The version of the store's tables in ``db``'s database (its search path); 0 if none.

    Raises:
        asyncpg.PostgresError, OSError: the database could not be read.
    """
    async with _using(db) as conn:
        if await conn.fetchval("SELECT to_regclass('voxloop_schema')") is None:
            return 0
        version = await conn.fetchval(_VERSION, COMPONENT)
    return int(version) if version is not None else 0


async def migrate(db: asyncpg.Connection | asyncpg.Pool) -> tuple[int, int]:
    """Bring the store's tables to :data:`SCHEMA_VERSION`, one step a transaction.

    Every step runs under the advisory lock :data:`MIGRATION_LOCK`, so two ``migrate`` runs
    (or a run of another component's migration that takes the same lock) never race: the second
    finds the work done. Running it on an up-to-date database does nothing.

    Returns:
        (the version found, the version left), equal when there was nothing to do.

    Raises:
        StoreUnavailable: the database's schema is newer than this gateway knows.
        asyncpg.PostgresError, OSError: a step failed; it was rolled back, and the steps
            before it stay committed.
    """
    found: int | None = None
    async with _using(db) as conn:
        while True:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                await conn.execute(_SCHEMA_TABLE)
                version = int(await conn.fetchval(_VERSION, COMPONENT) or 0)
                if found is None:
                    found = version
                if version > SCHEMA_VERSION:
                    raise StoreUnavailable(
                        f"the PostgreSQL schema of the stores is at version {version}, this"
                        f" gateway knows up to {SCHEMA_VERSION}: upgrade the gateway"
                    )
                if version == SCHEMA_VERSION:
                    return found, version
                step = _STEPS[version]
                if isinstance(step, str):
                    await conn.execute(step)
                else:
                    await step(conn)
                await conn.execute(_SET_VERSION, COMPONENT, version + 1)
                logging.getLogger(__name__).info(
                    "migrated the stores' schema from version %d to %d", version, version + 1
                )


@contextlib.asynccontextmanager
async def _using(db: asyncpg.Connection | asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """``db`` itself if it is a connection, else one of the pool's for the time being."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db


def _body_json(record: Record) -> str:
    """The ``body`` column as JSON text, without NUL characters, which jsonb can't hold.

    The core leaves tags and meta as sent; a NUL in one would otherwise fail the whole group
    commit, and again at every retry.
    """
    text = encode_body(Body.of(record)).decode()
    return _NUL_ESCAPE.sub(r"\1", text) if "\\u0000" in text else text


def _count_deltas(fresh: dict[str, list[Record]]) -> collections.Counter[AggregateKey]:
    """The core's histogram deltas of each project's new records, per aggregate row."""
    deltas: collections.Counter[AggregateKey] = collections.Counter()
    for project, records in fresh.items():
        for (_channel, form, metric, hour), counts in voxloop_core.aggregate(records).items():
            low = METRIC_RANGES[metric][0]
            for offset, count in enumerate(counts):
                if count:
                    deltas[(project, metric, form, hour, low + offset)] += count
    return deltas


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """``rows`` as ``width`` column lists, for ``unnest``; empty lists when there are none."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: What a failed database call raises: PostgreSQL's errors, asyncpg's own (a closed or broken
#: connection), the network's, and timeouts.
_DATABASE_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


#: Errors PostgreSQL reports on a session that stays usable are the only ones that leave a
#: connection fit for reuse; these ones among them mean the session is gone.
_SESSION_LOST: Final = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _affected(status: str) -> int:
    """The number of rows of a command's status (``UPDATE 12``)."""
    return int(status.rsplit(" ", 1)[-1])


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
