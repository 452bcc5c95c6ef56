"""The Store: an engine chosen by URL, transactions the caller owns.

Dialect differences live in store/ and nowhere else: callers ask the Store for what
they need (a capability such as `writers_take_turns`, an operation such as
`reactor_lock`), never which database it is on; tests/store/test_no_dialect_outside_store.py
keeps it so. SQLite gets WAL, a busy timeout,
`BEGIN IMMEDIATE` for writes, an in-process write lock and a cross-process one
(store/filelock.py), so that writers queue on a lock instead of sleeping in
SQLite's busy handler;
PostgreSQL gets psycopg 3 and a connection pool.

A store opened with a statement timeout (the API server's) bounds every statement
on PostgreSQL (`statement_timeout` on each connection) and every read on SQLite (a
progress handler that interrupts it past its deadline). A cancelled statement raises
QueryTimeout, a full disk StoreFull (store/failures.py); `problem` says "out of space"
from a full-disk failure until a write commits again.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from stepd.errors import InvalidInput, StoreFull, StoreUnavailable
from stepd.store import failures
from stepd.store.checkpoint import FALLBACK_PAGES
from stepd.store.filelock import WriteTurn

if TYPE_CHECKING:
    from stepd.store.notify import Listener

log = logging.getLogger(__name__)

REACTOR_LOCK = 7210002  # PostgreSQL advisory lock key: one evaluator at a time
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


def normalize_url(url: str) -> str:
    """Pick our drivers: `postgresql://` means psycopg 3."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Store:
    """A database and the way to open transactions on it."""

    def __init__(
        self,
        engine: Engine,
        *,
        write_turn: WriteTurn | None = None,
        sqlite_path: str | None = None,
        sqlite_synchronous: str = "NORMAL",
    ) -> None:
        self.engine = engine
        self.sqlite_path = sqlite_path  # a SQLite file (not in memory): what to checkpoint
        self.sqlite_synchronous = sqlite_synchronous
        self.dialect = engine.dialect.name  # "sqlite" or "postgresql": store/ only
        self._write_lock = threading.Lock() if self.is_sqlite else None
        # What callers outside store/ may ask: capabilities, plain attributes (a hot path
        # reads them as cheaply as it read the dialect).
        # Writers take turns behind one lock (SQLite's, in this process and across
        # processes): a write transaction sees every commit before it and none meanwhile.
        self.writers_take_turns = self.is_sqlite
        # The reactor evaluates a batch in a read snapshot and writes only what it fires,
        # so that writers waiting their turn (ingest) wait for the inserts, not the
        # matching. PostgreSQL's writers do not take turns: it evaluates in the write.
        self.evaluates_in_snapshot = self.is_sqlite
        # Small writes are best batched by one writer thread (store/writer.py): with
        # writers taking turns, one commit for many requests beats one each.
        self.needs_writer_thread = self.is_sqlite
        # A read runs in this process, never waits for a writer (WAL) nor the network: a
        # short one may run on the event loop itself (api/context.py `short_read`), under
        # `read_timeout_seconds`.
        self.reads_in_process = self.is_sqlite
        self._write_turn = write_turn  # SQLite file: writers of all processes take turns
        # SQLite: how long a read may run before it is interrupted (None: unbounded).
        self.read_timeout_seconds: float | None = None
        # Why the store cannot take writes now ("out of space"), or None; see `write`.
        self.problem: str | None = None

    @property
    def url(self) -> str:
        """The database URL, for processes (workers) that open their own connections."""
        return self.engine.url.render_as_string(hide_password=False)

    @property
    def is_sqlite(self) -> bool:
        """store/ and tests only: everything else asks for a capability (see __init__)."""
        return self.dialect == "sqlite"

    @property
    def backend(self) -> str:
        """The database's name ("sqlite" or "postgresql") for reports only (/healthz,
        /metrics): what to do is decided by the capabilities, never by this."""
        return self.dialect

    def reactor_lock(self, conn: Connection) -> None:
        """Make reactors take turns for the rest of `conn`'s write transaction: PostgreSQL's
        advisory lock (reactors on several servers); nothing where writers take turns."""
        if not self.writers_take_turns:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({REACTOR_LOCK})")

    def listener_for(self, channel: str, callback: Callable[[], None]) -> Listener | None:
        """A Listener (not started) calling `callback` on each notification of `channel`
        (store/notify.py), or None where there are none (SQLite): the caller polls."""
        if self.is_sqlite:
            return None
        from stepd.store.notify import Listener

        return Listener(self.url, channel, callback)

    def durability(self) -> str | None:
        """What this process's writes are durable to, read back from its own connection
        ("SQLite synchronous=NORMAL"), for a log line; None where the server decides."""
        if not self.is_sqlite:
            return None
        with self.read() as conn:
            level = int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
        return f"SQLite synchronous={_SYNCHRONOUS_LEVELS.get(level, level)}"

    @contextmanager
    def write(self, *, on: Connection | None = None) -> Iterator[Connection]:
        """One write transaction: committed on success, rolled back on any error.

        `on`: a connection from `write_connection` that the caller keeps open across
        transactions (the writer thread), instead of one from the pool each time.
        A full disk raises StoreFull and sets `problem` until a transaction that wrote
        something commits again.
        """
        degraded = self.problem is not None
        wrote = False
        try:
            with self._write(on) as conn:
                # Only while degraded (rare): did this transaction change anything? One
                # that only read (a request_id seen before) commits even on a full disk.
                before = _changes(conn) if degraded and self.is_sqlite else 0
                yield conn
                wrote = degraded and _wrote(conn, before)
        except (DBAPIError, sqlite3.Error) as exc:
            mapped = failures.classify(exc)
            if mapped is None:
                raise
            if isinstance(mapped, StoreFull):
                self.problem = failures.OUT_OF_SPACE
            raise mapped from exc
        if wrote:
            self.problem = None

    @contextmanager
    def _write(self, on: Connection | None) -> Iterator[Connection]:
        if self._write_lock is None:
            if on is not None:
                with on.begin():
                    yield on
                return
            with self._connect() as conn, conn.begin():
                yield conn
            return
        with self.write_turn():
            if on is not None:
                with on.begin():
                    yield on
                return
            with self._connect(write=True) as conn, conn.begin():
                yield conn

    @contextmanager
    def write_turn(self) -> Iterator[None]:
        """SQLite: this process's and every other process's writers wait meanwhile."""
        if self._write_lock is None:
            yield
            return
        with self._write_lock, self._write_turn or nullcontext():
            yield

    def write_connection(self) -> Connection:
        """A connection for `write(on=...)`; the caller closes it.

        Checking a connection out of the pool and back costs about as much as
        SQLite takes to commit a small transaction: the writer thread keeps one.
        """
        try:
            conn = self.engine.connect()
        except OperationalError as exc:
            raise StoreUnavailable(f"cannot reach the database: {exc.orig}") from exc
        return conn.execution_options(**{_WRITE_OPTION: True}) if self.is_sqlite else conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read-only transaction: a consistent snapshot.

        SQLite's deferred transaction in WAL mode is a snapshot from its first read;
        PostgreSQL needs REPEATABLE READ for that (READ COMMITTED would let a story
        see an event as NEW and the task its evaluation made). A statement cancelled
        by the statement timeout raises QueryTimeout.
        """
        try:
            with self._connect() as conn:
                if not self.is_sqlite:
                    conn = conn.execution_options(
                        isolation_level="REPEATABLE READ", postgresql_readonly=True
                    )
                with conn.begin():
                    if self.read_timeout_seconds is None:
                        yield conn
                    else:
                        # SQLite: the connection's progress handler (see _sqlite_engine)
                        # interrupts the read past this deadline; cleared before the
                        # connection serves anyone else, so a writer is never interrupted.
                        due: list[float | None] = conn.connection.info[_DEADLINE]
                        due_at = time.monotonic() + self.read_timeout_seconds
                        sooner = _SOONER.get()
                        due[0] = due_at if sooner is None or due_at < sooner else sooner
                        try:
                            yield conn
                        finally:
                            due[0] = None
        except (DBAPIError, sqlite3.Error) as exc:
            mapped = failures.classify(exc)
            if mapped is None:
                raise
            raise mapped from exc

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[Connection]:
        try:
            conn = self.engine.connect()
        except OperationalError as exc:
            raise StoreUnavailable(f"cannot reach the database: {exc.orig}") from exc
        try:
            if write:
                conn = conn.execution_options(**{_WRITE_OPTION: True})
            yield conn
        finally:
            conn.close()

    def ping(self) -> None:
        """Raise StoreUnavailable unless a trivial query succeeds."""
        try:
            with self.read() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise StoreUnavailable(f"the database does not answer: {exc.orig}") from exc

    def close(self) -> None:
        self.engine.dispose()
        if self._write_turn is not None:
            self._write_turn.close()


def _changes(conn: Connection) -> int:
    """SQLite: the rows this connection has changed since it opened."""
    return int(conn.connection.driver_connection.total_changes)  # type: ignore[union-attr]


def _wrote(conn: Connection, changes_before: int) -> bool:
    """Whether the open write transaction on `conn` changed anything."""
    if conn.dialect.name == "sqlite":
        return _changes(conn) > changes_before
    # A transaction gets an id when it first writes.
    return conn.exec_driver_sql("SELECT txid_current_if_assigned()").scalar() is not None


def _set_statement_timeout(engine: Engine, seconds: float) -> None:
    """PostgreSQL: `statement_timeout` on every connection the pool opens from now on."""
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


def open_store(
    url: str,
    *,
    migrate: bool = True,
    sqlite_synchronous: str = "NORMAL",
    statement_timeout_seconds: float | None = None,
) -> Store:
    """Open the database at `url`, bringing its schema up to date unless told not to.

    `statement_timeout_seconds` (the API server's): cancel any statement (PostgreSQL)
    or read (SQLite) that runs longer; the migration itself is not bounded.
    """
    if statement_timeout_seconds is not None and not statement_timeout_seconds > 0:
        raise InvalidInput(
            f"the statement timeout must be a positive number of seconds, "
            f"not {statement_timeout_seconds!r}"
        )
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidInput(f"not a database URL: {url!r} ({exc})") from exc
    backend = parsed.get_backend_name()
    write_turn = None
    sqlite_path = None
    if backend == "sqlite":
        engine = _sqlite_engine(
            url,
            synchronous=sqlite_synchronous,
            bounded_reads=statement_timeout_seconds is not None,
        )
        path = parsed.database or ""
        if path and not path.startswith(":memory:") and parsed.query.get("mode") != "memory":
            # Before SQLite's first open creates it; not at once: `stepd backup` opens a
            # store without connecting to tell a missing database from an empty one.
            event.listen(engine, "do_connect", lambda *_args: create_private(path))
            write_turn = WriteTurn(path + "-writer.lock")
            sqlite_path = path
    elif backend == "postgresql":
        engine = create_engine(url, pool_size=10, max_overflow=30, pool_pre_ping=True)
    else:
        raise InvalidInput(
            f"unsupported database {backend!r}: use sqlite:///PATH or postgresql://HOST/DB"
        )
    store = Store(
        engine,
        write_turn=write_turn,
        sqlite_path=sqlite_path,
        sqlite_synchronous=sqlite_synchronous.upper(),
    )
    if migrate:
        from stepd.store.migrate import upgrade

        upgrade(store)
    if statement_timeout_seconds is not None:
        if store.is_sqlite:
            store.read_timeout_seconds = statement_timeout_seconds
        else:
            _set_statement_timeout(engine, statement_timeout_seconds)
    return store
