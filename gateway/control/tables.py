"""The control plane's tables, defined once for SQLite and PostgreSQL (SQLAlchemy Core).

Everything people and integrations manage lives here, one ``Table`` each on one ``MetaData``:
today the registry (``projects``, ``keys``, ``email_secrets``) and the replicas' shared rate
counts (``rate_usage``). The migrations in ``migrations/versions`` build exactly this, and a test
compares the two on both databases.

Constraint names follow PostgreSQL's own defaults (``keys_pkey``, ``keys_hash_key``...), so a
database made before the control plane moved to Alembic and one made since are the same, and a
SQLite table rebuilt by a batch migration keeps the names a later step may drop.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
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

#: An API key, by the SHA-256 of the key (never the key); ``channels`` and ``origins`` are JSON.
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
    CheckConstraint("kind IN ('site', 'server')", name="kind"),
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
