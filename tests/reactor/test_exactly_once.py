"""Exactly once: a crash between recording a firing and committing it loses nothing and
doubles nothing, and reactors racing on one PostgreSQL make each task once (issue 3)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from conftest import Api
from reactor_helpers import (
    create_config,
    dep,
    event_state,
    react,
    send,
    task_rows,
    trigger_count,
)
from sqlalchemy import select

from stepd.reactor import reactor as reactor_module
from stepd.reactor.reactor import Reactor
from stepd.services.configs import ConfigService
from stepd.services.events import EventBatch, EventService
from stepd.store import Store, dbapi, open_store
from stepd.store.schema import events, tasks, triggers
from stepd.store.tokens import Principal


class Crash(RuntimeError):
    """What the patched reactor raises in the middle of its transaction."""


def test_crash_after_the_task_is_inserted_but_before_commit_leaves_no_trigger_and_no_task(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_config(api, dep("event1", param2="~"), task_type="TASK1")
    ids = [send(api, "event1", param2=f"v{i}") for i in range(3)]
    seen_inside: list[tuple[int, int]] = []

    def crash(conn: dbapi.Raw, seqs: list[int], **_: object) -> None:
        # Prove the crash comes after the firing was written (in the open transaction).
        count = "SELECT count(*) FROM {}"
        seen_inside.append(
            (
                int(conn.driver.execute(count.format("triggers")).fetchone()[0]),
                int(conn.driver.execute(count.format("tasks")).fetchone()[0]),
            )
        )
        raise Crash("the reactor died before committing")

    monkeypatch.setattr(reactor_module.event_lookup, "mark_processed", crash)
    with pytest.raises(Crash):
        Reactor(api.store).run_once()
    assert seen_inside == [(3, 3)]  # the batch's firings, then its events are marked

    assert trigger_count(api.store) == 0
    assert task_rows(api.store) == []
    assert [event_state(api.store, i) for i in ids] == ["NEW"] * 3

    monkeypatch.undo()
    assert Reactor(api.store).run_once() == 3
    made = task_rows(api.store)
    assert sorted(t["params"]["param2"] for t in made) == ["v0", "v1", "v2"]
    assert trigger_count(api.store) == 3
    assert [event_state(api.store, i) for i in ids] == ["PROCESSED"] * 3
    assert Reactor(api.store).run_once() == 0
    assert len(task_rows(api.store)) == 3


KILLED_REACTOR = textwrap.dedent(
    """
    import os
    import sys

    from stepd.reactor.reactor import Reactor
    from stepd.store import open_store
    from stepd.store import triggers as trigger_store

    store = open_store(sys.argv[1], migrate=False)
    die_at = int(sys.argv[2])
    real_insert = trigger_store.insert_trigger
    recorded = 0

    def record_then_die(conn, **firing):
        global recorded
        trigger_id = real_insert(conn, **firing)
        recorded += 1
        if recorded == die_at:
            n = conn.driver.execute("SELECT count(*) FROM tasks").fetchone()[0]
            print(f"killed with {n} uncommitted task(s)", flush=True)
            os._exit(9)  # no rollback, no cleanup: as if the machine lost the process
        return trigger_id

    trigger_store.insert_trigger = record_then_die
    Reactor(store).run_once()
    print("run_once returned: the kill never happened", flush=True)
    """
)


def test_reactor_process_killed_before_commit_loses_and_doubles_no_task(
    api: Api, tmp_path: Path
) -> None:
    create_config(api, dep("event1", param2="~"), task_type="TASK1")
    create_config(api, dep("event1", param2="~"), dep("event2", param2="~"), task_type="TASK2")
    ids = [send(api, "event1", param2=f"v{i}") for i in range(3)]
    ids.append(send(api, "event2", param2="v1"))
    script = tmp_path / "killed_reactor.py"
    script.write_text(KILLED_REACTOR)
    db_url = str(api.store.engine.url.render_as_string(hide_password=False))

    killed = subprocess.run(
        [sys.executable, str(script), db_url, "3"], capture_output=True, text=True, timeout=60
    )
    assert killed.returncode == 9, (killed.stdout, killed.stderr)
    assert "killed with 3 uncommitted task(s)" in killed.stdout, killed.stdout

    assert task_rows(api.store) == []
    assert trigger_count(api.store) == 0
    assert [event_state(api.store, i) for i in ids] == ["NEW"] * 4

    assert react(api.store) == 4
    made = task_rows(api.store)
    assert sorted((t["type"], t["params"]["param2"]) for t in made) == [
        ("TASK1", "v0"),
        ("TASK1", "v1"),
        ("TASK1", "v2"),
        ("TASK2", "v1"),
    ]
    assert trigger_count(api.store) == 4
    assert react(api.store) == 0
    assert len(task_rows(api.store)) == 4


def _load(store: Store, n: int) -> None:
    ConfigService(store).create(
        {"event_deps": [dep("event1", n="~")], "task_type": "TASK1"},
        Principal(user="robot-crypta", is_admin=False),
    )
    EventService(store).submit(
        EventBatch(events=[{"name": "event1", "params": {"n": i}} for i in range(n)]),
        author="robot-crypta",
    )


def _race(stores: list[Store], batch_size: int) -> list[BaseException]:
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def run(store: Store) -> None:
        try:
            reactor = Reactor(store, batch_size=batch_size)
            barrier.wait(10)
            while reactor.run_once() > 0:
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a reactor thread hung"
    return errors


def _assert_each_event_made_one_task(store: Store, n: int) -> None:
    with store.read() as conn:
        made = conn.execute(select(tasks.c.event_seq, tasks.c.params)).all()
        fired = conn.execute(select(triggers.c.event_seq)).all()
        states = conn.execute(select(events.c.state)).scalars().all()
    assert len(made) == n, f"{len(made)} tasks for {n} events"
    assert len({seq for seq, _ in made}) == n, "an event made two tasks"
    assert len(fired) == n
    assert set(states) == {"PROCESSED"}


def test_two_reactors_racing_on_one_postgresql_make_each_task_exactly_once(pg_url: str) -> None:
    first, second = open_store(pg_url), open_store(pg_url)  # two servers, one database
    try:
        _load(first, 100)
        errors = _race([first, second], batch_size=7)
        assert errors == []
        _assert_each_event_made_one_task(first, 100)
    finally:
        first.close()
        second.close()


def test_unique_key_alone_stops_doubles_when_reactors_skip_the_advisory_lock(
    pg_url: str,
) -> None:
    # The advisory lock makes reactors take turns; the (config, event, binding) key must
    # hold on its own, e.g. for a reactor of another version that does not take the lock.
    stores = [open_store(pg_url) for _ in range(3)]
    try:
        _load(stores[0], 100)
        for store in stores:
            store.reactor_lock = lambda _conn: None  # type: ignore[method-assign]
        errors = _race(stores, batch_size=200)
        assert errors == []
        _assert_each_event_made_one_task(stores[0], 100)
    finally:
        for store in stores:
            store.close()
