"""The registry as it was before Alembic: projects, keys, email secrets; shared rate counts.

Exactly what the registry's own version 1 made, so a database of then is stamped at this
revision as it is: ``rate_usage`` only on PostgreSQL, where replicas share rate limits.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

MILLIS = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("channels", sa.Text(), nullable=False),
        sa.Column("created_ms", MILLIS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="projects_pkey"),
    )
    op.create_table(
        "keys",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("channels", sa.Text(), nullable=False),
        sa.Column("origins", sa.Text(), nullable=False),
        sa.Column("created_ms", MILLIS, nullable=False),
        sa.Column("revoked_ms", MILLIS, nullable=True),
        sa.CheckConstraint("kind IN ('site', 'server')", name="keys_kind_check"),
        sa.ForeignKeyConstraint(["project"], ["projects.id"], name="keys_project_fkey"),
        sa.PrimaryKeyConstraint("id", name="keys_pkey"),
        sa.UniqueConstraint("hash", name="keys_hash_key"),
    )
    op.create_table(
        "email_secrets",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", MILLIS, nullable=False),
        sa.Column("revoked_ms", MILLIS, nullable=True),
        sa.ForeignKeyConstraint(["project"], ["projects.id"], name="email_secrets_project_fkey"),
        sa.PrimaryKeyConstraint("id", name="email_secrets_pkey"),
    )
    if op.get_bind().dialect.name == "postgresql":
        create_rate_usage()


def create_rate_usage() -> None:
    """The replicas' shared rate counts (also made on SQLite by revision 0002)."""
    op.create_table(
        "rate_usage",
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("second", sa.BigInteger(), nullable=False),
        sa.Column("replica", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("what", "name", "second", "replica", name="rate_usage_pkey"),
    )


def downgrade() -> None:
    op.drop_table("rate_usage", if_exists=True)
    op.drop_table("email_secrets")
    op.drop_table("keys")
    op.drop_table("projects")
