"""Follow-up and alert rules: what a rule says, whether it can ever match, what it matches.

A rule belongs to one project and narrows its responses by channel, form, metric, a score range,
the metric's low scores (:data:`LOW_SCORES`, the detractors), whether there is a comment, and
words the comment holds; every condition given must hold, a condition left out holds for all.
A ``followup`` rule makes a follow-up item of each response it matches (one item a response,
``items``), due ``sla_hours`` later; an ``alert`` rule fires an alert (``feed``).

The rule is decided here once, over plain values: :func:`matches` takes a rule and a stored
response, whatever store it came from. :func:`check_rule` refuses a rule that can never match
(an empty list, a score range outside every chosen metric's scale, a channel the project
doesn't have, no words...) with a 422 naming the field, so a rule that is kept can match.

Every project gets the default rule (:func:`default_rule`: detractors with a comment, due in
48 hours) the first time the feed reads one of its responses while it has no rules at all; a
project that wants no follow-ups disables it rather than deleting it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any, Final, Literal

import msgspec
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop_core import FORM_PATTERN, METRIC_RANGES

from ..control import tables
from ..control.access import Visible
from ..control.people import EMAIL_RULE, MAX_EMAIL_CHARS
from ..errors import ApiError
from ..stores._search import fold, normal
from ..stores.reads import StoredResponse

RuleKind = Literal["followup", "alert"]

#: The low scores of each metric, both ends included: an NPS detractor (0-6), and the two lowest
#: answers of the five- and seven-point scales, thumbs down. The default rule and ``low`` use them.
LOW_SCORES: Final[dict[str, tuple[int, int]]] = {
    "nps": (0, 6),
    "csat": (1, 2),
    "ces": (1, 2),
    "likert": (1, 2),
    "thumbs": (0, 0),
}
#: How long an item has by default before it is overdue: the benchmark's 48 hours.
DEFAULT_SLA_HOURS: Final = 48
#: The longest SLA a rule may give: a year.
MAX_SLA_HOURS: Final = 24 * 366
MAX_NAME_CHARS: Final = 100
MAX_WORDS: Final = 50
MAX_WORD_CHARS: Final = 64
#: What the default rule is called, on the rules page and in messages.
DEFAULT_RULE_NAME: Final = "Detractors with a comment"
#: A user's id, as ``voxloop-gateway users`` makes them.
USER_ID_RULE: Final = re.compile(r"[0-9a-f]{16}")

_FORM: Final = re.compile(FORM_PATTERN)
_NAMES: Final = msgspec.json.Decoder(list[str])


class RuleFields(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a rule says, as ``POST /v1/rules`` takes it; None (or left out) means "any".

    Attributes:
        name: what people call it (1-100 characters).
        kind: ``followup`` makes follow-up items, ``alert`` fires an alert per response.
        channels, forms, metrics: only responses of these (a non-empty list).
        score_min, score_max: the score lies within them, both included.
        low: the score is one of its metric's low scores (:data:`LOW_SCORES`).
        has_comment: whether the response must have a comment (True) or must not (False).
        words: the comment holds one of these (case-insensitive, anywhere in it).
        sla_hours: an item's time to be followed up, in hours (1 to a year).
        escalate_to: who hears of a breach or an alert: a user's id or an email address.
        enabled: a disabled rule matches nothing.
    """

    name: str
    kind: RuleKind = "followup"
    channels: tuple[str, ...] | None = None
    forms: tuple[str, ...] | None = None
    metrics: tuple[str, ...] | None = None
    score_min: int | None = None
    score_max: int | None = None
    low: bool = False
    has_comment: bool | None = None
    words: tuple[str, ...] | None = None
    sla_hours: int = DEFAULT_SLA_HOURS
    escalate_to: str | None = None
    enabled: bool = True


class Rule(RuleFields, frozen=True, kw_only=True):
    """A stored rule: its fields, its id, its project, and when it was made (epoch ms)."""

    id: str
    project: str
    created_ms: int


def check_rule(fields: RuleFields, channels: Collection[str]) -> RuleFields:
    """``fields`` as a rule keeps them (words folded, lists without repeats), if it can match.

    Args:
        fields: the rule as given.
        channels: the project's channels.

    Raises:
        ApiError: 422 naming the field and its rule, for a rule that breaks one or can never
            match any response.
    """
    name = fields.name.strip()
    if not 1 <= len(name) <= MAX_NAME_CHARS or not name.isprintable():
        raise ApiError(422, f"name must be 1-{MAX_NAME_CHARS} printable characters")
    kept_channels = _listed("channels", fields.channels)
    for channel in kept_channels or ():
        if channel not in channels:
            known = ", ".join(sorted(channels))
            raise ApiError(
                422, f"channels: {channel!r} is not one of this project's channels: {known}"
            )
    kept_forms = _listed("forms", fields.forms)
    for form in kept_forms or ():
        if not _FORM.fullmatch(form):
            raise ApiError(422, f"forms: {form!r} must be 1-64 characters of A-Z a-z 0-9 . _ -")
    metrics = _listed("metrics", fields.metrics)
    for metric in metrics or ():
        if metric not in METRIC_RANGES:
            known = ", ".join(METRIC_RANGES)
            raise ApiError(422, f"metrics: {metric!r} is not a metric; expected one of {known}")
    _check_scores(fields, metrics)
    words = _words(fields.words)
    if words is not None and fields.has_comment is False:
        raise ApiError(422, "words: a rule for responses without a comment can't match words")
    if not 1 <= fields.sla_hours <= MAX_SLA_HOURS:
        raise ApiError(422, f"sla_hours must be 1..{MAX_SLA_HOURS}, got {fields.sla_hours}")
    return msgspec.structs.replace(
        fields,
        name=name,
        channels=kept_channels,
        forms=kept_forms,
        metrics=metrics,
        words=words,
        escalate_to=escalation(fields.escalate_to),
    )


def escalation(target: str | None) -> str | None:
    """An ``escalate_to`` as kept: a user's id, or an email address lower-cased.

    Raises:
        ApiError: 422 for anything else.
    """
    if target is None:
        return None
    if USER_ID_RULE.fullmatch(target):
        return target
    lowered = target.strip().lower()
    if len(lowered) <= MAX_EMAIL_CHARS and EMAIL_RULE.fullmatch(lowered):
        return lowered
    raise ApiError(
        422,
        "escalate_to must be a user's id (16 hex digits) or an email address like name@example.com",
    )


def _listed(field: str, values: Sequence[str] | None) -> tuple[str, ...] | None:
    """A list field without repeats; an empty one matches nothing, so it is refused."""
    if values is None:
        return None
    if not values:
        raise ApiError(422, f"{field}: an empty list matches nothing; leave it out for any")
    return tuple(dict.fromkeys(values))


def possible(
    metric: str, score_min: int | None, score_max: int | None, low: bool
) -> tuple[int, int] | None:
    """The scores of ``metric`` a rule's range and ``low`` leave, or None when none are left."""
    first, last = METRIC_RANGES[metric]
    if score_min is not None:
        first = max(first, score_min)
    if score_max is not None:
        last = min(last, score_max)
    if low:
        low_first, low_last = LOW_SCORES[metric]
        first, last = max(first, low_first), min(last, low_last)
    return (first, last) if first <= last else None


def _check_scores(fields: RuleFields, metrics: tuple[str, ...] | None) -> None:
    low, high = fields.score_min, fields.score_max
    if low is not None and high is not None and high < low:
        raise ApiError(422, f"score_max ({high}) must be at least score_min ({low})")
    chosen = metrics or tuple(METRIC_RANGES)
    if any(possible(m, low, high, fields.low) for m in chosen):
        return
    scales = ", ".join(f"{m} {METRIC_RANGES[m][0]}..{METRIC_RANGES[m][1]}" for m in chosen)
    if fields.low and any(possible(m, low, high, False) for m in chosen):
        lows = ", ".join(f"{m} {LOW_SCORES[m][0]}..{LOW_SCORES[m][1]}" for m in chosen)
        raise ApiError(
            422, f"low: no low score ({lows}) lies within score_min..score_max, so it never matches"
        )
    named = "score_min" if low is not None else "score_max"
    raise ApiError(
        422, f"{named}: the score range lies outside every chosen metric's scale ({scales})"
    )


def _words(words: Sequence[str] | None) -> tuple[str, ...] | None:
    if words is None:
        return None
    if not words:
        raise ApiError(422, "words: an empty list matches nothing; leave it out for any comment")
    if len(words) > MAX_WORDS:
        raise ApiError(422, f"words: at most {MAX_WORDS}, got {len(words)}")
    kept: list[str] = []
    for word in words:
        folded = fold(normal(word.strip()))
        if not 1 <= len(folded) <= MAX_WORD_CHARS:
            raise ApiError(
                422,
                f"words: each must be 1-{MAX_WORD_CHARS} characters besides spaces, got {word!r}",
            )
        kept.append(folded)
    return tuple(dict.fromkeys(kept))


def matches(rule: RuleFields, response: StoredResponse) -> bool:
    """Whether ``rule`` matches ``response`` (of the rule's project: the caller's to see).

    Words are compared as comment search compares them (``stores._search``): in NFC, each
    character in its lowercase, a word anywhere in the comment (``refund`` finds "Refunds").
    """
    if not rule.enabled:
        return False
    if rule.channels is not None and response.channel not in rule.channels:
        return False
    if rule.forms is not None and response.form not in rule.forms:
        return False
    if rule.metrics is not None and response.metric not in rule.metrics:
        return False
    if rule.score_min is not None and response.score < rule.score_min:
        return False
    if rule.score_max is not None and response.score > rule.score_max:
        return False
    if rule.low:
        bounds = LOW_SCORES.get(response.metric)
        if bounds is None or not bounds[0] <= response.score <= bounds[1]:
            return False
    comment = (response.comment or "").strip()
    if rule.has_comment is not None and bool(comment) != rule.has_comment:
        return False
    if rule.words is not None:
        folded = fold(normal(comment))
        return any(word in folded for word in rule.words)
    return True


def first_match(rules: Iterable[Rule], response: StoredResponse) -> Rule | None:
    """The rule an item of ``response`` follows: of the matching ones, the one with the
    shortest SLA (then the oldest), so the most urgent rule sets the due time."""
    found = [rule for rule in rules if matches(rule, response)]
    return min(found, key=lambda r: (r.sla_hours, r.created_ms, r.id), default=None)


# --- rows ---------------------------------------------------------------------------------------


def default_rule_id(project: str) -> str:
    """The default rule's id in ``project``: one per project, whichever replica makes it."""
    return f"rule_default_{project}"


def default_rule(project: str, now_ms: int) -> Rule:
    """The detractor rule every project starts with: low scores with a comment, 48 hours."""
    return Rule(
        id=default_rule_id(project),
        project=project,
        created_ms=now_ms,
        name=DEFAULT_RULE_NAME,
        low=True,
        has_comment=True,
    )


def _names(values: tuple[str, ...] | None) -> str | None:
    return None if values is None else json.dumps(list(values), ensure_ascii=False)


def rule_row(rule: Rule) -> dict[str, Any]:
    """The ``rules`` row of ``rule``."""
    return {
        "id": rule.id,
        "project": rule.project,
        "name": rule.name,
        "kind": rule.kind,
        "channels": _names(rule.channels),
        "forms": _names(rule.forms),
        "metrics": _names(rule.metrics),
        "score_min": rule.score_min,
        "score_max": rule.score_max,
        "low": rule.low,
        "has_comment": rule.has_comment,
        "words": _names(rule.words),
        "sla_hours": rule.sla_hours,
        "escalate_to": rule.escalate_to,
        "enabled": rule.enabled,
        "created_ms": rule.created_ms,
    }


def _listed_column(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(_NAMES.decode(text))


def rule_of(row: Any) -> Rule:
    """The rule a ``rules`` row holds."""
    return Rule(
        id=row.id,
        project=row.project,
        created_ms=row.created_ms,
        name=row.name,
        kind=row.kind,
        channels=_listed_column(row.channels),
        forms=_listed_column(row.forms),
        metrics=_listed_column(row.metrics),
        score_min=row.score_min,
        score_max=row.score_max,
        low=bool(row.low),
        has_comment=None if row.has_comment is None else bool(row.has_comment),
        words=_listed_column(row.words),
        sla_hours=row.sla_hours,
        escalate_to=row.escalate_to,
        enabled=bool(row.enabled),
    )


async def project_rules(conn: AsyncConnection, project: str) -> list[Rule]:
    """Every rule of ``project``, enabled or not, oldest first."""
    found = await conn.execute(
        select(tables.rules)
        .where(tables.rules.c.project == project)
        .order_by(tables.rules.c.created_ms, tables.rules.c.id)
    )
    return [rule_of(row) for row in found]


async def ensure_default(conn: AsyncConnection, project: str, now_ms: int) -> list[Rule]:
    """``project``'s rules, after giving it the default rule if it has none at all.

    Two feeds (of two channels) may find the project without rules at once: the default rule's
    id is the project's own, and the insert does nothing when it is there already.
    """
    found = await project_rules(conn, project)
    if found:
        return found
    dialect = conn.dialect.name
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await conn.execute(
        upsert(tables.rules)
        .values(rule_row(default_rule(project, now_ms)))
        .on_conflict_do_nothing()
    )
    return await project_rules(conn, project)


async def get_rule(conn: AsyncConnection, project: str, rule_id: str) -> Rule | None:
    """The rule ``rule_id`` of ``project``, or None."""
    found = await conn.execute(
        select(tables.rules).where(tables.rules.c.project == project, tables.rules.c.id == rule_id)
    )
    row = found.first()
    return None if row is None else rule_of(row)


async def check_escalation(conn: AsyncConnection, target: str | None) -> None:
    """Refuse an ``escalate_to`` naming a user id that isn't an active user's (422)."""
    if target is None or "@" in target:
        return
    users = tables.users
    found = await conn.execute(
        select(users.c.id).where(users.c.id == target, users.c.disabled_ms.is_(None))
    )
    if found.first() is None:
        raise ApiError(422, f"escalate_to: no active user has the id {target!r}")


async def insert_rule(conn: AsyncConnection, rule: Rule) -> None:
    """Store a new rule; 422 naming ``escalate_to`` for a user who isn't there."""
    await check_escalation(conn, rule.escalate_to)
    await conn.execute(insert(tables.rules).values(rule_row(rule)))


async def replace_rule(conn: AsyncConnection, rule: Rule) -> None:
    """Store ``rule``'s fields over the rule of its id (its project and creation stay)."""
    await check_escalation(conn, rule.escalate_to)
    row = rule_row(rule)
    for fixed in ("id", "project", "created_ms"):
        del row[fixed]
    await conn.execute(
        update(tables.rules)
        .where(tables.rules.c.id == rule.id, tables.rules.c.project == rule.project)
        .values(row)
    )


async def delete_rule(conn: AsyncConnection, project: str, rule_id: str) -> bool:
    """Delete a rule that made no item; whether it was there.

    Raises:
        ApiError: 409 when items follow it: they name their rule, so it is disabled instead.
    """
    made = await conn.execute(
        select(func.count()).select_from(tables.followups).where(tables.followups.c.rule == rule_id)
    )
    count = made.scalar_one()
    if count:
        raise ApiError(
            409,
            f"rule {rule_id!r} made {count} follow-up item(s), which name it: disable it"
            " instead (PATCH enabled: false)",
        )
    gone = await conn.execute(
        delete(tables.rules).where(tables.rules.c.project == project, tables.rules.c.id == rule_id)
    )
    return bool(gone.rowcount)


def covers(visible: Visible, channels: Collection[str], rule: RuleFields) -> bool:
    """Whether a rule reads only what the asker sees (``visible``: their channels, each with
    its forms): every channel it reads (all the project's when it names none) is visible, and
    where the asker sees some forms only, the rule names forms, all of them visible."""
    for channel in rule.channels or channels:
        if channel not in visible:
            return False
        forms = visible[channel]
        if forms is not None and (rule.forms is None or not set(rule.forms) <= forms):
            return False
    return True


__all__ = [
    "DEFAULT_RULE_NAME",
    "DEFAULT_SLA_HOURS",
    "LOW_SCORES",
    "Rule",
    "RuleFields",
    "RuleKind",
    "check_escalation",
    "check_rule",
    "covers",
    "default_rule",
    "default_rule_id",
    "delete_rule",
    "ensure_default",
    "escalation",
    "first_match",
    "get_rule",
    "insert_rule",
    "matches",
    "possible",
    "project_rules",
    "replace_rule",
    "rule_of",
    "rule_row",
]
