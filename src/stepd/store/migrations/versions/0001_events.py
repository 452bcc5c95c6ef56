"""events, their param index, request ids, event descriptions, tokens

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(200)),
        sa.Column("request_id", sa.String(200)),
        sa.Column("source_type", sa.String(200)),
        sa.Column("source", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_name_seq", "events", ["name", "seq"])
    op.create_index("ix_events_state_seq", "events", ["state", "seq"])
    op.create_table(
        "event_params",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.String(300), primary_key=True),
        sa.Column("event_seq", Seq, primary_key=True),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "event_requests",
        sa.Column("request_id", sa.String(200), primary_key=True),
        sa.Column("event_ids", sa.Text, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "event_descs",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("required_fields", sa.Text, nullable=False),
        sa.Column("optional_fields", sa.Text, nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("list_in_idm", sa.Boolean, nullable=False),
        sa.Column("author", sa.String(200)),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    for table in ("tokens", "event_descs", "event_requests", "event_params", "events"):
        op.drop_table(table)
