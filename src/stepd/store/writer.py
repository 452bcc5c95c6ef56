"""One writer thread per process: requests queue their writes and await the result.

SQLite takes one writer at a time anyway. With a thread per request, 32 clients
mean 32 threads queueing on the write lock and fighting for the GIL; here they
wait as asyncio futures instead, and the writer drains what queued up while it
was busy into one transaction (one BEGIN IMMEDIATE, one COMMIT for the group).

An event loop hands its jobs over once per pass, after every request that the
pass read has queued its job: a commit costs SQLite about as much as writing a
dozen events, so the fewer and fuller the groups the better, and each hand-over
wakes the writer thread (a thread switch and a fight for the GIL) only once.

A job gets the connection and the group's EventGroup: the events it adds there are
written for the whole group with one executemany per table before the commit. A job
must raise a StepdError only before it writes or adds anything (a validation): that
job alone fails. Any other error rolls back the group, and every job in it fails.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection

from stepd.errors import StepdError
from stepd.store.engine import Store
from stepd.store.events import EventGroup

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_GROUP = 128  # jobs per transaction (about): bounds how long one commit keeps the lock


@dataclass
class _Job:
    work: Callable[[Connection, EventGroup], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]


def _settle(outcomes: list[Outcome]) -> None:
    for future, result, error in outcomes:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class Writer:
    """The process's writer thread; `await writer.run(work)` from async code."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._jobs: queue.SimpleQueue[list[_Job] | None] = queue.SimpleQueue()
        # Jobs of the running pass of each event loop (touched from that loop's thread only).
        self._pending: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        self._conn: Connection | None = None  # kept open across groups (the thread's own)
        # Copies the log back into the database file between our commits, not inside them.
        self._checkpointer = store.checkpointer()  # the store's own (SQLite's file), or None
        self._thread = threading.Thread(target=self._loop, name="stepd-writer", daemon=True)
        self._thread.start()

    async def run(self, work: Callable[[Connection, EventGroup], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            # Runs after the request handlers this pass has already started.
            loop.call_soon(self._hand_over, loop)
        pending.append(_Job(work, loop, future))
        return await future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        self._jobs.put(self._pending.pop(loop))

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(10)
        if self._checkpointer is not None:
            self._checkpointer.close()

    def _loop(self) -> None:
        try:
            self._serve()
        finally:
            self._drop_connection()

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.warning("closing the writer's connection failed", exc_info=True)

    def _serve(self) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                return
            jobs = first
            while len(jobs) < MAX_GROUP:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True  # stop after this group
                    break
                jobs += more
            self._write(jobs)

    def _write(self, jobs: list[_Job]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            if self._conn is None:
                self._conn = self.store.write_connection()
            with self.store.write(on=self._conn) as conn:
                group = EventGroup(conn)
                for job in jobs:
                    try:
                        outcomes.append((job.work(conn, group), None))
                    except StepdError as exc:
                        outcomes.append((None, exc))
                group.flush()
            if self._checkpointer is not None:
                self._checkpointer.poke()
        except BaseException as exc:  # the group's transaction failed: none of it stands
            log.warning("a write group of %d failed: %s", len(jobs), exc)
            outcomes = [(None, exc)] * len(jobs)
            self._drop_connection()  # the next group starts on a fresh one
        # One wake-up per event loop for the whole group, not one per job.
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        for job, (result, error) in zip(jobs, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, result, error))
        for loop, settled in by_loop.items():
            loop.call_soon_threadsafe(_settle, settled)
