"""Privacy: each project's policy (scrubbing, retention), the audit log, erasure receipts.

Adds ``privacy_policies``, ``audit_log`` and ``erasures``, and gives the built-in groups the two
new sections: ``owner`` edits ``privacy`` and ``audit``; ``admin`` edits ``privacy`` and has no
access to ``audit`` (it records what admins did too). Projects that exist get a policy that
changes nothing for them: no scrubbing, no retention; new projects scrub by default.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json
import time

import sqlalchemy as sa
from alembic import op

MILLIS = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

#: What each built-in group gets on the sections this revision adds.
NEW_LEVELS = {
    "owner": {"privacy": "edit", "audit": "edit"},
    "admin": {"privacy": "edit", "audit": "none"},
}


def upgrade() -> None:
    op.create_table(
        "privacy_policies",
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("scrub", sa.Boolean(), nullable=False),
        sa.Column("patterns", sa.Text(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("retention_mode", sa.Text(), nullable=False),
        sa.Column("updated_ms", MILLIS, nullable=False),
        sa.CheckConstraint(
            "retention_mode IN ('delete', 'redact')",
            name=op.f("privacy_policies_retention_mode_check"),
        ),
        sa.ForeignKeyConstraint(
            ["project"], ["projects.id"], name=op.f("privacy_policies_project_fkey")
        ),
        sa.PrimaryKeyConstraint("project", name=op.f("privacy_policies_pkey")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at_ms", MILLIS, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("project", sa.Text(), nullable=True),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("audit_log_pkey")),
    )
    op.create_index(op.f("audit_log_at_ms_idx"), "audit_log", ["at_ms"])
    op.create_index(op.f("audit_log_project_at_ms_idx"), "audit_log", ["project", "at_ms"])
    op.create_table(
        "erasures",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("requested_ms", MILLIS, nullable=False),
        sa.Column("finished_ms", MILLIS, nullable=True),
        sa.Column("counts", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("erasures_pkey")),
    )
    op.create_index(op.f("erasures_project_idx"), "erasures", ["project"])

    conn = op.get_bind()
    now = int(time.time() * 1000)
    projects = [row[0] for row in conn.execute(sa.text("SELECT id FROM projects"))]
    if projects:
        conn.execute(
            sa.text(
                "INSERT INTO privacy_policies"
                " (project, scrub, patterns, retention_days, retention_mode, updated_ms)"
                " VALUES (:project, :scrub, '[]', NULL, 'delete', :now)"
            ),
            [{"project": p, "scrub": False, "now": now} for p in projects],
        )
    groups = sa.table("groups", sa.column("name", sa.Text), sa.column("levels", sa.Text))
    for name, added in NEW_LEVELS.items():
        found = conn.execute(sa.select(groups.c.levels).where(groups.c.name == name)).scalar()
        if found is not None:
            levels = {**json.loads(found), **added}
            conn.execute(
                groups.update().where(groups.c.name == name).values(levels=json.dumps(levels))
            )


def downgrade() -> None:
    conn = op.get_bind()
    groups = sa.table("groups", sa.column("name", sa.Text), sa.column("levels", sa.Text))
    for name, levels_json in conn.execute(sa.select(groups.c.name, groups.c.levels)).all():
        levels = {s: v for s, v in json.loads(levels_json).items() if s not in ("privacy", "audit")}
        conn.execute(groups.update().where(groups.c.name == name).values(levels=json.dumps(levels)))
    op.drop_table("erasures")
    op.drop_table("audit_log")
    op.drop_table("privacy_policies")
