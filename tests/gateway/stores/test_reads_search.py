"""Text search in comments on both backends: any script, any case, exact, and hostile texts.

A comment matches when it contains the text, case aside (``stores._search``). Every answer here
is compared with that rule computed in Python on the comments written, so a false hit or a miss
fails; the trigram indexes must be what answers (checked by the plans), and stores of the
previous schema version find their old comments once migrated.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxloop_gateway.stores import SqliteStore, Store, StoreUnavailable, VoteRule, postgres, sqlite
from voxloop_gateway.stores._queries import TEXT_FIRST, PostgresDialect, Query, SqliteDialect
from voxloop_gateway.stores._search import like_pattern
from voxloop_gateway.stores.postgres import PostgresStore, migrate
from voxloop_gateway.stores.reads import ResponseFilter, Selection

from .conftest import (
    NOW_MS,
    PROJECT,
    Backend,
    PostgresBackend,
    Session,
    SqliteSession,
    event,
    make_records,
    postgres_schema,
    query_file,
)
from .test_reads import FAST, PROPERTY_SETTINGS, read_all

COMMENTS = {
    "en": "The checkout was quick, but the Payment page froze twice.",
    "en2": "100% satisfied with the new discount_code feature",
    "en3": 'Great app but the 500 discount didn\'t apply ("SAVE50" said invalid)',
    "en4": "the the the",
    "ar": "الخدمة ممتازة لكن التوصيل تأخر يومين",
    "fa": "پشتیبانی عالی بود ولی ارسال کالا دیر شد",
    "id": "Pengiriman cepat, tapi aplikasinya sering macet saat pembayaran.",
    "zh": "客服回复很快，但是支付页面一直加载失败。",
    "ja": "配送はとても早かったですが、アプリが時々落ちます。",
    "fr": "Très bel été, LIVRAISON rapide",
    "ru": "Быстрая ДОСТАВКА, спасибо",
    "path": "C:\\temp\\a_b 50% off",
}

#: (text, why); each must find exactly the comments that hold it, whatever the case.
SEARCHES = [
    ("PAYMENT page", "English, mixed case"),
    ("kout wa", "across two words"),
    ("the", "in several comments, three times in one"),
    ("التوصيل", "Arabic"),
    ("لكن التوصيل", "Arabic, across two words"),
    ("ارسال کالا", "Persian, across two words"),
    ("پشتیبانی", "Persian letters Arabic lacks"),
    ("CEPAT, TAPI", "Indonesian, mixed case, across words"),
    ("支付页面", "Chinese"),
    ("支付", "Chinese, two characters"),
    ("客", "one character"),
    ("配送", "Japanese, two characters"),
    ("アプリが", "Japanese katakana"),
    ("ÉTÉ", "a cased letter beyond ASCII"),
    ("доставка", "Cyrillic, the other case"),
    ("50%", "a LIKE wildcard, literally"),
    ("0%", "a LIKE wildcard, short"),
    ("discount_code", "a LIKE wildcard, literally"),
    ("t_e", "a LIKE wildcard that would match 'the'"),
    ("\\temp\\a_b", "backslashes"),
    ('"SAVE50"', "double quotes"),
    ("didn't", "a single quote"),
    ("nowhere to be found", "no comment"),
]

#: Texts that mean something to FTS5's query syntax, or to SQL: each is only text here.
HOSTILE = [
    '"',
    '""',
    '" OR "',
    "checkout OR payment",
    "the AND page",
    "NEAR(the page)",
    "check*",
    "^The",
    "comment:checkout",
    "{comment}: the",
    "-checkout",
    "(the",
    "'; DROP TABLE events; --",
    "%",
    "_",
    "\\",
    "*",
]


def found_by_rule(text: str) -> list[str]:
    return sorted(name for name, comment in COMMENTS.items() if text.lower() in comment.lower())


#: Events a SQLite store of these tests indexes together: :func:`write_comments` leaves the
#: comments of its first write to the project in the trigram index and those of its second in
#: the tail, so that every search here reads both.
INDEX_EVERY = 7


@pytest.fixture
async def store(session: Session) -> AsyncIterator[Store]:
    """An open store of the web channel, a SQLite one indexing :data:`INDEX_EVERY` at a time."""
    opened = session.make(
        **({"index_every": INDEX_EVERY} if isinstance(session, SqliteSession) else {})
    )
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def write_comments(store: Store) -> dict[bytes, str]:
    records = make_records(
        *(
            event(id=name, comment=comment, ts=NOW_MS - n)
            for n, (name, comment) in enumerate(COMMENTS.items())
        ),
        event(id="no-comment", ts=NOW_MS - 100),
    )
    await store.write("globex", records)  # another project's comments are never found
    await store.write(PROJECT, records[:INDEX_EVERY])
    await store.write(PROJECT, records[INDEX_EVERY:])
    return {record.key: record.id or "" for record in records}


async def test_sqlite_searches_read_the_trigram_index_and_the_tail(tmp_path: pathlib.Path) -> None:
    # What every search of this module reads on SQLite: the project's first comments from the
    # index, its newest (fewer than INDEX_EVERY events) from the events themselves.
    store = SqliteStore(tmp_path / "web.sqlite3", "web", index_every=INDEX_EVERY)
    await store.open()
    try:
        await write_comments(store)
        assert await search(store, "the") == found_by_rule("the")
    finally:
        await store.close()
    ((upto, last),) = query_file(
        store.path, "SELECT upto, (SELECT max(seq) FROM events) FROM comment_index"
    )
    assert (upto, last) == (
        2 * len(COMMENTS) + 2 - (len(COMMENTS) + 1 - INDEX_EVERY),
        2 * len(COMMENTS) + 2,
    )
    index_holds_the_comments_up_to_its_end(store.path)
    tail = query_file(
        store.path, f"SELECT id FROM events WHERE seq > {upto} AND body ->> '$.comment' NOT NULL"
    )
    assert sorted(name for (name,) in tail) == sorted(list(COMMENTS)[INDEX_EVERY:])


async def search(store: Store, text: str, **fields: Any) -> list[str]:
    rows = await read_all(store, ResponseFilter(project=PROJECT, text=text, **fields), limit=2)
    return sorted(row.id or "" for row in rows)


@pytest.mark.parametrize(("text", "why"), SEARCHES, ids=[why for _, why in SEARCHES])
async def test_a_search_finds_exactly_the_comments_holding_the_text(
    store: Store, text: str, why: str
) -> None:
    await write_comments(store)
    assert await search(store, text) == found_by_rule(text)


def test_the_searches_find_something_and_drop_something() -> None:
    # Only then can the test above tell a false hit or a miss.
    for text, why in SEARCHES:
        if text in ("t_e", "nowhere to be found"):
            assert found_by_rule(text) == [], why
        else:
            assert 0 < len(found_by_rule(text)) < len(COMMENTS), why
    assert found_by_rule("0%") == ["en2", "path"]


@pytest.mark.parametrize("text", HOSTILE)
async def test_query_syntax_in_a_text_is_only_text(store: Store, text: str) -> None:
    await write_comments(store)
    assert await search(store, text) == found_by_rule(text)
    assert await search(store, text, forms=("checkout",)) == found_by_rule(text)


async def test_a_text_with_a_nul_finds_nothing(store: Store) -> None:
    await write_comments(store)
    assert await search(store, "the\x00") == []


async def test_search_with_other_filters_and_pages(store: Store) -> None:
    await write_comments(store)
    f = ResponseFilter(project=PROJECT, text="THE", end_ms=NOW_MS)
    rows = await read_all(store, f, limit=1)
    assert sorted(row.id or "" for row in rows) == [n for n in found_by_rule("the") if n != "en"]
    assert [row.ts_ms for row in rows] == sorted((row.ts_ms for row in rows), reverse=True)
    assert await search(store, "the", has_comment=False) == []


async def test_many_matches_walk_the_time_order_and_stay_exact(store: Store) -> None:
    # More comments hold the text than a SQLite store looks up first: pages walk the time
    # order instead, and the rows are still exactly those holding it.
    events = [
        event(id=f"m{n}", ts=NOW_MS - n, comment="Fast DELIVERY" if n % 2 else "slow")
        for n in range(2 * TEXT_FIRST + 2)
    ]
    records = [
        r
        for start in range(0, len(events), 1000)
        for r in make_records(*events[start : start + 1000])
    ]
    await store.write(PROJECT, records)
    newest_first = sorted(records, key=lambda r: r.ts_ms, reverse=True)
    for text in ("delivery", "sl"):
        want = [r.id for r in newest_first if r.comment and text in r.comment.lower()]
        assert len(want) > TEXT_FIRST
        f = ResponseFilter(project=PROJECT, text=text)
        page = await store.responses(f, after=None, limit=50)
        assert [r.id for r in page] == want[:50]
        deep = await store.responses(f, after=page[-1].position, limit=4_000)
        assert [r.id for r in deep] == want[50:4_050]


ALPHABET = "aAbBéÉ配送بپ %_\\\"'*"


@PROPERTY_SETTINGS
@given(
    comments=st.lists(st.text(ALPHABET, min_size=1, max_size=12), min_size=1, max_size=12),
    picks=st.lists(
        st.tuples(st.integers(0, 11), st.integers(0, 12), st.integers(1, 5)), max_size=6
    ),
    others=st.lists(st.text(ALPHABET, min_size=1, max_size=5), max_size=4),
    swap=st.booleans(),
    every=st.integers(1, 13),
)
def test_search_is_exact_on_any_comment_and_text(
    backend: Backend,
    comments: list[str],
    picks: list[tuple[int, int, int]],
    others: list[str],
    swap: bool,
    every: int,
) -> None:
    # Texts cut from the comments (their case swapped or not), and texts made at random; on
    # SQLite, the comments of the first ``every`` events are indexed, the others may be in the
    # tail.
    texts = [comments[i % len(comments)][start : start + size] for i, start, size in picks] + others
    texts = [t.swapcase() if swap else t for t in texts if t]

    async def scenario() -> None:
        async with backend.session(fresh=True) as session:
            options = {"index_every": every} if backend.name == "sqlite" else {}
            store = session.make(**FAST[backend.name], **options)
            await store.open()
            try:
                records = make_records(
                    *(event(id=f"c{n}", comment=c, ts=NOW_MS - n) for n, c in enumerate(comments))
                )
                await store.write(PROJECT, records[:every])
                await store.write(PROJECT, records[every:])
                for text in texts:
                    want = sorted(
                        r.id or ""
                        for r in records
                        if r.comment and text.lower() in r.comment.lower()
                    )
                    assert await search(store, text) == want, text
            finally:
                await store.close()

    asyncio.run(scenario())


# --- what only one backend has ---------------------------------------------------------------


async def test_sqlite_letters_fts5_does_not_fold_are_still_found(tmp_path: pathlib.Path) -> None:
    # Cherokee has case in Unicode, but not in SQLite's FTS5 tables: the trigram index can't
    # find "ꮳꮃꭹ" in "ᏣᎳᎩ", so such texts are checked on every comment.
    store = SqliteStore(tmp_path / "web.sqlite3", "web")
    await store.open()
    try:
        records = make_records(
            event(id="upper", comment="ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ"), event(id="lower", comment="ꮳꮃꭹ"), event(id="x")
        )
        await store.write(PROJECT, records)
        assert await search(store, "ꮳꮃꭹ") == ["lower", "upper"]
        assert await search(store, "ᏣᎳᎩ") == ["lower", "upper"]
    finally:
        await store.close()


def sqlite_plan(path: pathlib.Path, sql: str, params: list[object]) -> str:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.create_function("voxloop_contains", 2, lambda c, t: t in (c or ""))
        return "\n".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))


async def test_sqlite_pages_use_the_time_index_and_the_trigram_index(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "web.sqlite3"
    store = SqliteStore(path, "web")
    await store.open()
    await store.close()
    dialect = SqliteDialect("events")
    page = dialect.page(ResponseFilter(project=PROJECT, forms=("a",)), None, False, 50, False)
    plan = sqlite_plan(path, *page)
    assert "USING INDEX events_by_time (project=?)" in plan and "TEMP B-TREE" not in plan, plan
    searched = dialect.page(
        ResponseFilter(project=PROJECT, text="checkout"), None, False, 50, False
    )
    plan = sqlite_plan(path, *searched)
    assert "events_by_time" in plan and "comment_text VIRTUAL TABLE INDEX 0:M" in plan, plan
    held = dialect.page(ResponseFilter(project=PROJECT, held="late"), None, False, 50, False)
    assert "USING INDEX events_held_by_time" in sqlite_plan(path, *held)
    plan = sqlite_plan(path, *dialect.candidates("checkout"))
    assert "comment_text VIRTUAL TABLE INDEX 0:M" in plan, plan


# The whole schema as version 3 made it (no read side), to prove the upgrade.
V3_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY, project TEXT NOT NULL, key BLOB NOT NULL, id TEXT,
    ts_ms INTEGER NOT NULL, form TEXT NOT NULL, metric TEXT NOT NULL, score INTEGER NOT NULL,
    vote_key TEXT, counted INTEGER NOT NULL, received_ms INTEGER NOT NULL, body TEXT NOT NULL,
    held TEXT, respondent TEXT, UNIQUE (project, key)
);
CREATE INDEX events_by_vote ON events (project, form, vote_key) WHERE vote_key IS NOT NULL;
CREATE INDEX events_held ON events (project, metric, held) WHERE held IS NOT NULL;
CREATE INDEX events_by_respondent ON events (project, respondent) WHERE respondent IS NOT NULL;
CREATE TABLE aggregates (
    project TEXT NOT NULL, metric TEXT NOT NULL, form TEXT NOT NULL, hour INTEGER NOT NULL,
    score INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (project, metric, form, hour, score)
) WITHOUT ROWID;
CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at_ms INTEGER NOT NULL);
PRAGMA user_version = 3;
"""


def old_rows() -> list[tuple[object, ...]]:
    """Events with comments as a version 3 store (SQLite) or 2 (PostgreSQL) held them."""
    records = make_records(
        *(
            event(id=name, comment=comment, ts=NOW_MS - n)
            for n, (name, comment) in enumerate(COMMENTS.items())
        ),
        event(id="no-comment"),
    )
    return [
        (PROJECT, r.key, r.id, r.ts_ms, r.form, r.metric, r.score, 1, NOW_MS)
        + ((f'{{"comment":{sqlite_json(r.comment)}}}' if r.comment else "{}"), r.respondent)
        for r in records
    ]


def sqlite_json(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)


async def test_sqlite_a_version_3_file_finds_its_old_comments_once_migrated(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "web.sqlite3"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.executescript(V3_SCHEMA)
        db.executemany(
            "INSERT INTO events (project, key, id, ts_ms, form, metric, score, counted,"
            " received_ms, body, respondent) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            old_rows(),
        )
    assert sqlite.migrate_file(path) == (3, sqlite.SCHEMA_VERSION)
    assert query_file(path, "SELECT count(*) FROM comment_text") == [(len(COMMENTS),)]
    assert query_file(path, "PRAGMA integrity_check") == [("ok",)]
    store = SqliteStore(path, "web")
    await store.open()
    try:
        for text, _ in SEARCHES:
            assert await search(store, text) == found_by_rule(text), text
    finally:
        await store.close()


@pytest.fixture
def unmigrated() -> Iterator[PostgresBackend]:
    with postgres_schema(migrated=False) as made:
        yield made


async def test_postgres_a_version_2_schema_finds_its_old_comments_once_migrated(
    unmigrated: PostgresBackend,
) -> None:
    admin = await unmigrated.connect()
    try:
        await admin.execute(postgres._SCHEMA_TABLE)
        for step in (0, 1):
            await admin.execute(postgres._STEPS[step])
        await admin.execute("INSERT INTO voxloop_schema VALUES ('store', 2)")
        await admin.execute("CREATE TABLE events_web PARTITION OF events FOR VALUES IN ('web')")
        await admin.executemany(
            "INSERT INTO events (channel, project, key, id, ts_ms, form, metric, score, counted,"
            " received_ms, body, respondent)"
            " VALUES ('web', $1, $2, $3, $4, $5, $6, $7, $8::int::boolean, $9, $10::jsonb, $11)",
            old_rows(),
        )
        assert await migrate(admin) == (2, postgres.SCHEMA_VERSION)
        pool = await unmigrated.pool()
        store = PostgresStore(pool, "web")
        await store.open()
        try:
            for text, _ in SEARCHES:
                assert await search(store, text) == found_by_rule(text), text
        finally:
            await store.close()
            await pool.close()
        # The comments' condition, written as the store writes it, is what the trigram index
        # serves (how the planner weighs it against the time order depends on the data: the
        # figures at scale are the benchmark's); a page alone walks the time order.
        dialect = PostgresDialect('"events_web"', "'web'")
        searched = ResponseFilter(project=PROJECT, text="checkout")
        (condition,) = dialect.text("checkout", Query(dialect), None)
        async with admin.transaction():
            await admin.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(
                row[0]
                for row in await admin.fetch(
                    f"EXPLAIN SELECT count(*) FROM events_web AS e WHERE {condition}",
                    like_pattern("checkout"),
                )
            )
            assert "Bitmap Index Scan on events_web_expr_idx" in plan, plan
            sql, params = dialect.page(ResponseFilter(project=PROJECT), None, False, 50, False)
            plan = "\n".join(r[0] for r in await admin.fetch(f"EXPLAIN {sql}", *params))
            assert "events_web_channel_project_ts_ms_key_idx" in plan and "Sort" not in plan, plan
        rows = await admin.fetch(*_first(dialect.page(searched, None, False, 50, False)))
        assert sorted(row["id"] for row in rows) == found_by_rule("checkout")
    finally:
        await admin.close()


def _first(sql: tuple[str, list[object]]) -> tuple[object, ...]:
    """A SELECT and its parameters as asyncpg's ``fetch`` takes them."""
    return (sql[0], *sql[1])


@pytest.mark.parametrize("index_every", [1, sqlite.INDEX_EVERY], ids=["indexed", "tail"])
async def test_sqlite_the_trigram_index_is_kept_equal_to_the_comments(
    tmp_path: pathlib.Path, index_every: int
) -> None:
    # On insert, when a comment is attached later, and when an event is deleted (erasure and
    # retention will delete rows): the index holds exactly the stored comments up to its end
    # (all of them when each commit indexes its own, none yet when they are all in the tail).
    path = tmp_path / "web.sqlite3"
    store = SqliteStore(path, "web", index_every=index_every)
    await store.open()
    try:
        await write_comments(store)
        (click,) = make_records(event(id="click", vote_key="email:t", score=3))
        await store.write(PROJECT, [click], rule=VoteRule(edit_window_ms=60_000, burst_ms=1))
        assert click.vote_key is not None
        await store.attach_comment(PROJECT, click.key, click.vote_key, "Added afterwards")
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute("DELETE FROM events WHERE id = 'ar' AND project = ?", (PROJECT,))
        assert await search(store, "التوصيل") == []
        assert await search(store, "AFTERWARDS") == ["click"]
    finally:
        await store.close()
    index_holds_the_comments_up_to_its_end(path)
    query_file(path, "INSERT INTO comment_text (comment_text) VALUES ('integrity-check')")


async def test_sqlite_the_tail_is_indexed_with_its_comments_as_they_are_then(
    tmp_path: pathlib.Path,
) -> None:
    # A comment attached to an event of the tail, and an event of the tail deleted, touch no
    # index: when the tail is indexed, it takes the comments stored then.
    path = tmp_path / "web.sqlite3"
    store = SqliteStore(path, "web", index_every=4)
    await store.open()
    try:
        await store.write(PROJECT, make_records(event(id="gone", comment="Deleted soon")))
        (click,) = make_records(event(id="click", vote_key="email:t", score=3))
        await store.write(PROJECT, [click], rule=VoteRule(edit_window_ms=60_000, burst_ms=1))
        assert click.vote_key is not None
        await store.attach_comment(PROJECT, click.key, click.vote_key, "Added afterwards")
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute("DELETE FROM events WHERE id = 'gone'")
        assert query_file(path, "SELECT upto FROM comment_index") == [(0,)]
        assert await search(store, "AFTERWARDS") == ["click"]
        await store.write(PROJECT, make_records(event(id="third", comment="Third")))
        assert query_file(path, "SELECT upto FROM comment_index") == [(0,)]
        await store.write(PROJECT, make_records(event(id="fourth", comment="Fourth")))
        assert query_file(path, "SELECT upto FROM comment_index") == [(4,)]
        assert await search(store, "AFTERWARDS") == ["click"]
        assert await search(store, "deleted") == []
    finally:
        await store.close()
    assert sorted(query_file(path, "SELECT comment FROM comment_text")) == [
        ("Added afterwards",),
        ("Fourth",),
        ("Third",),
    ]
    index_holds_the_comments_up_to_its_end(path)


def index_holds_the_comments_up_to_its_end(path: pathlib.Path) -> None:
    """The trigram index holds exactly the comments of the events up to ``comment_index.upto``."""
    comments = (
        "SELECT seq, body ->> '$.comment' FROM events WHERE body ->> '$.comment' NOT NULL"
        " AND seq <= (SELECT upto FROM comment_index)"
    )
    indexed = "SELECT rowid, comment FROM comment_text"
    assert sorted(query_file(path, indexed)) == sorted(query_file(path, comments))


async def test_sqlite_comments_after_the_log_end_are_indexed_once(tmp_path: pathlib.Path) -> None:
    # The newest events are erased (their seqs are kept in log_end); the next commit's events
    # take the seqs after it, and its comments are indexed under those seqs.
    path = tmp_path / "web.sqlite3"
    store = SqliteStore(path, "web")
    await store.open()
    try:
        await write_comments(store)
        await store.erase("globex", Selection(), tombstone_until_ms=NOW_MS)
        await store.write(PROJECT, make_records(event(id="after", comment="Written after")))
        assert await search(store, "WRITTEN AFTER") == ["after"]
        assert await search(store, "التوصيل") == ["ar"]
    finally:
        await store.close()
    index_holds_the_comments_up_to_its_end(path)


async def test_sqlite_a_version_7_file_indexes_new_comments_once_migrated(
    tmp_path: pathlib.Path,
) -> None:
    # Version 7 indexed each new comment by a trigger; version 8 indexes them in the commit.
    # Both at once would index a comment twice.
    path = tmp_path / "web.sqlite3"
    store = SqliteStore(path, "web")
    await store.open()
    await write_comments(store)
    await store.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.executescript(
            "CREATE TRIGGER comment_text_insert AFTER INSERT ON events"
            " WHEN new.body ->> '$.comment' IS NOT NULL BEGIN"
            " INSERT INTO comment_text (rowid, comment) VALUES (new.seq, new.body ->> '$.comment');"
            " END; PRAGMA user_version = 7;"
        )
    with pytest.raises(StoreUnavailable, match="version 7, this gateway needs"):
        await SqliteStore(path, "web").open()

    assert sqlite.migrate_file(path) == (7, sqlite.SCHEMA_VERSION)

    assert query_file(path, "SELECT name FROM sqlite_master WHERE type = 'trigger'") == [
        ("comment_text_update",),
        ("comment_text_delete",),
    ]
    store = SqliteStore(path, "web")
    await store.open()
    try:
        await store.write(PROJECT, make_records(event(id="new", comment="A new comment")))
        assert await search(store, "new comment") == ["new"]
        assert await search(store, "PAYMENT page") == found_by_rule("PAYMENT page")
    finally:
        await store.close()
    index_holds_the_comments_up_to_its_end(path)


# The triggers of version 8, which kept the index for every event.
V8_TRIGGERS = """
CREATE TRIGGER comment_text_update AFTER UPDATE OF body ON events
    WHEN (old.body ->> '$.comment') IS NOT (new.body ->> '$.comment')
BEGIN
    DELETE FROM comment_text WHERE rowid = old.seq;
    INSERT INTO comment_text (rowid, comment)
        SELECT new.seq, new.body ->> '$.comment' WHERE new.body ->> '$.comment' IS NOT NULL;
END;
CREATE TRIGGER comment_text_delete AFTER DELETE ON events
    WHEN old.body ->> '$.comment' IS NOT NULL
BEGIN
    DELETE FROM comment_text WHERE rowid = old.seq;
END;
"""


async def test_sqlite_a_version_8_file_has_every_comment_indexed_once_migrated(
    tmp_path: pathlib.Path,
) -> None:
    # Version 8 indexed every comment in its commit: migrated, the index's end is the last
    # event, and the comments written after it are the tail.
    path = tmp_path / "web.sqlite3"
    store = SqliteStore(path, "web", index_every=1)
    await store.open()
    await write_comments(store)
    await store.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.executescript(
            "DROP TABLE comment_index; DROP TRIGGER comment_text_update;"
            f" DROP TRIGGER comment_text_delete; {V8_TRIGGERS} PRAGMA user_version = 8;"
        )
    with pytest.raises(StoreUnavailable, match="version 8, this gateway needs"):
        await SqliteStore(path, "web").open()

    assert sqlite.migrate_file(path) == (8, sqlite.SCHEMA_VERSION)

    last = 2 * (len(COMMENTS) + 1)
    assert query_file(path, "SELECT upto FROM comment_index") == [(last,)]
    index_holds_the_comments_up_to_its_end(path)
    store = SqliteStore(path, "web")
    await store.open()
    try:
        new = event(id="new", comment="A new payment", ts=NOW_MS - 500)
        await store.write(PROJECT, make_records(new))
        assert (
            await search(store, "PAYMENT")
            == ["en", "new"]
            == sorted([*found_by_rule("PAYMENT"), "new"])
        )
        # "en" (ts NOW_MS), indexed: erased, it leaves the index.
        erased = Selection(start_ms=NOW_MS, end_ms=NOW_MS + 1)
        await store.erase(PROJECT, erased, tombstone_until_ms=NOW_MS)
        assert await search(store, "PAYMENT") == ["new"]
    finally:
        await store.close()
    assert query_file(path, "SELECT upto FROM comment_index") == [(last,)]
    index_holds_the_comments_up_to_its_end(path)
