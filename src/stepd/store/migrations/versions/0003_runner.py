"""the runner: task scheduling columns, attempts, logs, semaphores and their holds

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("not_before", When))
        batch.add_column(sa.Column("dispatched", When))
        batch.add_column(sa.Column("heartbeat", When))
        batch.add_column(sa.Column("worker", sa.String(200)))
        batch.add_column(
            sa.Column("stop_requested", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_table(
        "task_attempts",
        sa.Column("task_id", Seq, primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(200)),
        sa.Column("started", When),
        sa.Column("finished", When),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "task_logs",
        sa.Column("task_id", Seq, primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("chunk", sa.Integer, primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_table(
        "semaphores",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("auto", sa.Boolean, nullable=False),
        sa.Column("updated", When, nullable=False),
    )
    op.create_table(
        "semaphore_holds",
        sa.Column("task_id", Seq, primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("weight", sa.Integer, nullable=False),
    )
    op.create_index("ix_semaphore_holds_name", "semaphore_holds", ["name"])


def downgrade() -> None:
    for table in ("semaphore_holds", "semaphores", "task_logs", "task_attempts"):
        op.drop_table(table)
    with op.batch_alter_table("tasks") as batch:
        for column in ("stop_requested", "worker", "heartbeat", "dispatched", "not_before"):
            batch.drop_column(column)
