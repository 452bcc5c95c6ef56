"""The Store: what the services, the reactor and the runners use of a database.

One abstract class, two backends (store/sqlite.py, store/postgres.py), chosen by URL in
one place (store/engine.py `open_store`). Callers outside store/ use the operations here
(`read`, `write`, `ping`, `close`, `url`, `problem`) and decide by the capabilities (class
attributes each backend sets), never by which database it is; the dialect's names
(`dialect`, `is_sqlite`) are for store/ and tests only
(tests/store/test_no_dialect_outside_store.py keeps it so).

A statement cancelled by the store's statement timeout raises QueryTimeout, a full disk
StoreFull (store/failures.py); `problem` says "out of space" from a full-disk failure until
a write commits again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from stepd.errors import StoreFull, StoreUnavailable
from stepd.store import failures

if TYPE_CHECKING:
    from stepd.store.checkpoint import Checkpointer
    from stepd.store.notify import Listener
    from stepd.store.writer import Writer

_NO_TURN = nullcontext()


class Store(ABC):
    """A database and the way to open transactions on it."""

    # The SQLAlchemy dialect's name ("sqlite" or "postgresql"): store/ and tests only.
    dialect: ClassVar[str]
    # What callers outside store/ may ask: capabilities, plain class attributes (a hot path
    # reads them as cheaply as it read the dialect). Each backend documents its values.
    # Writers take turns behind one lock: a write transaction sees every commit before it
    # and none meanwhile.
    writers_take_turns: ClassVar[bool]
    # The reactor evaluates a batch in a read snapshot and writes only what it fires (so
    # that writers waiting their turn wait for the inserts, not the matching), rather than
    # evaluating in the write transaction.
    evaluates_in_snapshot: ClassVar[bool]
    # Small writes are best batched by one writer thread (store/writer.py, see `writer`).
    needs_writer_thread: ClassVar[bool]
    # A read runs in this process, never waits for a writer nor the network: a short one may
    # run on the event loop itself (api/context.py `short_read`), under `read_timeout_seconds`.
    reads_in_process: ClassVar[bool]
    # A SQLite file (not in memory): what to checkpoint and back up; None elsewhere.
    sqlite_path: str | None = None

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # How long a read may run before it is interrupted (None: unbounded); set by
        # `bound_statements` where the store itself bounds reads (SQLite).
        self.read_timeout_seconds: float | None = None
        # Why the store cannot take writes now ("out of space"), or None; see `write`.
        self.problem: str | None = None

    @property
    def url(self) -> str:
        """The database URL, for processes (workers) that open their own connections."""
        return self.engine.url.render_as_string(hide_password=False)

    @property
    def is_sqlite(self) -> bool:
        """store/ and tests only: everything else asks for a capability."""
        return self.dialect == "sqlite"

    @property
    def backend(self) -> str:
        """The database's name ("sqlite" or "postgresql") for reports only (/healthz,
        /metrics): what to do is decided by the capabilities, never by this."""
        return self.dialect

    # -- what differs by backend ------------------------------------------------------

    @abstractmethod
    def bound_statements(self, seconds: float) -> None:
        """Cancel any statement (or read) that runs longer than `seconds` from now on."""

    def reactor_lock(self, conn: Connection) -> None:
        """Make reactors take turns for the rest of `conn`'s write transaction; nothing
        where writers take turns already."""
        return None

    def migration_lock(self, conn: Connection) -> None:
        """Make migrations (servers starting together) take turns for the rest of `conn`'s
        write transaction; nothing where writers take turns already."""
        return None

    def listener_for(self, channel: str, callback: Callable[[], None]) -> Listener | None:
        """A Listener (not started) calling `callback` on each notification of `channel`
        (store/notify.py), or None where there are none: the caller polls."""
        return None

    def durability(self) -> str | None:
        """What this process's writes are durable to, for a log line; None where the
        server decides."""
        return None

    def local_directory(self) -> str | None:
        """The directory of this machine holding the store's files (its disk is the
        store's), or None where the database lives elsewhere (a server's own disk)."""
        return None

    def writer(self) -> Writer | None:
        """The process's writer thread (store/writer.py) where `needs_writer_thread`, else
        None; the caller closes it."""
        return None

    def checkpointer(self) -> Checkpointer | None:
        """A started thread that copies the write-ahead log back (store/checkpoint.py),
        poked after commits, where the store needs one; the caller closes it."""
        return None

    def write_turn(self) -> AbstractContextManager[None]:
        """Every writer (of this process and the others) waits meanwhile, where writers
        take turns; nothing elsewhere."""
        return _NO_TURN

    def write_connection(self) -> Connection:
        """A connection for `write(on=...)`; the caller closes it.

        Checking a connection out of the pool and back costs about as much as
        SQLite takes to commit a small transaction: the writer thread keeps one.
        """
        try:
            return self.engine.connect()
        except OperationalError as exc:
            raise StoreUnavailable(f"cannot reach the database: {exc.orig}") from exc

    @abstractmethod
    def _write(self, on: Connection | None) -> AbstractContextManager[Connection]:
        """A write transaction on `on` or a pooled connection, in the writers' turn."""

    @abstractmethod
    def read(self) -> AbstractContextManager[Connection]:
        """One read-only transaction: a consistent snapshot. A statement cancelled by the
        statement timeout raises QueryTimeout."""

    @abstractmethod
    def _changes(self, conn: Connection) -> int:
        """A count of rows `conn` changed, for `_wrote` (0 where `_wrote` needs none)."""

    @abstractmethod
    def _wrote(self, conn: Connection, changes_before: int) -> bool:
        """Whether the open write transaction on `conn` changed anything."""

    # -- the same on every backend ----------------------------------------------------

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
                before = self._changes(conn) if degraded else 0
                yield conn
                wrote = degraded and self._wrote(conn, before)
        except failures.DRIVER_ERRORS as exc:
            mapped = failures.classify(exc)
            if mapped is None:
                raise
            if isinstance(mapped, StoreFull):
                self.problem = failures.OUT_OF_SPACE
            raise mapped from exc
        if wrote:
            self.problem = None

    @contextmanager
    def _connect(self, **options: object) -> Iterator[Connection]:
        """A pooled connection with execution `options`, closed on the way out."""
        try:
            conn = self.engine.connect()
        except OperationalError as exc:
            raise StoreUnavailable(f"cannot reach the database: {exc.orig}") from exc
        try:
            yield conn.execution_options(**options) if options else conn
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
        """Close every pooled connection (and whatever else the backend holds)."""
        self.engine.dispose()
