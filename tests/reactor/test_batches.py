"""A batch evaluates its events as if each were evaluated alone, in seq order (issue 3).

The reactor marks a batch's events PROCESSED when the batch ends, and lookups see the
batch's earlier events in memory meanwhile; it skips the lookup of a trigger's own
dependency when nothing newer was evaluated. Here the same configs and events go through
a reactor with batches of 200 and one with batches of 1 (each event its own transaction):
every firing, with the events that satisfied each dependency, must be the same.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from sqlalchemy import select

from stepd.reactor import Reactor
from stepd.services.configs import ConfigService
from stepd.services.events import EventBatch, EventService
from stepd.store import Store, open_store
from stepd.store.schema import tasks, triggers
from stepd.store.tokens import Principal

ROBOT = Principal(user="robot-crypta", is_admin=False)


def _configs(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(12):
        deps = []
        for _ in range(rng.choice([1, 2, 2, 3])):
            params: dict[str, Any] = {"d": "~"}
            if rng.random() < 0.6:
                params["k"] = rng.choice(["x", "y"])
            if rng.random() < 0.3:
                params["h"] = "~"
            deps.append({"name": rng.choice(["a", "b", "c"]), "params": params})
        out.append({"name": f"c{i}", "event_deps": deps, "task_type": "T"})
    return out


def _events(rng: random.Random, n: int) -> list[dict[str, Any]]:
    return [
        {
            "name": rng.choice(["a", "b", "c", "z"]),
            "params": {
                "d": rng.choice(["1", "2", "3"]),
                "k": rng.choice(["x", "y", "w"]),
                "h": rng.choice(["p", "q"]),
            },
        }
        for _ in range(n)
    ]


def _load(store: Store, configs: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    for body in configs:
        ConfigService(store).create(body, ROBOT)
    for start in range(0, len(events), 7):  # several submits: several transactions
        EventService(store).submit(EventBatch(events=events[start : start + 7]), author=ROBOT.user)


def _firings(store: Store) -> list[tuple[Any, ...]]:
    """Every firing by seqs, which both stores hand out alike: (config, event, binding,
    dep events, task params)."""
    with store.read() as conn:
        rows = conn.execute(
            select(
                triggers.c.config_seq,
                triggers.c.event_seq,
                triggers.c.binding,
                triggers.c.dep_events,
                tasks.c.params,
            )
            .join(tasks, tasks.c.id == triggers.c.task_id)
            .order_by(triggers.c.event_seq, triggers.c.config_seq, triggers.c.binding)
        ).all()
    return [(c, e, json.loads(b), json.loads(d), json.loads(p)) for c, e, b, d, p in rows]


def test_batches_fire_exactly_what_one_event_at_a_time_fires(store: Store, tmp_path: Path) -> None:
    rng = random.Random(20261129)
    configs, events = _configs(rng), _events(rng, 300)
    alone = open_store(f"sqlite:///{tmp_path / 'alone.db'}")
    try:
        _load(store, configs, events)
        _load(alone, configs, events)
        batched, single = Reactor(store, batch_size=200), Reactor(alone, batch_size=1)
        while batched.run_once() > 0:
            pass
        while single.run_once() > 0:
            pass
        fired = _firings(store)
        assert len(fired) > 100, "the scenario must fire, and join, a good deal"
        assert any(len(f[3]) == 3 and len(set(f[3])) == 3 for f in fired)
        assert fired == _firings(alone)
    finally:
        alone.close()
