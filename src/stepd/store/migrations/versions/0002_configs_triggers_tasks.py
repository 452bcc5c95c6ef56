"""action configs and their history, triggers, tasks and the events they emitted

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "configs",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("task_type", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created", When, nullable=False),
        sa.Column("updated", When, nullable=False),
        sa.UniqueConstraint("author", "name", name="uq_configs_author_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "config_history",
        sa.Column("id", Seq, primary_key=True, autoincrement=True),
        sa.Column("config_seq", Seq, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("change", sa.Text, nullable=False),
    )
    op.create_index("ix_config_history_config_seq", "config_history", ["config_seq"])
    op.create_table(
        "config_generation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO config_generation (id, generation) VALUES (1, 0)")
    op.create_table(
        "triggers",
        sa.Column("id", Seq, primary_key=True, autoincrement=True),
        sa.Column("config_seq", Seq, nullable=False),
        sa.Column("config_version", sa.Integer, nullable=False),
        sa.Column("event_seq", Seq, nullable=False),
        sa.Column("binding_hash", sa.String(64), nullable=False),
        sa.Column("binding", sa.Text, nullable=False),
        sa.Column("dep_events", sa.Text, nullable=False),
        sa.Column("task_id", Seq),
        sa.Column("error", sa.Text),
        sa.Column("created", When, nullable=False),
        sa.UniqueConstraint("config_seq", "event_seq", "binding_hash", name="uq_triggers_once"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_triggers_event_seq", "triggers", ["event_seq"])
    op.create_index("ix_triggers_task_id", "triggers", ["task_id"])
    op.create_table(
        "tasks",
        sa.Column("id", Seq, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("author", sa.String(200)),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("semaphores", sa.Text, nullable=False),
        sa.Column("kill_timeout", sa.Integer),
        sa.Column("max_retries", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("config_seq", Seq),
        sa.Column("config_version", sa.Integer),
        sa.Column("event_seq", Seq),
        sa.Column("created", When, nullable=False),
        sa.Column("updated", When, nullable=False),
        sa.Column("started", When),
        sa.Column("finished", When),
        sa.Column("output", sa.Text),
        sa.Column("error", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_tasks_config_seq", "tasks", ["config_seq"])
    op.create_index("ix_tasks_event_seq", "tasks", ["event_seq"])
    op.create_index("ix_tasks_status_priority_id", "tasks", ["status", "priority", "id"])
    op.create_table(
        "task_events",
        sa.Column("task_id", Seq, primary_key=True),
        sa.Column("event_seq", Seq, primary_key=True),
    )


def downgrade() -> None:
    for table in (
        "task_events",
        "tasks",
        "triggers",
        "config_generation",
        "config_history",
        "configs",
    ):
        op.drop_table(table)
