"""The dashboard's indexes (bot/web/): the series list at 10,000 series.

- runs (revision_id, id, verdict, tree): a revision's newest run, its verdict and tree,
  read from the index alone (the runs table's rows hold the reports);
- runs (created_at, id, verdict, revision_id, job_id) and check_results (run_id, check,
  states, seconds): the history's aggregates, from the indexes alone.

Revision ID: 0005_web
Revises: 0004_jobs
"""

from alembic import op

revision = "0005_web"
down_revision = "0004_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_runs_revision_newest", "runs", ["revision_id", "id", "verdict", "tree"], unique=False
    )
    op.create_index(
        "ix_runs_history",
        "runs",
        ["created_at", "id", "verdict", "revision_id", "job_id"],
        unique=False,
    )
    op.create_index(
        "ix_check_results_speed",
        "check_results",
        ["run_id", "check", "states", "seconds"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_check_results_speed", table_name="check_results")
    op.drop_index("ix_runs_history", table_name="runs")
    op.drop_index("ix_runs_revision_newest", table_name="runs")
