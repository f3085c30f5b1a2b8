"""The rules' feed: what each channel's store committed, turned into items, alerts and messages.

:func:`read_feed` reads every channel's log (:meth:`~..stores.base.Store.log`: new events) and
revisions (comments added later) after the channel's cursor (``feed_cursors``), and in ONE
control-plane transaction per batch:

- tells integrations of each response: ``response.created`` for a new answer,
  ``response.updated`` for a vote that changes an earlier answer of its vote group or a comment
  added (the response as ``GET /v1/responses/{ref}`` shows it, with its ``project``); a vote
  held apart (a link scanner's, or after the edit window) changes no answer and tells nothing;
- makes or follows the follow-up item of the response's answer (``items``): one item per vote
  group (or event), whatever its votes; a vote that leaves every rule's range closes it, one
  that stays updates it, and a second item is never made;
- fires the ``alert`` rules that match (:func:`fire_alerts`): one alert per rule, response and
  UTC day, through the ``alerts_fired`` key, by webhook and by email;
- moves the cursor past what it read.

The cursor moves with what it caused, so a crash loses nothing and repeats nothing: either the
transaction committed (items, messages and cursor), or none of it did and the batch is read
again. Each channel is read by one replica at a time (the job ``feed:<channel>``, ``jobs``), and
the transaction also checks that the cursor is still where it was read, so a replica whose lease
ran out while it was slow commits nothing.

Gaps: on PostgreSQL an event's ``seq`` is taken at insert and several writers commit out of
order, so a lower ``seq`` may appear after a higher one was read. The feed reads up to the first
missing ``seq`` and waits for it; a gap still there after :data:`GAP_WAIT_MS` (a number taken
by a duplicate or a failed commit, never to fill) is passed. When each gap was first seen is kept
in memory, per channel: a restarted gateway waits for a gap again, at most that long.

A channel read for the first time starts :data:`BACKFILL` events before its end: a gateway
that gets the rules on an existing store acts on recent feedback, not on years of history.
"""

from __future__ import annotations

import functools
import logging
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, Final

import msgspec
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop_core import DAY_MS

from ..control import tables
from ..control.inserts import Inserts
from ..errors import StoreError
from ..integrations import jobs, messages, outbox
from ..reading.formats import item, ref_of, rfc3339
from ..service import Service
from ..stores.base import Store
from ..stores.reads import StoredResponse
from . import items, sla
from .rules import Rule, ensure_default, first_match, matches

#: How long a missing ``seq`` is waited for before the feed reads past it.
GAP_WAIT_MS: Final = 5_000
#: Most events (and most revisions) one transaction takes. A batch costs about 2 ms besides its
#: events (the cursor's reads and writes, the projects' rules and endpoints): with nothing
#: listening, 1,000 a batch took 11 µs of CPU an event, 200 took 26.
BATCH: Final = 1_000
#: Most batches one channel is read for in one call: the others' turn comes.
MAX_BATCHES: Final = 10
#: How far before its end a channel's log is first read.
BACKFILL: Final = 1_000
#: How long a replica holds a channel's feed: longer than a call takes.
LEASE_MS: Final = 60_000

_CURSORS = tables.feed_cursors
_log = logging.getLogger(__name__)


class Seen(msgspec.Struct, frozen=True, kw_only=True):
    """One thing the feed read, with what acting on it needs.

    Attributes:
        project: the response's project.
        response: the event as it is stored now (a revision: the response with its comment).
        answer: what the response's vote group answers now, its counted vote (the event itself
            without a ``vote_key``); None when no vote of the group counts.
        revision: a comment added to a stored response, rather than a new event.
        change: a new vote of a group that already held an answer (a person changed it).
    """

    project: str
    response: StoredResponse
    answer: StoredResponse | None
    revision: bool = False
    change: bool = False


def answer_of(response: StoredResponse, history: Sequence[StoredResponse]) -> StoredResponse | None:
    """What ``response``'s subject answers now: itself when it counts (or has no vote group),
    else the counted vote of its group's ``history`` (None when none counts)."""
    if response.vote_key is None or response.counted:
        return response
    return next((vote for vote in history if vote.counted), None)


def changes_answer(response: StoredResponse, history: Sequence[StoredResponse]) -> bool:
    """Whether ``response`` came after another vote of its group that wasn't held: a change of
    the person's answer, rather than their first. "After" is by the time received, then (for
    votes stored together) by the time answered."""

    def place(vote: StoredResponse) -> tuple[int, int, str, bytes]:
        return (vote.received_ms, vote.ts_ms, vote.id or "", vote.key)

    if response.vote_key is None:
        return False
    mine = place(response)
    return any(
        vote.held is None and vote.key != response.key and place(vote) < mine for vote in history
    )


def message_type(seen: Seen) -> str | None:
    """The ``response.*`` message ``seen`` makes, if any: a held vote changes no answer (nor
    does a comment on one)."""
    if seen.response.held is not None:
        return None
    if seen.revision:
        return "response.updated"
    return "response.updated" if seen.change else "response.created"


def response_data(project: str, response: StoredResponse) -> dict[str, Any]:
    """The ``data`` of a ``response.*`` message: the response as the read API shows it."""
    found: dict[str, Any] = msgspec.to_builtins(item(response))
    found["project"] = project
    return found


# --- in the transaction: what a batch makes ---------------------------------------------------


#: Where an item is: its project, channel, form and subject.
_Where = tuple[str, str, str, str]


class _Batch:
    """What one batch's transaction knows besides the database: the rows it has not written yet,
    and the items of its subjects (read at once, and those it made since)."""

    def __init__(self, items: dict[_Where, str]) -> None:
        self.writes = Inserts()
        self.items = items


async def take(conn: AsyncConnection, seen: Sequence[Seen], now_ms: int, base_url: str) -> int:
    """Act on ``seen`` in ``conn``'s transaction: messages, items and alerts, in order.

    A project seen without any rule gets the default rule first (``rules.ensure_default``).
    Its rules and webhook endpoints are read once a batch, and a ``response.*`` message is
    written only when an endpoint takes its type: with nobody listening, a response that no
    rule matches costs no statement at all. The items that the batch's responses which may have
    one (:func:`_may_have_item`) already have are read in one statement, and what it makes
    (messages, deliveries, new items) is written a table at a time
    (:class:`~..control.inserts.Inserts`). Returns how many items were made or changed.
    """
    projects: dict[str, tuple[list[Rule], list[Rule], list[outbox.Endpoint]]] = {}
    for one in seen:
        if one.project not in projects:
            found = await ensure_default(conn, one.project, now_ms)
            projects[one.project] = (
                [r for r in found if r.kind == "followup" and r.enabled],
                [r for r in found if r.kind == "alert" and r.enabled],
                await outbox.endpoints_of(conn, one.project),
            )
    matched = [_rule_of(one, projects[one.project][0]) for one in seen]
    itemed = [one for one, rule in zip(seen, matched, strict=True) if _may_have_item(one, rule)]
    batch = _Batch(await _items_of(conn, itemed))
    acted = 0
    for one, rule in zip(seen, matched, strict=True):
        _, alerting, endpoints = projects[one.project]
        kind = message_type(one)
        if kind is not None and outbox.wanted(endpoints, kind):
            data = response_data(one.project, one.response)
            await outbox.enqueue(
                conn, one.project, kind, data, now_ms, endpoints=endpoints, into=batch.writes
            )
        if await follow_up(conn, one, rule, now_ms, batch, endpoints):
            acted += 1
        if one.answer is not None and alerting:
            await fire_alerts(
                conn,
                one.project,
                one.answer,
                alerting,
                now_ms,
                base_url,
                endpoints=endpoints,
                into=batch.writes,
            )
    await batch.writes.flush(conn)
    return acted


def _rule_of(seen: Seen, rules: Sequence[Rule]) -> Rule | None:
    """The rule of ``rules`` an item of ``seen``'s answer follows (``first_match``), None
    without an answer."""
    return None if seen.answer is None else first_match(rules, seen.answer)


def _may_have_item(seen: Seen, rule: Rule | None) -> bool:
    """Whether ``seen`` makes or follows an item, ``rule`` being the one its answer matches: a
    new response of its own that no rule matches has none, and its subject's item is not even
    looked up (a vote, or a comment added, may follow an item made earlier)."""
    return rule is not None or seen.response.vote_key is not None or seen.revision


async def _items_of(conn: AsyncConnection, seen: Iterable[Seen]) -> dict[_Where, str]:
    """The items that ``seen``'s subjects have, by project, channel, form and subject: one
    statement for each channel and form (a batch is of one channel, and seldom many forms)."""
    wanted: dict[tuple[str, str, str], set[str]] = {}
    for one in seen:
        response = one.response
        where = (one.project, response.channel, response.form)
        wanted.setdefault(where, set()).add(items.subject_of(response))
    f = tables.followups
    found: dict[_Where, str] = {}
    for (project, channel, form), subjects in wanted.items():
        rows = await conn.execute(
            select(f.c.id, f.c.subject).where(
                f.c.project == project,
                f.c.channel == channel,
                f.c.form == form,
                f.c.subject.in_(sorted(subjects)),
            )
        )
        for item_id, subject in rows:
            found[(project, channel, form, subject)] = item_id
    return found


async def follow_up(
    conn: AsyncConnection,
    seen: Seen,
    rule: Rule | None,
    now_ms: int,
    batch: _Batch,
    endpoints: Sequence[outbox.Endpoint],
) -> bool:
    """Make or follow the item of ``seen``'s subject; whether one was made or changed.
    ``rule`` is the follow-up rule its answer matches (:func:`_rule_of`), and ``endpoints`` are
    its project's, for the new item's message."""
    response, answer = seen.response, seen.answer
    if not _may_have_item(seen, rule):
        return False
    where = (seen.project, response.channel, response.form, items.subject_of(response))
    existing = batch.items.get(where)
    if existing is None:
        if rule is None or answer is None:
            return False
        made = await items.create(
            conn, seen.project, answer, rule, now_ms, into=batch.writes, endpoints=endpoints
        )
        batch.items[where] = made.id
        return True
    await batch.writes.flush(conn)  # the item may be one this batch made
    row = await items.read_row(conn, existing, lock=True)
    if answer is None:
        reason = "Closed by the gateway: no vote of this response counts any more."
    else:
        reason = (
            f"Closed by the gateway: the answer changed to {answer.score} ({answer.metric}),"
            " which no rule matches."
        )
    return await items.follow(conn, row, answer, rule, now_ms, reason=reason) is not None


async def fire_alerts(
    conn: AsyncConnection,
    project: str,
    answer: StoredResponse,
    rules: Sequence[Rule],
    now_ms: int,
    base_url: str,
    *,
    endpoints: Sequence[outbox.Endpoint] | None = None,
    into: Inserts | None = None,
) -> int:
    """Fire each ``alert`` rule that matches ``answer``, once per rule, response and UTC day.

    The ``alerts_fired`` row of ``rule:<id>:<subject>`` and the day is inserted ``ON CONFLICT
    DO NOTHING``; only the transaction that inserted it enqueues ``alert.fired`` and emails the
    rule's ``escalate_to`` (none without one). Returns how many fired. ``endpoints`` and
    ``into`` are :func:`~..integrations.outbox.enqueue`'s.
    """
    fired = 0
    day = now_ms - now_ms % DAY_MS
    upsert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for rule in rules:
        if not matches(rule, answer):
            continue
        condition = f"rule:{rule.id}:{items.subject_of(answer)}"
        data = alert_data(project, rule, day, answer)
        made = await conn.execute(
            upsert(tables.alerts_fired)
            .values(
                condition=condition,
                period_ms=day,
                project=project,
                at_ms=now_ms,
                detail=msgspec.json.encode(data).decode(),
            )
            .on_conflict_do_nothing()
            .returning(tables.alerts_fired.c.condition)
        )
        if made.first() is None:
            continue  # fired already today
        fired += 1
        await outbox.enqueue(
            conn, project, "alert.fired", data, now_ms, endpoints=endpoints, into=into
        )
        recipient = await _recipient(conn, rule.escalate_to)
        if recipient is not None:
            langs = await sla.languages_of(conn, project, [recipient])
            email = messages.alert_email(
                langs[recipient],
                project=project,
                rule=rule.name,
                channel=answer.channel,
                form=answer.form,
                metric=answer.metric,
                score=answer.score,
                comment=answer.comment,
                at_ms=answer.received_ms,
                respondent=answer.respondent,
                ref=ref_of(answer),
                base_url=base_url,
            )
            await outbox.enqueue_email(
                conn, project, recipient, email.subject, email.text, email.html, now_ms
            )
    return fired


def alert_data(project: str, rule: Rule, day_ms: int, answer: StoredResponse) -> dict[str, Any]:
    """The ``data`` of an ``alert.fired`` message of a rule on one response."""
    return {
        "rule": rule.id,
        "name": rule.name,
        "kind": "response",
        "project": project,
        "period": "day",
        "period_start": rfc3339(day_ms),
        "response": response_data(project, answer),
    }


async def _recipient(conn: AsyncConnection, escalate_to: str | None) -> str | None:
    """The address ``escalate_to`` names: itself, or an enabled user's email; else None."""
    if escalate_to is None or "@" in escalate_to:
        return escalate_to
    users = tables.users
    found = await conn.execute(
        select(users.c.email).where(users.c.id == escalate_to, users.c.disabled_ms.is_(None))
    )
    email: str | None = found.scalar_one_or_none()
    return email


# --- gaps -----------------------------------------------------------------------------------


class Gaps:
    """The ``seq`` numbers each log skipped, and when each run of them was first seen."""

    def __init__(self, wait_ms: int = GAP_WAIT_MS) -> None:
        self.wait_ms = wait_ms
        self._seen: dict[str, list[tuple[int, int, int]]] = {}

    def readable(self, log: str, cursor: int, seqs: Sequence[int], now_ms: int) -> int:
        """How many of ``seqs`` (ascending, all after ``cursor``) may be taken now.

        Rows are taken up to the first run of missing numbers seen less than ``wait_ms`` ago;
        a run seen that long ago is passed. Every run found is remembered (with the time it was
        first seen), so a later call knows how long each has been missing.
        """
        known = self._seen.get(log, [])
        runs: list[tuple[int, int, int]] = []
        taken = 0
        blocked = False
        last_taken = cursor
        previous = cursor
        for seq in seqs:
            if seq > previous + 1:
                low, high = previous + 1, seq - 1
                since = next((t for a, b, t in known if a <= low and high <= b), now_ms)
                runs.append((low, high, since))
                blocked = blocked or now_ms - since < self.wait_ms
            if not blocked:
                taken += 1
                last_taken = seq
            previous = seq
        self._seen[log] = [run for run in runs if run[0] > last_taken]
        return taken


class Feed:
    """What one gateway's feed remembers between calls: the gaps it waits on, and the end of
    each channel's log (events, revisions) that its cursor was last seen at: while the log
    ends there, the channel has nothing to read and its job is not even claimed, so an idle
    gateway writes nothing."""

    def __init__(self) -> None:
        self.gaps = Gaps()
        self.idle: dict[str, tuple[int, int]] = {}


#: Each service's feed state, for as long as the service lives.
_FEEDS: weakref.WeakKeyDictionary[Service, Feed] = weakref.WeakKeyDictionary()


def feed_of(service: Service) -> Feed:
    """``service``'s feed state, made on first use."""
    found = _FEEDS.get(service)
    if found is None:
        found = _FEEDS[service] = Feed()
    return found


# --- reading the stores -----------------------------------------------------------------------


async def read_feed(
    service: Service, now_ms: int, holder: str, *, budget_s: float | None = None
) -> int:
    """Read every channel's new events and revisions; how many were taken.

    ``budget_s``: after a batch, no more are started once this much time has passed (the
    workers give a short one while events arrive, so that ingest keeps the CPU); None: up to
    :data:`MAX_BATCHES` a channel.

    Each channel whose store exists is read by whoever claims the job ``feed:<channel>`` (one
    replica at a time), from its cursor on, batch by batch, each batch in one transaction with
    what it caused (see the module's docstring). A store that can't be read is logged and
    skipped until the next call; the control plane's errors are raised.
    """
    db = service.registry.db
    state = feed_of(service)
    taken = 0
    deadline = None if budget_s is None else time.monotonic() + budget_s
    for channel in service.channels():
        if deadline is not None and time.monotonic() >= deadline:
            break
        if not await service.has_store(channel):
            continue
        try:
            store = await service.store(channel)
            top = await store.last_seq()
        except StoreError as exc:  # one store away must not hold up the others
            _log.warning("the feed could not read channel %r: %s", channel, exc)
            continue
        if state.idle.get(channel) == top:
            continue  # nothing was logged since this gateway saw the cursor reach the end
        job = f"feed:{channel}"
        if not await jobs.claim(db, job, holder, now_ms, lease_ms=LEASE_MS):
            continue
        try:
            taken += await read_channel(service, state, store, now_ms, deadline)
            if await _cursor(service, store, now_ms) == top:
                state.idle[channel] = top
        except StoreError as exc:
            _log.warning("the feed could not read channel %r: %s", channel, exc)
        finally:
            await jobs.finish(db, job, holder, now_ms)
    return taken


async def _cursor(service: Service, store: Store, now_ms: int) -> tuple[int, int]:
    """The channel's cursor: where its log and its revisions were read up to.

    A channel read for the first time starts :data:`BACKFILL` events (and revisions) before
    the end of each, and its row is made at once (``ON CONFLICT DO NOTHING``: another replica
    may make it first).
    """
    db = service.registry.db

    async def read(conn: AsyncConnection) -> tuple[int, int] | None:
        found = await conn.execute(
            select(_CURSORS.c.event_seq, _CURSORS.c.revision_seq).where(
                _CURSORS.c.channel == store.channel
            )
        )
        row = found.first()
        return None if row is None else (int(row[0]), int(row[1]))

    cursor = await db.arun(read)
    if cursor is not None:
        return cursor
    events, revisions = await store.last_seq()

    async def make(conn: AsyncConnection) -> None:
        upsert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        await conn.execute(
            upsert(_CURSORS)
            .values(
                channel=store.channel,
                event_seq=max(0, events - BACKFILL),
                revision_seq=max(0, revisions - BACKFILL),
                updated_ms=now_ms,
            )
            .on_conflict_do_nothing()
        )

    await db.arun(make, write=True)
    made = await db.arun(read)
    assert made is not None
    return made


async def read_channel(
    service: Service, feed: Feed, store: Store, now_ms: int, deadline: float | None = None
) -> int:
    """Read one channel from its cursor, batch by batch; how many events and revisions."""
    taken = 0
    channel = store.channel
    for _ in range(MAX_BATCHES):
        event_seq, revision_seq = await _cursor(service, store, now_ms)
        events = await store.log(event_seq, BATCH)
        revised = await store.revisions(revision_seq, BATCH)
        n_events = feed.gaps.readable(
            f"{channel}:events", event_seq, [s for s, _ in events], now_ms
        )
        n_revised = feed.gaps.readable(
            f"{channel}:revisions", revision_seq, [s for s, _ in revised], now_ms
        )
        if not n_events and not n_revised:
            break
        new_events, new_revised = events[:n_events], revised[:n_revised]
        seen = await _seen(store, new_events, new_revised)
        moved = (
            new_events[-1][0] if new_events else event_seq,
            new_revised[-1][0] if new_revised else revision_seq,
        )
        work = functools.partial(
            _commit,
            channel=channel,
            read=(event_seq, revision_seq),
            moved=moved,
            seen=seen,
            now_ms=now_ms,
            base_url=service.settings.base_url,
        )
        if not await service.registry.db.arun(work, write=True):
            break  # another replica moved the cursor meanwhile: what it read is its own
        taken += n_events + n_revised
        full = (n_events == len(events) == BATCH) or (n_revised == len(revised) == BATCH)
        if not full or (deadline is not None and time.monotonic() >= deadline):
            break
    return taken


async def _commit(
    conn: AsyncConnection,
    *,
    channel: str,
    read: tuple[int, int],
    moved: tuple[int, int],
    seen: Sequence[Seen],
    now_ms: int,
    base_url: str,
) -> bool:
    """One batch's transaction: the cursor is still at ``read`` (else nothing is done), what
    ``seen`` makes is written, and the cursor moves to ``moved``."""
    held = await conn.execute(
        update(_CURSORS)
        .where(
            _CURSORS.c.channel == channel,
            _CURSORS.c.event_seq == read[0],
            _CURSORS.c.revision_seq == read[1],
        )
        .values(updated_ms=now_ms)
    )
    if held.rowcount != 1:
        return False
    await take(conn, seen, now_ms, base_url)
    await conn.execute(
        update(_CURSORS)
        .where(_CURSORS.c.channel == channel)
        .values(event_seq=moved[0], revision_seq=moved[1], updated_ms=now_ms)
    )
    return True


async def _seen(
    store: Store,
    events: Sequence[tuple[int, StoredResponse]],
    revised: Sequence[tuple[int, StoredResponse]],
) -> list[Seen]:
    """What each event and revision read is, with its vote group's answer now: the events
    first, in the order of the log, then the revisions. A vote group's history is read from
    the store once a batch, and only where the event alone doesn't tell."""
    histories: dict[tuple[str, str, str], list[StoredResponse]] = {}

    async def history(project: str, response: StoredResponse) -> list[StoredResponse]:
        assert response.vote_key is not None
        group = (project, response.form, response.vote_key)
        found = histories.get(group)
        if found is None:
            found = histories[group] = await store.vote_history(*group)
        return found

    seen: list[Seen] = []
    for revision, rows in ((False, events), (True, revised)):
        for _, response in rows:
            project = response.project
            assert project is not None  # the log names each response's project
            past: list[StoredResponse] = []
            if response.vote_key is not None and (not response.counted or response.revised):
                past = await history(project, response)
            seen.append(
                Seen(
                    project=project,
                    response=response,
                    answer=answer_of(response, past),
                    revision=revision,
                    change=not revision and changes_answer(response, past),
                )
            )
    return seen


__all__ = [
    "BACKFILL",
    "BATCH",
    "GAP_WAIT_MS",
    "Feed",
    "Gaps",
    "Seen",
    "alert_data",
    "answer_of",
    "changes_answer",
    "feed_of",
    "fire_alerts",
    "follow_up",
    "message_type",
    "read_channel",
    "read_feed",
    "response_data",
    "take",
]
