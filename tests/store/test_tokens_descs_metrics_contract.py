"""Tokens (create, look up, revoke), event descriptions, and the figures of `GET /metrics`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import text

from stepd.domain.event_desc import EventDesc
from stepd.domain.tasks import TaskStatus

from .contract import T0, Contract, Duplicate

S = timedelta(seconds=1)

# ------------------------------------------------------------------ tokens


def test_a_token_speaks_for_its_user(c: Contract) -> None:
    token = c.create_token("alice")
    admin = c.create_token("root", admin=True)
    assert token != admin and token.startswith("stepd_")
    alice = c.principal(token)
    assert alice is not None and (alice.user, alice.is_admin) == ("alice", False)
    root = c.principal(admin)
    assert root is not None and root.is_admin
    assert c.principal("stepd_not-a-token") is None


def test_only_a_hash_of_a_token_is_stored(c: Contract) -> None:
    token = c.create_token("alice")
    with c.store.read() as conn:
        rows = conn.execute(text("SELECT * FROM tokens")).all()
    assert rows and all(token not in map(str, row) for row in rows)


def test_revoking_a_users_tokens_ends_every_one_of_them(c: Contract) -> None:
    t1, t2 = c.create_token("alice"), c.create_token("alice")
    bob = c.create_token("bob")
    assert c.revoke_user("alice") == 2
    assert c.principal(t1) is None and c.principal(t2) is None
    assert c.principal(bob) is not None


def test_a_token_revoked_by_id_stops_working_once(c: Contract) -> None:
    token = c.create_token("alice")
    c.create_token("bob")
    (info, _bob) = c.tokens()
    assert (info.user, info.is_admin, info.revoked, info.created.tzinfo is not None) == (
        "alice",
        False,
        False,
        True,
    )
    assert c.revoke_token(info.id)
    assert not c.revoke_token(info.id)  # not live any more
    assert c.principal(token) is None
    assert [t.user for t in c.tokens()] == ["bob"]
    assert [(t.user, t.revoked) for t in c.tokens(include_revoked=True)] == [
        ("alice", True),
        ("bob", False),
    ]


# ------------------------------------------------------------------ event descriptions


def _desc(name: str = "ready", **extra: object) -> EventDesc:
    fields: dict[str, object] = {
        "name": name,
        "description": "a day is ready",
        "required_fields": ("date",),
        "optional_fields": ("hour",),
        "public": True,
        "list_in_idm": False,
        "author": "alice",
        "created": T0,
        "updated": T0,
    }
    fields.update(extra)
    return EventDesc(**fields)  # type: ignore[arg-type]


def test_an_event_description_reads_back_as_stored(c: Contract) -> None:
    c.add_desc(_desc())
    assert c.desc("ready") == _desc()
    assert c.desc("other") is None


def test_a_name_has_one_description(c: Contract) -> None:
    c.add_desc(_desc())
    with pytest.raises(Duplicate):
        c.add_desc(_desc(description="again"))


def test_replacing_a_description_keeps_when_it_was_created(c: Contract) -> None:
    c.add_desc(_desc())
    c.replace_desc(_desc(description="new", created=T0 + S, updated=T0 + 2 * S, public=False))
    found = c.desc("ready")
    assert found is not None
    assert (found.description, found.public, found.created, found.updated) == (
        "new",
        False,
        T0,
        T0 + 2 * S,
    )


def test_descriptions_list_by_name_and_delete_once(c: Contract) -> None:
    c.add_desc(_desc("b"))
    c.add_desc(_desc("a"))
    assert [d.name for d in c.descs()] == ["a", "b"]
    assert c.delete_desc("a") and not c.delete_desc("a")
    assert [d.name for d in c.descs()] == ["b"]


# ------------------------------------------------------------------ metrics


def test_the_metrics_of_an_empty_store_are_zeros(c: Contract) -> None:
    m = c.metrics()
    assert (m.events_stored, m.events_pending, m.events_rejected) == (0, 0, 0)
    assert m.oldest_pending_event is None and m.oldest_waiting_task is None
    assert m.active_tasks == dict.fromkeys(
        (TaskStatus.ENQUEUED, TaskStatus.WAIT_MUTEX, TaskStatus.EXECUTING), 0
    )
    assert (m.recent_tasks, m.recent_window, m.semaphores, m.semaphores_truncated) == (
        {},
        0,
        [],
        False,
    )
    assert (m.configs, m.configs_enabled) == (0, 0)


def test_the_metrics_count_events_by_state(c: Contract) -> None:
    seqs = c.add_events([("a", {}) for _ in range(5)], created=T0)
    c.add_events([("late", {})], created=T0 + S)
    c.mark_processed(seqs[:2])
    c.reject(seqs[2])
    m = c.metrics()
    assert m.events_stored == seqs[-1] + 1  # the highest seq: every event ever stored
    assert (m.events_pending, m.events_rejected) == (3, 1)
    assert m.oldest_pending_event == T0


def test_the_metrics_count_tasks_by_status_and_their_semaphores(c: Contract) -> None:
    running = c.add_task(semaphores=[{"name": "db", "weight": 1}], created=T0)
    waiting = c.add_task(semaphores=[{"name": "db", "weight": 1}], created=T0 + S)
    done = c.add_task(created=T0 + 2 * S)
    queued = c.add_task(created=T0 + 3 * S, priority=-5)
    c.claim(limit=2)  # running and done: waiting lacks the semaphore
    c.finish(done, 1, TaskStatus.SUCCESS)
    m = c.metrics()
    assert m.active_tasks == {
        TaskStatus.ENQUEUED: 1,
        TaskStatus.WAIT_MUTEX: 1,
        TaskStatus.EXECUTING: 1,
    }
    assert m.recent_tasks == {
        TaskStatus.EXECUTING: 1,
        TaskStatus.WAIT_MUTEX: 1,
        TaskStatus.SUCCESS: 1,
        TaskStatus.ENQUEUED: 1,
    }
    assert m.recent_window == 4
    assert m.oldest_waiting_task == T0 + S  # `waiting`, older than `queued`
    assert [(s.name, s.capacity, s.used) for s in m.semaphores] == [("db", 1, 1)]
    assert {running, waiting, queued} <= set(c.tasks([running, waiting, queued]))


def test_a_retry_waits_in_the_metrics_from_when_it_came_due(c: Contract) -> None:
    tid = c.add_task(max_retries=1, created=T0)
    c.claim(now=T0 + 10 * S)
    c.finish(tid, 1, TaskStatus.FAILURE, now=T0 + 20 * S)  # due again 1 s later
    assert c.metrics().oldest_waiting_task == T0 + 21 * S


def test_the_metrics_count_configs_and_those_enabled(c: Contract) -> None:
    body = {"task_type": "T", "event_deps": [{"name": "e"}]}
    c.create_config({**body, "name": "on"})
    c.create_config({**body, "name": "off", "enabled": False})
    m = c.metrics()
    assert (m.configs, m.configs_enabled) == (2, 1)


def test_replace_keeps_a_description_equal_but_for_its_changes(c: Contract) -> None:
    original = _desc()
    c.add_desc(original)
    c.replace_desc(replace(original, optional_fields=("hour", "minute")))
    assert c.desc("ready") == replace(original, optional_fields=("hour", "minute"))
