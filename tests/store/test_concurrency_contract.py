"""What must hold when several writers race: claimers (SKIP LOCKED on PostgreSQL, the write
lock on SQLite) and two submissions of one request_id."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .contract import Contract, Duplicate

THREADS = 4


def _race(work: Callable[[int], None]) -> None:
    """Run `work(i)` in THREADS threads released together; re-raise the first error."""
    gate = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            gate.wait(10)
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]


def test_concurrent_claims_never_hand_out_a_task_twice(c: Contract) -> None:
    ids = [c.add_task() for _ in range(24)]
    taken: list[list[int]] = [[] for _ in range(THREADS)]

    def claim_all(i: int) -> None:
        while got := c.claimed_ids(f"w{i}", limit=2):
            taken[i] += got

    _race(claim_all)
    every = [tid for mine in taken for tid in mine]
    assert sorted(every) == ids  # each exactly once
    assert {c.task(t).attempts for t in ids} == {1}


def test_concurrent_claims_never_exceed_a_semaphores_capacity(c: Contract) -> None:
    c.set_capacity("pool", 2)
    ids = [c.add_task(semaphores=[{"name": "pool", "weight": 1}]) for _ in range(10)]
    taken: list[int] = []
    lock = threading.Lock()

    def claim(i: int) -> None:
        for _ in range(3):
            got = c.claimed_ids(f"w{i}", limit=3)
            with lock:
                taken.extend(got)

    _race(claim)
    assert len(taken) == 2 and len(set(taken)) == 2
    assert {s.name: s.used for s in c.metrics().semaphores} == {"pool": 2}
    assert set(taken) <= set(ids)


def test_one_request_id_sent_twice_at_once_stores_one_batch(c: Contract) -> None:
    answers: list[list[str]] = []
    refused: list[int] = []

    def submit(i: int) -> None:
        try:
            answers.append(c.submit_once("same", [("a", {"n": 1}), ("b", {})], "dg"))
        except Duplicate:  # lost the race: the service then reads the winner's ids
            refused.append(i)

    _race(submit)
    assert len(answers) + len(refused) == THREADS
    assert len({tuple(a) for a in answers}) == 1
    assert len(c.query()) == 2
    found = c.find_request("same")
    assert found is not None and found[0] == answers[0]
