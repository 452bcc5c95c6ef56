"""The fleet: `workers` (each worker process announces itself and beats) and
`deployment_settings` (what every process of a deployment must agree on, stored once).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("executor", sa.String(32), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(200)),
        sa.Column("task_types", sa.Text, nullable=False),
        sa.Column("started", When, nullable=False),
        sa.Column("last_seen", When, nullable=False),
        sa.Column("stopped", When),
    )
    op.create_index("ix_workers_last_seen", "workers", ["last_seen"])
    op.create_table(
        "deployment_settings",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated", When, nullable=False),
        sa.Column("updated_by", sa.String(200)),
    )


def downgrade() -> None:
    op.drop_table("deployment_settings")
    op.drop_index("ix_workers_last_seen", table_name="workers")
    op.drop_table("workers")
