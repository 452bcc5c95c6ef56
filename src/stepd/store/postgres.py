"""PostgresStore: a PostgreSQL server through psycopg 3 and a connection pool.

Its writers do not take turns: where they must (the reactor's evaluations, on several
servers at once) the store takes an advisory lock held to the commit (`reactor_lock`).
Other processes' commits wake this one by LISTEN/NOTIFY (store/notify.py, see
`listener_for`). A read is a REPEATABLE READ snapshot; a store opened with a statement
timeout (the API server's) sets `statement_timeout` on each connection, a cancelled
statement raising QueryTimeout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL

from stepd.store import failures
from stepd.store.base import Store

if TYPE_CHECKING:
    from stepd.store.notify import Listener

# Advisory locks' keys.
MIGRATION_LOCK = 7210001  # one migration at a time
REACTOR_LOCK = 7210002  # one evaluator at a time
# Advisory locks are the database's, not a schema's: two deployments in two schemas of one
# database (or two test runs) must not take turns with each other. The lock's first key
# is the schema's (a hash of its name), the second says which lock.
_IN_THIS_SCHEMA = "pg_advisory_xact_lock(hashtext(current_schema()), {})"


class PostgresStore(Store):
    """A PostgreSQL database: concurrent writers, advisory locks, LISTEN/NOTIFY."""

    dialect: ClassVar[str] = "postgresql"
    # Row locks, not one writer at a time.
    writers_take_turns: ClassVar[bool] = False
    # The reactor evaluates in its write transaction, under `reactor_lock`.
    evaluates_in_snapshot: ClassVar[bool] = False
    # Concurrent commits: each request writes its own transaction.
    needs_writer_thread: ClassVar[bool] = False
    # A read is a round trip to the server: never on the event loop.
    reads_in_process: ClassVar[bool] = False

    @classmethod
    def open(
        cls,
        url: str,
        parsed: URL,
        *,
        sqlite_synchronous: str = "NORMAL",
        statement_timeout_seconds: float | None = None,
    ) -> PostgresStore:
        """The store of the PostgreSQL database at `url` (not migrated); the SQLite
        setting does not apply."""
        return cls(create_engine(url, pool_size=10, max_overflow=30, pool_pre_ping=True))

    def bound_statements(self, seconds: float) -> None:
        _set_statement_timeout(self.engine, seconds)

    def reactor_lock(self, conn: Connection) -> None:
        """The advisory lock (reactors on several servers take turns) to `conn`'s commit."""
        conn.exec_driver_sql("SELECT " + _IN_THIS_SCHEMA.format(REACTOR_LOCK))

    def migration_lock(self, conn: Connection) -> None:
        """The advisory lock (servers starting together migrate in turn) to the commit."""
        conn.exec_driver_sql("SELECT " + _IN_THIS_SCHEMA.format(MIGRATION_LOCK))

    def listener_for(self, channel: str, callback: Callable[[], None]) -> Listener:
        from stepd.store.notify import Listener

        return Listener(self.url, channel, callback)

    @contextmanager
    def _write(self, on: Connection | None) -> Iterator[Connection]:
        if on is not None:
            with on.begin():
                yield on
            return
        with self._connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """REPEATABLE READ, read only: READ COMMITTED would let a story see an event as NEW
        and the task its evaluation made."""
        try:
            with (
                self._connect(isolation_level="REPEATABLE READ", postgresql_readonly=True) as conn,
                conn.begin(),
            ):
                yield conn
        except failures.DRIVER_ERRORS as exc:
            mapped = failures.classify(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def _changes(self, conn: Connection) -> int:
        return 0  # `_wrote` asks the server instead

    def _wrote(self, conn: Connection, changes_before: int) -> bool:
        # A transaction gets an id when it first writes.
        return conn.exec_driver_sql("SELECT txid_current_if_assigned()").scalar() is not None


def _set_statement_timeout(engine: Engine, seconds: float) -> None:
    """`statement_timeout` on every connection the pool opens from now on."""
    milliseconds = max(1, round(seconds * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Session-wide (is_local false), and committed: SQLAlchemy rolls back whatever
        # a connection's first transaction left open, a SET with it.
        dbapi_conn.execute(
            "SELECT set_config('statement_timeout', %(timeout)s, false)",
            {"timeout": f"{milliseconds}ms"},
        )
        dbapi_conn.commit()

    # Connections opened before (the migration's) would go on without the timeout.
    engine.dispose()
