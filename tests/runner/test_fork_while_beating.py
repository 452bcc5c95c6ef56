"""A Celery worker's main process forks pool processes while its fleet beat thread writes
to SQLite. A child forked mid-beat used to inherit SQLite's process-wide mutexes locked
and hang at its first write, holding every process's write turn (the CI flake of the
killed-worker tests on sqlite-celery-rabbitmq). Here the beat runs without pause and
the main thread forks children that write, as Celery's pool does."""

from __future__ import annotations

import faulthandler
import os
import shutil
import signal
import time
from pathlib import Path

from sqlalchemy import text

from stepd.runner.fleet import BeatThread, Membership
from stepd.store import open_store

FORKS = 120  # without the guard, about one fork in seven hung
# A hang is forever; a child on a loaded machine (fsyncs queued behind another test's)
# may take seconds. Past this, the child's stacks are taken and it is killed.
HANG_SECONDS = 30.0


def _child_writes(url: str, stacks: Path) -> None:
    """In the forked child: a store of its own, one write, then exit (never returns).
    SIGUSR1 writes its threads' stacks to `stacks` (what a hung child was waiting for)."""
    code = 1
    try:
        faulthandler.register(signal.SIGUSR1, file=stacks.open("w"), all_threads=True)
        store = open_store(url, migrate=False)
        with store.write() as conn:
            conn.execute(text("SELECT 1"))
            conn.execute(text("DELETE FROM workers WHERE name = 'nobody'"))
        store.close()
        code = 0
    finally:
        os._exit(code)


def _ended(pid: int, seconds: float) -> int | None:
    """The child's exit status, or None (its stacks taken, then killed) if it has not
    ended in `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.002)
    os.kill(pid, signal.SIGUSR1)
    time.sleep(1.0)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_children_forked_while_the_fleet_beats_never_hang(
    tmp_path: Path, sqlite_template: Path
) -> None:
    db = tmp_path / "stepd.db"
    shutil.copyfile(sqlite_template, db)
    url = f"sqlite:///{db}"
    store = open_store(url, migrate=False)
    # A pause of a millisecond between beats: the beat thread is inside SQLite most of the
    # time, yet the children get the write turn between two beats.
    beat = BeatThread(Membership(store, "forker", "celery", {}, "q", beat_seconds=0.001))
    beat.start()
    try:
        hung = 0
        failed = 0
        stacks = tmp_path / "stacks.txt"
        for _ in range(FORKS):
            pid = os.fork()
            if pid == 0:
                _child_writes(url, stacks)
            status = _ended(pid, HANG_SECONDS)
            hung += status is None
            failed += status not in (None, 0)
            if hung:  # one is proof enough
                break
    finally:
        beat.stop()
        store.close()
    where = stacks.read_text() if hung else ""
    assert (hung, failed) == (0, 0), f"{hung} of {FORKS} children hung, {failed} failed\n{where}"
