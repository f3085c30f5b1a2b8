"""The SLA clock of follow-up items: breaches marked and escalated once, and the within-SLA share.

An item is due ``sla_hours`` (its rule's) after it was made (:func:`due_at`).
:func:`scan_breaches` marks the open items whose time is up (due at or before ``now``) as
breached, and in the same transaction tells of it: a ``followup.breached`` message in the
outbox, an escalation email to the rule's ``escalate_to`` (see :func:`escalation_recipients`)
and a change of the item (actor NULL: the gateway). The UPDATE that marks an item holds
``breached_ms IS NULL`` in its WHERE, and on PostgreSQL the candidates are read ``FOR UPDATE
SKIP LOCKED``: several replicas scanning at once mark, tell and escalate each item once.

"Followed up within the SLA" is written once, in :func:`outcome`: a person's first action on
the item (``first_action_ms``: the first change made by a person, a note included) at or before
its due time. :func:`sla_report` counts it over the items made in a window, overall, per team
and per period, with the median time to first action: the benchmark's "feedback is followed up
within 48 hours", measured.

Every function takes the time as ``now_ms``: workers pass the clock's, tests their own.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal

import msgspec
from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop_core import HOUR_MS

from ..control import tables
from ..control.db import Database
from ..errors import ApiError
from ..integrations import messages, outbox
from . import items

#: The statuses of an item somebody still has to act on.
OPEN_STATUSES: Final = ("new", "assigned", "in_progress")
#: The built-in group whose members hear of a breach when its rule names nobody who can.
OWNER_GROUP: Final = "owner"
#: The language of an email to an address of nobody's digest.
DEFAULT_LANG: Final = "en"
#: Where the per-team figures count items nobody is assigned to.
UNASSIGNED: Final = "unassigned"
#: Most items one transaction of :func:`scan_breaches` marks; it goes on until none is left.
BREACH_BATCH: Final = 200
#: Most periods a report is cut into: a year by the day, or ten years by the week.
MAX_PERIODS: Final = 1000

Outcome = Literal["met", "missed", "pending", "moot"]

_ITEMS = tables.followups
_RULES = tables.rules
_USERS = tables.users


def due_at(created_ms: int, sla_hours: int) -> int:
    """When an item made at ``created_ms`` under a rule of ``sla_hours`` is due: exactly that
    many hours later, to the millisecond."""
    return created_ms + sla_hours * HOUR_MS


def outcome(
    first_action_ms: int | None, due_ms: int, closed_ms: int | None, now_ms: int
) -> Outcome:
    """Whether an item was followed up within its SLA, as of ``now_ms``.

    - ``met``: a person first acted on it at or before its due time;
    - ``missed``: a person first acted after it, or nobody has and the due time has passed;
    - ``pending``: nobody has acted yet and it is not past due (at its due time to the
      millisecond, an action still counts as in time, though the breach is already marked);
    - ``moot``: the gateway closed it (the respondent changed their vote out of the rule's
      range) before its due time and before anyone acted: nobody had to follow it up.

    Only ``met`` and ``missed`` are counted in the share.
    """
    if first_action_ms is not None:
        return "met" if first_action_ms <= due_ms else "missed"
    if closed_ms is not None and closed_ms <= due_ms:
        return "moot"
    return "missed" if now_ms > due_ms else "pending"


# --- breaches -------------------------------------------------------------------------------


async def scan_breaches(db: Database, now_ms: int, *, base_url: str | None = None) -> int:
    """Mark every open item due at or before ``now_ms`` as breached, once; how many were.

    Each batch of :data:`BREACH_BATCH` items is one transaction that marks them, writes a
    ``breached`` change (actor NULL), enqueues a ``followup.breached`` message and emails the
    escalation (:func:`escalation_recipients`), each recipient in their language
    (:func:`languages_of`), linking to the item under ``base_url`` (``Settings.base_url``;
    None: no link). An item another replica marked first, or holds locked this instant, is
    left to it.
    """
    total = 0
    while True:
        marked, found = await db.arun(
            lambda conn: _breach_batch(conn, db.dialect, now_ms, base_url), write=True
        )
        total += marked
        if found < BREACH_BATCH or not marked:  # none left, or the rest are another's
            return total


async def _breach_batch(
    conn: AsyncConnection, dialect: str, now_ms: int, base_url: str | None
) -> tuple[int, int]:
    """One batch: (items marked, candidates found)."""
    query = (
        select(
            _ITEMS,
            _RULES.c.name.label("rule_name"),
            _RULES.c.escalate_to,
        )
        .join(_RULES, _RULES.c.id == _ITEMS.c.rule)
        .where(
            _ITEMS.c.status.in_(OPEN_STATUSES),
            _ITEMS.c.due_ms <= now_ms,
            _ITEMS.c.breached_ms.is_(None),
        )
        .order_by(_ITEMS.c.due_ms, _ITEMS.c.id)
        .limit(BREACH_BATCH)
    )
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True, of=_ITEMS)
    candidates = (await conn.execute(query)).all()
    marked = 0
    owners: list[str] | None = None
    for item in candidates:
        done = await conn.execute(
            update(_ITEMS)
            .where(_ITEMS.c.id == item.id, _ITEMS.c.breached_ms.is_(None))
            .values(breached_ms=now_ms, updated_ms=now_ms)
        )
        if done.rowcount != 1:
            continue  # another replica's, committed since we read it
        marked += 1
        recipients = await escalation_recipients(conn, item.escalate_to)
        if recipients is None:
            if owners is None:
                owners = await _owners(conn)
            recipients = owners
        await _tell(conn, item, recipients, now_ms, base_url)
    return marked, len(candidates)


async def escalation_recipients(conn: AsyncConnection, escalate_to: str | None) -> list[str] | None:
    """Who hears of a breach under a rule's ``escalate_to``; None: the owners.

    An email address is taken as it is; a user's id is that user's email while they are
    enabled. A rule naming nobody, or a user who is gone or disabled, escalates to the members
    of the built-in ``owner`` group (enabled ones), who see every project: a breach is never
    told to nobody while the gateway has an owner.
    """
    if escalate_to is None or not escalate_to.strip():
        return None
    if "@" in escalate_to:
        return [escalate_to.strip().lower()]
    found = await conn.execute(
        select(_USERS.c.email).where(_USERS.c.id == escalate_to, _USERS.c.disabled_ms.is_(None))
    )
    email = found.scalar_one_or_none()
    return None if email is None else [email]


async def _owners(conn: AsyncConnection) -> list[str]:
    found = await conn.execute(
        select(_USERS.c.email)
        .join(tables.memberships, tables.memberships.c.user == _USERS.c.id)
        .where(tables.memberships.c.group == OWNER_GROUP, _USERS.c.disabled_ms.is_(None))
        .order_by(_USERS.c.email)
    )
    return list(found.scalars())


async def languages_of(
    conn: AsyncConnection, project: str, emails: Iterable[str]
) -> dict[str, str]:
    """The language to write to each of ``emails`` about ``project``: a user's, as their digest
    of the project says; else English."""
    wanted = list(emails)
    found = await conn.execute(
        select(_USERS.c.email, tables.digests.c.lang)
        .join(tables.digests, tables.digests.c.user == _USERS.c.id)
        .where(_USERS.c.email.in_(wanted), tables.digests.c.project == project)
    )
    known = {email: lang for email, lang in found}
    return {email: known.get(email, DEFAULT_LANG) for email in wanted}


async def _tell(
    conn: AsyncConnection, item: Row[Any], recipients: list[str], now_ms: int, base_url: str | None
) -> None:
    """The breach's change, message (:func:`.items.publish`) and emails, in the marking
    transaction."""
    await conn.execute(
        insert(tables.followup_changes).values(
            followup=item.id,
            at_ms=now_ms,
            actor=None,
            kind="breached",
            detail=json.dumps({"due_ms": item.due_ms, "escalated_to": recipients}),
        )
    )
    # The item as it is now, breached: the shape of every followup.* message.
    shown = await items.publish(conn, item.id, "followup.breached", now_ms)
    assignee = None if shown.assignee is None else shown.assignee.email
    for recipient, lang in (await languages_of(conn, item.project, recipients)).items():
        email = messages.breach_email(
            lang,
            project=item.project,
            item=item.id,
            rule=item.rule_name,
            sla_hours=(item.due_ms - item.created_ms) // HOUR_MS,
            channel=item.channel,
            form=item.form,
            metric=item.metric,
            score=item.score,
            excerpt=item.excerpt,
            status=item.status,
            assignee=assignee,
            created_ms=item.created_ms,
            due_ms=item.due_ms,
            base_url=base_url,
        )
        await outbox.enqueue_email(conn, item.project, recipient, *email, now_ms)


# --- the report -----------------------------------------------------------------------------


class SlaFigures(msgspec.Struct, kw_only=True):
    """The within-SLA figures of some items (see :func:`outcome`).

    ``items`` counts them all; ``met``, ``missed`` and ``pending`` by outcome (the rest are
    moot). ``share`` is the percentage of ``met`` among ``met + missed``, rounded to 1 decimal,
    null when neither has any. ``median_first_action_ms`` is the median time from an item's
    making to a person's first action, over the ``acted`` items that had one; of an even count
    it is the lower of the two middle values (an observed duration, whole milliseconds), null
    without any.
    """

    items: int
    met: int
    missed: int
    pending: int
    share: float | None
    acted: int
    median_first_action_ms: int | None


class SlaPeriod(SlaFigures, kw_only=True):
    """The figures of the items made in one period, starting at ``start_ms``."""

    start_ms: int


class SlaReport(msgspec.Struct, kw_only=True):
    """The within-SLA share of a project's items made in ``[start_ms, end_ms)``, as of
    ``now_ms``: ``overall``, per ``teams`` and per ``periods`` of ``step_ms`` from ``start_ms``
    (every one, empty or not, the last one cut at ``end_ms``).

    An item counts in the team of each access group its assignee is in now (a person in two
    groups counts in both; one in none, in no team), and under :data:`UNASSIGNED` without an
    assignee; teams without items are left out.
    """

    project: str
    start_ms: int
    end_ms: int
    now_ms: int
    step_ms: int
    overall: SlaFigures
    teams: dict[str, SlaFigures]
    periods: list[SlaPeriod]


class _Tally:
    """Outcomes and first-action times, added up item by item."""

    def __init__(self) -> None:
        self.counts = {"met": 0, "missed": 0, "pending": 0, "moot": 0}
        self.waits: list[int] = []

    def add(self, result: Outcome, wait_ms: int | None) -> None:
        self.counts[result] += 1
        if wait_ms is not None:
            self.waits.append(wait_ms)

    def figures(self) -> SlaFigures:
        met, missed = self.counts["met"], self.counts["missed"]
        return SlaFigures(
            items=sum(self.counts.values()),
            met=met,
            missed=missed,
            pending=self.counts["pending"],
            share=round(100 * met / (met + missed), 1) if met + missed else None,
            acted=len(self.waits),
            median_first_action_ms=statistics.median_low(self.waits) if self.waits else None,
        )


async def sla_report(
    db: Database,
    project: str,
    start_ms: int,
    end_ms: int,
    now_ms: int,
    step_ms: int,
    channels: Mapping[str, Iterable[str] | None],
) -> SlaReport:
    """The within-SLA figures of ``project``'s items made in ``[start_ms, end_ms)``.

    Args:
        channels: what the asker may see (``Access.visible("inbox", ...)``): each channel with
            its forms (None: every form); only those items are counted.
        step_ms: the length of the trend's periods (a day, a week...).

    Raises:
        ApiError: 400 naming ``to`` when the window is empty, ``step`` when it is not positive
            or cuts the window in more than :data:`MAX_PERIODS` periods.
    """
    if end_ms <= start_ms:
        raise ApiError(400, "to must be after from")
    if step_ms <= 0:
        raise ApiError(400, f"step must be a positive duration; got {step_ms} ms")
    periods = -(-(end_ms - start_ms) // step_ms)
    if periods > MAX_PERIODS:
        raise ApiError(400, f"step cuts the window into {periods} periods; at most {MAX_PERIODS}")
    visible = {c: None if forms is None else frozenset(forms) for c, forms in channels.items()}
    rows, teams_of = await db.arun(
        lambda conn: _report_rows(conn, project, start_ms, end_ms, list(visible))
    )
    overall = _Tally()
    teams: dict[str, _Tally] = {}
    by_period = [_Tally() for _ in range(periods)]
    for row in rows:
        forms = visible[row.channel]
        if forms is not None and row.form not in forms:
            continue
        result = outcome(row.first_action_ms, row.due_ms, row.closed_ms, now_ms)
        wait = None if row.first_action_ms is None else row.first_action_ms - row.created_ms
        overall.add(result, wait)
        by_period[(row.created_ms - start_ms) // step_ms].add(result, wait)
        names = [UNASSIGNED] if row.assignee is None else teams_of.get(row.assignee, [])
        for name in names:
            teams.setdefault(name, _Tally()).add(result, wait)
    return SlaReport(
        project=project,
        start_ms=start_ms,
        end_ms=end_ms,
        now_ms=now_ms,
        step_ms=step_ms,
        overall=overall.figures(),
        teams={name: tally.figures() for name, tally in sorted(teams.items())},
        periods=[
            SlaPeriod(start_ms=start_ms + i * step_ms, **msgspec.structs.asdict(t.figures()))
            for i, t in enumerate(by_period)
        ],
    )


async def _report_rows(
    conn: AsyncConnection, project: str, start_ms: int, end_ms: int, channels: Sequence[str]
) -> tuple[list[Any], dict[str, list[str]]]:
    """The items of the window in ``channels``, and the groups of each of their assignees."""
    found = await conn.execute(
        select(
            _ITEMS.c.channel,
            _ITEMS.c.form,
            _ITEMS.c.assignee,
            _ITEMS.c.created_ms,
            _ITEMS.c.due_ms,
            _ITEMS.c.first_action_ms,
            _ITEMS.c.closed_ms,
        ).where(
            _ITEMS.c.project == project,
            _ITEMS.c.created_ms >= start_ms,
            _ITEMS.c.created_ms < end_ms,
            _ITEMS.c.channel.in_(channels),
        )
    )
    rows = list(found.all())
    assignees = sorted({row.assignee for row in rows if row.assignee is not None})
    teams: dict[str, list[str]] = {}
    if assignees:
        members = await conn.execute(
            select(tables.memberships.c.user, tables.memberships.c.group).where(
                tables.memberships.c.user.in_(assignees)
            )
        )
        for user, group in members:
            teams.setdefault(user, []).append(group)
    return rows, teams


__all__ = [
    "BREACH_BATCH",
    "DEFAULT_LANG",
    "MAX_PERIODS",
    "OPEN_STATUSES",
    "OWNER_GROUP",
    "UNASSIGNED",
    "Outcome",
    "SlaFigures",
    "SlaPeriod",
    "SlaReport",
    "due_at",
    "escalation_recipients",
    "languages_of",
    "outcome",
    "scan_breaches",
    "sla_report",
]
