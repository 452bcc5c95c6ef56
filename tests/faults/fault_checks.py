"""The invariants a kill -9 loop checks, read straight from the store once it has settled.

Each check returns how many things it checked (for the figures) and raises an
AssertionError listing every breach it found.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fault_load import EVENT, EventLoad
from sqlalchemy import Connection, select

from stepd.domain.events import format_event_id
from stepd.domain.tasks import TERMINAL
from stepd.store import dbapi
from stepd.store.schema import (
    event_requests,
    events,
    semaphore_holds,
    task_attempts,
    tasks,
    triggers,
)


@dataclass(frozen=True)
class Configs:
    """The store seqs of the loop's configs (their public ids are hex of these)."""

    quick: int  # lane `quick`, binds k: fires once per event
    sem: int  # lane `sem`, binds k, under a semaphore of capacity 1
    join: int  # lanes `a` and `b` joined on `pair`: fires once per complete pair


def _fail(what: str, breaches: list[Any]) -> None:
    if breaches:
        raise AssertionError(f"{what}: {len(breaches)} breaches, first ones: {breaches[:10]}")


def not_settled(conn: Connection) -> tuple[int, int]:
    """Events of the load still NEW, tasks not yet ended."""
    new = conn.execute(
        select(events.c.seq).where(events.c.name == EVENT, events.c.state == "NEW")
    ).all()
    active = conn.execute(select(tasks.c.id).where(tasks.c.status.not_in(list(TERMINAL)))).all()
    return len(new), len(active)


def events_stored_once(conn: Connection, load: EventLoad) -> int:
    """Every acknowledged event is stored, once, as sent; nothing unacknowledged is stored;
    every request_id is stored once, with the ids it was answered."""
    acked = load.acknowledged()
    rows = conn.execute(select(events.c.seq, events.c.params).where(events.c.name == EVENT)).all()
    stored = {format_event_id(r.seq): json.loads(r.params) for r in rows}
    copies = Counter(params["k"] for params in stored.values())
    _fail("events stored more than once", [k for k, n in copies.items() if n > 1])
    _fail("acknowledged events missing", [i for i in acked if i not in stored])
    _fail(
        "acknowledged events stored with other params",
        [
            (i, e["params"], stored[i])
            for i, e in acked.items()
            if i in stored and stored[i] != e["params"]
        ],
    )
    _fail("events stored that no request was acknowledged for", sorted(set(stored) - set(acked)))
    requests = {
        r.request_id: json.loads(r.event_ids)
        for r in conn.execute(
            select(event_requests.c.request_id, event_requests.c.event_ids).where(
                event_requests.c.request_id.like(f"{load.run}-req-%")
            )
        )
    }
    _fail(
        "request_ids stored other than answered",
        [
            (b.request_id, b.ids, requests.get(b.request_id))
            for b in load.batches
            if requests.get(b.request_id) != b.ids
        ],
    )
    _fail(
        "request_ids stored but never answered",
        sorted(set(requests) - {b.request_id for b in load.batches}),
    )
    return len(acked)


def _expected_firings(load: EventLoad, configs: Configs) -> dict[tuple[int, str], set[int]]:
    """(config seq, binding as JSON) -> the events allowed to trigger it (exactly one must)."""
    expected: dict[tuple[int, str], set[int]] = {}
    halves: dict[str, dict[str, int]] = defaultdict(dict)
    for event_id, event in load.acknowledged().items():
        seq, params = int(event_id, 16), event["params"]
        if params["lane"] == "quick":
            expected[(configs.quick, json.dumps({"k": params["k"]}))] = {seq}
        elif params["lane"] == "sem":
            expected[(configs.sem, json.dumps({"k": params["k"]}))] = {seq}
        elif params["lane"] in {"a", "b"}:
            halves[params["pair"]][params["lane"]] = seq
    for pair, seqs in halves.items():
        if len(seqs) == 2:
            # Evaluated in store order, each against the events before it: the later half fires.
            expected[(configs.join, json.dumps({"pair": pair}))] = {max(seqs.values())}
    return expected


def firings_exactly_once(conn: Connection, load: EventLoad, configs: Configs) -> tuple[int, int]:
    """One trigger per expected (config, binding), by the expected event, none other; one task
    per trigger, made by that trigger's config and event. Returns (triggers, tasks) checked."""
    expected = _expected_firings(load, configs)
    ours = [configs.quick, configs.sem, configs.join]
    rows = conn.execute(
        select(
            triggers.c.config_seq,
            triggers.c.event_seq,
            triggers.c.binding,
            triggers.c.dep_events,
            triggers.c.task_id,
            triggers.c.error,
        ).where(triggers.c.config_seq.in_(ours))
    ).all()
    fired: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for row in rows:
        fired[(row.config_seq, json.dumps(json.loads(row.binding), sort_keys=True))].append(row)
    _fail("firings missing", [key for key in expected if key not in fired])
    _fail("firings nobody expected", [key for key in fired if key not in expected])
    _fail("firings doubled", [(key, len(r)) for key, r in fired.items() if len(r) > 1])
    _fail(
        "firings by an unexpected event",
        [
            (key, r[0].event_seq, expected[key])
            for key, r in fired.items()
            if key in expected and r[0].event_seq not in expected[key]
        ],
    )
    _fail(
        "firings that made no task",
        [(key, r[0].error) for key, r in fired.items() if r[0].task_id is None],
    )
    made = {
        t.id: t
        for t in conn.execute(
            select(tasks.c.id, tasks.c.config_seq, tasks.c.event_seq).where(
                tasks.c.config_seq.in_(ours)
            )
        )
    }
    task_ids = Counter(row.task_id for row in rows)
    _fail("tasks shared by several triggers", [t for t, n in task_ids.items() if n > 1])
    _fail("tasks no trigger made", sorted(set(made) - set(task_ids)))
    _fail(
        "triggers whose task is not theirs",
        [
            (row.task_id, row.config_seq, row.event_seq)
            for row in rows
            if row.task_id not in made
            or (made[row.task_id].config_seq, made[row.task_id].event_seq)
            != (row.config_seq, row.event_seq)
        ],
    )
    return len(rows), len(made)


def tasks_ended(conn: Connection) -> Counter[str]:
    """No task is left ENQUEUED or EXECUTING (its worker's heartbeat timeout has passed), and
    no semaphore is held. The statuses, counted."""
    statuses = Counter(r.status for r in conn.execute(select(tasks.c.status)))
    _fail("tasks not ended", [(s, n) for s, n in statuses.items() if s not in TERMINAL])
    holds = conn.execute(select(semaphore_holds.c.task_id, semaphore_holds.c.name)).all()
    _fail("semaphores still held with every task ended", [tuple(h) for h in holds])
    return statuses


def semaphore_never_shared(conn: Connection, configs: Configs, journal: Path) -> int:
    """No two F_SEM attempts ran at once, by their own account (the journal) and, for an
    attempt killed before it could write its end, by the end the store recorded for it."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    ran_twice = []
    for line in journal.read_text().splitlines() if journal.exists() else []:
        word, k, stamp, *_ = line.split()
        if word == "start" and k in starts:
            ran_twice.append(k)
        (starts if word == "start" else ends)[k] = float(stamp)
    _fail("F_SEM tasks (max_retries 0) that started twice", ran_twice)
    finished: dict[str, float] = {}
    for row in conn.execute(
        select(tasks.c.params, task_attempts.c.finished)
        .join(task_attempts, task_attempts.c.task_id == tasks.c.id)
        .where(tasks.c.config_seq == configs.sem)
    ):
        if row.finished is not None:
            finished[json.loads(row.params)["k"]] = dbapi.read_time(row.finished).timestamp()
    spans = sorted(
        (start, ends.get(k, finished.get(k, float("inf"))), k) for k, start in starts.items()
    )
    overlaps = [
        (a[2], b[2], round(a[1] - b[0], 4)) for a, b in itertools.pairwise(spans) if b[0] < a[1]
    ]
    _fail("F_SEM attempts that overlapped under a semaphore of capacity 1", overlaps)
    return len(spans)
