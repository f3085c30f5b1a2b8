"""Alerts on aggregates: a score that drops beyond its interval, a volume that spikes.

An alert rule (``alert_rules``) watches one metric of a project, of one channel or all, of one
form or all, over a UTC ``period`` (hour, day, or ISO week from Monday). :func:`check_aggregates`
compares the period ``now`` falls in (so far) with the whole one before it, reading both from
the stores' aggregate rows as the dashboard does:

- ``score_drop`` (:func:`score_dropped`): at least ``min_count`` responses this period, and
  their score below the lower bound of the previous period's 95% confidence interval, both as
  the dashboard shows them (:func:`..reading.stats.bucket`): a drop the previous period's
  uncertainty can't explain;
- ``volume_spike`` (:func:`volume_spiked`): this period's count at least ``factor`` times the
  previous one's, and at least ``min_count`` (from a silent period, ``min_count`` alone).

A hit fires once per rule and period: the ``alerts_fired`` row of its condition
(``alert_rule:<id>``) and period start is inserted ``ON CONFLICT DO NOTHING``, and only the
transaction that inserted it enqueues the ``alert.fired`` message and an email per recipient
(rendered by ``integrations.messages``, in the recipient's language: :func:`.sla.languages_of`).
A condition that goes on holding, a check run again, or two replicas checking at once fire no
storm.

:func:`check_alert_rule` refuses rules that can't work, naming the field (422); the CRUD
functions below it store them for ``/v1/alert-rules``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Collection, Mapping
from typing import Any, Final, Literal, NamedTuple, cast, get_args

import msgspec
from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

import voxloop_core
from voxloop_core import DAY_MS, HOUR_MS, METRIC_RANGES

from ..control import tables
from ..control.access import Visible
from ..control.db import Database
from ..control.people import EMAIL_RULE, MAX_EMAIL_CHARS
from ..control.registry import check_form, check_name
from ..errors import ApiError, ConfigError, StoreError
from ..integrations import messages, outbox
from ..reading.formats import rfc3339
from ..reading.stats import Bucket, bucket
from ..service import Service
from .sla import languages_of

Kind = Literal["score_drop", "volume_spike"]
Period = Literal["hour", "day", "week"]
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
#: Each period's length; periods start on UTC hours, days, and Mondays.
PERIOD_MS: Final[dict[Period, int]] = {"hour": HOUR_MS, "day": DAY_MS, "week": 7 * DAY_MS}
#: Responses a period needs before a rule looks at it, unless the rule says otherwise.
DEFAULT_MIN_COUNT: Final = 10
MAX_NAME_CHARS: Final = 200
MAX_RECIPIENTS: Final = 50

_RULES = tables.alert_rules
_log = logging.getLogger(__name__)


class AlertRuleFields(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a person sets on an alert rule (the body of ``POST /v1/alert-rules``).

    ``channel`` and ``form`` narrow it (null: every one); ``factor`` is for ``volume_spike``
    only; ``min_count`` is the fewest responses in the current period for the rule to fire.
    """

    name: str
    kind: str
    metric: str
    channel: str | None = None
    form: str | None = None
    period: str = "day"
    factor: float | None = None
    min_count: int = DEFAULT_MIN_COUNT
    recipients: tuple[str, ...]
    enabled: bool = True


class AlertRule(AlertRuleFields, frozen=True, kw_only=True):
    """An alert rule as stored: its fields, its ``id``, its project and when it was made."""

    id: str
    project: str
    created_ms: int


def _refuse(message: str) -> ApiError:
    return ApiError(422, message)


def check_alert_rule(
    fields: Mapping[str, Any], *, channels: Collection[str] | None = None
) -> AlertRuleFields:
    """The alert rule ``fields`` describe, or ApiError 422 naming the first field that can't
    work: a wrong type or an unknown field (msgspec's words, with the path), an empty name, an
    unknown kind, metric or period, a channel not among ``channels`` (the project's, when given)
    or a malformed form, a spike's ``factor`` not above 1 (or one given to a drop rule),
    ``min_count`` below 1, no recipients, or one that isn't an email address.

    Names are stripped and the recipients lower-cased, once each, in order.
    """
    if not isinstance(fields, Mapping):
        raise _refuse("an alert rule must be a JSON object")
    try:
        rule = msgspec.convert(dict(fields), AlertRuleFields)
    except msgspec.ValidationError as exc:
        raise _refuse(f"alert rule: {exc}") from None
    name = rule.name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise _refuse(f"name must be 1-{MAX_NAME_CHARS} characters")
    if rule.kind not in KINDS:
        raise _refuse(f"kind must be one of {', '.join(KINDS)}; got {rule.kind!r}")
    if rule.metric not in METRIC_RANGES:
        raise _refuse(f"metric must be one of {', '.join(METRIC_RANGES)}; got {rule.metric!r}")
    if rule.period not in PERIOD_MS:
        raise _refuse(f"period must be one of {', '.join(PERIOD_MS)}; got {rule.period!r}")
    try:
        if rule.channel is not None:
            check_name("channel", rule.channel)
        if rule.form is not None:
            check_form(rule.form)
    except ConfigError as exc:
        raise _refuse(str(exc)) from None
    if rule.channel is not None and channels is not None and rule.channel not in channels:
        known = ", ".join(sorted(channels))
        raise _refuse(f"channel {rule.channel!r} is not one of the project's: {known}")
    if rule.kind == "volume_spike":
        if rule.factor is None or not math.isfinite(rule.factor) or rule.factor <= 1:
            raise _refuse(f"factor must be a number above 1 for a volume_spike; got {rule.factor}")
    elif rule.factor is not None:
        raise _refuse("factor is for volume_spike rules only; leave it out of a score_drop")
    if rule.min_count < 1:
        raise _refuse(f"min_count must be at least 1; got {rule.min_count}")
    recipients = tuple(dict.fromkeys(r.strip().lower() for r in rule.recipients))
    if not recipients:
        raise _refuse("recipients must list at least one email address")
    if len(recipients) > MAX_RECIPIENTS:
        raise _refuse(f"recipients may list at most {MAX_RECIPIENTS} addresses")
    for recipient in recipients:
        if len(recipient) > MAX_EMAIL_CHARS or not EMAIL_RULE.fullmatch(recipient):
            raise _refuse(f"recipients: {recipient!r} is not an email address (name@example.com)")
    return msgspec.structs.replace(rule, name=name, recipients=recipients)


# --- the conditions -------------------------------------------------------------------------


def period_bounds(now_ms: int, period: str) -> tuple[int, int, int]:
    """The previous period's start, the current one's (the one holding ``now_ms``), its end."""
    known = cast(Period, period)  # checked by check_alert_rule, and by the table's CHECK
    current = voxloop_core.bucket_start(now_ms, known)
    length = PERIOD_MS[known]
    return current - length, current, current + length


def score_dropped(previous: Bucket, current: Bucket, min_count: int) -> bool:
    """Whether the current period's score fell below the previous period's 95% interval, with
    at least ``min_count`` responses in the current period."""
    return (
        current.count >= min_count
        and current.score is not None
        and previous.low is not None
        and current.score < previous.low
    )


def volume_spiked(previous: int, current: int, factor: float, min_count: int) -> bool:
    """Whether ``current`` responses are at least ``factor`` times ``previous`` and at least
    ``min_count``."""
    return current >= min_count and current >= factor * previous


def holds(rule: AlertRuleFields, previous: Bucket, current: Bucket) -> bool:
    """Whether ``rule``'s condition holds between the two periods' buckets."""
    if rule.kind == "score_drop":
        return score_dropped(previous, current, rule.min_count)
    return volume_spiked(previous.count, current.count, rule.factor or math.inf, rule.min_count)


def condition_of(rule_id: str) -> str:
    """The ``alerts_fired`` condition of an alert rule."""
    return f"alert_rule:{rule_id}"


# --- checking -------------------------------------------------------------------------------


async def check_aggregates(service: Service, now_ms: int) -> int:
    """Check every enabled alert rule at ``now_ms``; how many alerts fired.

    A rule already fired in its current period is not read again. A store that fails to
    answer skips its rules until the next check (logged), without stopping the others.
    """
    db = service.registry.db
    due = await db.arun(lambda conn: _unfired_rules(conn, now_ms))
    fired = 0
    for rule, channels in due:
        previous_start, start, end = period_bounds(now_ms, rule.period)
        try:
            previous = await _bucket(service, rule, channels, previous_start, start)
            current = await _bucket(service, rule, channels, start, end)
        except StoreError as exc:
            _log.warning("alert rule %s not checked: %s", rule.id, exc)
            continue
        if not holds(rule, previous, current):
            continue
        alert = _Alert(rule, start, previous, current, now_ms, service.settings.base_url)
        if await db.arun(functools.partial(_fire, dialect=db.dialect, alert=alert), write=True):
            fired += 1
    return fired


async def _unfired_rules(
    conn: AsyncConnection, now_ms: int
) -> list[tuple[AlertRule, frozenset[str]]]:
    """The enabled rules not fired yet in their current period, each with its project's
    channels."""
    found = await conn.execute(
        select(_RULES, tables.projects.c.channels.label("project_channels"))
        .join(tables.projects, tables.projects.c.id == _RULES.c.project)
        .where(_RULES.c.enabled.is_(True))
        .order_by(_RULES.c.project, _RULES.c.id)
    )
    rules = [(rule_of(row), frozenset(json.loads(row.project_channels))) for row in found]
    if not rules:
        return []
    starts = {rule.id: period_bounds(now_ms, rule.period)[1] for rule, _ in rules}
    done = await conn.execute(
        select(tables.alerts_fired.c.condition, tables.alerts_fired.c.period_ms).where(
            tables.alerts_fired.c.condition.in_([condition_of(r.id) for r, _ in rules]),
            tables.alerts_fired.c.period_ms >= min(starts.values()),
        )
    )
    fired = {(condition, period) for condition, period in done}
    return [(r, c) for r, c in rules if (condition_of(r.id), starts[r.id]) not in fired]


async def _bucket(
    service: Service, rule: AlertRule, channels: frozenset[str], start_ms: int, end_ms: int
) -> Bucket:
    """The rule's metric over ``[start_ms, end_ms)`` in its channels and form, as a stats bucket
    (score and interval as the dashboard shows them)."""
    histogram = voxloop_core.empty_histogram(rule.metric)
    forms = None if rule.form is None else [rule.form]
    for channel in sorted(channels) if rule.channel is None else [rule.channel]:
        if not await service.has_store(channel):
            continue  # no store, no answers: reading doesn't make one
        store = await service.store(channel)
        rows = await store.hourly(
            rule.project,
            rule.metric,
            forms=forms,
            start_ms=start_ms,
            end_ms=end_ms,
            step="window",
            per_form=False,
        )
        for counts in rows.values():
            for i, n in enumerate(counts):
                histogram[i] += n
    return bucket(rule.metric, histogram)


class _Alert(NamedTuple):
    """An alert rule's hit, to be recorded and told."""

    rule: AlertRule
    period_ms: int
    previous: Bucket
    current: Bucket
    now_ms: int
    base_url: str


async def _fire(conn: AsyncConnection, *, dialect: str, alert: _Alert) -> bool:
    """Record ``alert`` for its rule and period and, if this call recorded it, enqueue its
    message and emails; whether it did."""
    rule, period_ms, previous, current, now_ms, base_url = alert
    data = alert_data(rule, period_ms, previous, current)
    insert_of = postgresql.insert if dialect == "postgresql" else sqlite.insert
    made = await conn.execute(
        insert_of(tables.alerts_fired)
        .values(
            condition=condition_of(rule.id),
            period_ms=period_ms,
            project=rule.project,
            at_ms=now_ms,
            detail=json.dumps(data),
        )
        .on_conflict_do_nothing()
        .returning(tables.alerts_fired.c.condition)
    )
    if made.first() is None:
        return False  # fired already this period
    await outbox.enqueue(conn, rule.project, "alert.fired", data, now_ms)
    for recipient, lang in (await languages_of(conn, rule.project, rule.recipients)).items():
        email = messages.aggregate_email(
            lang,
            project=rule.project,
            rule=rule.name,
            kind=cast(Kind, rule.kind),
            metric=rule.metric,
            channel=rule.channel,
            form=rule.form,
            period=cast(Period, rule.period),
            start_ms=period_ms,
            score=current.score,
            count=current.count,
            previous_score=previous.score,
            previous_count=previous.count,
            base_url=base_url,
        )
        await outbox.enqueue_email(conn, rule.project, recipient, *email, now_ms)
    return True


def _figures(found: Bucket) -> dict[str, Any]:
    return {"count": found.count, "score": found.score, "low": found.low, "high": found.high}


def alert_data(
    rule: AlertRule, period_ms: int, previous: Bucket, current: Bucket
) -> dict[str, Any]:
    """The ``data`` of an ``alert.fired`` message on aggregates (also kept in ``alerts_fired``):
    the rule, the period, and both periods' count, score and interval."""
    return {
        "rule": rule.id,
        "name": rule.name,
        "kind": rule.kind,
        "project": rule.project,
        "metric": rule.metric,
        "channel": rule.channel,
        "form": rule.form,
        "period": rule.period,
        "period_start": rfc3339(period_ms),
        "factor": rule.factor,
        "min_count": rule.min_count,
        "previous": _figures(previous),
        "current": _figures(current),
    }


# --- storing the rules ----------------------------------------------------------------------


def rule_of(row: Row[Any]) -> AlertRule:
    """An ``alert_rules`` row as an :class:`AlertRule`."""
    return AlertRule(
        id=row.id,
        project=row.project,
        name=row.name,
        kind=row.kind,
        metric=row.metric,
        channel=row.channel,
        form=row.form,
        period=row.period,
        factor=row.factor,
        min_count=row.min_count,
        recipients=tuple(json.loads(row.recipients)),
        enabled=bool(row.enabled),
        created_ms=row.created_ms,
    )


def _columns(fields: AlertRuleFields) -> dict[str, Any]:
    values = msgspec.structs.asdict(fields)
    values["recipients"] = json.dumps(list(fields.recipients))
    return values


def covers(visible: Visible, project_channels: Collection[str], rule: AlertRuleFields) -> bool:
    """Whether everything ``rule`` reads (its channel, or every channel of the project; its
    form, or every form) is within ``visible``: a rule is only seen, made or changed by whom may
    see all it reads, since its alerts tell of it."""
    for channel in project_channels if rule.channel is None else [rule.channel]:
        if channel not in visible:
            return False
        forms = visible[channel]
        if forms is not None and (rule.form is None or rule.form not in forms):
            return False
    return True


async def list_alert_rules(db: Database, project: str) -> list[AlertRule]:
    """The alert rules of ``project``, oldest first."""

    async def read(conn: AsyncConnection) -> list[AlertRule]:
        found = await conn.execute(
            select(_RULES)
            .where(_RULES.c.project == project)
            .order_by(_RULES.c.created_ms, _RULES.c.id)
        )
        return [rule_of(row) for row in found]

    return await db.arun(read)


async def get_alert_rule(db: Database, project: str, rule_id: str) -> AlertRule | None:
    """The alert rule ``rule_id`` of ``project``, or None."""

    async def read(conn: AsyncConnection) -> AlertRule | None:
        found = await conn.execute(
            select(_RULES).where(_RULES.c.project == project, _RULES.c.id == rule_id)
        )
        row = found.first()
        return None if row is None else rule_of(row)

    return await db.arun(read)


async def create_alert_rule(
    db: Database, project: str, fields: AlertRuleFields, now_ms: int
) -> AlertRule:
    """Store a checked alert rule of ``project``; returns it with its new id."""
    rule = AlertRule(
        id=outbox.new_id("alr_"),
        project=project,
        created_ms=now_ms,
        **msgspec.structs.asdict(fields),
    )

    async def write(conn: AsyncConnection) -> None:
        await conn.execute(
            insert(_RULES).values(
                id=rule.id, project=project, created_ms=now_ms, **_columns(fields)
            )
        )

    await db.arun(write, write=True)
    return rule


async def update_alert_rule(
    db: Database, project: str, rule_id: str, fields: AlertRuleFields
) -> AlertRule | None:
    """Replace the fields of alert rule ``rule_id`` of ``project``; None if there is none."""

    async def write(conn: AsyncConnection) -> bool:
        done = await conn.execute(
            update(_RULES)
            .where(_RULES.c.project == project, _RULES.c.id == rule_id)
            .values(**_columns(fields))
        )
        return done.rowcount == 1

    if not await db.arun(write, write=True):
        return None
    return await get_alert_rule(db, project, rule_id)


async def delete_alert_rule(db: Database, project: str, rule_id: str) -> bool:
    """Delete alert rule ``rule_id`` of ``project``; whether there was one. The alerts it fired
    stay recorded."""

    async def write(conn: AsyncConnection) -> bool:
        done = await conn.execute(
            delete(_RULES).where(_RULES.c.project == project, _RULES.c.id == rule_id)
        )
        return done.rowcount == 1

    return bool(await db.arun(write, write=True))


__all__ = [
    "DEFAULT_MIN_COUNT",
    "KINDS",
    "MAX_NAME_CHARS",
    "MAX_RECIPIENTS",
    "PERIOD_MS",
    "AlertRule",
    "AlertRuleFields",
    "Kind",
    "Period",
    "alert_data",
    "check_aggregates",
    "check_alert_rule",
    "condition_of",
    "covers",
    "create_alert_rule",
    "delete_alert_rule",
    "get_alert_rule",
    "holds",
    "list_alert_rules",
    "period_bounds",
    "rule_of",
    "score_dropped",
    "update_alert_rule",
    "volume_spiked",
]
