"""A batch evaluates its events as if each were evaluated alone, in seq order (issue 3).

The reactor marks a batch's events PROCESSED when the batch ends, and lookups see the
batch's earlier events in memory meanwhile; it skips the lookup of a trigger's own
dependency when nothing newer was evaluated, and reads only the newest event of a slot
whose params are all bound. Here the same configs and events go through a reactor with
batches of 200 and one with batches of 1 (each event its own transaction) that reads
every event a lookup finds: every firing, with the events that satisfied each
dependency, must be the same.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from stepd.domain.matching import Evaluation, MatchEvent, evaluate
from stepd.reactor.reactor import Reactor
from stepd.services.configs import ConfigService
from stepd.services.events import EventBatch, EventService
from stepd.store import Store, open_store
from stepd.store import configs as config_store
from stepd.store import events as event_store
from stepd.store.lookup import StoredEvents
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


def test_batches_fire_exactly_what_one_event_at_a_time_fires(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(20261129)
    configs, events = _configs(rng), _events(rng, 300)
    alone = open_store(f"sqlite:///{tmp_path / 'alone.db'}")
    try:
        _load(store, configs, events)
        _load(alone, configs, events)
        batched, single = Reactor(store, batch_size=200), Reactor(alone, batch_size=1)
        while batched.run_once() > 0:
            pass
        with monkeypatch.context() as patch:
            # and without walking the index newest first: every lookup reads every event
            patch.delattr(StoredEvents, "newest")
            while single.run_once() > 0:
                pass
        fired = _firings(store)
        assert len(fired) > 100, "the scenario must fire, and join, a good deal"
        assert any(len(f[3]) == 3 and len(set(f[3])) == 3 for f in fired)
        assert fired == _firings(alone)
    finally:
        alone.close()


class _FindOnly:
    """A store lookup that cannot walk newest first: every lookup reads every event."""

    def __init__(self, lookup: StoredEvents) -> None:
        self.lookup = lookup

    def find(self, name: str, equal: Mapping[str, str]) -> Iterable[MatchEvent]:
        return self.lookup.find(name, equal)


def _told(result: Evaluation) -> tuple[object, ...]:
    firings = [(f.binding, [e.seq for e in f.events]) for f in result.firings]
    return result.outcome, firings, result.waiting, result.mismatches


def test_stories_evaluate_alike_with_and_without_the_newest_first_walk(store: Store) -> None:
    rng = random.Random(7)
    configs, events = _configs(rng), _events(rng, 150)
    _load(store, configs, events)
    while Reactor(store).run_once() > 0:
        pass
    fired = 0
    with store.read() as conn:
        specs = [c.spec for c in config_store.list_configs(conn)]
        for trigger in event_store.get_events(conn, range(1, len(events) + 1)).values():
            for spec in specs:
                walked, read_all = (
                    evaluate(spec.event_deps, trigger, lookup, window_seconds=spec.window_seconds)
                    for lookup in (
                        StoredEvents(conn, before_seq=trigger.seq),
                        _FindOnly(StoredEvents(conn, before_seq=trigger.seq)),
                    )
                )
                assert _told(walked) == _told(read_all)
                fired += bool(walked.firings)
    assert fired > 50
