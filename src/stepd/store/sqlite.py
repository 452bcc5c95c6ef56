"""SqliteStore: one SQLite file, its writers taking turns.

SQLite gets WAL, a busy timeout, `BEGIN IMMEDIATE` for writes, an in-process write lock
and a cross-process one (store/filelock.py `WriteTurn`), so that writers queue on a lock
instead of sleeping in SQLite's busy handler. The store owns what only SQLite needs: the
write turn, the server's writer thread (store/writer.py, see `writer`) and the checkpointer
it pokes (store/checkpoint.py, see `checkpointer`), the file's private mode, and the read
deadlines: a store opened with a statement timeout (the API server's) interrupts any read
past it with a progress handler, a cancelled read raising QueryTimeout.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from stepd.errors import InvalidInput
from stepd.store import failures
from stepd.store.base import Store
from stepd.store.checkpoint import FALLBACK_PAGES
from stepd.store.filelock import WriteTurn

if TYPE_CHECKING:
    from stepd.store.checkpoint import Checkpointer
    from stepd.store.writer import Writer

_SYNCHRONOUS_LEVELS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}  # PRAGMA synchronous
_WRITE_OPTION = "stepd_write"
# SQLite calls the read deadline's check every this many virtual machine instructions
# (about a tenth of a millisecond): an indexed read of a few rows never reaches it.
_PROGRESS_STEPS = 10_000
_DEADLINE = "stepd_read_deadline"  # a connection record's info: [monotonic deadline or None]
# A sooner deadline for the reads begun in this context (see `read_deadline`).
_SOONER: ContextVar[float | None] = ContextVar("stepd_sooner_read_deadline", default=None)


class read_deadline:  # lower case: used as a context manager, like a function
    """Bound the reads begun inside (in this context) to end within `seconds` from now, when
    that is sooner than the store's statement timeout; past it they raise QueryTimeout.

    SQLite with a statement timeout only (its progress handler does the interrupting): the
    API's reads on its event loop, which must give the loop back quickly (api/context.py).
    A class rather than a generator: it wraps the hottest reads, and costs a third as much.
    """

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def __enter__(self) -> None:
        self._token = _SOONER.set(time.monotonic() + self._seconds)

    def __exit__(self, *exc: object) -> None:
        _SOONER.reset(self._token)


def create_private(path: str) -> None:
    """Create the SQLite file `path`, empty and readable by its owner only, if it is missing.

    Events and configs are the team's data, tokens' hashes among them: no other local user
    may read them. SQLite creates its `-wal` and `-shm` files with the mode of the database
    file, so creating the file 0600 first covers all three. An existing file keeps its mode
    (an operator may have opened it on purpose); a missing directory is left for SQLite to
    report as it always has.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except (FileExistsError, FileNotFoundError, NotADirectoryError):
        return
    os.close(fd)


class SqliteStore(Store):
    """A SQLite database: writers take turns, reads run in this process."""

    dialect: ClassVar[str] = "sqlite"
    # One writer at a time (this process's lock, then every process's WriteTurn).
    writers_take_turns: ClassVar[bool] = True
    # Matching in a read snapshot lets ingest write meanwhile; only the fired inserts wait.
    evaluates_in_snapshot: ClassVar[bool] = True
    # With writers taking turns, one commit for many requests beats one each.
    needs_writer_thread: ClassVar[bool] = True
    # WAL: a read never waits for a writer, and there is no network.
    reads_in_process: ClassVar[bool] = True

    def __init__(
        self,
        engine: Engine,
        *,
        write_turn: WriteTurn | None = None,
        sqlite_path: str | None = None,
        sqlite_synchronous: str = "NORMAL",
    ) -> None:
        super().__init__(engine)
        self.sqlite_path = sqlite_path
        self.sqlite_synchronous = sqlite_synchronous
        self._write_lock = threading.Lock()
        self._write_turn = write_turn  # a SQLite file: writers of all processes take turns

    @classmethod
    def open(
        cls,
        url: str,
        parsed: URL,
        *,
        sqlite_synchronous: str = "NORMAL",
        statement_timeout_seconds: float | None = None,
    ) -> SqliteStore:
        """The store of the SQLite database at `url` (not migrated)."""
        engine = _sqlite_engine(
            url,
            synchronous=sqlite_synchronous,
            bounded_reads=statement_timeout_seconds is not None,
        )
        write_turn = None
        sqlite_path = None
        path = parsed.database or ""
        if path and not path.startswith(":memory:") and parsed.query.get("mode") != "memory":
            # Before SQLite's first open creates it; not at once: `stepd backup` opens a
            # store without connecting to tell a missing database from an empty one.
            event.listen(engine, "do_connect", lambda *_args: create_private(path))
            write_turn = WriteTurn(path + "-writer.lock")
            sqlite_path = path
        return cls(
            engine,
            write_turn=write_turn,
            sqlite_path=sqlite_path,
            sqlite_synchronous=sqlite_synchronous.upper(),
        )

    def bound_statements(self, seconds: float) -> None:
        # The progress handler installed on every connection (bounded_reads) reads this.
        self.read_timeout_seconds = seconds

    def durability(self) -> str | None:
        """What this process's writes are durable to ("SQLite synchronous=NORMAL"), read
        back from its own connection."""
        with self.read() as conn:
            level = int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
        return f"SQLite synchronous={_SYNCHRONOUS_LEVELS.get(level, level)}"

    def local_directory(self) -> str | None:
        return (
            None if self.sqlite_path is None else os.path.dirname(os.path.abspath(self.sqlite_path))
        )

    def writer(self) -> Writer:
        """The process's writer thread; it runs the checkpointer (see `checkpointer`)."""
        from stepd.store.writer import Writer

        return Writer(self)

    def checkpointer(self) -> Checkpointer | None:
        """The checkpointer of the file (None in memory), pausing writers by our turn."""
        if self.sqlite_path is None:
            return None
        from stepd.store.checkpoint import Checkpointer

        return Checkpointer(
            self.sqlite_path, write_turn=self.write_turn, synchronous=self.sqlite_synchronous
        )

    @contextmanager
    def write_turn(self) -> Iterator[None]:
        """This process's and every other process's writers wait meanwhile."""
        with self._write_lock, self._write_turn or nullcontext():
            yield

    def write_connection(self) -> Connection:
        return super().write_connection().execution_options(**{_WRITE_OPTION: True})

    @contextmanager
    def _write(self, on: Connection | None) -> Iterator[Connection]:
        with self.write_turn():
            if on is not None:
                with on.begin():
                    yield on
                return
            with self._connect(**{_WRITE_OPTION: True}) as conn, conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A deferred transaction, in WAL mode a snapshot from its first read."""
        try:
            with self._connect() as conn, conn.begin():
                if self.read_timeout_seconds is None:
                    yield conn
                else:
                    # The connection's progress handler (see _sqlite_engine) interrupts
                    # the read past this deadline; cleared before the connection serves
                    # anyone else, so a writer is never interrupted.
                    due: list[float | None] = conn.connection.info[_DEADLINE]
                    due_at = time.monotonic() + self.read_timeout_seconds
                    sooner = _SOONER.get()
                    due[0] = due_at if sooner is None or due_at < sooner else sooner
                    try:
                        yield conn
                    finally:
                        due[0] = None
        except failures.DRIVER_ERRORS as exc:
            mapped = failures.classify(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def _changes(self, conn: Connection) -> int:
        """The rows this connection has changed since it opened."""
        return int(conn.connection.driver_connection.total_changes)  # type: ignore[union-attr]

    def _wrote(self, conn: Connection, changes_before: int) -> bool:
        return self._changes(conn) > changes_before

    def close(self) -> None:
        super().close()
        if self._write_turn is not None:
            self._write_turn.close()


def _sqlite_engine(url: str, *, synchronous: str, bounded_reads: bool = False) -> Engine:
    if synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise InvalidInput(
            f"sqlite synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}"
        )
    engine = create_engine(
        url, pool_size=8, max_overflow=32, connect_args={"check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below decide how transactions start.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # The server's checkpointer thread copies the log back (store/checkpoint.py).
        cursor.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_PAGES}")
        cursor.close()
        if bounded_reads:
            # Installed once per connection; a read sets the deadline (a list cell,
            # cheaper than installing a handler per read).
            deadline: list[float | None] = [None]
            record.info[_DEADLINE] = deadline

            def past_deadline() -> bool:
                due = deadline[0]
                return due is not None and time.monotonic() > due

            dbapi_conn.set_progress_handler(past_deadline, _PROGRESS_STEPS)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the lock up front: a deferred transaction that upgrades
        # later can fail with SQLITE_BUSY without waiting. On the driver's own
        # connection: through SQLAlchemy a BEGIN costs ~70 us of Python, raw ~3 us.
        driver = conn.connection.driver_connection
        assert driver is not None
        sql = "BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE_OPTION) else "BEGIN"
        try:
            driver.execute(sql)
        except sqlite3.Error as exc:  # as SQLAlchemy raises it (e.g. OperationalError: locked)
            raise DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc

    return engine


__all__ = ["SqliteStore", "create_private", "read_deadline"]
