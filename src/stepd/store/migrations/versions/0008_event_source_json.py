"""events may carry a JSON object as their source, as the original STEP client sends it

The original client's `create_events(..., sandbox_task_id=N)` sends `"source": {"task_id":
N}`. Existing rows keep plain strings in `source`, and any string may look like JSON, so
an object goes to a column of its own (`source_object`, its compact JSON; NULL for every
old row and for a string source) instead of an encoding inside `source` that an old
string could be mistaken for. `event_sources` indexes an object's scalar values, as
`event_params` does params, so `GET /api/v1/events?source__task_id=N` reads only the
events sent with that value.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("source_object", sa.Text, nullable=True))
    op.create_table(
        "event_sources",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.String(300), primary_key=True),
        sa.Column("event_seq", Seq, primary_key=True),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("event_sources")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("source_object")
