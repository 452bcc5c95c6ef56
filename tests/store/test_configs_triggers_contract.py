"""Configs (create, update, delete, history, generation) and triggers (one per binding)."""

from __future__ import annotations

import pytest

from .contract import T0, Contract, Duplicate


def _body(name: str = "daily", *, enabled: bool = True) -> dict[str, object]:
    return {
        "name": name,
        "task_type": "T_BUILD",
        "enabled": enabled,
        "event_deps": [{"name": "ready", "params": {"date": None}}],
        "task_params": {"date": "{{ date }}"},
        "semaphores": [{"name": "db", "weight": 1}],
        "priority": 5,
    }


def test_a_created_config_reads_back_as_version_one(c: Contract) -> None:
    made = c.create_config(_body(), author="alice")
    assert made.version == 1 and made.author == "alice" and made.seq > 0
    assert made.id  # opaque, but present
    stored = c.config(made.seq)
    assert stored is not None
    assert stored.spec == made.spec
    assert (stored.id, stored.version, stored.created) == (made.id, 1, T0)
    assert c.config_by_name("alice", "daily") == stored
    assert c.config(made.seq + 100) is None


def test_a_config_name_is_unique_per_author_only(c: Contract) -> None:
    c.create_config(_body("daily"), author="alice")
    c.create_config(_body("daily"), author="bob")
    with pytest.raises(Duplicate):
        c.create_config(_body("daily"), author="alice")
    assert [x.author for x in c.configs()] == ["alice", "bob"]
    assert [x.spec.name for x in c.configs(author="bob")] == ["daily"]


def test_an_update_bumps_the_version_and_keeps_identity(c: Contract) -> None:
    made = c.create_config(_body(), author="alice")
    changed = c.update_config(made, _body(enabled=False), actor="admin")
    assert (changed.seq, changed.id, changed.version) == (made.seq, made.id, 2)
    stored = c.config(made.seq)
    assert stored is not None and stored.version == 2 and stored.spec.enabled is False
    assert stored.created == T0 and stored.updated > T0


def test_history_records_every_change_in_order_with_its_actor(c: Contract) -> None:
    made = c.create_config(_body(), author="alice")
    changed = c.update_config(made, _body(enabled=False), actor="admin")
    c.delete_config(changed, actor="alice")
    history = c.history(made.seq)
    assert [(h["version"], h["action"], h["actor"]) for h in history] == [
        (1, "created", "alice"),
        (2, "updated", "admin"),
        (3, "deleted", "alice"),
    ]
    assert history[1]["change"] == {"enabled": {"old": True, "new": False}}
    assert all(str(h["at"]).endswith("Z") for h in history)


def test_each_version_of_a_config_can_be_read_back(c: Contract) -> None:
    made = c.create_config(_body(), author="alice")
    c.update_config(made, _body(enabled=False))
    v1 = c.config_at_version(made.seq, 1)
    v2 = c.config_at_version(made.seq, 2)
    assert v1 is not None and v1["enabled"] is True and v1["task_type"] == "T_BUILD"
    assert v2 is not None and v2["enabled"] is False
    assert c.config_at_version(made.seq, 3) is None


def test_a_deleted_config_is_gone_but_its_history_stays(c: Contract) -> None:
    made = c.create_config(_body(), author="alice")
    c.delete_config(made)
    assert c.config(made.seq) is None
    assert c.config_by_name("alice", "daily") is None
    assert c.configs() == []
    assert [h["action"] for h in c.history(made.seq)] == ["created", "deleted"]
    c.create_config(_body(), author="alice")  # the name is free again


def test_every_config_change_bumps_the_generation(c: Contract) -> None:
    g0 = c.generation()
    made = c.create_config(_body())
    g1 = c.generation()
    changed = c.update_config(made, _body(enabled=False))
    g2 = c.generation()
    c.delete_config(changed)
    g3 = c.generation()
    assert g0 < g1 < g2 < g3


def test_a_refused_config_does_not_bump_the_generation(c: Contract) -> None:
    c.create_config(_body())
    before = c.generation()
    with pytest.raises(Duplicate):
        c.create_config(_body())
    assert c.generation() == before
    assert len(c.history(c.configs()[0].seq)) == 1


# ------------------------------------------------------------------ triggers


def test_a_trigger_records_its_binding_dependencies_and_task(c: Contract) -> None:
    dep, ev = c.add_events([("dep", {}), ("ready", {})])
    task = c.add_task(event_seq=ev)
    tid = c.add_trigger(
        config_seq=7, event_seq=ev, binding={"date": "d1"}, dep_events=[dep, ev], task_id=task
    )
    assert tid is not None
    (t,) = c.triggers_for_event(ev)
    assert (t.id, t.config_seq, t.config_version, t.event_seq) == (tid, 7, 1, ev)
    assert t.binding == {"date": "d1"} and t.dep_events == (dep, ev)
    assert (t.task_id, t.error, t.created) == (task, None, T0)
    assert c.trigger_for_task(task) == t


def test_a_second_trigger_for_the_same_binding_is_a_noop(c: Contract) -> None:
    (ev,) = c.add_events([("ready", {})])
    first = c.add_trigger(config_seq=1, event_seq=ev, binding={"date": "d1"}, task_id=10)
    again = c.add_trigger(config_seq=1, event_seq=ev, binding={"date": "d1"}, task_id=11)
    assert first is not None and again is None
    (t,) = c.triggers_for_event(ev)
    assert t.task_id == 10


def test_other_bindings_configs_and_events_each_fire_once(c: Contract) -> None:
    ev1, ev2 = c.add_events([("ready", {}), ("ready", {})])
    ids = [
        c.add_trigger(config_seq=1, event_seq=ev1, binding={"date": "d1"}),
        c.add_trigger(config_seq=1, event_seq=ev1, binding={"date": "d2"}),
        c.add_trigger(config_seq=2, event_seq=ev1, binding={"date": "d1"}),
        c.add_trigger(config_seq=1, event_seq=ev2, binding={"date": "d1"}),
    ]
    assert None not in ids and len(set(ids)) == 4
    assert [t.id for t in c.triggers_for_event(ev1)] == ids[:3]
    assert [t.event_seq for t in c.triggers_for_binding(1, {"date": "d1"})] == [ev1, ev2]


def test_a_trigger_without_a_task_keeps_why(c: Contract) -> None:
    (ev,) = c.add_events([("ready", {})])
    c.add_trigger(config_seq=1, event_seq=ev, binding={}, error="template failed: x")
    (t,) = c.triggers_for_event(ev)
    assert (t.task_id, t.error) == (None, "template failed: x")
    assert c.trigger_for_task(12345) is None


def test_completed_later_finds_firings_that_used_an_earlier_event(c: Contract) -> None:
    dep, other, ev1, ev2 = c.add_events([("dep", {}), ("dep", {}), ("ready", {}), ("ready", {})])
    c.add_trigger(config_seq=1, event_seq=ev1, binding={"a": 1}, dep_events=[dep, ev1])
    c.add_trigger(config_seq=1, event_seq=ev2, binding={"a": 2}, dep_events=[other, ev2])
    c.add_trigger(config_seq=2, event_seq=ev2, binding={"a": 3}, dep_events=[dep, ev2])
    assert [t.event_seq for t in c.completed_later(1, dep)] == [ev1]
    assert [t.event_seq for t in c.completed_later(2, dep)] == [ev2]
    assert c.completed_later(1, ev2) == []
