"""Follow-up items: their status machine, and every change to them, recorded with who and when.

An item is one response (its vote group, or the event when it has none) of a project's channel
and form that a rule matched; ``feed`` makes and follows it, people work it through the API.

The status machine (:data:`NEXT`): ``new → assigned → in_progress → resolved | closed``.

- ``new`` may also go straight to ``in_progress``; any open state may be ``closed`` (not worth
  a follow-up: spam, a duplicate); ``resolved`` is reached from ``in_progress`` only (start the
  work first); ``in_progress`` may go back to ``assigned``.
- Giving a ``new`` item an assignee makes it ``assigned``; taking the assignee away from an
  ``assigned`` one makes it ``new`` again; ``assigned`` needs an assignee.
- ``resolved`` and ``closed`` need a resolution note; both may be reopened to ``in_progress``,
  which clears the note.
- The gateway itself (the actor NULL) closes an open item whose response no rule matches any
  more (the respondent changed their vote), with a note saying so, and reopens an item it closed
  that way when a later vote matches again; an item a person resolved or closed stays so.

Every change is a ``followup_changes`` row (who: a user's id, or NULL for the gateway; when;
what) and a ``followup.updated`` message in the outbox, in the same transaction as the change;
the first change a person makes (an assignment, a note, a status, tags) sets
``first_action_ms``, which the SLA report measures. An illegal transition is a 409 naming
``status`` and the states allowed next.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any, Final, Literal, get_args

import msgspec
from msgspec import UNSET, UnsetType
from sqlalchemy import and_, false, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from voxloop_core import HOUR_MS

from ..control import tables
from ..control.access import Denied
from ..control.groups import read_access
from ..control.inserts import Inserts
from ..errors import ApiError
from ..integrations import outbox
from ..reading.formats import ref_of, rfc3339
from ..reading.params import MAX_TAG_CHARS, MAX_TAGS, ChannelForms
from ..stores.reads import StoredResponse
from .rules import Rule

Status = Literal["new", "assigned", "in_progress", "resolved", "closed"]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
#: The states an item is still to be followed up in.
OPEN: Final[frozenset[str]] = frozenset({"new", "assigned", "in_progress"})
#: The states that end an item; both take a resolution note.
ENDED: Final[frozenset[str]] = frozenset({"resolved", "closed"})
#: Where a person may move an item from each state (assigning and unassigning move ``new`` and
#: ``assigned`` into each other on their own).
NEXT: Final[dict[str, tuple[Status, ...]]] = {
    "new": ("assigned", "in_progress", "closed"),
    "assigned": ("in_progress", "closed"),
    "in_progress": ("assigned", "resolved", "closed"),
    "resolved": ("in_progress",),
    "closed": ("in_progress",),
}
#: An item keeps this much of its response's comment; the response itself has all of it.
EXCERPT_CHARS: Final = 500
MAX_NOTE_CHARS: Final = 5000
MAX_RESOLUTION_CHARS: Final = 2000
#: What ``followup_changes.kind`` says.
ChangeKind = Literal["created", "status", "assignee", "tags", "note", "resolution", "response"]

_F = tables.followups
_U = tables.users
_C = tables.followup_changes
_TAGS: Final = msgspec.json.Decoder(list[str])
_DETAIL: Final = msgspec.json.Decoder(dict[str, Any])


class Person(msgspec.Struct, frozen=True):
    """A user as items show them: their id and email."""

    id: str
    email: str


class FollowupItem(msgspec.Struct, kw_only=True):
    """A follow-up item as ``/v1/followups`` shows it, and as its messages carry it.

    ``subject`` names the response across vote changes (its ``vote_key``, or its key in hex);
    ``ref`` is the response it shows now (``GET /v1/responses/{ref}``), ``score`` and ``metric``
    that response's, ``excerpt`` the start of its comment when last matched; ``rule`` the rule
    that made it. Times are RFC 3339 (UTC, to the millisecond): ``due`` is when it must have
    been followed up, ``first_action`` when a person first changed it, ``closed`` when it was
    resolved or closed, ``breached`` when it went past ``due`` while still open.
    """

    id: str
    project: str
    channel: str
    form: str
    subject: str
    ref: str
    metric: str
    score: int
    excerpt: str | None
    respondent: str | None
    rule: str
    status: Status
    assignee: Person | None
    tags: list[str]
    resolution: str | None
    created: str
    due: str
    first_action: str | None
    closed: str | None
    breached: str | None
    updated: str


class Change(msgspec.Struct, kw_only=True):
    """One change of an item: when, by whom (None: the gateway itself), what and how."""

    at: str
    actor: Person | None
    kind: str
    detail: dict[str, Any]


class Edit(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a person changes of an item (``PATCH /v1/followups/{id}``); a field left out stays.

    ``assignee`` is a user's id or email, or null to unassign; ``resolution`` is the note that
    ``resolved`` and ``closed`` need.
    """

    status: Status | UnsetType = UNSET
    assignee: str | None | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET
    resolution: str | UnsetType = UNSET


def subject_of(response: StoredResponse) -> str:
    """What one item follows across vote changes: the vote group, or the event itself."""
    return response.vote_key if response.vote_key is not None else response.key.hex()


def excerpt_of(response: StoredResponse) -> str | None:
    """The start of ``response``'s comment, as an item keeps it."""
    comment = (response.comment or "").strip()
    if not comment:
        return None
    return comment if len(comment) <= EXCERPT_CHARS else comment[: EXCERPT_CHARS - 1] + "…"


def _time(ms: int | None) -> str | None:
    return None if ms is None else rfc3339(ms)


_ITEM_COLUMNS: Final = (_F, _U.c.email.label("assignee_email"))


def _item_query() -> Any:
    return select(*_ITEM_COLUMNS).select_from(_F.outerjoin(_U, _U.c.id == _F.c.assignee))


def item_of(row: Any) -> FollowupItem:
    """The item a ``followups`` row (joined with its assignee's email) holds."""
    return FollowupItem(
        id=row.id,
        project=row.project,
        channel=row.channel,
        form=row.form,
        subject=row.subject,
        ref=row.ref,
        metric=row.metric,
        score=row.score,
        excerpt=row.excerpt,
        respondent=row.respondent,
        rule=row.rule,
        status=row.status,
        assignee=None if row.assignee is None else Person(row.assignee, row.assignee_email),
        tags=_TAGS.decode(row.tags),
        resolution=row.resolution,
        created=rfc3339(row.created_ms),
        due=rfc3339(row.due_ms),
        first_action=_time(row.first_action_ms),
        closed=_time(row.closed_ms),
        breached=_time(row.breached_ms),
        updated=rfc3339(row.updated_ms),
    )


def payload(item: FollowupItem) -> dict[str, Any]:
    """The ``data`` of a ``followup.*`` message: the item as the API shows it."""
    found: dict[str, Any] = msgspec.to_builtins(item)
    return found


async def read_row(conn: AsyncConnection, item_id: str, *, lock: bool = False) -> Any:
    """The ``followups`` row ``item_id`` with its assignee's email, or None.

    ``lock`` holds the row until the transaction ends (PostgreSQL; a SQLite write transaction
    holds the whole database already), so two changes of one item never interleave.
    """
    query = _item_query().where(_F.c.id == item_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(of=_F)
    return (await conn.execute(query)).first()


async def read_item(conn: AsyncConnection, item_id: str) -> FollowupItem | None:
    """The item ``item_id`` as the API shows it, or None (no scope is applied here)."""
    row = await read_row(conn, item_id)
    return None if row is None else item_of(row)


async def publish(
    conn: AsyncConnection, item_id: str, event_type: str, now_ms: int
) -> FollowupItem:
    """Put a ``followup.*`` message of the item as it is now in the outbox; the item."""
    item = await read_item(conn, item_id)
    assert item is not None, "publish() of an item that isn't there"
    await outbox.enqueue(conn, item.project, event_type, payload(item), now_ms)
    return item


async def record(
    conn: AsyncConnection,
    item_id: str,
    actor: str | None,
    kind: ChangeKind,
    detail: Mapping[str, Any],
    now_ms: int,
) -> None:
    """Write one change of an item: ``actor`` a user's id, or None for the gateway."""
    await conn.execute(insert(_C).values(change_row(item_id, actor, kind, detail, now_ms)))


def change_row(
    item_id: str, actor: str | None, kind: ChangeKind, detail: Mapping[str, Any], now_ms: int
) -> dict[str, Any]:
    """The ``followup_changes`` row of one change (:func:`record`)."""
    return {
        "followup": item_id,
        "at_ms": now_ms,
        "actor": actor,
        "kind": kind,
        "detail": json.dumps(dict(detail), ensure_ascii=False, separators=(",", ":")),
    }


async def changes(conn: AsyncConnection, item_id: str) -> list[Change]:
    """Every change of an item, oldest first, with who made it."""
    found = await conn.execute(
        select(_C.c.at_ms, _C.c.actor, _U.c.email, _C.c.kind, _C.c.detail)
        .select_from(_C.outerjoin(_U, _U.c.id == _C.c.actor))
        .where(_C.c.followup == item_id)
        .order_by(_C.c.id)
    )
    return [
        Change(
            at=rfc3339(at_ms),
            actor=None if actor is None else Person(actor, email),
            kind=kind,
            detail=_DETAIL.decode(detail),
        )
        for at_ms, actor, email, kind, detail in found
    ]


# --- what the gateway does: items from responses -----------------------------------------------


async def create(
    conn: AsyncConnection,
    project: str,
    response: StoredResponse,
    rule: Rule,
    now_ms: int,
    *,
    into: Inserts | None = None,
    endpoints: Sequence[outbox.Endpoint] | None = None,
) -> FollowupItem:
    """Make the item of ``response``, due ``rule.sla_hours`` from now; ``followup.created``.

    ``into`` keeps the rows (the item, its change, the message) for the caller's batch rather
    than writing them now; ``endpoints`` are the project's, when the caller has them.
    """
    row: dict[str, Any] = {
        "id": outbox.new_id("fu_"),
        "project": project,
        "channel": response.channel,
        "form": response.form,
        "subject": subject_of(response),
        "ref": ref_of(response),
        "metric": response.metric,
        "score": response.score,
        "excerpt": excerpt_of(response),
        "respondent": response.respondent,
        "rule": rule.id,
        "status": "new",
        "assignee": None,
        "tags": "[]",
        "resolution": None,
        "created_ms": now_ms,
        "due_ms": now_ms + rule.sla_hours * HOUR_MS,
        "first_action_ms": None,
        "closed_ms": None,
        "breached_ms": None,
        "updated_ms": now_ms,
    }
    writes = Inserts() if into is None else into
    writes.add(_F, row)
    detail = {"rule": rule.id, "ref": row["ref"], "score": response.score}
    writes.add(_C, change_row(row["id"], None, "created", detail, now_ms))
    # The item as its row reads back: nobody is assigned to a new one.
    item = item_of(SimpleNamespace(**row, assignee_email=None))
    await outbox.enqueue(
        conn, project, "followup.created", payload(item), now_ms, endpoints=endpoints, into=writes
    )
    if into is None:
        await writes.flush(conn)
    return item


async def _closed_by_gateway(conn: AsyncConnection, item_id: str) -> bool:
    """Whether the item's last change of status was the gateway's own."""
    found = await conn.execute(
        select(_C.c.actor)
        .where(_C.c.followup == item_id, _C.c.kind == "status")
        .order_by(_C.c.id.desc())
        .limit(1)
    )
    row = found.first()
    return row is not None and row.actor is None


async def follow(
    conn: AsyncConnection,
    row: Any,
    response: StoredResponse | None,
    rule: Rule | None,
    now_ms: int,
    *,
    reason: str,
) -> FollowupItem | None:
    """Bring an item up to date with its response's answer now; None if nothing changed.

    Args:
        row: the item's row (:func:`read_row`).
        response: the answer its subject holds now (a changed vote, a comment added), or None
            when no answer of it counts any more.
        rule: the rule that matches ``response`` now, or None when none does.
        reason: why an item the gateway closes is closed: its resolution note.

    An answer no rule matches closes an open item (the gateway is the actor, ``reason`` the
    note); an answer that matches updates it, and reopens an item the gateway had closed so.
    Either way it stays one item. Repeating a call with the same answer changes nothing.
    """
    values: dict[str, Any] = {}
    before = {"ref": row.ref, "metric": row.metric, "score": row.score}
    if response is not None:
        now = {"ref": ref_of(response), "metric": response.metric, "score": response.score}
        if now != before:
            values.update(now)
        if response.respondent != row.respondent:
            values["respondent"] = response.respondent
        if rule is not None and excerpt_of(response) != row.excerpt:
            values["excerpt"] = excerpt_of(response)
    status = row.status
    if rule is None and status in OPEN:
        status = "closed"
        values.update(status="closed", resolution=reason, closed_ms=now_ms)
    elif rule is not None and status == "closed" and await _closed_by_gateway(conn, row.id):
        status = "assigned" if row.assignee is not None else "new"
        values.update(
            status=status,
            resolution=None,
            closed_ms=None,
            breached_ms=None,
            rule=rule.id,
            due_ms=now_ms + rule.sla_hours * HOUR_MS,
        )
    if not values:
        return None
    values["updated_ms"] = now_ms
    await conn.execute(update(_F).where(_F.c.id == row.id).values(values))
    answer: dict[str, Any] = {
        k: values[k] for k in ("ref", "metric", "score", "excerpt") if k in values
    }
    if answer:
        await record(conn, row.id, None, "response", {**answer, "from": before}, now_ms)
    if status != row.status:
        detail: dict[str, Any] = {"from": row.status, "to": status}
        if status == "closed":
            detail["resolution"] = reason
        await record(conn, row.id, None, "status", detail, now_ms)
    return await publish(conn, row.id, "followup.updated", now_ms)


# --- what people do: status, assignee, tags, notes --------------------------------------------


async def find_assignee(
    conn: AsyncConnection, given: str, project: str, channel: str, form: str
) -> Person:
    """The user ``given`` names (their id or email), if they may see this item's inbox.

    Raises:
        ApiError: 422 naming ``assignee``: no such user (or disabled), or one whose groups
            don't show the follow-up inbox of the item's channel and form.
    """
    by_email = "@" in given
    column = _U.c.email if by_email else _U.c.id
    wanted = given.strip().lower() if by_email else given
    found = await conn.execute(
        select(_U.c.id, _U.c.email, _U.c.disabled_ms).where(column == wanted)
    )
    row = found.first()
    if row is None or row.disabled_ms is not None:
        raise ApiError(422, f"assignee {given!r} is not an active user")
    access = await read_access(conn, row.id, row.email)
    try:
        forms = access.visible("inbox", project, (channel,)).get(channel, frozenset())
    except Denied:
        forms = frozenset()
    if forms is not None and form not in forms:
        raise ApiError(
            422,
            f"assignee {row.email!r} can't see the follow-up inbox of project {project!r},"
            f" channel {channel!r}, form {form!r}",
        )
    return Person(row.id, row.email)


def checked_tags(tags: Sequence[str]) -> list[str]:
    """Tags as an item keeps them: trimmed, without repeats, in order; 422 naming ``tags``."""
    kept = list(dict.fromkeys(tag.strip() for tag in tags))
    if len(kept) > MAX_TAGS:
        raise ApiError(422, f"tags: at most {MAX_TAGS}, got {len(kept)}")
    for tag in kept:
        if not 1 <= len(tag) <= MAX_TAG_CHARS or not tag.isprintable():
            raise ApiError(
                422, f"tags: each must be 1-{MAX_TAG_CHARS} printable characters, got {tag!r}"
            )
    return kept


def _transition(current: str, wanted: Status) -> None:
    if wanted not in NEXT[current]:
        allowed = ", ".join(NEXT[current])
        hint = "; unassign it (assignee null) to make it new" if wanted == "new" else ""
        raise ApiError(
            409,
            f"status: an item {current!r} can't become {wanted!r}; allowed next: {allowed}{hint}",
        )


async def edit(
    conn: AsyncConnection, row: Any, asked: Edit, actor: str, now_ms: int
) -> FollowupItem:
    """Apply a person's changes to an item, each recorded; ``followup.updated`` if any.

    The assignee is applied first (which may move ``new`` and ``assigned`` into each other),
    then the status. A field given with the value it has already changes nothing.

    Raises:
        ApiError: 409 naming ``status`` for a transition :data:`NEXT` doesn't allow (or
            ``assigned`` without an assignee); 422 naming ``assignee``, ``tags`` or
            ``resolution`` for a value that breaks its rule.
    """
    values: dict[str, Any] = {}
    done: list[tuple[ChangeKind, dict[str, Any]]] = []
    status: str = row.status
    assignee = row.assignee
    if asked.assignee is not UNSET:
        person = None
        if asked.assignee is not None:
            person = await find_assignee(conn, asked.assignee, row.project, row.channel, row.form)
        wanted = None if person is None else person.id
        if wanted != row.assignee:
            assignee = values["assignee"] = wanted
            done.append(("assignee", {"from": row.assignee, "to": wanted}))
            if wanted is not None and status == "new":
                status = "assigned"
            elif wanted is None and status == "assigned":
                status = "new"
    if asked.status is not UNSET and asked.status != status:
        _transition(status, asked.status)
        status = asked.status
    if status == "assigned" and assignee is None:
        raise ApiError(409, "status: 'assigned' needs an assignee; give assignee too")
    resolution = _resolution(asked, row, status)
    if status != row.status:
        values["status"] = status
        detail: dict[str, Any] = {"from": row.status, "to": status}
        if status in ENDED:
            values.update(resolution=resolution, closed_ms=now_ms)
            detail["resolution"] = resolution
        elif row.status in ENDED:
            values.update(resolution=None, closed_ms=None)
        done.append(("status", detail))
    elif resolution is not None and resolution != row.resolution:
        values["resolution"] = resolution
        done.append(("resolution", {"from": row.resolution, "to": resolution}))
    if asked.tags is not UNSET:
        tags = checked_tags(asked.tags)
        old = _TAGS.decode(row.tags)
        if tags != old:
            values["tags"] = json.dumps(tags, ensure_ascii=False)
            done.append(("tags", {"from": old, "to": tags}))
    if not done:
        return item_of(row)
    values["updated_ms"] = now_ms
    if row.first_action_ms is None:
        values["first_action_ms"] = now_ms
    await conn.execute(update(_F).where(_F.c.id == row.id).values(values))
    for kind, detail in done:
        await record(conn, row.id, actor, kind, detail, now_ms)
    return await publish(conn, row.id, "followup.updated", now_ms)


def _resolution(asked: Edit, row: Any, status: str) -> str | None:
    """The resolution note an edit leaves, checked; 422 naming ``resolution``."""
    given = None if asked.resolution is UNSET else asked.resolution.strip()
    if given is not None and not 1 <= len(given) <= MAX_RESOLUTION_CHARS:
        raise ApiError(
            422, f"resolution must be 1-{MAX_RESOLUTION_CHARS} characters besides spaces"
        )
    if status not in ENDED:
        if given is not None:
            raise ApiError(
                422, "resolution: only an item that is or becomes resolved or closed takes one"
            )
        return None
    if status != row.status and given is None:
        raise ApiError(422, f"resolution is required to make an item {status}: say what was done")
    return given


async def add_note(
    conn: AsyncConnection, row: Any, text: str, actor: str, now_ms: int
) -> FollowupItem:
    """Add an internal note to an item (a change like any other); 422 naming ``text``."""
    note = text.strip()
    if not 1 <= len(note) <= MAX_NOTE_CHARS:
        raise ApiError(422, f"text must be 1-{MAX_NOTE_CHARS} characters besides spaces")
    values: dict[str, Any] = {"updated_ms": now_ms}
    if row.first_action_ms is None:
        values["first_action_ms"] = now_ms
    await conn.execute(update(_F).where(_F.c.id == row.id).values(values))
    await record(conn, row.id, actor, "note", {"text": note}, now_ms)
    return await publish(conn, row.id, "followup.updated", now_ms)


# --- reading lists ----------------------------------------------------------------------------

View = Literal["all", "mine", "unassigned", "overdue"]
VIEWS: Final[tuple[View, ...]] = get_args(View)


def in_scope(channels: ChannelForms) -> ColumnElement[bool]:
    """The items of these channels, each of its own forms (None: every form)."""
    parts = [
        _F.c.channel == channel
        if forms is None
        else and_(_F.c.channel == channel, _F.c.form.in_(forms))
        for channel, forms in channels.items()
    ]
    return or_(*parts) if parts else false()


def visible(row: Any, channels: ChannelForms) -> bool:
    """Whether an item's row lies within ``channels`` (and their forms)."""
    if row.channel not in channels:
        return False
    forms = channels[row.channel]
    return forms is None or row.form in forms


async def list_items(
    conn: AsyncConnection,
    project: str,
    channels: ChannelForms,
    *,
    view: View,
    me: str | None,
    statuses: Sequence[str] | None,
    after: tuple[int, str] | None,
    limit: int,
    now_ms: int,
) -> list[FollowupItem]:
    """A page of ``project``'s items within ``channels``, newest first.

    Args:
        view: ``mine`` (assigned to ``me``), ``unassigned``, ``overdue`` (open past due) or
            ``all``.
        statuses: only these statuses; None for all.
        after: the page starts after this ``(created_ms, id)``.
        limit: most items returned.
    """
    query = _item_query().where(_F.c.project == project, in_scope(channels))
    if view == "mine":
        query = query.where(_F.c.assignee == me)
    elif view == "unassigned":
        query = query.where(_F.c.assignee.is_(None))
    elif view == "overdue":
        query = query.where(_F.c.status.in_(sorted(OPEN)), _F.c.due_ms <= now_ms)
    if statuses is not None:
        query = query.where(_F.c.status.in_(list(statuses)))
    if after is not None:
        created, item_id = after
        query = query.where(
            or_(_F.c.created_ms < created, and_(_F.c.created_ms == created, _F.c.id < item_id))
        )
    query = query.order_by(_F.c.created_ms.desc(), _F.c.id.desc()).limit(limit)
    return [item_of(row) for row in await conn.execute(query)]


async def emails_of(conn: AsyncConnection, user_ids: Iterable[str]) -> dict[str, str]:
    """The email of each of ``user_ids`` that is a user (disabled ones too): what a page shows
    of the assignees a change names by id."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    found = await conn.execute(select(_U.c.id, _U.c.email).where(_U.c.id.in_(wanted)))
    return {user_id: email for user_id, email in found}


__all__ = [
    "ENDED",
    "EXCERPT_CHARS",
    "NEXT",
    "OPEN",
    "STATUSES",
    "VIEWS",
    "Change",
    "Edit",
    "FollowupItem",
    "Person",
    "Status",
    "View",
    "add_note",
    "changes",
    "checked_tags",
    "create",
    "edit",
    "emails_of",
    "excerpt_of",
    "find_assignee",
    "follow",
    "in_scope",
    "item_of",
    "list_items",
    "payload",
    "publish",
    "read_item",
    "read_row",
    "record",
    "subject_of",
    "visible",
]
