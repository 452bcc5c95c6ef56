"""SQLite: `tasks` is AUTOINCREMENT again, so no task id is ever handed out twice

Migration 0003's `batch_alter_table("tasks")` rebuilt the table from reflection, which
does not carry `sqlite_autoincrement`: since then SQLite gave a new task max(id) + 1, so
the id of a deleted newest task (store.tasks.delete_unfired) went to the next one. This
rebuilds `tasks` as schema.py declares it, by hand rather than with another batch
rebuild, because reflection also loses `ix_tasks_queue`'s sort order and partial
predicate: the old table is renamed aside, the new one created with every index, the
rows copied in one INSERT ... SELECT (ids kept), the old table dropped.

`sqlite_sequence` then starts above every task id the store still knows of: the highest
row, and the highest id a trigger, an attempt, a log, an emitted event or a semaphore
hold refers to (a deleted task's id may survive there). An id deleted at the top without
a trace anywhere could already be handed out again before this revision; none can after.

PostgreSQL: nothing to do, its BIGSERIAL sequence never goes back.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)
CLAIMABLE = sa.text("status IN ('ENQUEUED', 'WAIT_MUTEX') AND dispatched IS NULL")
ASIDE = "_tasks_before_0009"

# The tables that name a task id, and the column that does.
_REFERENCES = (
    ("triggers", "task_id"),
    ("task_attempts", "task_id"),
    ("task_logs", "task_id"),
    ("task_events", "task_id"),
    ("semaphore_holds", "task_id"),
)


def _tasks(metadata: sa.MetaData) -> sa.Table:
    """`tasks` as schema.py declares it at this revision (a migration keeps its own copy:
    schema.py moves on)."""
    return sa.Table(
        "tasks",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("author", sa.String(200)),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("semaphores", sa.Text, nullable=False),
        sa.Column("kill_timeout", sa.Integer),
        sa.Column("max_retries", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("config_seq", sa.Integer, index=True),
        sa.Column("config_version", sa.Integer),
        sa.Column("event_seq", sa.Integer, index=True),
        sa.Column("created", When, nullable=False),
        sa.Column("updated", When, nullable=False),
        sa.Column("started", When),
        sa.Column("finished", When),
        sa.Column("output", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("not_before", When),
        sa.Column("dispatched", When),
        sa.Column("heartbeat", When),
        sa.Column("worker", sa.String(200)),
        sa.Column("stop_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Index("ix_tasks_status_priority_id", "status", "priority", "id"),
        sa.Index("ix_tasks_queue", sa.text("priority DESC"), "id", sqlite_where=CLAIMABLE),
        sqlite_autoincrement=True,
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    indexes = bind.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks'"
        " AND sql IS NOT NULL"
    ).scalars()
    for name in list(indexes):  # they would move with the table and keep their names
        op.drop_index(name, table_name="tasks")
    op.rename_table("tasks", ASIDE)
    table = _tasks(sa.MetaData())
    table.create(bind)
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    bind.exec_driver_sql(f"INSERT INTO tasks ({columns}) SELECT {columns} FROM {ASIDE}")
    op.drop_table(ASIDE)
    highest = " UNION ALL ".join(
        [f"SELECT max({column}) AS id FROM {name}" for name, column in _REFERENCES]
        + ["SELECT max(id) AS id FROM tasks"]
    )
    # The INSERT above left sqlite_sequence at max(id) (or without a row for an empty
    # table); raise it to the highest id referred to anywhere.
    bind.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = 'tasks'")
    bind.exec_driver_sql(
        "INSERT INTO sqlite_sequence (name, seq)"
        f" SELECT 'tasks', max(id) FROM ({highest}) WHERE id IS NOT NULL HAVING count(*) > 0"
    )


def downgrade() -> None:
    # AUTOINCREMENT is no part of what 0008 reads or writes: the table stays as it is.
    pass
