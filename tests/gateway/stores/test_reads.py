"""The read side on both backends: filters, keyset pages, their order and stability, merge.

Every test runs once on a SQLite file and once on PostgreSQL (the ``backend`` fixture). What a
store returns is compared with a reference computed here the slow, obvious way from the records
written and the vote flags the store settled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxloop_core import Record
from voxloop_gateway.stores import Store, VoteRule
from voxloop_gateway.stores.reads import Position, ResponseFilter, StoredResponse, merge

from .conftest import NOW_MS, PROJECT, Backend, Session, event, make_records

MINUTE_MS = 60_000
OTHER = "globex"
SENTENCES = (
    "Fast checkout, thanks!",
    "The payment page kept timing out",
    "الخدمة كانت ممتازة والتوصيل سريع جدا",
    "پشتیبانی خیلی خوب بود",
    "Pengiriman cepat dan pelayanan ramah",
    "配送がとても早くて満足しています",
    "支付页面一直加载失败",
    None,
)
LOCALES = ("en", "en-GB", "ar", "ar-EG", "fa", "id", "ja", None)
TAGS = (["mobile", "vip"], ["vip"], ["desktop"], None, ["mobile"])
METAS = (
    {"plan": "pro", "seats": 3, "trial": True},
    {"plan": "free", "seats": 1, "trial": False, "ratio": 1.5},
    {"plan": "pro", "seats": 30},
    None,
)
FORMS_METRICS = (
    ("checkout", "nps", 0, 10),
    ("support", "csat", 1, 5),
    ("checkout", "thumbs", 0, 1),
    ("delivery", "ces", 1, 7),
)
PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,  # real files and a real server: an example's time says nothing
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        # ``backend`` is made once per test; each example starts from emptied data.
        HealthCheck.function_scoped_fixture,
    ],
)
FAST = {"sqlite": {"synchronous": "NORMAL"}, "postgresql": {}}


def uuid7(n: int) -> str:
    """A UUIDv7 id: its 16 bytes are the event's key, so keys order as ``n`` does."""
    return f"0190f000-0000-7000-8000-{n:012x}"


def corpus_events(channel: str = "web", count: int = 36) -> list[dict[str, Any]]:
    """Events of every kind the filters tell apart; three share each ``ts`` (ties)."""
    events = []
    for i in range(count):
        form, metric, low, high = FORMS_METRICS[i % len(FORMS_METRICS)]
        fields: dict[str, Any] = {
            "channel": channel,
            "id": uuid7(1000 - i if i % 2 else i),  # key order differs from ts order
            "form": form,
            "metric": metric,
            "score": low + i % (high - low + 1),
            "ts": NOW_MS - (i // 3) * MINUTE_MS,
        }
        optional = {
            "comment": SENTENCES[i % len(SENTENCES)],
            "locale": LOCALES[i % len(LOCALES)],
            "tags": TAGS[i % len(TAGS)],
            "meta": METAS[i % len(METAS)],
            "respondent": f"user-{i % 4}" if i % 5 else None,
        }
        fields.update({k: v for k, v in optional.items() if v is not None})
        events.append(event(**fields))
    return events


@dataclass(frozen=True)
class Model:
    """One stored event as the reference sees it."""

    project: str
    record: Record
    counted: bool
    held: str | None
    revised: bool

    def view(self) -> tuple[object, ...]:
        r = self.record
        return (
            *(r.channel, r.key, r.id, r.ts_ms, r.form, r.metric, r.score, self.counted),
            *(self.held, r.comment, r.locale, r.tags, r.meta, r.respondent, r.vote_key),
            self.revised,
        )

    @property
    def place(self) -> tuple[int, bytes, str]:
        return (self.record.ts_ms, self.record.key, self.record.channel)


def view(row: StoredResponse) -> tuple[object, ...]:
    return (
        *(row.channel, row.key, row.id, row.ts_ms, row.form, row.metric, row.score, row.counted),
        *(row.held, row.comment, row.locale, row.tags, row.meta, row.respondent, row.vote_key),
        row.revised,
    )


RULE = VoteRule(edit_window_ms=60_000, burst_ms=5_000)
LATE_RULE = VoteRule(edit_window_ms=0, burst_ms=5_000)


async def write_corpus(store: Store) -> list[tuple[str, Record]]:
    """The corpus in two projects, a vote changed twice, a scanner's burst and a late click."""
    written = [(PROJECT, r) for r in make_records(*corpus_events(store.channel))]
    written += [(OTHER, r) for r in make_records(*corpus_events(store.channel, 6))]
    for project in (PROJECT, OTHER):
        await store.write(project, [r for p, r in written if p == project])
    changed = make_records(
        *(
            event(channel=store.channel, id=f"v{n}", score=s, vote_key="survey:1", ts=NOW_MS + n)
            for n, s in enumerate((4, 8, 10))
        )
    )
    burst = make_records(
        *(
            event(channel=store.channel, id=f"b{s}", score=s, vote_key="email:b", ts=NOW_MS - s)
            for s in (1, 5, 9)
        )
    )
    first, late = make_records(
        event(channel=store.channel, id="l1", score=7, vote_key="email:l", comment="first"),
        event(channel=store.channel, id="l2", score=2, vote_key="email:l", ts=NOW_MS - 7),
    )
    for record in changed:
        await store.write(PROJECT, [record])
    await store.write(PROJECT, burst, rule=RULE)
    await store.write(PROJECT, [first], rule=LATE_RULE)
    await asyncio.sleep(0.002)  # received a millisecond or more after the first
    await store.write(PROJECT, [late], rule=LATE_RULE)
    return written + [(PROJECT, r) for r in (*changed, *burst, first, late)]


async def model(session: Session, store: Store, written: list[tuple[str, Record]]) -> list[Model]:
    """The reference rows: the records written, with the flags the store settled."""
    flags = {(e.project, e.key): (bool(e.counted), e.held) for e in await session.events(store)}
    groups: dict[tuple[str, str, str], int] = {}
    for project, record in written:
        if record.vote_key is not None:
            group = (project, record.form, record.vote_key)
            groups[group] = groups.get(group, 0) + 1
    return [
        Model(
            project,
            record,
            *flags[(project, record.key)],
            record.vote_key is not None and groups[(project, record.form, record.vote_key)] > 1,
        )
        for project, record in written
    ]


def meta_text(value: object) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def passes(f: ResponseFilter, m: Model) -> bool:
    """The filter's meaning, written plainly."""
    r = m.record
    locale = (r.locale or "").lower()
    checks = [
        m.project == f.project,
        f.forms is None or r.form in f.forms,
        f.metrics is None or r.metric in f.metrics,
        f.score_min is None or r.score >= f.score_min,
        f.score_max is None or r.score <= f.score_max,
        f.has_comment is None or (r.comment is not None) == f.has_comment,
        f.text is None or (r.comment is not None and f.text.lower() in r.comment.lower()),
        all(tag in (r.tags or []) for tag in f.tags),
        all(k in (r.meta or {}) and meta_text((r.meta or {})[k]) == v for k, v in f.meta),
        f.locale is None
        or (r.locale is not None and locale in (f.locale.lower(),))
        or (r.locale is not None and locale.startswith(f.locale.lower() + "-")),
        f.start_ms is None or r.ts_ms >= f.start_ms,
        f.end_ms is None or r.ts_ms < f.end_ms,
        f.held is None
        or (f.held == "any" and m.held is not None)
        or (f.held == "none" and m.held is None)
        or f.held == m.held,
        f.respondent is None or r.respondent == f.respondent,
    ]
    return all(checks)


def expected(
    rows: Iterable[Model], f: ResponseFilter, *, oldest_first: bool = False
) -> list[tuple[object, ...]]:
    kept = sorted((m for m in rows if passes(f, m)), key=lambda m: m.place)
    return [m.view() for m in (kept if oldest_first else reversed(kept))]


async def read_all(
    store: Store, f: ResponseFilter, *, limit: int = 1000, oldest_first: bool = False
) -> list[StoredResponse]:
    """Every page of ``f``, each after the last row of the one before."""
    rows: list[StoredResponse] = []
    after: Position | None = None
    while True:
        page = await store.responses(f, after=after, limit=limit, oldest_first=oldest_first)
        assert len(page) <= limit
        if after is not None and page:  # strictly after the position: the walk always moves on
            assert (page[0].position > after) if oldest_first else (page[0].position < after)
        rows += page
        if len(page) < limit:
            return rows
        after = page[-1].position


@pytest.fixture
async def corpus(session: Session, store: Store) -> list[Model]:
    return await model(session, store, await write_corpus(store))


def hashed(name: str) -> str | None:
    """The respondent pseudonym the core stores for ``name``."""
    (record,) = make_records(event(respondent=name))
    return record.respondent


ALONE = {
    "nothing": {},
    "form": {"forms": ("support",)},
    "forms": {"forms": ("checkout", "support")},
    "no-form": {"forms": ()},
    "metric": {"metrics": ("csat",)},
    "metrics": {"metrics": ("nps", "thumbs")},
    "score-min": {"score_min": 5},
    "score-max": {"score_max": 3},
    "score-range": {"score_min": 2, "score_max": 4},
    "has-comment": {"has_comment": True},
    "no-comment": {"has_comment": False},
    "text": {"text": "PAYMENT page"},
    "tag": {"tags": ("vip",)},
    "tags-all": {"tags": ("vip", "mobile")},
    "tag-unknown": {"tags": ("nope",)},
    "meta-string": {"meta": (("plan", "pro"),)},
    "meta-int": {"meta": (("seats", "3"),)},
    "meta-int-text-differs": {"meta": (("seats", "03"),)},
    "meta-bool": {"meta": (("trial", "true"),)},
    "meta-false": {"meta": (("trial", "false"),)},
    "meta-float": {"meta": (("ratio", "1.5"),)},
    "meta-case": {"meta": (("plan", "PRO"),)},
    "meta-two": {"meta": (("plan", "pro"), ("seats", "30"))},
    "locale-language": {"locale": "ar"},
    "locale-exact": {"locale": "en-GB"},
    "locale-case": {"locale": "AR-eg"},
    "locale-no-prefix-match": {"locale": "e"},
    "from": {"start_ms": NOW_MS - 4 * MINUTE_MS},
    "to": {"end_ms": NOW_MS - 4 * MINUTE_MS},
    "window": {"start_ms": NOW_MS - 6 * MINUTE_MS, "end_ms": NOW_MS - 2 * MINUTE_MS},
    "held-quarantined": {"held": "quarantined"},
    "held-late": {"held": "late"},
    "held-any": {"held": "any"},
    "held-none": {"held": "none"},
    "respondent": {"respondent": hashed("user-1")},
    "respondent-unknown": {"respondent": hashed("nobody")},
}


@pytest.mark.parametrize("fields", ALONE.values(), ids=ALONE.keys())
async def test_each_filter_alone_keeps_what_the_reference_keeps(
    store: Store, corpus: list[Model], fields: dict[str, Any]
) -> None:
    f = ResponseFilter(project=PROJECT, **fields)
    want = expected(corpus, f)
    assert [view(r) for r in await read_all(store, f)] == want
    assert [view(r) for r in await read_all(store, f, oldest_first=True)] == want[::-1]


COMBINED = {
    "form-metric-score": {"forms": ("checkout",), "metrics": ("nps",), "score_min": 3},
    "comment-tag-locale": {"has_comment": True, "tags": ("mobile",), "locale": "ar"},
    "meta-window": {"meta": (("plan", "pro"),), "start_ms": NOW_MS - 9 * MINUTE_MS},
    "respondent-text": {"respondent": hashed("user-1"), "text": "e"},
    "held-form": {"held": "any", "forms": ("checkout",), "end_ms": NOW_MS},
    "everything": {
        "forms": ("checkout", "support"),
        "metrics": ("nps", "csat"),
        "score_min": 0,
        "score_max": 9,
        "has_comment": True,
        "text": "e",
        "tags": ("vip",),
        "locale": "en",
        "start_ms": NOW_MS - 20 * MINUTE_MS,
        "end_ms": NOW_MS + MINUTE_MS,
        "held": "none",
    },
}


@pytest.mark.parametrize("fields", COMBINED.values(), ids=COMBINED.keys())
async def test_filters_combined_must_all_hold(
    store: Store, corpus: list[Model], fields: dict[str, Any]
) -> None:
    f = ResponseFilter(project=PROJECT, **fields)
    assert [view(r) for r in await read_all(store, f)] == expected(corpus, f)


#: The filters of ALONE that keep nothing of the corpus, by their meaning.
KEEP_NOTHING = {
    "no-form",
    "tag-unknown",
    "meta-int-text-differs",
    "meta-case",
    "locale-no-prefix-match",
    "respondent-unknown",
}


async def test_the_reference_corpus_has_rows_each_filter_keeps_and_drops(
    corpus: list[Model],
) -> None:
    # The tests above compare with the reference: for them to prove anything, each filter
    # must keep some rows of the project and drop others.
    assert {m.held for m in corpus} == {None, "quarantined", "late"}
    assert {m.revised for m in corpus} == {True, False}
    assert {m.counted for m in corpus} == {True, False}
    everything = [m for m in corpus if m.project == PROJECT]
    for name, fields in (*ALONE.items(), *COMBINED.items()):
        kept = [m for m in corpus if passes(ResponseFilter(project=PROJECT, **fields), m)]
        if name in KEEP_NOTHING:
            assert kept == [], name
        elif name == "nothing":
            assert kept == everything
        else:
            assert 0 < len(kept) < len(everything), name


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
@pytest.mark.parametrize("oldest_first", [False, True], ids=["newest-first", "oldest-first"])
async def test_walking_every_page_gives_every_row_once_in_order(
    store: Store, corpus: list[Model], limit: int, oldest_first: bool
) -> None:
    f = ResponseFilter(project=PROJECT, has_comment=True)
    rows = await read_all(store, f, limit=limit, oldest_first=oldest_first)
    assert [view(r) for r in rows] == expected(corpus, f, oldest_first=oldest_first)
    assert len({r.key for r in rows}) == len(rows)


async def test_ties_on_ts_are_broken_by_key(store: Store) -> None:
    ids = [uuid7(n) for n in (5, 1, 4, 2, 3)]
    await store.write(PROJECT, make_records(*(event(id=i, ts=NOW_MS) for i in ids)))
    f = ResponseFilter(project=PROJECT)
    newest = await read_all(store, f, limit=2)
    assert [r.id for r in newest] == sorted(ids, reverse=True)
    assert [r.id for r in await read_all(store, f, limit=2, oldest_first=True)] == sorted(ids)
    # A position at a tie: the rows after it are those of smaller key (newest first).
    after = newest[1].position
    page = await store.responses(f, after=after, limit=10)
    assert [r.id for r in page] == sorted(ids, reverse=True)[2:]


async def test_a_page_stays_stable_while_events_arrive(store: Store) -> None:
    # Three events a minute apart on each ts, the pages five long; between pages, events newer
    # than all, older than all, and in the middle (on a ts already read, on one not yet read,
    # and on the very ts and either side of the key of the last row read) are stored.
    first = make_records(*corpus_events(count=30))
    await store.write(PROJECT, first)
    f = ResponseFilter(project=PROJECT)
    existing = {r.key for r in first}
    rows: list[StoredResponse] = []
    after: Position | None = None
    serial = 0
    while True:
        page = await store.responses(f, after=after, limit=5)
        rows += page
        if len(page) < 5:
            break
        after = page[-1].position
        stamps = [NOW_MS + MINUTE_MS, NOW_MS - 99 * MINUTE_MS, after.ts_ms, after.ts_ms - 1]
        stamps += [page[0].ts_ms, after.ts_ms - 3 * MINUTE_MS]
        arriving = []
        for ts in stamps:
            serial += 1
            arriving.append(event(id=f"late-{serial}", ts=ts))
        # Same ts as the position, keys either side of its key.
        pivot = int.from_bytes(after.key[-6:], "big")
        for n in (pivot - 1, pivot + 1):
            arriving.append(event(id=uuid7(n % 2**48), ts=after.ts_ms))
        await store.write(PROJECT, make_records(*arriving))
    keys = [r.key for r in rows]
    assert len(set(keys)) == len(keys)  # nothing repeated
    assert existing <= set(keys)  # nothing that existed at the first page skipped
    places = [(r.ts_ms, r.key) for r in rows]
    assert places == sorted(places, reverse=True)


async def test_response_and_vote_history(store: Store, corpus: list[Model]) -> None:
    for m in corpus:
        found = await store.response(m.project, m.record.key)
        assert found is not None and view(found) == m.view()
    assert await store.response(PROJECT, b"\x00" * 16) is None
    assert await store.response("nobody", corpus[0].record.key) is None

    (vote,) = [m for m in corpus if m.record.id == "v0"]
    assert vote.record.vote_key is not None
    history = await store.vote_history(PROJECT, vote.record.form, vote.record.vote_key)
    assert [r.id for r in history] == ["v0", "v1", "v2"]  # oldest first
    assert [r.counted for r in history] == [False, False, True]
    assert all(r.revised for r in history)
    assert await store.vote_history(PROJECT, "support", vote.record.vote_key) == []
    burst = [m for m in corpus if m.record.id in ("b1", "b5", "b9")]
    assert burst[0].record.vote_key is not None  # the keyed hash, as stored and read
    history = await store.vote_history(PROJECT, burst[0].record.form, burst[0].record.vote_key)
    assert [view(r) for r in history] == [m.view() for m in sorted(burst, key=lambda m: m.place)]


async def test_a_comment_attached_later_is_read_and_searched(store: Store) -> None:
    (click,) = make_records(event(id="c1", vote_key="email:att", score=7))
    await store.write(PROJECT, [click], rule=RULE)
    f = ResponseFilter(project=PROJECT, text="attached later")
    assert await store.responses(f, after=None, limit=10) == []
    assert click.vote_key is not None
    assert await store.attach_comment(PROJECT, click.key, click.vote_key, "Attached LATER, ok")
    (found,) = await store.responses(f, after=None, limit=10)
    assert found.comment == "Attached LATER, ok" and found.key == click.key
    assert await store.attach_comment(PROJECT, click.key, click.vote_key, "replaced")
    assert await store.responses(f, after=None, limit=10) == []
    replaced = ResponseFilter(project=PROJECT, text="replaced")
    assert [r.key for r in await store.responses(replaced, after=None, limit=10)] == [click.key]


async def test_a_limit_below_one_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1, got 0"):
        await store.responses(ResponseFilter(project=PROJECT), after=None, limit=0)


async def test_merge_across_two_channels_pages_with_one_position(session: Session) -> None:
    web, app = session.make("web"), session.make("app")
    await web.open()
    await app.open()
    try:
        # The same keys (UUIDv7 ids) and ts in both channels: the channel breaks those ties.
        shared = [{"id": uuid7(n), "ts": NOW_MS - (n // 2) * MINUTE_MS} for n in range(8)]
        for store in (web, app):
            own = [event(channel=store.channel, **fields) for fields in shared]
            own += [
                event(channel=store.channel, id=f"{store.channel}-{n}", ts=NOW_MS - n)
                for n in range(5)
            ]
            await store.write(PROJECT, make_records(*own))
        f = ResponseFilter(project=PROJECT)
        for oldest_first in (False, True):
            everything = await read_all(web, f, oldest_first=oldest_first)
            everything += await read_all(app, f, oldest_first=oldest_first)
            want = sorted((r.position for r in everything), reverse=not oldest_first)
            for limit in (1, 2, 3, 5):
                got: list[Position] = []
                after: Position | None = None
                while True:
                    pages = [
                        await s.responses(f, after=after, limit=limit, oldest_first=oldest_first)
                        for s in (web, app)
                    ]
                    page = merge(pages, limit, oldest_first=oldest_first)
                    got += [r.position for r in page]
                    if len(page) < limit:
                        break
                    after = page[-1].position
                assert got == want, (oldest_first, limit)
    finally:
        await web.close()
        await app.close()


def page_events() -> st.SearchStrategy[list[dict[str, Any]]]:
    """Events with few distinct ts (many ties) and keys in any order."""
    one = st.builds(
        lambda n, ts, score, comment: event(
            id=uuid7(n), ts=NOW_MS - ts * MINUTE_MS, score=score, **comment
        ),
        st.integers(0, 2**40),
        st.integers(0, 4),
        st.integers(0, 10),
        st.sampled_from([{}, {"comment": "ok"}, {"comment": "no"}]),
    )
    return st.lists(one, min_size=0, max_size=25, unique_by=lambda e: e["id"])


@PROPERTY_SETTINGS
@given(
    events=page_events(),
    limit=st.integers(1, 30),
    oldest_first=st.booleans(),
    fields=st.fixed_dictionaries(
        {},
        optional={
            "score_min": st.integers(0, 10),
            "has_comment": st.booleans(),
            "text": st.sampled_from(["o", "ok", "NO"]),
        },
    ),
)
def test_paging_with_any_limit_equals_one_sorted_read(
    backend: Backend,
    events: list[dict[str, Any]],
    limit: int,
    oldest_first: bool,
    fields: dict[str, Any],
) -> None:
    async def scenario() -> None:
        async with backend.session(fresh=True) as session:
            store = session.make(**FAST[backend.name])
            await store.open()
            try:
                records = make_records(*events) if events else []
                await store.write(PROJECT, records)
                f = ResponseFilter(project=PROJECT, **fields)
                whole = await store.responses(
                    f, after=None, limit=len(records) + 1, oldest_first=oldest_first
                )
                rows = await read_all(store, f, limit=limit, oldest_first=oldest_first)
                assert [view(r) for r in rows] == [view(r) for r in whole]
                models = [Model(PROJECT, r, True, None, False) for r in records]
                assert [view(r) for r in whole] == expected(models, f, oldest_first=oldest_first)
            finally:
                await store.close()

    asyncio.run(scenario())


FILTER_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "forms": st.lists(st.sampled_from(["checkout", "support"]), max_size=2).map(tuple),
        "metrics": st.lists(st.sampled_from(["nps", "csat", "thumbs"]), max_size=2).map(tuple),
        "score_min": st.integers(0, 10),
        "score_max": st.integers(0, 10),
        "has_comment": st.booleans(),
        "text": st.sampled_from(["a", "THE", "ری", "配送", "an pe", "cepat dan"]),
        "tags": st.lists(st.sampled_from(["vip", "mobile", "desktop"]), max_size=2).map(tuple),
        "meta": st.lists(
            st.sampled_from([("plan", "pro"), ("seats", "3"), ("trial", "false")]), max_size=2
        ).map(tuple),
        "locale": st.sampled_from(["en", "ar", "AR-EG", "fa", "ja"]),
        "start_ms": st.integers(-12, 1).map(lambda m: NOW_MS + m * MINUTE_MS),
        "end_ms": st.integers(-12, 1).map(lambda m: NOW_MS + m * MINUTE_MS),
        "held": st.sampled_from(["quarantined", "late", "any", "none"]),
        "respondent": st.sampled_from([hashed("user-1"), hashed("user-3")]),
    },
)


@PROPERTY_SETTINGS
@given(fields=st.lists(FILTER_FIELDS, min_size=10, max_size=10))
def test_any_combination_of_filters_keeps_what_the_reference_keeps(
    backend: Backend, fields: Sequence[dict[str, Any]]
) -> None:
    async def scenario() -> None:
        async with backend.session(fresh=True) as session:
            store = session.make(**FAST[backend.name])
            await store.open()
            try:
                corpus = await model(session, store, await write_corpus(store))
                for each in fields:
                    f = ResponseFilter(project=PROJECT, **each)
                    assert [view(r) for r in await read_all(store, f, limit=4)] == expected(
                        corpus, f
                    ), each
            finally:
                await store.close()

    asyncio.run(scenario())
