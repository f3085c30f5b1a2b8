"""A project's privacy policy: whether its comments are scrubbed, and how long its events stay.

One row of ``privacy_policies`` a project (:mod:`..control.tables`): ``scrub`` (personal data
found in comments is replaced before they are stored, :mod:`.scrub`), the operator's own
``patterns`` (each hit becomes ``[name]``), and the retention window (``retention_days``, None:
kept for ever) with what the retention job does past it (``delete`` the events, or ``redact``
their comments and meta). A new project gets a row with scrubbing on; a project without a row
has the same defaults (:data:`DEFAULT`). Projects that existed before policies did got a row
with scrubbing off, so an upgrade changes nothing they store.

Every rule about a policy is here, once: the API (``/v1/privacy/policy``) and the CLI
(``privacy set``) pass what they were given through :func:`check_policy`, and a pattern the
operator types is refused unless it compiles, is short, can't match nothing, and holds no
quantified group that holds a quantifier of its own (``(a+)+``): ingest runs it on every comment,
and such a pattern can take exponential time on a comment written against it.
"""

from __future__ import annotations

import functools
import re
import time
from typing import Final, Literal, get_args

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ..control.db import Database
from ..control.tables import privacy_policies
from ..errors import ApiError
from .scrub import DEFAULT_SCRUBBER, TYPES, Scrubber

RetentionMode = Literal["delete", "redact"]
RETENTION_MODES: Final[tuple[RetentionMode, ...]] = get_args(RetentionMode)
#: A custom pattern's name: it is the placeholder (``[order_ref]``) and a label in ``/metrics``.
NAME_RULE: Final = re.compile(r"[a-z][a-z0-9_]{0,30}")
MAX_PATTERNS: Final = 20
MAX_PATTERN_CHARS: Final = 200
MIN_RETENTION_DAYS: Final = 1
MAX_RETENTION_DAYS: Final = 3650
#: A group (or class-free atom run) quantified while holding a quantifier: ``(a+)+``, ``(\d*x)*``,
#: ``(?:ab{2,})+``, the shape of catastrophic backtracking.
_NESTED: Final = re.compile(r"\((?:[^()\\]|\\.)*(?:[+*]|\{\d*,\d*\})(?:[^()\\]|\\.)*\)[+*{]")


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """What a project keeps of the people who answer it.

    Attributes:
        scrub: replace personal data found in comments before they are stored.
        patterns: the operator's own (name, regular expression) pairs, applied after the
            built-in detectors; each hit becomes ``[name]``.
        retention_days: how long events are kept (None: for ever).
        retention_mode: past that, ``delete`` the events or ``redact`` their comments and meta;
            the aggregates are kept either way.
    """

    scrub: bool = True
    patterns: tuple[tuple[str, str], ...] = ()
    retention_days: int | None = None
    retention_mode: RetentionMode = "delete"


#: A new project's policy: scrubbing on, no patterns of its own, events kept for ever.
DEFAULT: Final = Policy()


class PatternItem(msgspec.Struct, forbid_unknown_fields=True):
    """A custom pattern as the API, the CLI and the stored row write it."""

    name: str
    pattern: str


def check_pattern(name: str, pattern: str, where: str = "patterns") -> re.Pattern[str]:
    """``pattern`` compiled, or ApiError 422 naming ``where`` and the rule it breaks."""
    if not NAME_RULE.fullmatch(name):
        raise ApiError(
            422, f"{where}: name {name!r} must be 1-31 characters of a-z 0-9 _, starting with a-z"
        )
    if name in TYPES:
        raise ApiError(422, f"{where}: name {name!r} is a built-in type; choose another name")
    if not pattern or len(pattern) > MAX_PATTERN_CHARS:
        raise ApiError(422, f"{where}: pattern must be 1-{MAX_PATTERN_CHARS} characters")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ApiError(422, f"{where}: pattern is not a regular expression: {exc}") from None
    if _NESTED.search(pattern):
        raise ApiError(
            422,
            f"{where}: pattern has a quantified group holding a quantifier, which can take"
            " exponential time; write it without the nesting",
        )
    if compiled.search("") is not None:
        raise ApiError(422, f"{where}: pattern matches the empty text; it must match something")
    return compiled


def check_policy(policy: Policy) -> Policy:
    """``policy`` if every field keeps its rule; ApiError 422 naming the first that doesn't."""
    if len(policy.patterns) > MAX_PATTERNS:
        raise ApiError(422, f"patterns: at most {MAX_PATTERNS}, got {len(policy.patterns)}")
    names: set[str] = set()
    for i, (name, pattern) in enumerate(policy.patterns):
        check_pattern(name, pattern, f"patterns[{i}]")
        if name in names:
            raise ApiError(422, f"patterns[{i}]: name {name!r} is given twice")
        names.add(name)
    days = policy.retention_days
    if days is not None and not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise ApiError(
            422,
            f"retention_days must be {MIN_RETENTION_DAYS}-{MAX_RETENTION_DAYS}"
            " (or null: kept for ever)",
        )
    if policy.retention_mode not in RETENTION_MODES:
        raise ApiError(422, "retention_mode must be delete or redact")
    return policy


def encode_patterns(patterns: tuple[tuple[str, str], ...]) -> str:
    """The ``patterns`` column's JSON: a list of ``{"name", "pattern"}``."""
    items = [PatternItem(name, pattern) for name, pattern in patterns]
    return msgspec.json.encode(items).decode()


def decode_patterns(text: str) -> tuple[tuple[str, str], ...]:
    """The pairs of a ``patterns`` column."""
    items = msgspec.json.decode(text, type=list[PatternItem])
    return tuple((item.name, item.pattern) for item in items)


def policy_of_row(
    scrub: bool, patterns: str, retention_days: int | None, retention_mode: str
) -> Policy:
    """The policy a stored row holds (checked when it was written)."""
    mode: RetentionMode = "redact" if retention_mode == "redact" else "delete"
    return Policy(
        scrub=bool(scrub),
        patterns=decode_patterns(patterns),
        retention_days=retention_days,
        retention_mode=mode,
    )


def scrubber_of(policy: Policy) -> Scrubber | None:
    """The scrubber ``policy`` asks for, None when it doesn't scrub.

    Policies without patterns of their own share one; the others get one per distinct set of
    patterns, kept across reloads of the registry, so a pattern is compiled once.
    """
    if not policy.scrub:
        return None
    if not policy.patterns:
        return DEFAULT_SCRUBBER
    return _with_patterns(policy.patterns)


@functools.lru_cache(maxsize=256)
def _with_patterns(patterns: tuple[tuple[str, str], ...]) -> Scrubber:
    return Scrubber([(name, re.compile(pattern)) for name, pattern in patterns])


def _values(policy: Policy, now_ms: int) -> dict[str, object]:
    return {
        "scrub": policy.scrub,
        "patterns": encode_patterns(policy.patterns),
        "retention_days": policy.retention_days,
        "retention_mode": policy.retention_mode,
        "updated_ms": now_ms,
    }


async def read_policy_in(conn: AsyncConnection, project: str) -> Policy:
    """:func:`read_policy` inside the caller's transaction."""
    row = (
        await conn.execute(
            select(
                privacy_policies.c.scrub,
                privacy_policies.c.patterns,
                privacy_policies.c.retention_days,
                privacy_policies.c.retention_mode,
            ).where(privacy_policies.c.project == project)
        )
    ).first()
    return DEFAULT if row is None else policy_of_row(*row)


async def read_policy(db: Database, project: str) -> Policy:
    """``project``'s policy; :data:`DEFAULT` for a project that has no row."""

    async def read(conn: AsyncConnection) -> Policy:
        return await read_policy_in(conn, project)

    return await db.arun(read)


async def write_policy_in(
    conn: AsyncConnection, project: str, policy: Policy, now_ms: int | None = None
) -> None:
    """Store ``policy`` (checked) as ``project``'s, inside the caller's transaction."""
    check_policy(policy)
    values = _values(policy, int(time.time() * 1000) if now_ms is None else now_ms)
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(privacy_policies).values(project=project, **values)
    await conn.execute(
        statement.on_conflict_do_update(index_elements=[privacy_policies.c.project], set_=values)
    )


async def write_policy(db: Database, project: str, policy: Policy, actor: str) -> Policy:
    """Store ``policy`` as ``project``'s and record who changed it, in one transaction.

    Raises:
        ApiError: 422 naming the field and the rule it breaks; nothing is written.
    """
    # Imported here: the audit log reads the registry, which builds scrubbers with this module.
    from . import audit

    check_policy(policy)

    async def write(conn: AsyncConnection) -> None:
        before = await read_policy_in(conn, project)
        await write_policy_in(conn, project, policy)
        await audit.record_in(
            conn,
            actor=actor,
            action="privacy.policy",
            project=project,
            detail={"before": described(before), "after": described(policy)},
        )

    await db.arun(write, write=True)
    return policy


def described(policy: Policy) -> dict[str, object]:
    """``policy`` as JSON types: for the audit log and the CLI."""
    return {
        "scrub": policy.scrub,
        "patterns": [{"name": n, "pattern": p} for n, p in policy.patterns],
        "retention_days": policy.retention_days,
        "retention_mode": policy.retention_mode,
    }


__all__ = [
    "DEFAULT",
    "MAX_PATTERNS",
    "RETENTION_MODES",
    "PatternItem",
    "Policy",
    "RetentionMode",
    "check_pattern",
    "check_policy",
    "decode_patterns",
    "described",
    "encode_patterns",
    "policy_of_row",
    "read_policy",
    "read_policy_in",
    "scrubber_of",
    "write_policy",
    "write_policy_in",
]
