"""Cron schedules: `schedules`, one row per schedule with its next tick to emit.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("catch_up", sa.Integer, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("created", When, nullable=False),
        sa.Column("updated", When, nullable=False),
        sa.Column("next_tick", When, nullable=False),
        sa.Column("last_tick", When),
    )
    op.create_index("ix_schedules_next_tick", "schedules", ["next_tick"])


def downgrade() -> None:
    op.drop_index("ix_schedules_next_tick", table_name="schedules")
    op.drop_table("schedules")
