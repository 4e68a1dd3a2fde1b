"""Jobs: when a job's id was last handed to the worker backend (bot/service/jobs.dispatch).

Revision ID: 0004_jobs
Revises: 0002_service
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_jobs"
down_revision = "0002_service"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("sent_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("sent_at")
