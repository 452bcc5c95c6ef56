"""`stepd backup`: a consistent, checked copy of the SQLite store while a server writes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PG_BASE_URL, LiveServer, served, server_token
from conftest import run_stepd as stepd

from stepd.client import Client
from stepd.store import open_store


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with served("sqlite", tmp_path, "--executor", "none") as live:
        yield live


def stored_ids(path: Path) -> set[int]:
    """The test's events in the store at `path` (not the server's own clock events)."""
    conn = sqlite3.connect(path)
    try:
        return {seq for (seq,) in conn.execute("SELECT seq FROM events WHERE name = 'e'")}
    finally:
        conn.close()


def test_a_backup_taken_while_events_pour_in_holds_every_event_acknowledged_before_it(
    server: LiveServer, tmp_path: Path
) -> None:
    token = server_token(server)
    acked: list[int] = []
    batches: list[set[int]] = []
    stop = threading.Event()

    def send() -> None:
        with Client(server.url, token) as client:
            while not stop.is_set():
                ids = client.create_events([("e", {"i": str(i)}) for i in range(50)])
                batches.append({int(i, 16) for i in ids})
                acked.extend(int(i, 16) for i in ids)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        while len(acked) < 500:
            stop.wait(0.05)
        before = set(acked)
        dest = tmp_path / "copy.db"
        result = stepd("backup", str(dest), "--db", server.db_url, timeout=120)
        after = set(acked)
    finally:
        stop.set()
        sender.join(30)
    assert result.returncode == 0, result.stderr
    assert len(after) > len(before)  # the server took events while the backup ran
    assert "backed up" in result.stderr and str(dest) in result.stderr
    copied = stored_ids(dest)
    assert before <= copied  # everything acknowledged before the backup began
    assert copied <= after  # and nothing that was never acknowledged
    # Batches are whole: a copy never holds part of one POST's 50 events.
    assert all(batch <= copied or not batch & copied for batch in batches)
    assert not list(tmp_path.glob(".*.partial"))
    conn = sqlite3.connect(dest)
    assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
    conn.close()
    # The copy is a store stepd opens as it is.
    restored = open_store(f"sqlite:///{dest}")
    restored.close()


def test_backup_refuses_an_existing_file_unless_told_and_a_missing_database(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    open_store(f"sqlite:///{db}").close()
    dest = tmp_path / "copy.db"
    dest.write_text("precious")
    refused = stepd("backup", str(dest), "--db", f"sqlite:///{db}")
    assert refused.returncode == 1
    assert "exists" in refused.stderr and "--overwrite" in refused.stderr
    assert dest.read_text() == "precious"
    replaced = stepd("backup", str(dest), "--db", f"sqlite:///{db}", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert stored_ids(dest) == set()
    missing = stepd("backup", str(tmp_path / "c2.db"), "--db", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.returncode == 1 and "there is no database" in missing.stderr
    assert not (tmp_path / "c2.db").exists()


def test_backup_of_postgresql_says_to_use_pg_dump(tmp_path: Path) -> None:
    result = stepd("backup", str(tmp_path / "c.db"), "--db", PG_BASE_URL)
    assert result.returncode == 1
    assert "pg_dump" in result.stderr
    assert not (tmp_path / "c.db").exists()
