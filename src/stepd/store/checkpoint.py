"""Copying SQLite's write-ahead log back into the database file, off the writers' path.

In WAL mode a commit appends pages to the `-wal` file; a checkpoint copies them into
the database file (with an fsync of each under `synchronous=NORMAL`) so that the log
can start over. By default the connection whose commit takes the log past 1,000
pages runs that checkpoint inline, inside its commit, while it still holds our
cross-process write turn: every few commits an ingest request, or the reactor, paid
for copying everyone's pages, and the other writers waited for it.

Here a thread of the server process runs PASSIVE checkpoints (which never block
writers or readers) soon after the server's commits, at most one per `min_interval`,
and every `idle_interval` for what other processes (the reactor, workers) committed.

The log starts over only when a writer begins while every page in it has been copied
and no reader is still using it. Under continuous commits a checkpoint running beside
the writers is rarely caught up at that moment, so once the log passes
`restart_pages` the checkpointer takes the write turn (writers of every process wait;
the pages left to copy are few) and runs a RESTART checkpoint, which also waits for
readers to leave the log. Every connection keeps an inline checkpoint only as a
fallback for a log that grows past `FALLBACK_PAGES` (no checkpointer running).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

log = logging.getLogger(__name__)

# Pages (4 KiB each) the log may reach before a committing connection checkpoints
# inline anyway: ~40 MiB, a few seconds of the heaviest ingest.
FALLBACK_PAGES = 10_000
# Pages after which the checkpointer starts the log over (~16 MiB): one short pause of
# the writers every few seconds of the heaviest ingest keeps the log from growing.
RESTART_PAGES = 4_000
# How long a RESTART checkpoint waits for readers to leave the log, writers paused.
READERS_WAIT_MS = 200
# After readers kept a RESTART from finishing (a long read: a big story, a reactor batch
# over thousands of configs), the next try waits this long, doubling up to the maximum:
# retrying at once would pause the writers for READERS_WAIT_MS again and again.
RESTART_BACKOFF_SECONDS = 0.5
MAX_RESTART_BACKOFF_SECONDS = 8.0


class Checkpointer:
    """A thread that checkpoints the SQLite database at `path` when poked."""

    def __init__(
        self,
        path: str,
        *,
        write_turn: Callable[[], AbstractContextManager[None]] | None = None,
        synchronous: str = "NORMAL",
        min_interval: float = 0.05,
        idle_interval: float = 0.5,
        restart_pages: int = RESTART_PAGES,
    ) -> None:
        self.path = path
        self.write_turn = write_turn  # the store's: pauses every writer while held
        self.restart_pages = restart_pages
        self.synchronous = synchronous
        self.min_interval = min_interval
        self.idle_interval = idle_interval
        self.checkpoints = 0  # how many ran (for tests and curiosity)
        self.restarts = 0  # how many of them started the log over
        self.restart_attempts = 0  # RESTARTs tried (readers may have kept some from it)
        self._backoff_seconds = 0.0
        self._next_restart = 0.0  # time.monotonic() before which no RESTART is tried
        self._poked = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="stepd-checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Something was committed: checkpoint soon."""
        self._poked.set()

    def close(self) -> None:
        self._stopping = True
        self._poked.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            log.warning("cannot open %s to checkpoint it; writers will", self.path, exc_info=True)
            return
        try:
            # The checkpoint's fsyncs follow this connection's setting, as the writers'.
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute(f"PRAGMA busy_timeout={READERS_WAIT_MS}")
            while True:
                self._poked.wait(self.idle_interval)
                if self._stopping:
                    return
                self._poked.clear()
                self._checkpoint(conn)
                # Let a few commits' pages gather: one pair of fsyncs for all of them.
                time.sleep(self.min_interval)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            _busy, pages, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.checkpoints += 1
            if (
                pages >= self.restart_pages
                and self.write_turn is not None
                and time.monotonic() >= self._next_restart
            ):
                self._restart(conn, self.write_turn)
        except sqlite3.Error as exc:
            # A busy or failed checkpoint loses nothing: the pages stay in the log.
            log.warning("checkpoint of %s failed: %s", self.path, exc)

    def _restart(
        self, conn: sqlite3.Connection, write_turn: Callable[[], AbstractContextManager[None]]
    ) -> None:
        self.restart_attempts += 1
        with write_turn():
            (busy, _pages, _copied) = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        if busy:
            self._backoff_seconds = min(
                MAX_RESTART_BACKOFF_SECONDS,
                max(RESTART_BACKOFF_SECONDS, self._backoff_seconds * 2),
            )
            self._next_restart = time.monotonic() + self._backoff_seconds
            return
        self.restarts += 1
        self._backoff_seconds = 0.0
