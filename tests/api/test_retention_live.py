"""Retention in a real server on both stores: its background rounds delete old rows while
a client keeps posting events (every posted event is stored), and never delete the
events a waiting join in its window needs, the event of an unfinished task, nor the
task."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from conftest import fresh_database, server_token, start_server
from sqlalchemy import func, select
from store.contract import Contract

from stepd.domain.events import EventState
from stepd.domain.tasks import TaskStatus
from stepd.store import open_store
from stepd.store.schema import events, tasks
from stepd.timeutil import utcnow

OLD = 600  # old events to delete, in batches of 50


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_rounds_delete_old_rows_while_events_keep_arriving_and_keep_what_is_needed(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fresh_database(backend, tmp_path) as db_url:
        store = open_store(db_url)
        c = Contract(store)
        ago = utcnow() - timedelta(days=3)
        c.create_config(
            {
                "name": "joined",
                "task_type": "T",
                "window": "7d",
                "event_deps": [
                    {"name": "access", "params": {"date": "~"}},
                    {"name": "redir", "params": {"date": "~"}},
                ],
            }
        )
        done = EventState.PROCESSED
        (waiting,) = c.add_events([("access", {"date": "d1"})], created=ago, state=done)
        old = c.add_events([("noise", {"i": i}) for i in range(OLD)], created=ago, state=done)
        (of_active,) = c.add_events([("ready", {})], created=ago, state=done)
        active = c.add_task("T", {}, created=ago, event_seq=of_active)
        finished = c.add_task("T", {}, created=ago)
        with store.write() as conn:
            conn.execute(
                tasks.update()
                .where(tasks.c.id == finished)
                .values(status=TaskStatus.SUCCESS.value, finished=ago)
            )
        store.close()

        monkeypatch.setenv("STEPD_RETENTION_INTERVAL_SECONDS", "0.2")
        monkeypatch.setenv("STEPD_RETENTION_BATCH_ROWS", "50")
        server = start_server(
            db_url, tmp_path / "server.log", "--retention", "1d", "--workers", "0", "--no-clock"
        )
        posted: list[str] = []
        stop = threading.Event()
        headers = {"Authorization": f"OAuth {server_token(server)}"}

        def post() -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
                n = 0
                while not stop.is_set():
                    batch = [{"name": "fresh", "params": {"n": n + i}} for i in range(10)]
                    answer = client.post("/api/v1/events", json={"events": batch})
                    assert answer.status_code == 200, answer.text
                    posted.extend(answer.json()["ids"])
                    n += 10

        poster = threading.Thread(target=post)
        poster.start()
        try:
            store = open_store(db_url)
            deadline = time.monotonic() + 60
            left, task_left = OLD, True
            # A round deletes events first, then tasks: wait for both (a loaded machine).
            while time.monotonic() < deadline and (left or task_left):
                with store.read() as conn:
                    left = conn.execute(
                        select(func.count()).where(events.c.name == "noise")
                    ).scalar_one()
                    task_left = (
                        conn.execute(select(tasks.c.id).where(tasks.c.id == finished)).first()
                        is not None
                    )
                time.sleep(0.2)
            time.sleep(0.5)  # posting goes on a while with the rounds finished
        finally:
            stop.set()
            poster.join(30)
            server.stop()
        try:
            assert left == 0, f"{left} old events left: {server.log_path.read_text()[-3000:]}"
            c = Contract(store)
            kept = c.events([waiting, of_active, *old[:3]])
            assert set(kept) == {waiting, of_active}
            assert c.task(active).status is TaskStatus.ENQUEUED
            with store.read() as conn:
                gone = conn.execute(select(tasks.c.id).where(tasks.c.id == finished)).first()
                assert gone is None
                fresh = conn.execute(
                    select(func.count()).where(events.c.name == "fresh")
                ).scalar_one()
            assert len(posted) > 100 and fresh == len(posted)
            assert "retention: deleted 600 events" in server.log_path.read_text()
        finally:
            store.close()
