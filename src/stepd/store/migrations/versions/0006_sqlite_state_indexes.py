"""SQLite: partial indexes of the NEW and of the REJECTED events instead of (state, seq)

The reactor marks every event it evaluates PROCESSED. With an index on (state, seq)
that update also moved each event from the NEW part of the index to the PROCESSED part,
which grew with every event ever stored and which nothing reads: ~70% of the update's
cost, paid while SQLite's single writer lock is held and ingest waits. The partial
indexes hold only the few events that queries look for by state. PostgreSQL keeps
(state, seq): its writers do not queue on one lock.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_index("ix_events_new", "events", ["seq"], sqlite_where=sa.text("state = 'NEW'"))
    op.create_index(
        "ix_events_rejected", "events", ["seq"], sqlite_where=sa.text("state = 'REJECTED'")
    )
    op.drop_index("ix_events_state_seq", table_name="events")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_index("ix_events_state_seq", "events", ["state", "seq"])
    op.drop_index("ix_events_rejected", table_name="events")
    op.drop_index("ix_events_new", table_name="events")
