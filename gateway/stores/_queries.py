"""The read side's SQL: a :class:`ResponseFilter` and a page's position as one SELECT.

The conditions are written once (:class:`Dialect`); each database says how it reads a comment,
a tag or a meta value out of ``body`` and how it searches text (:class:`SqliteDialect`,
:class:`PostgresDialect`). Every query reads one channel's events in the order
``(ts_ms, key)``, walked by the index on ``(project, ts_ms, key)`` (PostgreSQL's partitions lead
it with the channel), so a page after a position is a range of that index, never an OFFSET.
"""

from __future__ import annotations

import abc
from typing import Final

import msgspec

from . import _search
from .reads import Position, ResponseFilter, Selection

#: What every query returns, in the order :func:`.base.stored_response` reads it.
_COLUMNS: Final = (
    "e.key, e.id, e.ts_ms, e.received_ms, e.form, e.metric, e.score, e.counted, e.held,"
    " e.body, e.respondent, e.vote_key"
)
#: The table of comments attached after the fact (``Store.revisions``), in both databases.
REVISIONS: Final = "revisions"


class Query:
    """One SELECT being written: its conditions and their parameters, bound in order."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.source = f"{dialect.events} AS e"
        self.where: list[str] = []
        self.params: list[object] = []

    def bind(self, value: object, cast: str = "") -> str:
        """The placeholder of ``value``, bound as the next parameter."""
        self.params.append(self.dialect.value(value))
        return self.dialect.placeholder(len(self.params), cast)

    def sql(self, tail: str = "", *, first: str = "") -> str:
        """The SELECT; ``first`` is a column read before the response's own (a log's seq)."""
        lead = f"{first}, " if first else ""
        return (
            f"SELECT {lead}{_COLUMNS}, {self.dialect.revised()} FROM {self.source}"
            f" WHERE {' AND '.join(self.where)}{tail}"
        )


class Dialect(abc.ABC):
    """How one database is asked for stored responses of one channel.

    Attributes:
        events: the table (or partition) holding the channel's events.
        channel: the channel's SQL literal where the table's indexes lead with the channel
            (PostgreSQL's partitions), else None.
    """

    def __init__(self, events: str, channel: str | None = None) -> None:
        self.events = events
        self.channel = channel

    def of_channel(self, alias: str) -> str:
        """The condition that rows of ``alias`` are the channel's."""
        return "true" if self.channel is None else f"{alias}.channel = {self.channel}"

    def value(self, value: object) -> object:
        """``value`` as the database takes it as a parameter."""
        return value

    def page(
        self,
        filter: ResponseFilter,
        after: Position | None,
        tie: bool,
        limit: int,
        oldest_first: bool,
        *,
        candidates: list[int] | None = None,
    ) -> tuple[str, list[object]]:
        """The SELECT of one page: rows passing ``filter`` after ``after``, in the order.

        Args:
            tie: whether the row at ``after``'s ``(ts_ms, key)`` comes after it
                (:func:`.reads.includes_tie`).
            candidates: the rows (``seq``) that may hold ``filter.text``, for a database
                that is told where to start rather than walk the time order (see
                ``SqliteDialect``).
        """
        query = self.filtered(filter, candidates=candidates)
        if after is not None:
            op = (">" if oldest_first else "<") + ("=" if tie else "")
            ts, key = query.bind(after.ts_ms, "bigint"), query.bind(after.key, "bytea")
            query.where.append(f"(e.ts_ms, e.key) {op} ({ts}, {key})")
        way = "" if oldest_first else " DESC"
        tail = f" ORDER BY e.ts_ms{way}, e.key{way} LIMIT {query.bind(limit, 'bigint')}"
        return query.sql(tail), query.params

    def one(self, project: str, key: bytes) -> tuple[str, list[object]]:
        """The SELECT of the response ``key`` of ``project``."""
        query = self._query(project)
        query.where.append(f"e.key = {query.bind(key, 'bytea')}")
        return query.sql(), query.params

    def votes(self, project: str, form: str, vote_key: str) -> tuple[str, list[object]]:
        """The SELECT of every vote of one vote group, oldest first."""
        query = self._query(project)
        query.where.append(f"e.form = {query.bind(form)}")
        query.where.append(f"e.vote_key = {query.bind(vote_key)}")
        return query.sql(" ORDER BY e.ts_ms, e.key"), query.params

    def log(self, after: int, limit: int) -> tuple[str, list[object]]:
        """The SELECT of the channel's events after the seq ``after``, by seq, each led by its
        seq; every project's, the held and replaced votes too."""
        query = Query(self)
        query.where += [self.of_channel("e"), f"e.seq > {query.bind(after, 'bigint')}"]
        tail = f" ORDER BY e.seq LIMIT {query.bind(limit, 'bigint')}"
        return query.sql(tail, first="e.seq, e.project"), query.params

    def revisions(self, after: int, limit: int) -> tuple[str, list[object]]:
        """The SELECT of the channel's revisions after the seq ``after``, by seq, each led by
        its seq and followed by the response as it is now (none for an event gone since)."""
        query = Query(self)
        query.source = (
            f"{REVISIONS} AS r JOIN {self.events} AS e"
            f" ON {self.of_channel('e')} AND e.project = r.project AND e.key = r.key"
        )
        query.where += [self.of_channel("r"), f"r.seq > {query.bind(after, 'bigint')}"]
        tail = f" ORDER BY r.seq LIMIT {query.bind(limit, 'bigint')}"
        return query.sql(tail, first="r.seq, e.project"), query.params

    def last_seq(self) -> str:
        """The SELECT of the highest event seq and revision seq of the channel, 0 if none."""
        return (
            f"SELECT (SELECT coalesce(max(e.seq), 0) FROM {self.events} AS e"
            f" WHERE {self.of_channel('e')}),"
            f" (SELECT coalesce(max(r.seq), 0) FROM {REVISIONS} AS r"
            f" WHERE {self.of_channel('r')})"
        )

    def selected(
        self, project: str, selection: Selection, columns: str
    ) -> tuple[str, list[object]]:
        """The SELECT of ``columns`` of the events of ``project`` that ``selection`` names
        (what an erasure removes), read through the respondent's or the time index."""
        query = self._query(project)
        if selection.respondent is not None:
            query.where.append(f"e.respondent = {query.bind(selection.respondent)}")
        if selection.form is not None:
            query.where.append(f"e.form = {query.bind(selection.form)}")
        if selection.start_ms is not None:
            query.where.append(f"e.ts_ms >= {query.bind(selection.start_ms, 'bigint')}")
        if selection.end_ms is not None:
            query.where.append(f"e.ts_ms < {query.bind(selection.end_ms, 'bigint')}")
        where = " AND ".join(query.where)
        return f"SELECT {columns} FROM {query.source} WHERE {where}", query.params

    def expiring(
        self,
        project: str,
        before_ms: int,
        redact: bool,
        columns: str,
        limit: int | None,
        after: tuple[int, bytes] | None = None,
    ) -> tuple[str, list[object]]:
        """The SELECT of ``columns`` of the events of ``project`` older than ``before_ms`` that
        retention changes, oldest first, after ``(ts_ms, key)`` ``after`` if given, at most
        ``limit`` (None: all): for ``redact``, only those still holding a comment or meta, so a
        redacted event is not found again."""
        query = self._query(project)
        query.where.append(f"e.ts_ms < {query.bind(before_ms, 'bigint')}")
        if after is not None:
            ts, key = query.bind(after[0], "bigint"), query.bind(after[1], "bytea")
            query.where.append(f"(e.ts_ms, e.key) > ({ts}, {key})")
        if redact:
            query.where.append(
                f"({self.field('comment')} IS NOT NULL OR {self.field('meta')} IS NOT NULL)"
            )
        tail = ""
        if limit is not None:
            tail = f" ORDER BY e.ts_ms, e.key LIMIT {query.bind(limit, 'bigint')}"
        where = " AND ".join(query.where)
        return f"SELECT {columns} FROM {query.source} WHERE {where}{tail}", query.params

    def filtered(self, filter: ResponseFilter, *, candidates: list[int] | None = None) -> Query:
        """A query of the rows passing ``filter``, every condition ANDed."""
        query = self._query(filter.project)
        where = query.where
        if filter.forms is not None:
            where.append(self.one_of("e.form", filter.forms, query))
        if filter.metrics is not None:
            where.append(self.one_of("e.metric", filter.metrics, query))
        if filter.score_min is not None:
            where.append(f"e.score >= {query.bind(filter.score_min, 'int')}")
        if filter.score_max is not None:
            where.append(f"e.score <= {query.bind(filter.score_max, 'int')}")
        if filter.has_comment is not None:
            where.append(f"{self.field('comment')} IS {'NOT ' if filter.has_comment else ''}NULL")
        if filter.text is not None and "\x00" in filter.text:
            where.append("false")  # the core removes control characters from every comment
        elif filter.text is not None:
            where.extend(self.text(_search.normal(filter.text), query, candidates))
        if filter.tags:
            where.append(self.has_tags(tuple(dict.fromkeys(filter.tags)), query))
        for name, value in filter.meta:
            where.append(self.meta_is(name, value, query))
        if filter.locale is not None:
            locale = self.field("locale")
            language = filter.locale.lower()
            exact, prefix = query.bind(language), query.bind(f"{language}-")
            size = query.bind(len(language) + 1, "int")
            where.append(
                f"(lower({locale}) = {exact} OR substr(lower({locale}), 1, {size}) = {prefix})"
            )
        if filter.start_ms is not None:
            where.append(f"e.ts_ms >= {query.bind(filter.start_ms, 'bigint')}")
        if filter.end_ms is not None:
            where.append(f"e.ts_ms < {query.bind(filter.end_ms, 'bigint')}")
        if filter.held == "any":
            where.append("e.held IS NOT NULL")
        elif filter.held == "none":
            where.append("e.held IS NULL")
        elif filter.held is not None:
            where.append(f"e.held = {query.bind(filter.held)}")
        if filter.respondent is not None:
            where.append(f"e.respondent = {query.bind(filter.respondent)}")
        return query

    def _query(self, project: str) -> Query:
        query = Query(self)
        query.where += [self.of_channel("e"), f"e.project = {query.bind(project)}"]
        return query

    def revised(self) -> str:
        """Whether the row's vote group holds other votes, through the vote index."""
        return (
            "e.vote_key IS NOT NULL AND EXISTS (SELECT 1 FROM"
            f" {self.events} AS o WHERE {self.of_channel('o')}"
            " AND o.project = e.project AND o.form = e.form AND o.vote_key = e.vote_key"
            " AND o.vote_key IS NOT NULL AND o.key <> e.key)"
        )

    @abc.abstractmethod
    def placeholder(self, number: int, cast: str) -> str:
        """The placeholder of the ``number``-th parameter (from 1), typed as ``cast``."""

    @abc.abstractmethod
    def field(self, name: str) -> str:
        """``body``'s field ``name`` as text, NULL when absent."""

    @abc.abstractmethod
    def one_of(self, column: str, values: tuple[str, ...], query: Query) -> str:
        """``column`` is one of ``values`` (none when empty)."""

    @abc.abstractmethod
    def has_tags(self, tags: tuple[str, ...], query: Query) -> str:
        """Every one of ``tags`` is one of the row's tags."""

    @abc.abstractmethod
    def meta_is(self, name: str, value: str, query: Query) -> str:
        """The text of the row's meta value ``name`` is ``value``."""

    @abc.abstractmethod
    def text(self, text: str, query: Query, candidates: list[int] | None) -> list[str]:
        """The row's comment contains ``text`` (NFC) by the rule of ``stores._search``."""


#: The last event whose comment SQLite's trigram index holds (see ``SqliteDialect``).
_INDEXED_UPTO: Final = "SELECT upto FROM comment_index"


class SqliteDialect(Dialect):
    """SQLite: ``body`` is JSON text; comments are found through the ``comment_text`` FTS5 table.

    The trigram index holds the comments of the events up to ``comment_index.upto``; those of the
    newer events (a few hundred at most: the store indexes them together) are rechecked one by
    one, as every row the index finds is.

    SQLite's planner knows nothing of how many comments a text finds, so the store looks them
    up first (:meth:`candidates`, at most :data:`TEXT_FIRST`): when there are fewer, the page
    starts from those rows and sorts them; otherwise it walks the time order, where the next
    matches come soon, testing each row. Texts too short for the trigram index are looked up by
    a scan of the comments alone, cheaper than a walk of the events that finds few.
    """

    def placeholder(self, number: int, cast: str) -> str:
        return f"?{number}"

    def field(self, name: str) -> str:
        return f"(e.body ->> '$.{name}')"

    def one_of(self, column: str, values: tuple[str, ...], query: Query) -> str:
        return f"{column} IN ({', '.join(query.bind(value) for value in values)})"

    def has_tags(self, tags: tuple[str, ...], query: Query) -> str:
        return " AND ".join(
            f"EXISTS (SELECT 1 FROM json_each(e.body, '$.tags') WHERE value = {query.bind(tag)})"
            for tag in tags
        )

    def meta_is(self, name: str, value: str, query: Query) -> str:
        # A number's text is taken from the stored JSON itself (``->``), as it was written:
        # SQLite's own text of a real keeps only 15 digits. A JSON path can quote any key but
        # one holding a double quote or a backslash: those are looked up by json_each.
        if '"' not in name and "\\" not in name:
            path = query.bind(f'$.meta."{name}"')
            return (
                f"CASE json_type(e.body, {path}) WHEN 'text' THEN e.body ->> {path}"
                f" ELSE e.body -> {path} END = {query.bind(value)}"
            )
        return (
            "EXISTS (SELECT 1 FROM json_each(e.body, '$.meta') AS m"
            f" WHERE m.key = {query.bind(name)}"
            " AND CASE m.type WHEN 'text' THEN m.value WHEN 'true' THEN 'true'"
            " WHEN 'false' THEN 'false' WHEN 'integer' THEN CAST(m.value AS TEXT)"
            f" ELSE e.body -> m.fullkey END = {query.bind(value)})"
        )

    def text(self, text: str, query: Query, candidates: list[int] | None) -> list[str]:
        folded = _search.fold(text)
        holds = self._holds(self.field("comment"), folded, query)  # the recheck: exact
        if candidates is not None:
            seqs = query.bind(_JSON(candidates).decode())
            query.source = f"json_each({seqs}) AS c CROSS JOIN events AS e ON e.seq = c.value"
            return [holds]
        if _search.trigram_searchable(folded):
            found = f"SELECT rowid FROM comment_text WHERE {self._match(folded, query)}"
            return [f"(e.seq IN ({found}) OR e.seq > ({_INDEXED_UPTO}))", holds]
        return [holds]

    def candidates(self, text: str) -> tuple[str, list[object]]:
        """The rows (``seq``) whose comment may hold ``text``, at most :data:`TEXT_FIRST`.

        Through the trigram index where it finds every such comment, else by a scan of the
        comments (exact then); the newer events' comments, which the index doesn't hold yet,
        are checked one by one.
        """
        query = Query(self)
        folded = _search.fold(_search.normal(text))
        if _search.trigram_searchable(folded):
            found = self._match(folded, query)
        else:
            found = self._holds("comment", folded, query)
        tail = self._holds(self.field("comment"), folded, query)
        return (
            f"SELECT rowid FROM comment_text WHERE {found}"
            f" UNION ALL SELECT e.seq FROM {self.events} AS e"
            f" WHERE e.seq > ({_INDEXED_UPTO}) AND {tail} LIMIT {TEXT_FIRST}",
            query.params,
        )

    def _match(self, folded: str, query: Query) -> str:
        return f"comment_text MATCH {query.bind(_search.fts5_string(folded))}"

    def _holds(self, comment: str, folded: str, query: Query) -> str:
        """``comment`` holds ``folded``: in SQL where SQLite's ``lower`` is exact, else by
        :func:`._search.contains`."""
        if _search.ascii_lower_exact(folded):
            return f"instr(lower({comment}), {query.bind(folded)}) > 0"
        return f"{_search.CONTAINS_FUNCTION}({comment}, {query.bind(folded)})"


class PostgresDialect(Dialect):
    """PostgreSQL: ``body`` is jsonb; comments are found by ``ILIKE`` through the ``pg_trgm``
    index, which rechecks every row it finds."""

    def placeholder(self, number: int, cast: str) -> str:
        return f"${number}::{cast}" if cast else f"${number}"

    def value(self, value: object) -> object:
        # Text in PostgreSQL can't hold NUL: the store removed them from what it wrote
        # (``postgres._body_json``), so a filter's value is compared without them too.
        if isinstance(value, str):
            return value.replace("\x00", "")
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value

    def field(self, name: str) -> str:
        return f"(e.body ->> '{name}')"

    def one_of(self, column: str, values: tuple[str, ...], query: Query) -> str:
        return f"{column} = ANY({query.bind(list(values), 'text[]')})"

    def has_tags(self, tags: tuple[str, ...], query: Query) -> str:
        # One containment for all of them: the planner guesses one condition's selectivity,
        # where a condition per tag would multiply its guesses into a plan for rare rows.
        wanted = _JSON([self.value(tag) for tag in tags]).decode()
        return f"e.body -> 'tags' @> {query.bind(wanted, 'jsonb')}"

    def meta_is(self, name: str, value: str, query: Query) -> str:
        # ``->>`` gives a string as written and any other value as JSON text. Wrapped so that
        # the planner guesses half the rows pass rather than 0.5%: with the latter it reads the
        # whole partition and sorts it instead of walking the time order to the first matches.
        name_, value_ = query.bind(name, "text"), query.bind(value, "text")
        return f"coalesce(e.body -> 'meta' ->> {name_} = {value_}, false)"

    def text(self, text: str, query: Query, candidates: list[int] | None) -> list[str]:
        pattern = query.bind(_search.like_pattern(text), "text")
        return [f"{self.field('comment')} ILIKE {pattern}"]


_JSON: Final = msgspec.json.Encoder().encode
#: Fewest comments holding a text for which a SQLite page walks the time order.
TEXT_FIRST: Final = 5_000
