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
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
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
