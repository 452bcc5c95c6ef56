"""event_requests remember what was sent, so a reused request_id with other events is refused

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_requests") as batch:
        batch.add_column(sa.Column("digest", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("event_requests") as batch:
        batch.drop_column("digest")
