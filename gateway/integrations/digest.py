"""Digests: per user and project, daily or weekly, the scores per channel and the open follow-ups.

A ``digests`` row asks for one user's digest of one project, ``daily`` or ``weekly``, in one
language. It is due once a UTC day (a week, from Monday 00:00 UTC) has begun since the last
one was written (:func:`is_due`; a new row is due at once). The digest covers the last whole
period before now (:func:`period_of`: yesterday, or last Monday to Sunday) against the one
before it:

- each metric with answers in either period, per channel, scored as ``/v1/stats`` scores it
  (:func:`~..reading.stats.read` and :func:`~..reading.stats.answer`), within what the user
  may see of the dashboard (:func:`~..reading.params.scope`, as the dashboard's page reads it):
  a user scoped to one channel, or to some forms, gets those only;
- the open follow-up items (new, assigned, in progress) the user may see in the follow-up
  inbox, overdue first then due soonest, the first :data:`MAX_ITEMS` and how many there are.

A user who may see neither, or who is disabled, gets nothing; the period counts as done.

The email is written to the outbox and the row's ``last_ms`` moved in one transaction, by an
UPDATE that holds the ``last_ms`` it read in its WHERE (``IS NOT DISTINCT FROM``): of two
replicas writing the same digest at once, the second changes no row, and writes no email.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Final, Literal, NamedTuple, get_args

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop_core import DAY_MS, METRIC_RANGES, bucket_start

from ..control import tables
from ..control.access import Access, Denied, Visible
from ..control.groups import read_access
from ..control.registry import Project
from ..followups.sla import OPEN_STATUSES
from ..reading.params import ChannelForms, scope
from ..reading.stats import answer, read
from ..service import Service
from . import outbox
from .messages import DigestContent, Email, Frequency, OpenItem, ScoreTrend, digest_email

__all__ = [
    "FREQUENCIES",
    "MAX_ITEMS",
    "gather_digest",
    "is_due",
    "period_of",
    "write_digests",
]

#: How often a digest may come.
FREQUENCIES: Final[tuple[Frequency, ...]] = get_args(Frequency)
#: The most follow-up items a digest lists; it says how many there are in all.
MAX_ITEMS: Final = 10
#: The unit of each frequency, as :func:`voxloop_core.bucket_start` takes it.
_UNITS: Final[dict[str, Literal["day", "week"]]] = {"daily": "day", "weekly": "week"}
_LENGTHS: Final[dict[str, int]] = {"daily": DAY_MS, "weekly": 7 * DAY_MS}

_DIGESTS = tables.digests
_ITEMS = tables.followups
_USERS = tables.users


def period_of(frequency: Frequency, now_ms: int) -> tuple[int, int]:
    """The last whole period before ``now_ms``: ``(start_ms, end_ms)``, the end excluded.

    Daily: the UTC day before today's. Weekly: the week (Monday 00:00 UTC on) before this one.
    """
    end = bucket_start(now_ms, _UNITS[frequency])
    return end - _LENGTHS[frequency], end


def is_due(frequency: Frequency, last_ms: int | None, now_ms: int) -> bool:
    """Whether a digest last written at ``last_ms`` (None: never) is due at ``now_ms``: a UTC
    day (daily) or a week from Monday (weekly) has begun since."""
    return last_ms is None or last_ms < bucket_start(now_ms, _UNITS[frequency])


class _Due(NamedTuple):
    """A digest that is due, with whom it goes to and what they may see now."""

    user: str
    email: str
    project: str
    frequency: Frequency
    lang: str
    last_ms: int | None
    access: Access | None  # None: the user is disabled


async def write_digests(service: Service, now_ms: int) -> int:
    """Write every digest due at ``now_ms`` to the email outbox; how many emails were written.

    Each is written with its row's ``last_ms`` moved to ``now_ms``, in one transaction, unless
    another replica wrote it first.
    """
    db = service.registry.db
    due = await db.arun(functools.partial(_due, now_ms=now_ms))
    written = 0
    for digest in due:
        project = service.registry.project_of(digest.project)
        if project is None:
            continue  # made since the registry was last read: next round
        content = None
        if digest.access is not None:
            content = await gather_digest(service, project, digest.access, digest.frequency, now_ms)
        email = None
        if content is not None:
            email = digest_email(digest.lang, content, base_url=service.settings.base_url)
        done = await db.arun(
            functools.partial(_write, digest=digest, email=email, now_ms=now_ms), write=True
        )
        if done and email is not None:
            written += 1
    return written


async def _due(conn: AsyncConnection, *, now_ms: int) -> list[_Due]:
    found = await conn.execute(
        select(
            _DIGESTS.c.user,
            _USERS.c.email,
            _USERS.c.disabled_ms,
            _DIGESTS.c.project,
            _DIGESTS.c.frequency,
            _DIGESTS.c.lang,
            _DIGESTS.c.last_ms,
        )
        .join(_USERS, _USERS.c.id == _DIGESTS.c.user)
        .order_by(_DIGESTS.c.project, _USERS.c.email)
    )
    due = []
    for user, email, disabled_ms, project, frequency, lang, last_ms in found:
        if not is_due(frequency, last_ms, now_ms):
            continue
        access = None if disabled_ms is not None else await read_access(conn, user, email)
        due.append(_Due(user, email, project, frequency, lang, last_ms, access))
    return due


async def _write(conn: AsyncConnection, *, digest: _Due, email: Email | None, now_ms: int) -> bool:
    """Move the row's ``last_ms`` from what was read to ``now_ms`` and write ``email``; False
    (and nothing written) when another replica moved it first."""
    moved = await conn.execute(
        update(_DIGESTS)
        .where(
            _DIGESTS.c.user == digest.user,
            _DIGESTS.c.project == digest.project,
            _DIGESTS.c.last_ms.is_not_distinct_from(digest.last_ms),
        )
        .values(last_ms=now_ms)
    )
    if moved.rowcount != 1:
        return False
    if email is not None:
        await outbox.enqueue_email(conn, digest.project, digest.email, *email, now_ms)
    return True


async def gather_digest(
    service: Service, project: Project, access: Access, frequency: Frequency, now_ms: int
) -> DigestContent | None:
    """What ``access``'s digest of ``project`` says at ``now_ms``; None when it may see neither
    the dashboard nor the follow-up inbox of the project."""
    start, end = period_of(frequency, now_ms)
    scores = None
    try:
        channels = scope(access, "dashboard", project, None, None)
    except Denied:
        pass
    else:
        scores = await _scores(service, project.id, channels, start, end)
    items, open_count, overdue_count = None, 0, 0
    try:
        inbox = access.visible("inbox", project.id, project.channels)
    except Denied:
        pass
    else:
        items, open_count, overdue_count = await service.registry.db.arun(
            functools.partial(_open_items, project=project.id, inbox=inbox, now_ms=now_ms)
        )
    if scores is None and items is None:
        return None
    return DigestContent(
        project=project.id,
        frequency=frequency,
        start_ms=start,
        end_ms=end,
        now_ms=now_ms,
        scores=scores,
        items=items,
        open_count=open_count,
        overdue_count=overdue_count,
    )


async def _scores(
    service: Service, project: str, channels: ChannelForms, start: int, end: int
) -> list[ScoreTrend]:
    """Each metric of each channel with answers in ``[start, end)`` or the period before it."""
    before = start - (end - start)
    found: list[ScoreTrend] = []
    for metric in METRIC_RANGES:
        now_rows, before_rows = await asyncio.gather(
            read(service, project, metric, channels, start, end, step="window", per_form=False),
            read(service, project, metric, channels, before, start, step="window", per_form=False),
        )
        for channel in channels:
            current = answer(now_rows, channels=(channel,)).total
            previous = answer(before_rows, channels=(channel,)).total
            if current.count or previous.count:
                found.append(
                    ScoreTrend(
                        channel=channel,
                        metric=metric,
                        score=current.score,
                        count=current.count,
                        previous_score=previous.score,
                        previous_count=previous.count,
                    )
                )
    order = list(METRIC_RANGES)
    return sorted(found, key=lambda trend: (trend.channel, order.index(trend.metric)))


async def _open_items(
    conn: AsyncConnection, *, project: str, inbox: Visible, now_ms: int
) -> tuple[list[OpenItem], int, int]:
    """The open items of ``project`` in the channels and forms of ``inbox``: the first
    :data:`MAX_ITEMS` by due time, how many are open, how many of them overdue."""
    where = [
        _ITEMS.c.project == project,
        _ITEMS.c.status.in_(OPEN_STATUSES),
        or_(*_visible(inbox)),
    ]
    overdue = case((_ITEMS.c.due_ms <= now_ms, 1), else_=0)
    counted = await conn.execute(
        select(func.count(), func.coalesce(func.sum(overdue), 0)).where(*where)
    )
    open_count, overdue_count = counted.one()
    found = await conn.execute(
        select(
            _ITEMS.c.id,
            _ITEMS.c.channel,
            _ITEMS.c.form,
            _ITEMS.c.metric,
            _ITEMS.c.score,
            _ITEMS.c.excerpt,
            _ITEMS.c.status,
            _ITEMS.c.due_ms,
            _USERS.c.email,
        )
        .select_from(_ITEMS.outerjoin(_USERS, _USERS.c.id == _ITEMS.c.assignee))
        .where(*where)
        .order_by(_ITEMS.c.due_ms, _ITEMS.c.created_ms, _ITEMS.c.id)
        .limit(MAX_ITEMS)
    )
    items = [
        OpenItem(
            id=row.id,
            channel=row.channel,
            form=row.form,
            metric=row.metric,
            score=row.score,
            excerpt=row.excerpt,
            status=row.status,
            due_ms=row.due_ms,
            assignee=row.email,
        )
        for row in found
    ]
    return items, int(open_count), int(overdue_count)


def _visible(inbox: Visible) -> list[ColumnElement[bool]]:
    """One condition per visible channel: the channel, and its forms when not all."""
    return [
        _ITEMS.c.channel == channel
        if forms is None
        else and_(_ITEMS.c.channel == channel, _ITEMS.c.form.in_(sorted(forms)))
        for channel, forms in inbox.items()
    ]
