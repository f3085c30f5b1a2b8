"""Closing the loop: follow-up and alert rules, follow-up items and their changes, the outbox.

Adds the tables of ``tables.py`` that follow-ups, alerts, webhooks and emails need: ``rules``,
``followups``, ``followup_changes``, ``alert_rules``, ``alerts_fired``, ``webhook_endpoints``,
``outbox``, ``webhook_deliveries``, ``webhook_attempts``, ``email_outbox``, ``digests``,
``feed_cursors`` and ``jobs``. Nothing that exists changes.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

MILLIS = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "feed_cursors",
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("revision_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", MILLIS, nullable=False),
        sa.PrimaryKeyConstraint("channel", name=op.f("feed_cursors_pkey")),
    )
    op.create_table(
        "jobs",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("lease_ms", MILLIS, nullable=True),
        sa.Column("holder", sa.Text(), nullable=True),
        sa.Column("last_ms", MILLIS, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("jobs_pkey")),
    )
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("form", sa.Text(), nullable=True),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("factor", sa.Float(), nullable=True),
        sa.Column("min_count", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_ms", MILLIS, nullable=False),
        sa.CheckConstraint(
            "kind IN ('score_drop', 'volume_spike')", name=op.f("alert_rules_kind_check")
        ),
        sa.CheckConstraint(
            "period IN ('hour', 'day', 'week')", name=op.f("alert_rules_period_check")
        ),
        sa.ForeignKeyConstraint(
            ["project"], ["projects.id"], name=op.f("alert_rules_project_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("alert_rules_pkey")),
    )
    op.create_index(op.f("alert_rules_project_idx"), "alert_rules", ["project"])
    op.create_table(
        "alerts_fired",
        sa.Column("condition", sa.Text(), nullable=False),
        sa.Column("period_ms", MILLIS, nullable=False),
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("at_ms", MILLIS, nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project"], ["projects.id"], name=op.f("alerts_fired_project_fkey")
        ),
        sa.PrimaryKeyConstraint("condition", "period_ms", name=op.f("alerts_fired_pkey")),
    )
    op.create_table(
        "digests",
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("frequency", sa.Text(), nullable=False),
        sa.Column("lang", sa.Text(), nullable=False),
        sa.Column("last_ms", MILLIS, nullable=True),
        sa.CheckConstraint(
            "frequency IN ('daily', 'weekly')", name=op.f("digests_frequency_check")
        ),
        sa.ForeignKeyConstraint(["project"], ["projects.id"], name=op.f("digests_project_fkey")),
        sa.ForeignKeyConstraint(["user"], ["users.id"], name=op.f("digests_user_fkey")),
        sa.PrimaryKeyConstraint("user", "project", name=op.f("digests_pkey")),
    )
    op.create_table(
        "email_outbox",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("project", sa.Text(), nullable=True),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("created_ms", MILLIS, nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_ms", MILLIS, nullable=False),
        sa.Column("lease_ms", MILLIS, nullable=True),
        sa.Column("done_ms", MILLIS, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'sent', 'failed')", name=op.f("email_outbox_state_check")
        ),
        sa.ForeignKeyConstraint(
            ["project"], ["projects.id"], name=op.f("email_outbox_project_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("email_outbox_pkey")),
    )
    op.create_index("email_outbox_state_next_ms_idx", "email_outbox", ["state", "next_ms"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_ms", MILLIS, nullable=False),
        sa.ForeignKeyConstraint(["project"], ["projects.id"], name=op.f("outbox_project_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("outbox_pkey")),
    )
    op.create_table(
        "rules",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("channels", sa.Text(), nullable=True),
        sa.Column("forms", sa.Text(), nullable=True),
        sa.Column("metrics", sa.Text(), nullable=True),
        sa.Column("score_min", sa.Integer(), nullable=True),
        sa.Column("score_max", sa.Integer(), nullable=True),
        sa.Column("low", sa.Boolean(), nullable=False),
        sa.Column("has_comment", sa.Boolean(), nullable=True),
        sa.Column("words", sa.Text(), nullable=True),
        sa.Column("sla_hours", sa.Integer(), nullable=False),
        sa.Column("escalate_to", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_ms", MILLIS, nullable=False),
        sa.CheckConstraint("kind IN ('followup', 'alert')", name=op.f("rules_kind_check")),
        sa.ForeignKeyConstraint(["project"], ["projects.id"], name=op.f("rules_project_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("rules_pkey")),
    )
    op.create_index(op.f("rules_project_idx"), "rules", ["project"])
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_types", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        sa.Column("previous_until_ms", MILLIS, nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_ms", MILLIS, nullable=False),
        sa.Column("failing_since_ms", MILLIS, nullable=True),
        sa.Column("disabled_ms", MILLIS, nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project"], ["projects.id"], name=op.f("webhook_endpoints_project_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_endpoints_pkey")),
    )
    op.create_index(op.f("webhook_endpoints_project_idx"), "webhook_endpoints", ["project"])
    op.create_table(
        "followups",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("form", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=True),
        sa.Column("respondent", sa.Text(), nullable=True),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("assignee", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("created_ms", MILLIS, nullable=False),
        sa.Column("due_ms", MILLIS, nullable=False),
        sa.Column("first_action_ms", MILLIS, nullable=True),
        sa.Column("closed_ms", MILLIS, nullable=True),
        sa.Column("breached_ms", MILLIS, nullable=True),
        sa.Column("updated_ms", MILLIS, nullable=False),
        sa.CheckConstraint(
            "status IN ('new', 'assigned', 'in_progress', 'resolved', 'closed')",
            name=op.f("followups_status_check"),
        ),
        sa.ForeignKeyConstraint(["assignee"], ["users.id"], name=op.f("followups_assignee_fkey")),
        sa.ForeignKeyConstraint(["project"], ["projects.id"], name=op.f("followups_project_fkey")),
        sa.ForeignKeyConstraint(["rule"], ["rules.id"], name=op.f("followups_rule_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("followups_pkey")),
        sa.UniqueConstraint(
            "project",
            "channel",
            "form",
            "subject",
            name=op.f("followups_project_channel_form_subject_key"),
        ),
    )
    op.create_index("followups_open_due_idx", "followups", ["status", "due_ms"])
    op.create_index("followups_project_created_idx", "followups", ["project", "created_ms"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("at_ms", MILLIS, nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint"], ["webhook_endpoints.id"], name=op.f("webhook_attempts_endpoint_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["message"], ["outbox.id"], name=op.f("webhook_attempts_message_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_attempts_pkey")),
    )
    op.create_index(
        "webhook_attempts_endpoint_at_ms_idx", "webhook_attempts", ["endpoint", "at_ms"]
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_ms", MILLIS, nullable=False),
        sa.Column("lease_ms", MILLIS, nullable=True),
        sa.Column("done_ms", MILLIS, nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'failed')",
            name=op.f("webhook_deliveries_state_check"),
        ),
        sa.ForeignKeyConstraint(
            ["endpoint"], ["webhook_endpoints.id"], name=op.f("webhook_deliveries_endpoint_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["message"], ["outbox.id"], name=op.f("webhook_deliveries_message_fkey")
        ),
        sa.PrimaryKeyConstraint("message", "endpoint", name=op.f("webhook_deliveries_pkey")),
    )
    op.create_index(
        "webhook_deliveries_state_next_ms_idx", "webhook_deliveries", ["state", "next_ms"]
    )
    op.create_table(
        "followup_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("followup", sa.Text(), nullable=False),
        sa.Column("at_ms", MILLIS, nullable=False),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["followup"], ["followups.id"], name=op.f("followup_changes_followup_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("followup_changes_pkey")),
    )
    op.create_index(op.f("followup_changes_followup_idx"), "followup_changes", ["followup"])


def downgrade() -> None:
    op.drop_index(op.f("followup_changes_followup_idx"), table_name="followup_changes")
    op.drop_table("followup_changes")
    op.drop_index("webhook_deliveries_state_next_ms_idx", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("webhook_attempts_endpoint_at_ms_idx", table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index("followups_project_created_idx", table_name="followups")
    op.drop_index("followups_open_due_idx", table_name="followups")
    op.drop_table("followups")
    op.drop_index(op.f("webhook_endpoints_project_idx"), table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_index(op.f("rules_project_idx"), table_name="rules")
    op.drop_table("rules")
    op.drop_table("outbox")
    op.drop_index("email_outbox_state_next_ms_idx", table_name="email_outbox")
    op.drop_table("email_outbox")
    op.drop_table("digests")
    op.drop_table("alerts_fired")
    op.drop_index(op.f("alert_rules_project_idx"), table_name="alert_rules")
    op.drop_table("alert_rules")
    op.drop_table("jobs")
    op.drop_table("feed_cursors")
