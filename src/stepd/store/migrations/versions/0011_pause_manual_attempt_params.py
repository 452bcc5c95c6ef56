"""Day-to-day operations (issue 11): a config's pause (`configs.disabled`, by whom, since
when), a task's manual run (`tasks.manual`: who ran a config by hand, for which binding)
and the params each attempt ran with (`task_attempts.params`, kept when a rerun changes
them).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (SQLite takes them as they are): a batch would copy the tables,
    # and configs and tasks keep their AUTOINCREMENT only if they are not rebuilt.
    op.add_column(
        "configs", sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column("configs", sa.Column("disabled_by", sa.String(200)))
    op.add_column("configs", sa.Column("disabled_at", sa.DateTime(timezone=True)))
    op.add_column("tasks", sa.Column("manual", sa.Text))
    op.add_column("task_attempts", sa.Column("params", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("task_attempts") as batch:
        batch.drop_column("params")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("manual")
    with op.batch_alter_table("configs") as batch:
        batch.drop_column("disabled_at")
        batch.drop_column("disabled_by")
        batch.drop_column("disabled")
