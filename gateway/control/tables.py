"""The control plane's tables, defined once for SQLite and PostgreSQL (SQLAlchemy Core).

Everything people and integrations manage lives here, one ``Table`` each on one ``MetaData``:
the registry (``projects``, ``keys``, ``email_secrets``), the replicas' shared rate counts
(``rate_usage``), and the people who log in (``users``, ``groups`` with their ``group_scopes``,
``memberships``, ``sessions``, ``login_failures``). JSON lists and maps are TEXT on both
databases. The migrations in ``migrations/versions`` build exactly this, and a test
compares the two on both databases.

Constraint names follow PostgreSQL's own defaults (``keys_pkey``, ``keys_hash_key``...), so a
database made before the control plane moved to Alembic and one made since are the same, and a
SQLite table rebuilt by a batch migration keeps the names a later step may drop.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

#: Milliseconds since the epoch: BIGINT on PostgreSQL, INTEGER (64-bit anyway) on SQLite.
Millis: Final = BigInteger().with_variant(Integer(), "sqlite")

metadata: Final = MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "uq": "%(table_name)s_%(column_0_N_name)s_key",
        "fk": "%(table_name)s_%(column_0_name)s_fkey",
        "ck": "%(table_name)s_%(constraint_name)s_check",
        "ix": "%(table_name)s_%(column_0_N_name)s_idx",
    }
)

#: A tenant; ``channels`` is a JSON list of names, ``secret`` keys its dedup hashes.
projects: Final = Table(
    "projects",
    metadata,
    Column("id", Text, primary_key=True),
    Column("secret", LargeBinary, nullable=False),
    Column("channels", Text, nullable=False),
    Column("created_ms", Millis, nullable=False),
)

#: An API key, by the SHA-256 of the key (never the key); ``channels`` and ``origins`` are JSON
#: lists; ``forms`` a JSON list narrowing a read key (``rk_``) to some forms, NULL for all.
keys: Final = Table(
    "keys",
    metadata,
    Column("id", Text, primary_key=True),
    Column("hash", LargeBinary, nullable=False, unique=True),
    Column("project", Text, ForeignKey("projects.id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("channels", Text, nullable=False),
    Column("origins", Text, nullable=False),
    Column("created_ms", Millis, nullable=False),
    Column("revoked_ms", Millis),
    Column("forms", Text),
    CheckConstraint("kind IN ('site', 'server', 'read')", name="kind"),
)

#: A secret that signs a project's email rating links.
email_secrets: Final = Table(
    "email_secrets",
    metadata,
    Column("id", Text, primary_key=True),
    Column("project", Text, ForeignKey("projects.id"), nullable=False),
    Column("secret", LargeBinary, nullable=False),
    Column("created_ms", Millis, nullable=False),
    Column("revoked_ms", Millis),
)

#: What each replica let through, per limited name and second (see ``shared_limits``).
rate_usage: Final = Table(
    "rate_usage",
    metadata,
    Column("what", Text, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("second", BigInteger, primary_key=True),
    Column("replica", Text, primary_key=True),
    Column("count", Integer, nullable=False),
)

#: A person who logs in: the email lower-cased, the argon2id hash of the password (PHC string).
users: Final = Table(
    "users",
    metadata,
    Column("id", Text, primary_key=True),
    Column("email", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("must_change_password", Boolean, nullable=False),
    Column("created_ms", Millis, nullable=False),
    Column("disabled_ms", Millis),
    Column("password_changed_ms", Millis, nullable=False),
)

#: An access group: ``levels`` a JSON map section -> level. A ``builtin`` one (owner, admin)
#: covers every project; any other covers the projects of its ``group_scopes``.
groups: Final = Table(
    "groups",
    metadata,
    Column("name", Text, primary_key=True),
    Column("builtin", Boolean, nullable=False),
    Column("levels", Text, nullable=False),
    Column("created_ms", Millis, nullable=False),
)

#: One project of a group's scope; ``channels`` and ``forms`` JSON lists, NULL for all.
group_scopes: Final = Table(
    "group_scopes",
    metadata,
    Column("group", Text, ForeignKey("groups.name"), primary_key=True),
    Column("project", Text, ForeignKey("projects.id"), primary_key=True),
    Column("channels", Text),
    Column("forms", Text),
)

#: Who is in which group.
memberships: Final = Table(
    "memberships",
    metadata,
    Column("user", Text, ForeignKey("users.id"), primary_key=True),
    Column("group", Text, ForeignKey("groups.name"), primary_key=True),
)

#: A logged-in session, by the SHA-256 of its token (never the token), with its CSRF token.
sessions: Final = Table(
    "sessions",
    metadata,
    Column("token_hash", LargeBinary, primary_key=True),
    Column("user", Text, ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf", Text, nullable=False),
    Column("created_ms", Millis, nullable=False),
    Column("seen_ms", Millis, nullable=False),
    Column("address", Text),
    Column("user_agent", Text),
)

#: Failed logins per ``account`` (an email, known or not) or ``address``, in the window that
#: started at ``window_ms``: in the database, so that every replica throttles alike.
login_failures: Final = Table(
    "login_failures",
    metadata,
    Column("what", Text, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("window_ms", Millis, nullable=False),
    Column("count", Integer, nullable=False),
    CheckConstraint("what IN ('account', 'address')", name="what"),
)

# --- closing the loop: follow-ups, alerts, the outbox (migration 0004) -------------------------

#: A follow-up or alert rule of a project. ``kind`` 'followup' makes follow-up items, 'alert'
#: fires an alert per matching response. The narrowing columns are NULL for "any": ``channels``,
#: ``forms`` and ``metrics`` JSON lists, ``score_min``/``score_max`` a range of one metric's
#: scale, ``low`` the metric's detractor range (``followups.rules``), ``has_comment``, ``words``
#: a JSON list of words any of which the comment holds. ``sla_hours`` gives an item its due time;
#: ``escalate_to`` is who hears of a breach (a user's id, or an email address).
rules: Final = Table(
    "rules",
    metadata,
    Column("id", Text, primary_key=True),
    Column("project", Text, ForeignKey("projects.id"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("channels", Text),
    Column("forms", Text),
    Column("metrics", Text),
    Column("score_min", Integer),
    Column("score_max", Integer),
    Column("low", Boolean, nullable=False),
    Column("has_comment", Boolean),
    Column("words", Text),
    Column("sla_hours", Integer, nullable=False),
    Column("escalate_to", Text),
    Column("enabled", Boolean, nullable=False),
    Column("created_ms", Millis, nullable=False),
    CheckConstraint("kind IN ('followup', 'alert')", name="kind"),
)

#: A follow-up item: one per response (``subject``: the vote group, or the event's key when it
#: has none) of a project's channel and form, whatever rules match it. ``ref`` is the response
#: it shows now (a vote change moves it), ``excerpt`` its comment as it was when last matched.
followups: Final = Table(
    "followups",
    metadata,
    Column("id", Text, primary_key=True),
    Column("project", Text, ForeignKey("projects.id"), nullable=False),
    Column("channel", Text, nullable=False),
    Column("form", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("ref", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("score", Integer, nullable=False),
    Column("excerpt", Text),
    Column("respondent", Text),
    Column("rule", Text, ForeignKey("rules.id"), nullable=False),
    Column("status", Text, nullable=False),
    Column("assignee", Text, ForeignKey("users.id")),
    Column("tags", Text, nullable=False),
    Column("resolution", Text),
    Column("created_ms", Millis, nullable=False),
    Column("due_ms", Millis, nullable=False),
    Column("first_action_ms", Millis),
    Column("closed_ms", Millis),
    Column("breached_ms", Millis),
    Column("updated_ms", Millis, nullable=False),
    CheckConstraint(
        "status IN ('new', 'assigned', 'in_progress', 'resolved', 'closed')", name="status"
    ),
    UniqueConstraint("project", "channel", "form", "subject"),
    Index("followups_open_due_idx", "status", "due_ms"),
    Index("followups_project_created_idx", "project", "created_ms"),
)

#: Every change of an item, with who (a user's id; NULL for the gateway itself) and when;
#: ``kind`` says what changed and ``detail`` (JSON) how. An internal note is a change too.
followup_changes: Final = Table(
    "followup_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("followup", Text, ForeignKey("followups.id"), nullable=False, index=True),
    Column("at_ms", Millis, nullable=False),
    Column("actor", Text),
    Column("kind", Text, nullable=False),
    Column("detail", Text, nullable=False),
)

#: A condition on a project's aggregates: ``kind`` 'score_drop' (a form's score falls beyond its
#: interval against the previous period) or 'volume_spike' (``factor`` times the previous
#: period's count), of one ``metric`` and optionally one ``channel``/``form``, over ``period``.
alert_rules: Final = Table(
    "alert_rules",
    metadata,
    Column("id", Text, primary_key=True),
    Column("project", Text, ForeignKey("projects.id"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("channel", Text),
    Column("form", Text),
    Column("period", Text, nullable=False),
    Column("factor", Float),
    Column("min_count", Integer, nullable=False),
    Column("recipients", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_ms", Millis, nullable=False),
    CheckConstraint("kind IN ('score_drop', 'volume_spike')", name="kind"),
    CheckConstraint("period IN ('hour', 'day', 'week')", name="period"),
)

#: Each alert fired: one per condition (a rule's id, or a rule and a response) and period, so a
#: condition that goes on holding never fires twice in one period.
alerts_fired: Final = Table(
    "alerts_fired",
    metadata,
    Column("condition", Text, primary_key=True),
    Column("period_ms", Millis, primary_key=True),
    Column("project", Text, ForeignKey("projects.id"), nullable=False),
    Column("at_ms", Millis, nullable=False),
    Column("detail", Text, nullable=False),
)

#: A project's webhook endpoint: the ``event_types`` (JSON list) it is sent, its ``whsec_``
#: ``secret`` and, while a rotated one overlaps, the ``previous_secret`` until
#: ``previous_until_ms``. ``failing_since_ms`` counts from its first failure in a row;
#: ``disabled_ms`` with ``disabled_reason`` is set by a 410 or by failing too long.
webhook_endpoints: Final = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Text, primary_key=True),
    Column("project", Text, ForeignKey("projects.id"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("event_types", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text),
    Column("previous_until_ms", Millis),
    Column("description", Text, nullable=False),
    Column("created_ms", Millis, nullable=False),
    Column("failing_since_ms", Millis),
    Column("disabled_ms", Millis),
    Column("disabled_reason", Text),
)

#: The outbox: one message per thing that happened (its ``id`` is the ``webhook-id`` of every
#: attempt), written in the transaction of its cause.
outbox: Final = Table(
    "outbox",
    metadata,
    Column("id", Text, primary_key=True),
    Column("project", Text, ForeignKey("projects.id"), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_ms", Millis, nullable=False),
)

#: A message's delivery to one endpoint: ``state`` 'pending' (due at ``next_ms``; held by a
#: replica until ``lease_ms``), 'delivered', or 'failed' (given up, or the endpoint disabled).
webhook_deliveries: Final = Table(
    "webhook_deliveries",
    metadata,
    Column("message", Text, ForeignKey("outbox.id"), primary_key=True),
    Column("endpoint", Text, ForeignKey("webhook_endpoints.id"), primary_key=True),
    Column("state", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_ms", Millis, nullable=False),
    Column("lease_ms", Millis),
    Column("done_ms", Millis),
    CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state"),
    Index("webhook_deliveries_state_next_ms_idx", "state", "next_ms"),
)

#: Every attempt, for the delivery log: the HTTP status (NULL when none came) or the error.
webhook_attempts: Final = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message", Text, ForeignKey("outbox.id"), nullable=False),
    Column("endpoint", Text, ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("at_ms", Millis, nullable=False),
    Column("status", Integer),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    Index("webhook_attempts_endpoint_at_ms_idx", "endpoint", "at_ms"),
)

#: An email to send (an alert, a breach, a digest), written in its cause's transaction like a
#: webhook message, with the same leases and retries.
email_outbox: Final = Table(
    "email_outbox",
    metadata,
    Column("id", Text, primary_key=True),
    Column("project", Text, ForeignKey("projects.id")),
    Column("recipient", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("created_ms", Millis, nullable=False),
    Column("state", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_ms", Millis, nullable=False),
    Column("lease_ms", Millis),
    Column("done_ms", Millis),
    Column("error", Text),
    CheckConstraint("state IN ('pending', 'sent', 'failed')", name="state"),
    Index("email_outbox_state_next_ms_idx", "state", "next_ms"),
)

#: Who gets a digest of which project, how often ('daily' or 'weekly'), in which language, and
#: when the last one was written.
digests: Final = Table(
    "digests",
    metadata,
    Column("user", Text, ForeignKey("users.id"), primary_key=True),
    Column("project", Text, ForeignKey("projects.id"), primary_key=True),
    Column("frequency", Text, nullable=False),
    Column("lang", Text, nullable=False),
    Column("last_ms", Millis),
    CheckConstraint("frequency IN ('daily', 'weekly')", name="frequency"),
)

#: How far the rules have read each channel's store (its events' ``seq``) and, apart, its
#: revisions (comments added later): advanced in the transaction that writes what was read.
feed_cursors: Final = Table(
    "feed_cursors",
    metadata,
    Column("channel", Text, primary_key=True),
    Column("event_seq", BigInteger, nullable=False),
    Column("revision_seq", BigInteger, nullable=False),
    Column("updated_ms", Millis, nullable=False),
)

#: Periodic work done once across replicas: who holds ``name`` until ``lease_ms``, and when it
#: last ran to the end.
jobs: Final = Table(
    "jobs",
    metadata,
    Column("name", Text, primary_key=True),
    Column("lease_ms", Millis),
    Column("holder", Text),
    Column("last_ms", Millis),
)

# --- privacy: policies, the audit log, erasure receipts (migration 0005) ----------------------

#: A project's privacy policy. ``scrub``: comments lose the personal data found in them before
#: they are stored; ``patterns`` a JSON list of ``{"name", "pattern"}`` the operator adds (each
#: hit becomes ``[name]``). ``retention_days`` (NULL: kept for ever) and ``retention_mode``
#: ('delete': the events go, 'redact': only their comments and meta) say what the retention
#: job does with older events; the aggregates stay either way. A project without a row has the
#: defaults of a new project (``privacy.policy``).
privacy_policies: Final = Table(
    "privacy_policies",
    metadata,
    Column("project", Text, ForeignKey("projects.id"), primary_key=True),
    Column("scrub", Boolean, nullable=False),
    Column("patterns", Text, nullable=False),
    Column("retention_days", Integer),
    Column("retention_mode", Text, nullable=False),
    Column("updated_ms", Millis, nullable=False),
    CheckConstraint("retention_mode IN ('delete', 'redact')", name="retention_mode"),
)

#: Who did what, when: append-only. ``actor`` is ``user:EMAIL``, ``key:ID``, ``cli:operator``
#: or ``system:JOB``; ``action`` a dotted name (``login``, ``response.read``, ``export``,
#: ``erasure``, ``key.create``...); ``target`` what it was done to; ``detail`` a JSON map of
#: the rest (filters, counts), never a secret. No foreign key: the record outlives what it names.
audit_log: Final = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("at_ms", Millis, nullable=False, index=True),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("project", Text),
    Column("target", Text),
    Column("detail", Text, nullable=False),
    Column("address", Text),
    Index("audit_log_project_at_ms_idx", "project", "at_ms"),
)

#: One erasure: what was asked (``scope``, a JSON map: the respondent's pseudonym, a form, a
#: time range, or the whole project), by whom, and its receipt (``counts``, a JSON map channel
#: -> events removed) once ``finished_ms`` is set.
erasures: Final = Table(
    "erasures",
    metadata,
    Column("id", Text, primary_key=True),
    Column("project", Text, nullable=False, index=True),
    Column("scope", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("requested_ms", Millis, nullable=False),
    Column("finished_ms", Millis),
    Column("counts", Text),
)
