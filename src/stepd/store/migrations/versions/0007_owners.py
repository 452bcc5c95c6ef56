"""semaphores.owner: who may change a semaphore besides an admin

Semaphores made before this revision, and those made automatically on first use, have
no owner (NULL) until one of their users sets their capacity (services/authz.py).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("semaphores") as batch:
        batch.add_column(sa.Column("owner", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("semaphores") as batch:
        batch.drop_column("owner")
