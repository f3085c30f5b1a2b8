"""``rate_usage`` on SQLite too: the control plane's tables are the same on both databases.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL has had it since 0001
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
    if op.get_bind().dialect.name == "sqlite":
        op.drop_table("rate_usage")
