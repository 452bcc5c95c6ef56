"""the queue of claimable tasks in claim order, so a claim reads its head instead of sorting

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CLAIMABLE = sa.text("status IN ('ENQUEUED', 'WAIT_MUTEX') AND dispatched IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_tasks_queue",
        "tasks",
        [sa.text("priority DESC"), "id"],
        sqlite_where=CLAIMABLE,
        postgresql_where=CLAIMABLE,
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_queue", table_name="tasks")
