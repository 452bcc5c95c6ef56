"""Retention: request ids by age, and autovacuum that keeps up with batched deletes.

`ix_event_requests_created` lets retention delete the oldest request ids a batch at a
time (services/retention.py) without walking the table. On PostgreSQL the tables
retention deletes from are vacuumed after 2% of their rows are dead rather than the
default 20%, so that the space of a round's deletes is reused by the rows that arrive
next instead of the tables growing (docs/operations.md, Retention).

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

PRUNED_TABLES = (
    "events",
    "event_params",
    "event_sources",
    "event_requests",
    "triggers",
    "tasks",
    "task_attempts",
    "task_logs",
    "task_events",
)
AUTOVACUUM = (
    "autovacuum_vacuum_scale_factor = 0.02",
    "autovacuum_analyze_scale_factor = 0.02",
)


def upgrade() -> None:
    op.create_index("ix_event_requests_created", "event_requests", ["created"])
    if op.get_bind().dialect.name == "postgresql":
        for table in PRUNED_TABLES:
            op.execute(f"ALTER TABLE {table} SET ({', '.join(AUTOVACUUM)})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        names = ", ".join(option.split(" = ")[0] for option in AUTOVACUUM)
        for table in PRUNED_TABLES:
            op.execute(f"ALTER TABLE {table} RESET ({names})")
    op.drop_index("ix_event_requests_created", table_name="event_requests")
