"""The SQLite store, its log files, its writer lock and its backups are the owner's only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from conftest import run_stepd

from stepd.store import open_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_store_and_its_backup_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    os.umask(0o022)  # the usual umask, under which files used to come out 0644
    db = tmp_path / "fresh" / "stepd.db"
    db.parent.mkdir()
    store = open_store(f"sqlite:///{db}")
    try:
        with store.write() as conn:  # a write: the log and its index exist while it is open
            conn.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-writer.lock")]
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        store.close()
    copy = tmp_path / "copy.db"
    result = run_stepd("backup", str(copy), "--db", f"sqlite:///{db}")
    assert result.returncode == 0, result.stderr
    assert mode(copy) == 0o600


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    open_store(f"sqlite:///{db}").close()
    db.chmod(0o640)  # an operator's choice, e.g. a group of readers
    open_store(f"sqlite:///{db}").close()
    assert mode(db) == 0o640
