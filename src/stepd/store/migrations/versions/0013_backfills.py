"""Backfills (issue 11): `backfills`, one row per backfill with its params and how many
of its bindings it has made, and `tasks.backfill_id`, the backfill a task belongs to
(with a partial index: only backfills' tasks are in it, so other inserts pay nothing).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "backfills",
        sa.Column("id", Seq, primary_key=True, autoincrement=True),
        sa.Column("config_seq", Seq, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("made", sa.Integer, nullable=False),
        sa.Column("max_in_flight", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("request_id", sa.String(200), unique=True),
        sa.Column("created", When, nullable=False),
        sa.Column("updated", When, nullable=False),
        sa.Column("ended", When),
        sa.Column("cancelled_by", sa.String(200)),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_backfills_state", "backfills", ["state", "id"])
    op.create_index("ix_backfills_config", "backfills", ["config_seq", "id"])
    # A plain ADD COLUMN (a batch would rebuild tasks and lose its AUTOINCREMENT).
    op.add_column("tasks", sa.Column("backfill_id", Seq))
    op.create_index(
        "ix_tasks_backfill",
        "tasks",
        ["backfill_id", "status"],
        sqlite_where=sa.text("backfill_id IS NOT NULL"),
        postgresql_where=sa.text("backfill_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_backfill", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("backfill_id")
    op.drop_index("ix_backfills_config", table_name="backfills")
    op.drop_index("ix_backfills_state", table_name="backfills")
    op.drop_table("backfills")
