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
    UniqueConstraint,
    false,
    text,
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
    Column("source", Text),  # a string source (NULL when it is an object)
    Column("source_object", Text),  # an object source, its compact JSON (migration 0008)
    Index("ix_events_name_seq", "name", "seq"),
    # By state: PostgreSQL indexes (state, seq); SQLite only the NEW and the REJECTED
    # events (migration 0006: the reactor's marking is cheaper). SQLite plans a query
    # with a bound `state = ?` again once the value is bound, so it finds them too.
    Index("ix_events_state_seq", "state", "seq").ddl_if(dialect="postgresql"),
    Index("ix_events_new", "seq", sqlite_where=text("state = 'NEW'")).ddl_if(dialect="sqlite"),
    Index("ix_events_rejected", "seq", sqlite_where=text("state = 'REJECTED'")).ddl_if(
        dialect="sqlite"
    ),
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

# One row per (event, scalar of its object source): the index behind `source__k=v`.
event_sources = Table(
    "event_sources",
    metadata,
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
    Column("digest", String(64), nullable=False, server_default=""),  # sha256 of what was sent
    Column("created", DateTime(timezone=True), nullable=False),
    Index("ix_event_requests_created", "created"),  # retention's (migration 0015)
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

configs = Table(
    "configs",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("author", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("task_type", String(200), nullable=False),
    Column("body", Text, nullable=False),  # JSON of the ConfigSpec
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    # Paused by an operator (migration 0011): operational state, not part of the config's
    # body, so that a PUT or `configs sync` of the body never resumes it.
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("disabled_by", String(200)),
    Column("disabled_at", DateTime(timezone=True)),
    UniqueConstraint("author", "name", name="uq_configs_author_name"),
    sqlite_autoincrement=True,
)

# A deleted config's last version (migration 0014): its row leaves `configs`, so the reactor's
# catalog and the author's name are free of it, and this row keeps what past stories, tasks
# and GET /configs/{id} still show. `seq` is the deleted config's own (never given again).
config_tombstones = Table(
    "config_tombstones",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=False),
    Column("author", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),  # the last version, the one that could fire
    Column("task_type", String(200), nullable=False),
    Column("body", Text, nullable=False),  # JSON of its last ConfigSpec
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Column("deleted_by", String(200), nullable=False),
    Column("deleted_at", DateTime(timezone=True), nullable=False),
    Index("ix_config_tombstones_author", "author"),
)

# Every change of a config: who, when, what (the reactor links tasks to versions).
config_history = Table(
    "config_history",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("config_seq", Seq, nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("action", String(16), nullable=False),  # created, updated, deleted, disabled, enabled
    Column("body", Text, nullable=False),  # the full spec at this version
    Column("change", Text, nullable=False),  # JSON {field: {old, new}}
)

# One row, bumped with every config change, so a reactor knows when to reload.
config_generation = Table(
    "config_generation",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("generation", BigInteger, nullable=False),
)

# A firing: (config, triggering event, binding). Its unique key is what makes a
# second evaluation of the same event (restart, retry, second replica) a no-op.
triggers = Table(
    "triggers",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("config_seq", Seq, nullable=False),
    Column("config_version", Integer, nullable=False),
    Column("event_seq", Seq, nullable=False, index=True),
    Column("binding_hash", String(64), nullable=False),
    Column("binding", Text, nullable=False),  # JSON of the bound free params
    Column("dep_events", Text, nullable=False),  # JSON list of event seqs, one per dep
    Column("task_id", Seq, index=True),  # null when the task could not be made
    Column("error", Text),  # why no task was made (a template that failed)
    Column("created", DateTime(timezone=True), nullable=False),
    UniqueConstraint("config_seq", "event_seq", "binding_hash", name="uq_triggers_once"),
    sqlite_autoincrement=True,
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("type", String(200), nullable=False),
    Column("params", Text, nullable=False),  # JSON object
    Column("status", String(16), nullable=False),
    Column("author", String(200)),
    Column("priority", Integer, nullable=False),
    Column("semaphores", Text, nullable=False),  # JSON list of {name, weight}
    Column("kill_timeout", Integer),
    Column("max_retries", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("config_seq", Seq, index=True),
    Column("config_version", Integer),
    Column("event_seq", Seq, index=True),  # the triggering event
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Column("started", DateTime(timezone=True)),
    Column("finished", DateTime(timezone=True)),
    Column("output", Text),  # JSON
    Column("error", Text),
    Column("not_before", DateTime(timezone=True)),  # a retry waits until then
    Column("dispatched", DateTime(timezone=True)),  # claimed: semaphores held, sent to a worker
    Column("heartbeat", DateTime(timezone=True)),  # last sign of life of its worker
    Column("worker", String(200)),  # which worker runs it
    Column("stop_requested", Boolean, nullable=False, server_default=false()),
    # A config run by hand (migration 0011): JSON {by, binding}; NULL for every other task.
    Column("manual", Text),
    # The backfill that made it (migration 0013); NULL for every other task.
    Column("backfill_id", Seq),
    Index("ix_tasks_status_priority_id", "status", "priority", "id"),
    # The claimable queue in claim order (see store.runs): a claim reads its head.
    Index(
        "ix_tasks_queue",
        text("priority DESC"),
        "id",
        sqlite_where=text("status IN ('ENQUEUED', 'WAIT_MUTEX') AND dispatched IS NULL"),
        postgresql_where=text("status IN ('ENQUEUED', 'WAIT_MUTEX') AND dispatched IS NULL"),
    ),
    # A backfill's tasks by status (how many are active, its counts); others are not in it.
    Index(
        "ix_tasks_backfill",
        "backfill_id",
        "status",
        sqlite_where=text("backfill_id IS NOT NULL"),
        postgresql_where=text("backfill_id IS NOT NULL"),
    ),
    sqlite_autoincrement=True,
)

# The events a task emitted (its status reports): the links of a chain in a story.
task_events = Table(
    "task_events",
    metadata,
    Column("task_id", Seq, primary_key=True),
    Column("event_seq", Seq, primary_key=True),
)

# Every attempt of a task is kept: a retry is a new attempt of the same task.
task_attempts = Table(
    "task_attempts",
    metadata,
    Column("task_id", Seq, primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("worker", String(200)),
    Column("started", DateTime(timezone=True)),
    Column("finished", DateTime(timezone=True)),
    Column("error", Text),
    # The params it ran with (migration 0011), written when a rerun changes the task's
    # params; NULL: the task's params, which had not changed since.
    Column("params", Text),
)

# A task's log, shipped in chunks while it runs (so `logs --follow` sees it live).
task_logs = Table(
    "task_logs",
    metadata,
    Column("task_id", Seq, primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("text", Text, nullable=False),
)

semaphores = Table(
    "semaphores",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("capacity", Integer, nullable=False),
    Column("auto", Boolean, nullable=False),  # made on first use, with capacity 1
    # Who may change it besides an admin (migration 0007): who created it with PUT, or
    # the first user of an auto one to set its capacity. None: not claimed yet.
    Column("owner", String(200)),
    Column("updated", DateTime(timezone=True), nullable=False),
)

# Units of a semaphore held by a task; deleted with the task's end, in the same
# transaction, so release cannot be forgotten.
semaphore_holds = Table(
    "semaphore_holds",
    metadata,
    Column("task_id", Seq, primary_key=True),
    Column("name", String(200), primary_key=True, index=True),
    Column("weight", Integer, nullable=False),
)

# Every worker process that announced itself (migration 0010): where it runs, what it runs,
# when it was last heard of. One row per process lifetime; rows long gone are pruned.
workers = Table(
    "workers",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("executor", String(32), nullable=False),
    Column("version", String(64), nullable=False),
    Column("queue", String(200)),  # the Celery queue it consumes (NULL: local)
    Column("task_types", Text, nullable=False),  # JSON list of the types it runs, described
    Column("started", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("stopped", DateTime(timezone=True)),  # set when it stopped cleanly
    Index("ix_workers_last_seen", "last_seen"),
)

# The deployment's own settings (migration 0010): what every process of it must agree on
# (the name of the status event, ...), stored once rather than given to each process.
deployment_settings = Table(
    "deployment_settings",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("updated", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(200)),
)

# Cron schedules (migration 0011): each emits a `schedule` event per tick. `next_tick` is
# advanced in the transaction that stores the tick's event, and only from the value read
# (a conditional UPDATE on a row locked FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite's
# writers take turns), so a tick is emitted once however many servers run schedules.
schedules = Table(
    "schedules",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("uid", String(32), nullable=False),  # this incarnation of the name
    Column("cron", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("params", Text, nullable=False),  # JSON object of strings
    Column("enabled", Boolean, nullable=False),
    Column("catch_up", Integer, nullable=False),
    Column("author", String(200), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Column("next_tick", DateTime(timezone=True), nullable=False),
    Column("last_tick", DateTime(timezone=True)),
    Index("ix_schedules_next_tick", "next_tick"),
)

# Backfills (migration 0013): a config run for every binding of its params' product; the
# bindings are computed from `params`, `made` says how many have become tasks so far.
backfills = Table(
    "backfills",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("config_seq", Seq, nullable=False),
    Column("params", Text, nullable=False),  # JSON, as given (domain/backfills.py)
    Column("total", Integer, nullable=False),
    Column("made", Integer, nullable=False),
    Column("max_in_flight", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("author", String(200), nullable=False),
    Column("request_id", String(200), unique=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Column("ended", DateTime(timezone=True)),
    Column("cancelled_by", String(200)),
    Column("errors", Integer, nullable=False),
    Column("last_error", Text),
    Index("ix_backfills_state", "state", "id"),
    Index("ix_backfills_config", "config_seq", "id"),
    sqlite_autoincrement=True,
)
