"""The tables, in SQLAlchemy Core. Migrations in `migrations/versions` create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# SQLite only aliases the rowid (its fastest key) for a column typed exactly INTEGER.
Seq = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("params", Text, nullable=False),  # JSON object of scalars
    Column("state", String(16), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("author", String(200)),
    Column("request_id", String(200)),
    Column("source_type", String(200)),
    Column("source", Text),
    Index("ix_events_name_seq", "name", "seq"),
    Index("ix_events_state_seq", "state", "seq"),
    sqlite_autoincrement=True,  # never reuse a seq: ids must stay unique forever
)

# One row per (event, param): the index behind `params__k=v` queries and the
# matcher's lookups. Its primary key is the lookup path, so a query for the
# newest events of a name with a param value walks one b-tree and stops early.
event_params = Table(
    "event_params",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("value", String(300), primary_key=True),  # see store.events.index_value
    Column("event_seq", Seq, primary_key=True),
    sqlite_with_rowid=False,
)

# A client's idempotency key: the same request_id returns the same ids.
event_requests = Table(
    "event_requests",
    metadata,
    Column("request_id", String(200), primary_key=True),
    Column("event_ids", Text, nullable=False),  # JSON list of the batch's ids
    Column("created", DateTime(timezone=True), nullable=False),
)

event_descs = Table(
    "event_descs",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("required_fields", Text, nullable=False),  # JSON list of names
    Column("optional_fields", Text, nullable=False),  # JSON list of names
    Column("public", Boolean, nullable=False, default=False),
    Column("list_in_idm", Boolean, nullable=False, default=False),
    Column("author", String(200)),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex
    Column("user", String(200), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)
