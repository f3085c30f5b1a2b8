"""Erasure: a respondent's events, a form's, a time range's or a whole project's, gone everywhere.

An erasure names what goes with a :class:`~..stores.Selection` (the respondent's pseudonym, a
form, a time range, or nothing: the whole project) and runs in three steps:

1. Its receipt is written first, requested and unfinished (``erasures``), so a crash leaves a
   visible erasure that the next :func:`erase` of the same selection resumes.
2. What the control plane holds of it goes (:func:`purge_held`): follow-up items with their
   changes and notes, the payloads of webhook messages and emails not delivered yet (their
   deliveries fail, "erased"), and the response a fired alert kept.
3. Each channel's store erases its events in one transaction of its own
   (:meth:`~..stores.Store.erase`): aggregates corrected, vote groups ranked again, a
   tombstone per key. Then, in one control-plane transaction, step 2 runs again for anything
   the rules made meanwhile, the receipt gets its counts and its end, and the audit log its
   record. This process's dedup windows forget the keys.

Every step is safe to repeat: a store erases what is still there, the control plane purges
what is still there. So a crash at any point leaves each store as it was or erased (never half
of one), and running the erasure again finishes it. Per channel, the receipt counts what each
run removed; a run killed after a store committed but before its count was saved reports less
than was removed (the events are gone all the same).

A tombstone lasts as long as the dedup window (``dedup_age_s``): an SDK's retry of an erased
event within it is a duplicate, neither stored nor counted. After it, a retry would be stored
again; the SDK gives up retrying long before. Nothing else keeps copies: exports are streamed
from the stores, never cached.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import msgspec
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..control import tables
from ..control.db import Database
from ..control.registry import Project
from ..integrations.outbox import new_id
from ..reading.formats import rfc3339
from ..service import Service
from ..stores import ResponseFilter, Selection
from . import audit

#: Rows a time-range erasure reads at a time to learn which responses it names.
REF_PAGE: Final = 1_000
#: How many refs one ``IN (...)`` of the control plane lists at most.
IN_CHUNK: Final = 500
#: What an erased webhook message's payload keeps: its type and time, no data.
ERASED: Final = "erased"

#: How long an erasure stays unfinished before the background work finishes it: one that is
#: still running (a large project's) is left alone that long.
RESUME_AFTER_MS: Final = 10 * 60_000
#: Called with a channel and how many events its store removed, as each one finishes.
Progress = Callable[[str, int], None]

_F = tables.followups
_C = tables.followup_changes
_O = tables.outbox
_D = tables.webhook_deliveries
_E = tables.email_outbox
_A = tables.alerts_fired
_R = tables.erasures


class Receipt(msgspec.Struct, kw_only=True):
    """What an erasure removed, per channel, and when; the answer of the erasure routes.

    ``scope`` is what was asked (``respondent``: the pseudonym, never the client's id; ``form``;
    ``from``/``to`` in RFC 3339; ``{}`` for the whole project). ``finished`` is null while it
    runs or after a crash: the next erasure of the same scope finishes it.
    """

    id: str
    project: str
    scope: dict[str, str]
    requested: str
    finished: str | None
    counts: dict[str, int]
    events: int


class Held(msgspec.Struct, kw_only=True):
    """What :func:`purge_held` removed or blanked in the control plane."""

    followups: int = 0
    messages: int = 0
    emails: int = 0


def scope_of(selection: Selection) -> dict[str, str]:
    """The receipt's ``scope``: the selection's fields that are set (times in RFC 3339)."""
    found: dict[str, str] = {}
    if selection.respondent is not None:
        found["respondent"] = selection.respondent
    if selection.form is not None:
        found["form"] = selection.form
    if selection.start_ms is not None:
        found["from"] = rfc3339(selection.start_ms)
    if selection.end_ms is not None:
        found["to"] = rfc3339(selection.end_ms)
    return found


def whole(selection: Selection) -> bool:
    """Whether ``selection`` names the whole project."""
    return selection == Selection()


def _form_only(selection: Selection) -> bool:
    """Whether ``selection`` names a form and nothing else: its items carry the form."""
    return selection.form is not None and selection == Selection(form=selection.form)


def _stored_scope(selection: Selection) -> str:
    return msgspec.json.encode(selection).decode()


def _receipt(row: Any) -> Receipt:
    selection = msgspec.json.decode(row.scope, type=Selection)
    counts: dict[str, int] = json.loads(row.counts) if row.counts else {}
    return Receipt(
        id=row.id,
        project=row.project,
        scope=scope_of(selection),
        requested=rfc3339(row.requested_ms),
        finished=None if row.finished_ms is None else rfc3339(row.finished_ms),
        counts=dict(sorted(counts.items())),
        events=sum(counts.values()),
    )


async def receipt(db: Database, project: str, erasure_id: str) -> Receipt | None:
    """The receipt ``erasure_id`` of ``project``, or None (another project's is None too)."""

    async def read(conn: AsyncConnection) -> Any:
        found = await conn.execute(select(_R).where(_R.c.id == erasure_id, _R.c.project == project))
        return found.first()

    row = await db.arun(read)
    return None if row is None else _receipt(row)


async def unfinished(db: Database, project: str | None = None) -> list[Receipt]:
    """The erasures a crash (or a stop) left unfinished, oldest first."""

    async def read(conn: AsyncConnection) -> list[Any]:
        query = select(_R).where(_R.c.finished_ms.is_(None)).order_by(_R.c.requested_ms)
        if project is not None:
            query = query.where(_R.c.project == project)
        return list(await conn.execute(query))

    return [_receipt(row) for row in await db.arun(read)]


async def begin(
    db: Database, project: str, selection: Selection, actor: str, now_ms: int | None = None
) -> str:
    """The id of the erasure of ``selection`` left unfinished, or of a new one, requested now."""
    found, _ = await _begin(db, project, selection, actor, now_ms)
    return found


async def _begin(
    db: Database, project: str, selection: Selection, actor: str, now_ms: int | None
) -> tuple[str, dict[str, int]]:
    """The erasure of ``selection`` left unfinished (its id and counts so far), or a new one."""
    scope = _stored_scope(selection)
    now = int(time.time() * 1000) if now_ms is None else now_ms

    async def write(conn: AsyncConnection) -> tuple[str, dict[str, int]]:
        found = await conn.execute(
            select(_R.c.id, _R.c.counts)
            .where(_R.c.project == project, _R.c.scope == scope, _R.c.finished_ms.is_(None))
            .order_by(_R.c.requested_ms)
            .limit(1)
        )
        row = found.first()
        if row is not None:
            return row.id, json.loads(row.counts) if row.counts else {}
        made = new_id("era_")
        await conn.execute(
            insert(_R).values(
                id=made,
                project=project,
                scope=scope,
                actor=actor,
                requested_ms=now,
                finished_ms=None,
                counts=None,
            )
        )
        return made, {}

    return await db.arun(write, write=True)


async def _save_counts(db: Database, erasure_id: str, counts: Mapping[str, int]) -> None:
    async def write(conn: AsyncConnection) -> None:
        await conn.execute(
            update(_R)
            .where(_R.c.id == erasure_id)
            .values(counts=json.dumps(dict(sorted(counts.items()))))
        )

    await db.arun(write, write=True)


def ref(channel: str, key: bytes) -> str:
    """A response's ref (as ``reading.formats.ref_of`` makes it) from its channel and key."""
    return f"{channel}.{key.hex()}"


async def _refs_of(service: Service, project: Project, selection: Selection) -> set[str]:
    """The refs of what ``selection`` names now, when only the stores can tell (a time range).

    A respondent's, a form's or the whole project's items and messages carry what names them
    (the pseudonym, the form, the project); a time range's are known by their responses.
    """
    if selection.start_ms is None and selection.end_ms is None:
        return set()
    wanted = ResponseFilter(
        project=project.id,
        forms=None if selection.form is None else (selection.form,),
        start_ms=selection.start_ms,
        end_ms=selection.end_ms,
        respondent=selection.respondent,
    )
    found: set[str] = set()
    for channel in sorted(project.channels):
        if not await service.has_store(channel):
            continue
        store = await service.store(channel)
        after = None
        while True:
            rows = await store.responses(wanted, after=after, limit=REF_PAGE)
            found.update(ref(channel, row.key) for row in rows)
            if len(rows) < REF_PAGE:
                break
            after = rows[-1].position
    return found


def _concerns(data: Any, selection: Selection, refs: set[str]) -> bool:
    """Whether a message's ``data`` (or a fired alert's detail) is about what is erased."""
    if whole(selection):
        return True
    if not isinstance(data, dict):
        return False
    shown = [data]
    if isinstance(data.get("response"), dict):
        shown.append(data["response"])
    for one in shown:
        if one.get("ref") in refs:
            return True
        if selection.respondent is not None and one.get("respondent") == selection.respondent:
            return True
        if _form_only(selection) and one.get("form") == selection.form:
            return True
    return False


def _compact(value: object) -> str:
    """JSON as the outbox writes it: no spaces."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _chunks(values: Iterable[str]) -> list[list[str]]:
    listed = sorted(values)
    return [listed[i : i + IN_CHUNK] for i in range(0, len(listed), IN_CHUNK)]


async def purge_held(
    conn: AsyncConnection, project: str, selection: Selection, refs: set[str], now_ms: int
) -> Held:
    """Remove what the control plane holds of the erased responses, in ``conn``'s transaction.

    Follow-up items (with their changes and internal notes) go: those of the respondent, of the
    form, of the whole project, or showing one of ``refs``. Webhook messages still pending for
    some endpoint lose their data and those deliveries fail; pending emails that quote an
    erased response (its key in a link, or its respondent) lose their text and fail; a fired
    alert forgets the response it kept. Safe to run again: what is gone is not found twice.
    """
    held = Held()
    items: set[str] = set()
    base = select(_F.c.id).where(_F.c.project == project)
    if conn.dialect.name == "postgresql":
        # Held until the end, so no change of them (the rules', a person's) comes in between.
        base = base.with_for_update(of=_F)
    if whole(selection):
        items.update((await conn.execute(base)).scalars())
    else:
        if selection.respondent is not None:
            query = base.where(_F.c.respondent == selection.respondent)
            items.update((await conn.execute(query)).scalars())
        if _form_only(selection):
            items.update((await conn.execute(base.where(_F.c.form == selection.form))).scalars())
        for chunk in _chunks(refs):
            items.update((await conn.execute(base.where(_F.c.ref.in_(chunk)))).scalars())
    for chunk in _chunks(items):
        await conn.execute(delete(_C).where(_C.c.followup.in_(chunk)))
        await conn.execute(delete(_F).where(_F.c.id.in_(chunk)))
    held.followups = len(items)

    waiting = select(_D.c.message).where(_D.c.message == _O.c.id, _D.c.state == "pending")
    pending = select(_O.c.id, _O.c.event_type, _O.c.payload).where(
        _O.c.project == project, waiting.exists()
    )
    for message, event_type, payload in await conn.execute(pending):
        sent = json.loads(payload)
        if not _concerns(sent.get("data"), selection, refs):
            continue
        blank = {"type": event_type, "timestamp": sent.get("timestamp"), "data": {ERASED: True}}
        await conn.execute(update(_O).where(_O.c.id == message).values(payload=_compact(blank)))
        await conn.execute(
            update(_D)
            .where(_D.c.message == message, _D.c.state == "pending")
            .values(state="failed", done_ms=now_ms, lease_ms=None)
        )
        held.messages += 1

    marks = {r.partition(".")[2] for r in refs}
    if selection.respondent is not None:
        marks.add(selection.respondent)
    emails = select(_E.c.id, _E.c.text, _E.c.html).where(
        _E.c.project == project, _E.c.state == "pending"
    )
    for email, text, html in await conn.execute(emails):
        if not whole(selection) and not any(m in text or m in html for m in marks):
            continue
        await conn.execute(
            update(_E)
            .where(_E.c.id == email)
            .values(text="", html="", state="failed", error=ERASED, done_ms=now_ms, lease_ms=None)
        )
        held.emails += 1

    fired = select(_A.c.condition, _A.c.period_ms, _A.c.detail).where(_A.c.project == project)
    for condition, period_ms, detail in await conn.execute(fired):
        if _concerns(json.loads(detail), selection, refs) and "response" in json.loads(detail):
            await conn.execute(
                update(_A)
                .where(_A.c.condition == condition, _A.c.period_ms == period_ms)
                .values(detail=_compact({ERASED: True}))
            )
    return held


async def erase(
    service: Service,
    project: Project,
    selection: Selection,
    actor: str,
    *,
    now_ms: int | None = None,
    progress: Progress | None = None,
    address: str | None = None,
) -> Receipt:
    """Erase what ``selection`` names in ``project``, everywhere; its receipt once finished.

    Resumes the unfinished erasure of the same selection if there is one (see the module's
    text for the steps and what a crash leaves). ``actor`` is who asked, for the receipt and
    the audit log.

    Raises:
        StoreUnavailable: a store could not erase (the receipt stays unfinished; run it again).
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    db = service.registry.db
    erasure_id, counts = await _begin(db, project.id, selection, actor, now)
    refs = await _refs_of(service, project, selection)

    async def first(conn: AsyncConnection) -> Held:
        return await purge_held(conn, project.id, selection, refs, now)

    before = await db.arun(first, write=True)
    until = now + service.settings.dedup_age_s * 1000
    for channel in sorted(project.channels):
        if not await service.has_store(channel):
            continue
        store = await service.store(channel)
        erased = await store.erase(project.id, selection, tombstone_until_ms=until)
        refs.update(ref(channel, key) for key, _ in erased.refs)
        counts[channel] = counts.get(channel, 0) + erased.events
        await _save_counts(db, erasure_id, counts)
        window = service.windows.get((project.id, channel))
        if window is not None and erased.refs:
            window.forget([key for key, _ in erased.refs])
        if progress is not None:
            progress(channel, erased.events)

    async def last(conn: AsyncConnection) -> Held:
        after = await purge_held(conn, project.id, selection, refs, now)
        held = Held(
            followups=before.followups + after.followups,
            messages=before.messages + after.messages,
            emails=before.emails + after.emails,
        )
        finished = int(time.time() * 1000) if now_ms is None else now_ms
        await conn.execute(
            update(_R)
            .where(_R.c.id == erasure_id)
            .values(finished_ms=finished, counts=json.dumps(dict(sorted(counts.items()))))
        )
        await audit.record_in(
            conn,
            actor=actor,
            action="erasure",
            project=project.id,
            target=erasure_id,
            detail={
                "scope": scope_of(selection),
                "counts": counts,
                "purged": msgspec.to_builtins(held),
            },
            address=address,
            now_ms=finished,
        )
        return held

    await db.arun(last, write=True)
    found = await receipt(db, project.id, erasure_id)
    assert found is not None, "an erasure's receipt vanished"
    return found


async def resume(service: Service, now_ms: int, *, after_ms: int = RESUME_AFTER_MS) -> int:
    """Finish the erasures left unfinished for ``after_ms`` or more (a crash, a stop); how
    many. One still running elsewhere is only repeated: both runs end in the same state."""
    db = service.registry.db
    done = 0
    for left in await unfinished(db):
        project = service.registry.project_of(left.project)
        row = await _row(db, left.id)
        if project is None or row is None or row.requested_ms + after_ms > now_ms:
            continue
        selection = msgspec.json.decode(row.scope, type=Selection)
        await erase(service, project, selection, row.actor)
        done += 1
    return done


async def _row(db: Database, erasure_id: str) -> Any:
    async def read(conn: AsyncConnection) -> Any:
        return (await conn.execute(select(_R).where(_R.c.id == erasure_id))).first()

    return await db.arun(read)


async def count(service: Service, project: Project, selection: Selection) -> dict[str, int]:
    """What :func:`erase` would remove now, per channel with a store (a dry run)."""
    counts: dict[str, int] = {}
    for channel in sorted(project.channels):
        if await service.has_store(channel):
            store = await service.store(channel)
            counts[channel] = await store.count(project.id, selection)
    return counts
