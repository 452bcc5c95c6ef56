"""Config tombstones: `config_tombstones` keeps a deleted config's last version.

Before this, a deleted config's row was simply gone, so old stories said "no config
depends on ..." and named its tasks' config `null`. Its history was always kept,
though: the configs deleted before this migration get their tombstones from it (the
`deleted` entry holds the last body; the `created` entry says who the author was,
since only the author's own token creates a config).

Revision ID: 0014
Revises: 0013
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    tombstones = op.create_table(
        "config_tombstones",
        sa.Column("seq", Seq, primary_key=True, autoincrement=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("task_type", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created", When, nullable=False),
        sa.Column("updated", When, nullable=False),
        sa.Column("deleted_by", sa.String(200), nullable=False),
        sa.Column("deleted_at", When, nullable=False),
    )
    op.create_index("ix_config_tombstones_author", "config_tombstones", ["author"])
    assert tombstones is not None
    op.bulk_insert(tombstones, list(_from_history()))


def _from_history() -> list[dict[str, object]]:
    history = sa.table(
        "config_history",
        sa.column("id", sa.Integer),
        sa.column("config_seq", sa.Integer),
        sa.column("version", sa.Integer),
        sa.column("actor", sa.String),
        sa.column("at", When),
        sa.column("action", sa.String),
        sa.column("body", sa.Text),
    )
    conn = op.get_bind()
    deleted = conn.execute(
        sa.select(history).where(history.c.action == "deleted").order_by(history.c.id)
    ).all()
    rows: list[dict[str, object]] = []
    for gone in deleted:
        entries = conn.execute(
            sa.select(history)
            .where(history.c.config_seq == gone.config_seq, history.c.id < gone.id)
            .order_by(history.c.id)
        ).all()
        created = next((e for e in entries if e.action == "created"), None)
        body = json.loads(gone.body)
        rows.append(
            {
                "seq": gone.config_seq,
                "author": gone.actor if created is None else created.actor,
                "name": str(body.get("name") or ""),
                # The deleted entry counted one version past the last the config had.
                "version": entries[-1].version if entries else max(1, gone.version - 1),
                "task_type": str(body.get("task_type") or ""),
                "body": gone.body,
                "created": gone.at if created is None else created.at,
                "updated": entries[-1].at if entries else gone.at,
                "deleted_by": gone.actor,
                "deleted_at": gone.at,
            }
        )
    return rows


def downgrade() -> None:
    op.drop_index("ix_config_tombstones_author", table_name="config_tombstones")
    op.drop_table("config_tombstones")
