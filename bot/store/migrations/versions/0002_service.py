"""The service: series, revisions, patches, jobs, runs, check results, poll cursors,
commands (bot/store/models.py, second part).

Revision ID: 0002_service
Revises: 0001_outbox
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_service"
down_revision = "0001_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "poll_cursors",
        sa.Column("list_url", sa.String(length=512), nullable=False),
        sa.Column("last_received_at", sa.DateTime(), nullable=True),
        sa.Column("last_poll_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("messages_seen", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("list_url"),
    )
    op.create_table(
        "series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=512), nullable=False),
        sa.Column("list_name", sa.String(length=256), nullable=False),
        sa.Column("change_id", sa.String(length=256), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index(op.f("ix_series_author"), "series", ["author"], unique=False)
    op.create_index(op.f("ix_series_change_id"), "series", ["change_id"], unique=False)
    op.create_index(op.f("ix_series_list_name"), "series", ["list_name"], unique=False)
    op.create_index(op.f("ix_series_updated_at"), "series", ["updated_at"], unique=False)
    op.create_table(
        "revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("msgid", sa.String(length=512), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("n_patches", sa.Integer(), nullable=False),
        sa.Column("base_commit", sa.String(length=64), nullable=True),
        sa.Column("posted_at", sa.DateTime(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["series.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("msgid"),
        sa.UniqueConstraint("series_id", "revision"),
    )
    op.create_index(op.f("ix_revisions_received_at"), "revisions", ["received_at"], unique=False)
    op.create_index(op.f("ix_revisions_series_id"), "revisions", ["series_id"], unique=False)
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("revision_id", sa.Integer(), nullable=True),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("tree", sa.String(length=256), nullable=True),
        sa.Column("base", sa.String(length=64), nullable=True),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "QUEUED", "RUNNING", "DONE", "FAILED", name="jobstate", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=256), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index(op.f("ix_jobs_created_at"), "jobs", ["created_at"], unique=False)
    op.create_index(op.f("ix_jobs_lease_until"), "jobs", ["lease_until"], unique=False)
    op.create_index(op.f("ix_jobs_revision_id"), "jobs", ["revision_id"], unique=False)
    op.create_index(op.f("ix_jobs_state"), "jobs", ["state"], unique=False)
    op.create_table(
        "patches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("msgid", sa.String(length=512), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("revision_id", "index"),
    )
    op.create_index(op.f("ix_patches_msgid"), "patches", ["msgid"], unique=False)
    op.create_index(op.f("ix_patches_revision_id"), "patches", ["revision_id"], unique=False)
    op.create_table(
        "commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("msgid", sa.String(length=512), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=True),
        sa.Column("sender", sa.String(length=512), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["series.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("msgid", "line_no"),
    )
    op.create_index(op.f("ix_commands_msgid"), "commands", ["msgid"], unique=False)
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=32), nullable=False),
        sa.Column("exit_status", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("tree", sa.String(length=256), nullable=True),
        sa.Column("base_commit", sa.String(length=64), nullable=True),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id"),
    )
    op.create_index(op.f("ix_runs_created_at"), "runs", ["created_at"], unique=False)
    op.create_index(op.f("ix_runs_digest"), "runs", ["digest"], unique=False)
    op.create_index(op.f("ix_runs_revision_id"), "runs", ["revision_id"], unique=False)
    op.create_index(op.f("ix_runs_tree"), "runs", ["tree"], unique=False)
    op.create_index(op.f("ix_runs_verdict"), "runs", ["verdict"], unique=False)
    op.create_table(
        "check_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("patch_index", sa.Integer(), nullable=False),
        sa.Column("check", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=32), nullable=False),
        sa.Column("states", sa.Integer(), nullable=False),
        sa.Column("differing", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_check_results_run_id"), "check_results", ["run_id"], unique=False)
    op.create_index(op.f("ix_check_results_verdict"), "check_results", ["verdict"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_check_results_verdict"), table_name="check_results")
    op.drop_index(op.f("ix_check_results_run_id"), table_name="check_results")
    op.drop_table("check_results")
    op.drop_index(op.f("ix_runs_verdict"), table_name="runs")
    op.drop_index(op.f("ix_runs_tree"), table_name="runs")
    op.drop_index(op.f("ix_runs_revision_id"), table_name="runs")
    op.drop_index(op.f("ix_runs_digest"), table_name="runs")
    op.drop_index(op.f("ix_runs_created_at"), table_name="runs")
    op.drop_table("runs")
    op.drop_index(op.f("ix_commands_msgid"), table_name="commands")
    op.drop_table("commands")
    op.drop_index(op.f("ix_patches_revision_id"), table_name="patches")
    op.drop_index(op.f("ix_patches_msgid"), table_name="patches")
    op.drop_table("patches")
    op.drop_index(op.f("ix_jobs_state"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_revision_id"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_lease_until"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_created_at"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_index(op.f("ix_revisions_series_id"), table_name="revisions")
    op.drop_index(op.f("ix_revisions_received_at"), table_name="revisions")
    op.drop_table("revisions")
    op.drop_index(op.f("ix_series_updated_at"), table_name="series")
    op.drop_index(op.f("ix_series_list_name"), table_name="series")
    op.drop_index(op.f("ix_series_change_id"), table_name="series")
    op.drop_index(op.f("ix_series_author"), table_name="series")
    op.drop_table("series")
    op.drop_table("poll_cursors")
