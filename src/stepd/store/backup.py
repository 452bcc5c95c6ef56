"""A consistent copy of a SQLite store, taken while stepd keeps serving.

`VACUUM INTO` reads one snapshot (a read transaction: in WAL mode writers go on) and
writes it compacted into a new file, so the copy holds exactly the commits made before
it began: never half a batch of events, never a task without its trigger. The copy is
written next to its destination and renamed into place only once it checks out, so an
interrupted backup never leaves a file that looks like one.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from stepd.errors import InvalidInput, StoreUnavailable
from stepd.store.engine import Store


@dataclass(frozen=True)
class Backup:
    path: Path
    size_bytes: int
    events: int  # the highest event seq in the copy (events stored before the backup)
    seconds: float


def backup_sqlite(store: Store, dest: Path, *, overwrite: bool = False) -> Backup:
    """Copy the SQLite store into `dest` (a new file) and check the copy."""
    if store.sqlite_path is None:
        raise InvalidInput(
            "backups are of a SQLite file; for PostgreSQL use pg_dump (or your database's "
            "own backups)",
            field="db",
        )
    if not Path(store.sqlite_path).is_file():
        raise InvalidInput(f"there is no database at {store.sqlite_path}", field="db")
    if dest.exists() and not overwrite:
        raise InvalidInput(f"{dest} exists; pick a new file (or --overwrite)", field="dest")
    if not dest.parent.is_dir():
        raise InvalidInput(f"{dest.parent} is not a directory", field="dest")
    partial = dest.with_name(f".{dest.name}.partial")
    partial.unlink(missing_ok=True)
    started = time.monotonic()
    try:
        # A backup holds what the store holds: created 0600 like the store (VACUUM INTO
        # writes into an empty file as into a new one, and keeps its mode).
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        source = sqlite3.connect(store.sqlite_path, isolation_level=None)
        try:
            source.execute("PRAGMA busy_timeout=10000")
            source.execute("VACUUM INTO :dest", {"dest": str(partial)})  # bound by name
        finally:
            source.close()
        events = _check(partial)
        os.replace(partial, dest)
    except (sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise StoreUnavailable(f"the backup of {store.sqlite_path} failed: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Backup(dest, dest.stat().st_size, events, time.monotonic() - started)


def _check(path: Path) -> int:
    """SQLite's own check of the copy; the highest event seq it holds."""
    conn = sqlite3.connect(path)
    try:
        (verdict,) = conn.execute("PRAGMA quick_check").fetchone()
        if verdict != "ok":
            raise sqlite3.DatabaseError(f"the copy fails its check: {verdict}")
        (seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    finally:
        conn.close()
    return int(seq)
