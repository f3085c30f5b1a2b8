"""People and access: users, access groups and their scopes, sessions, failed logins; read keys.

Makes the built-in ``owner`` and ``admin`` groups (every project, the levels of
``access.BUILTIN_LEVELS`` as they are at this revision: a later section gets its own revision),
lets ``keys.kind`` be ``read`` and gives keys a ``forms`` column. SQLite can't alter a CHECK
constraint, so ``keys`` is rebuilt there (a batch migration) from its definition at ``0002``,
keeping every row; on both databases the kind's CHECK is then named ``keys_kind_check``, as
``tables.py`` names it, whatever it was called before.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json
import time

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

MILLIS = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SECTIONS = ("dashboard", "responses", "exports", "inbox", "alerts", "settings", "users")
BUILTIN = {
    "owner": {s: "edit" for s in SECTIONS},
    "admin": {s: ("view" if s == "users" else "edit") for s in SECTIONS},
}
KINDS_BEFORE = "kind IN ('site', 'server')"
KINDS_AFTER = "kind IN ('site', 'server', 'read')"
#: What PostgreSQL called the kind's CHECK: its own name on a registry made before Alembic, and
#: the naming convention applied to the name 0001 gave (twice over) on one made by 0001.
KIND_CHECK_NAMES = ("keys_kind_check", "keys_keys_kind_check_check")


def _keys_at(kinds: str, *, forms: bool) -> sa.Table:
    """The ``keys`` table as SQLite holds it (``forms``: at this revision, else at ``0002``)."""
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("channels", sa.Text(), nullable=False),
        sa.Column("origins", sa.Text(), nullable=False),
        sa.Column("created_ms", MILLIS, nullable=False),
        sa.Column("revoked_ms", MILLIS, nullable=True),
    ]
    if forms:
        columns.append(sa.Column("forms", sa.Text(), nullable=True))
    return sa.Table(
        "keys",
        sa.MetaData(),
        *columns,
        sa.CheckConstraint(kinds, name="keys_kind_check"),
        sa.ForeignKeyConstraint(["project"], ["projects.id"], name="keys_project_fkey"),
        sa.PrimaryKeyConstraint("id", name="keys_pkey"),
        sa.UniqueConstraint("hash", name="keys_hash_key"),
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("created_ms", MILLIS, nullable=False),
        sa.Column("disabled_ms", MILLIS, nullable=True),
        sa.Column("password_changed_ms", MILLIS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="users_pkey"),
        sa.UniqueConstraint("email", name="users_email_key"),
    )
    groups = op.create_table(
        "groups",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("levels", sa.Text(), nullable=False),
        sa.Column("created_ms", MILLIS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="groups_pkey"),
    )
    op.create_table(
        "group_scopes",
        sa.Column("group", sa.Text(), nullable=False),
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("channels", sa.Text(), nullable=True),
        sa.Column("forms", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["group"], ["groups.name"], name="group_scopes_group_fkey"),
        sa.ForeignKeyConstraint(["project"], ["projects.id"], name="group_scopes_project_fkey"),
        sa.PrimaryKeyConstraint("group", "project", name="group_scopes_pkey"),
    )
    op.create_table(
        "memberships",
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("group", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["group"], ["groups.name"], name="memberships_group_fkey"),
        sa.ForeignKeyConstraint(["user"], ["users.id"], name="memberships_user_fkey"),
        sa.PrimaryKeyConstraint("user", "group", name="memberships_pkey"),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("csrf", sa.Text(), nullable=False),
        sa.Column("created_ms", MILLIS, nullable=False),
        sa.Column("seen_ms", MILLIS, nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["user"], ["users.id"], name="sessions_user_fkey"),
        sa.PrimaryKeyConstraint("token_hash", name="sessions_pkey"),
    )
    op.create_index("sessions_user_idx", "sessions", ["user"])
    op.create_table(
        "login_failures",
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("window_ms", MILLIS, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "what IN ('account', 'address')", name=op.f("login_failures_what_check")
        ),
        sa.PrimaryKeyConstraint("what", "name", name="login_failures_pkey"),
    )
    now = int(time.time() * 1000)
    op.bulk_insert(
        groups,
        [
            {"name": name, "builtin": True, "levels": json.dumps(levels), "created_ms": now}
            for name, levels in BUILTIN.items()
        ],
    )
    forms = sa.Column("forms", sa.Text(), nullable=True)
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("keys", copy_from=_keys_at(KINDS_BEFORE, forms=False)) as keys:
            keys.add_column(forms)
            keys.drop_constraint(op.f("keys_kind_check"), type_="check")
            keys.create_check_constraint(op.f("keys_kind_check"), sa.text(KINDS_AFTER))
        return
    for name in KIND_CHECK_NAMES:
        op.execute(sa.text(f"ALTER TABLE keys DROP CONSTRAINT IF EXISTS {name}"))
    op.add_column("keys", forms)
    op.create_check_constraint(op.f("keys_kind_check"), "keys", sa.text(KINDS_AFTER))


def downgrade() -> None:
    """Back to ``0002``: people and their sessions go, and so do read keys (0002 has none)."""
    op.execute(sa.text("DELETE FROM keys WHERE kind = 'read'"))
    with op.batch_alter_table("keys", copy_from=_keys_at(KINDS_AFTER, forms=True)) as keys:
        keys.drop_constraint(op.f("keys_kind_check"), type_="check")
        keys.create_check_constraint(op.f("keys_kind_check"), sa.text(KINDS_BEFORE))
        keys.drop_column("forms")
    op.drop_table("login_failures")
    op.drop_index("sessions_user_idx", table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("memberships")
    op.drop_table("group_scopes")
    op.drop_table("groups")
    op.drop_table("users")
