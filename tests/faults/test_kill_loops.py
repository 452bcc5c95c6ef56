"""kill -9 loops (issue 9, "Tests that stay in CI"): servers, reactor processes, workers
and work horses killed at random moments under a steady load of events and firing configs,
then the promises checked on the store: every acknowledged event stored once, every
firing exactly once, every task ended, no semaphore shared, no process left over.

The moments are drawn from a seeded random generator; a failure names the seed, and
STEPD_FAULTS_SEED=<seed> replays the same choices (the timing of the machine still varies).
"""

from __future__ import annotations

import contextlib
import os
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import fresh_database, server_token
from fault_checks import (
    Configs,
    events_stored_once,
    firings_exactly_once,
    not_settled,
    semaphore_never_shared,
    tasks_ended,
)
from fault_cluster import KINDS, Cluster
from fault_load import EVENT, EventLoad
from fault_procs import MARK, kill9, marked

from stepd.store import open_store

pytestmark = pytest.mark.faults
TASKS_FILE = Path(__file__).resolve().parent / "fault_tasks.py"
HEARTBEAT_TIMEOUT_SECONDS = 4  # short, so that a lost attempt is ended within the test
# How long events are sent and processes killed (STEPD_FAULTS_LOAD_SECONDS for a longer
# soak). Every kind is killed in each round of four kills, one every 0.2-1 s, so 10 s kill
# each kind about twice; past them the loop goes on until every kind was killed once.
LOAD_SECONDS = float(os.environ.get("STEPD_FAULTS_LOAD_SECONDS") or 10.0)
LOAD_GRACE_SECONDS = 15.0  # longer, if a kind has not been killed yet
SETTLE_SECONDS = 40.0  # for the backlog and the lost attempts after the last kill
SEMAPHORE = "fault-sem"


def _seed() -> int:
    return int(os.environ.get("STEPD_FAULTS_SEED") or random.SystemRandom().randrange(2**32))


def _create_configs(url: str, token: str, journal: Path) -> Configs:
    http = httpx.Client(base_url=url, headers={"Authorization": f"OAuth {token}"}, timeout=30)
    with http:
        response = http.put(f"/api/v1/semaphores/{SEMAPHORE}", json={"capacity": 1})
        assert response.status_code == 200, response.text

        def create(name: str, deps: list[dict[str, object]], task_type: str, **more: object) -> int:
            body = {"name": name, "event_deps": deps, "task_type": task_type, **more}
            answer = http.post("/api/v1/configs", json=body)
            assert answer.status_code in (200, 201), answer.text
            return int(answer.json()["id"], 16)

        return Configs(
            quick=create(
                "fault-quick",
                [{"name": EVENT, "params": {"lane": "quick", "k": "~"}}],
                "F_QUICK",
                max_retries=1,
            ),
            sem=create(
                "fault-sem",
                [{"name": EVENT, "params": {"lane": "sem", "k": "~"}}],
                "F_SEM",
                task_params={"journal": str(journal)},
                semaphores=[SEMAPHORE],
            ),
            join=create(
                "fault-join",
                [
                    {"name": EVENT, "params": {"lane": "a", "pair": "~"}},
                    {"name": EVENT, "params": {"lane": "b", "pair": "~"}},
                ],
                "F_QUICK",
            ),
        )


@contextlib.contextmanager
def _no_leftovers(run: str) -> Iterator[None]:
    """After the block, no process this run started may remain; those that do are listed
    (with what they are) and then killed, so a failure leaves the machine clean."""
    try:
        yield
    finally:
        deadline = time.monotonic() + 10  # an orphaned worker finishes its attempt, then exits
        left = marked(run)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = marked(run)
        for pid in left:
            with contextlib.suppress(AssertionError):
                kill9(pid)
    assert not left, f"processes left over after the servers stopped: {left}"


def _settle(db_url: str) -> None:
    store = open_store(db_url, migrate=False)
    try:
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            with store.read() as conn:
                pending = not_settled(conn)
            if pending == (0, 0) or time.monotonic() > deadline:
                return
            time.sleep(0.2)
    finally:
        store.close()


def _go_on(elapsed: float, cluster: Cluster) -> bool:
    """Kill on for LOAD_SECONDS, and past them (up to a bound) until every kind was killed
    once: on a busy machine a server takes many seconds to start again."""
    if elapsed < LOAD_SECONDS:
        return True
    return elapsed < LOAD_SECONDS + LOAD_GRACE_SECONDS and set(cluster.kills) != set(KINDS)


def _kill_at_random(cluster: Cluster, rng: random.Random) -> None:
    """kill -9 a process of a random kind in a random server every 0.2-1 s, for
    LOAD_SECONDS (and on until every kind was killed once)."""
    began = time.monotonic()
    kinds: list[str] = []
    while _go_on(time.monotonic() - began, cluster):
        time.sleep(rng.uniform(0.2, 1.0))
        # Every kind once per round, in a random order: each is exercised.
        kinds = kinds or rng.sample(KINDS, len(KINDS))
        kind = kinds.pop()
        if not cluster.kill(rng.choice(cluster.nodes), kind, rng):
            kinds.insert(0, kind)  # none to kill now: try again later


def _check(db_url: str, load: EventLoad, configs: Configs, journal: Path) -> str:
    """Every invariant, on the settled store; what was checked, as figures."""
    store = open_store(db_url, migrate=False)
    try:
        with store.read() as conn:
            acked = events_stored_once(conn, load)
            fired, made = firings_exactly_once(conn, load, configs)
            statuses = tasks_ended(conn)
            spans = semaphore_never_shared(conn, configs, journal)
    finally:
        store.close()
    return (
        f"events_acknowledged={acked} triggers={fired} tasks={made} "
        f"statuses={dict(statuses)} semaphore_spans={spans}"
    )


def _tell(config: pytest.Config, line: str) -> None:
    """Show `line` in the run's output even when output is captured (the figures)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(line)


def _kill_loop(
    store: str, servers: int, tmp: Path, monkeypatch: pytest.MonkeyPatch, config: pytest.Config
) -> None:
    seed = _seed()
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:10]
    print(f"kill loop on {store}, {servers} server(s): seed {seed}")
    monkeypatch.setenv(MARK, run)  # inherited by every process the servers start
    journal = tmp / "semaphore.journal"
    server_args = (
        "--tasks", str(TASKS_FILE),
        "--workers", "2",
        "--heartbeat-timeout", str(HEARTBEAT_TIMEOUT_SECONDS),
        "--no-clock",
        "--log-level", "warning",
    )  # fmt: skip
    with fresh_database(store, tmp) as db_url:
        cluster = Cluster(db_url=db_url, tmp=tmp, server_args=server_args)
        load: EventLoad | None = None
        try:
            with _no_leftovers(run):
                try:
                    cluster.start(servers)
                    token = server_token(cluster.nodes[0].live)
                    configs = _create_configs(cluster.urls()[0], token, journal)
                    load = EventLoad(
                        run=run, token=token, urls=cluster.urls, rng=random.Random(seed + 1)
                    )
                    load.start()
                    _kill_at_random(cluster, rng)
                    load.stop()
                    assert not load.failures, load.failures
                    _settle(db_url)
                finally:
                    if load is not None:
                        load.stop()
                    cluster.stop()
            figures = _check(db_url, load, configs, journal)
        except AssertionError as exc:
            history = "\n".join(cluster.log)
            raise AssertionError(
                f"{exc}\nkill loop seed {seed} (replay: STEPD_FAULTS_SEED={seed}); kills:\n"
                f"{history}\nserver logs: {[str(p) for p in cluster.logs()]}"
            ) from exc
    assert load is not None
    kills = dict(sorted(cluster.kills.items()))
    _tell(
        config,
        f"kill loop figures: store={store} servers={servers} seed={seed} kills={kills} "
        f"batches={len(load.batches)} retried={load.retried} resent={load.resent} {figures}",
    )
    print("\n".join(cluster.log))
    # Each kind was really exercised.
    assert set(kills) == set(KINDS), f"seed {seed}: kills {kills} missed a kind"


def test_kill_loop_on_sqlite_with_one_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config
) -> None:
    _kill_loop("sqlite", 1, tmp_path, monkeypatch, pytestconfig)


@pytest.mark.postgres
def test_kill_loop_on_postgres_with_two_servers_sharing_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config
) -> None:
    _kill_loop("postgres", 2, tmp_path, monkeypatch, pytestconfig)
