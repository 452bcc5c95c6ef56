"""Runner benchmarks (issue 4): event -> task EXECUTING latency, no-op task throughput
(local executor, Celery on RabbitMQ and on Redis), and a capacity-1 semaphore under 1,000
queued tasks. Measures and prints; asserts nothing.

    .venv/bin/python benchmarks/runner_bench.py            # full run, ~5 minutes
    .venv/bin/python benchmarks/runner_bench.py --quick    # smaller counts, ~1 minute
    .venv/bin/python benchmarks/runner_bench.py --only throughput --profile  # + cProfile
    .venv/bin/python benchmarks/runner_bench.py --only latency|throughput|semaphore
    .venv/bin/python benchmarks/runner_bench.py --brokers amqp,redis   # or none: local only
    .venv/bin/python benchmarks/runner_bench.py --only fleet --base-src /work/wt/bench-base/src

d. latency:    `stepd serve --workers 2 --tasks benchmarks/bench_tasks.py` with one config;
               events sent one at a time with a pause; server-side figure: the task's `started`
               minus the event's `created` (read back from the API after the run).
e. throughput: N no-op tasks (BENCH_NOOP) inserted into the store in one transaction
               (stepd.store.tasks.insert_task) while the server runs; time from the commit to the
               last task's `finished` (N = 2,000 local, 1,000 Celery; up to 3 repetitions within
               a time budget per executor). Local executor (2 workers), then `--executor
               celery` with `stepd worker --executor celery -c 2` on RabbitMQ and on Redis (a
               unique queue, deleted afterwards). Also one stepd Worker in this process, its
               phases timed (where a task's time goes). Baselines in the same run: the no-op
               function called in a plain loop, and fork()+exit+waitpid (each attempt runs in a
               forked work horse).
   Issue 10: each broker's Celery rounds are interleaved with a bare Celery app's
               (benchmarks/bare_celery.py, configured as stepd's; `--rounds` per side, each
               side's processes started for its round only), reported as stepd/bare.
               Latency has a Celery variant (event -> task finished), one per broker.
g. fleet:      local no-op throughput of this tree against `--base-src` (an older tree's
               src/, its servers run with PYTHONPATH), rounds interleaved (issue 10).
f. semaphore:  PUT a semaphore of capacity 1, queue 1,000 short tasks (BENCH_SLEEP, 1 ms)
               holding it in one transaction, wait, then check every task's attempt history
               (GET /api/v1/tasks/{id}): sorted by start, each start >= every earlier finish.

Temporary stores go to /tmp/stepd-bench-* (removed at exit unless --keep), figures to
benchmarks/out/runner-*.json (gitignored).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import reactor_bench
from common import (
    PY,
    Process,
    Server,
    TreeCpuMeter,
    db_url,
    fmt,
    log,
    make_token,
    median,
    pct,
    run_summary,
    save_figures,
    show,
    src_fingerprint,
    stepd_serve_argv,
    table,
)
from reactor_bench import (
    LatencyConfig,
    event_times,
    fresh_dir,
    latency_config,
    parse_time,
    prepared_db,
    send_one_at_a_time,
    tasks_for_events,
)

from stepd.store import open_store
from stepd.store import tasks as task_store

HERE = Path(__file__).resolve().parent
TASKS_FILE = str(HERE / "bench_tasks.py")
BROKERS = {"amqp": "amqp://guest:guest@127.0.0.1:5672//", "redis": "redis://127.0.0.1:6379/0"}
TERMINAL = ("SUCCESS", "FAILURE", "EXCEPTION", "TIMEOUT", "STOPPED")


# --------------------------------------------------------------------------- processes


# A store: a SQLite file, or the URL of a PostgreSQL database made for the run.
Db = Path | str


def serve_argv(db: Db, *extra: str) -> list[str]:
    return stepd_serve_argv(db, "--tasks", TASKS_FILE, *extra)


def celery_worker(
    db: Path, broker: str, queue: str, log_path: Path, concurrency: int = 2
) -> Process:
    """`python -m stepd worker --executor celery ... -c 2` in its own process group; stop()
    sends SIGTERM to the whole group (the pool processes too) and waits 20 s for it."""
    argv = [
        PY, "-m", "stepd", "worker", "--executor", "celery", "--broker", broker,
        "--queue", queue, "--db", db_url(db), "--tasks", TASKS_FILE,
        "-c", str(concurrency), "--log-level", "warning",
    ]  # fmt: skip
    return Process("celery-worker", argv, log_path, grace_seconds=20, whole_group=True)


def delete_queue(broker: str, queue: str) -> None:
    """Remove the benchmark's queue (a unique name) from the broker; on Redis also kombu's
    binding keys for it."""
    with contextlib.suppress(Exception):
        from kombu import Connection  # type: ignore[attr-defined]

        with Connection(broker, connect_timeout=5) as conn:  # type: ignore[no-untyped-call]
            conn.default_channel.queue_delete(queue)
    if broker.startswith("redis://"):
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(broker)
            for key in list(client.scan_iter(f"*{queue}*")):
                client.delete(key)
            client.close()


# --------------------------------------------------------------------------- store helpers


def _has_column(db: Path, table: str, column: str) -> bool:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def _insert_old_tasks(
    db: Path, count: int, task_type: str, params: dict[str, Any], semaphores: list[dict[str, Any]]
) -> tuple[list[int], datetime]:
    """`insert_tasks` into the store of an older tree (`fleet --base-src`), whose tasks
    table lacks columns this tree's insert names: only the columns every schema since
    0003 has, in one transaction."""
    # The text SQLAlchemy's SQLite DateTime writes: UTC, no offset (store/dbapi.py).
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    row = (task_type, json.dumps(params), "robot-bench", json.dumps(semaphores), now, now)
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn, conn:
        ids = [
            int(
                conn.execute(
                    "INSERT INTO tasks (type, params, status, author, priority, semaphores,"
                    " max_retries, attempts, created, updated) VALUES"
                    " (?, ?, 'ENQUEUED', ?, 0, ?, 0, 0, ?, ?) RETURNING id",
                    row,
                ).fetchone()[0]
            )
            for _ in range(count)
        ]
    return ids, datetime.now(UTC)


def insert_tasks(
    db: Db, count: int, task_type: str, params: dict[str, Any], semaphores: list[dict[str, Any]]
) -> tuple[list[int], datetime]:
    """`count` tasks in one transaction; (their ids, the time right after the commit)."""
    if isinstance(db, Path) and not _has_column(db, "tasks", "backfill_id"):
        return _insert_old_tasks(db, count, task_type, params, semaphores)
    store = open_store(db_url(db), migrate=False)
    try:
        with store.write() as conn:
            ids = [
                task_store.insert_task(
                    conn,
                    task_store.NewTask(
                        type=task_type, params=params, author="robot-bench", semaphores=semaphores
                    ),
                )
                for _ in range(count)
            ]
        return ids, datetime.now(UTC)
    finally:
        store.close()


def _ro(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def _pg_one(url: str, sql: str, params: dict[str, Any]) -> Any:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from stepd.store.engine import normalize_url

    engine = create_engine(normalize_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).one()
    finally:
        engine.dispose()


def wait_terminal(db: Db, ids: list[int], timeout_s: float) -> bool:
    """Poll (read-only, every 50 ms) until every task in `ids` has a terminal status."""
    lo, hi = min(ids), max(ids)
    if isinstance(db, str):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            finished = ", ".join(f"'{status}'" for status in sorted(TERMINAL))
            (done,) = _pg_one(
                db,
                "SELECT count(*) FROM tasks"
                f" WHERE id BETWEEN :lo AND :hi AND status IN ({finished})",
                {"lo": lo, "hi": hi},
            )
            if done >= len(ids):
                return True
            time.sleep(0.05)
        return False
    marks = ",".join("?" * len(TERMINAL))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        conn = _ro(db)
        try:
            done = conn.execute(
                f"SELECT count(*) FROM tasks WHERE id BETWEEN ? AND ? AND status IN ({marks})",
                (lo, hi, *TERMINAL),
            ).fetchone()[0]
        finally:
            conn.close()
        if done >= len(ids):
            return True
        time.sleep(0.05)
    return False


def sqlite_dt(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def task_times(db: Db, ids: list[int]) -> dict[str, Any]:
    if isinstance(db, str):
        first, last, count, success = _pg_one(
            db,
            "SELECT min(started), max(finished), count(*),"
            " sum(CASE WHEN status = 'SUCCESS' THEN 1 ELSE 0 END) FROM tasks"
            " WHERE id BETWEEN :lo AND :hi",
            {"lo": min(ids), "hi": max(ids)},
        )
        return {"first_started": first, "last_finished": last, "count": count, "success": success}
    conn = _ro(db)
    try:
        row = conn.execute(
            "SELECT min(started), max(finished), count(*), sum(status = 'SUCCESS') FROM tasks "
            "WHERE id BETWEEN ? AND ?",
            (min(ids), max(ids)),
        ).fetchone()
    finally:
        conn.close()
    return {
        "first_started": sqlite_dt(row[0]),
        "last_finished": sqlite_dt(row[1]),
        "count": row[2],
        "success": row[3],
    }


def warm_up(db: Db, count: int = 10, timeout_s: float = 90) -> None:
    """Run a few tasks first: worker start-up (seconds on a loaded machine) must not count."""
    ids, _ = insert_tasks(db, count, "BENCH_NOOP", {}, [])
    if not wait_terminal(db, ids, timeout_s):
        where = db.parent if isinstance(db, Path) else "the work directory (--keep keeps it)"
        raise RuntimeError(
            f"warm-up tasks did not finish in {timeout_s} s (see the logs in {where})"
        )


# --------------------------------------------------------------------------- d. latency


def bench_latency(cfg: LatencyConfig, broker: str | None = None) -> dict[str, Any]:
    """The local executor (broker None), or `stepd serve --executor celery` with `stepd
    worker --executor celery -c 2` on `broker` (a unique queue, deleted afterwards)."""
    work = fresh_dir("runner-latency")
    name = "benchPing"
    db, token = prepared_db(work, "latency", [latency_config(name)])
    rng = random.Random(13)
    reps: list[dict[str, Any]] = []
    worker: Process | None = None
    queue = f"stepd-bench-{uuid.uuid4().hex[:8]}"
    if broker is None:
        argv, what = serve_argv(db, "--workers", "2"), "local executor, 2 workers"
    else:
        url = BROKERS[broker]
        argv = serve_argv(
            db, "--executor", "celery", "--broker", url, "--queue", queue, "--workers", "0"
        )
        worker = celery_worker(db, url, queue, work / "worker.log")
        what = f"celery {broker_label(broker)}, -c 2"
    with contextlib.ExitStack() as stack:
        s = stack.enter_context(Server("stepd", argv, work / "server.log"))
        if worker is not None:
            worker.start()
            stack.callback(delete_queue, BROKERS[broker or "amqp"], queue)
            stack.callback(worker.stop)
        pids = [s.pid] + ([worker.pid] if worker is not None else [])
        warm_up(db)
        headers = {"Authorization": f"OAuth {token}"}
        with httpx.Client(base_url=s.url, headers=headers, timeout=30) as client:
            ids, _ = send_one_at_a_time(client, name, 10, cfg.pause_s, rng, "warm")
            tasks_for_events(client, ids, "finished")
            for rep in range(cfg.reps):
                meter = TreeCpuMeter(pids)
                ids, rtts = send_one_at_a_time(
                    client, name, cfg.events, cfg.pause_s, rng, f"r{rep}"
                )
                cpu = meter.stop()
                tasks = tasks_for_events(client, ids, "finished")
                created = event_times(client, ids)
                to_exec, to_enq, queued, ran, to_fin = [], [], [], [], []
                for i in ids:
                    t = tasks[i]
                    c, st, fin = (parse_time(t[k]) for k in ("created", "started", "finished"))
                    to_exec.append((st - created[i]).total_seconds() * 1000)
                    to_fin.append((fin - created[i]).total_seconds() * 1000)
                    to_enq.append((c - created[i]).total_seconds() * 1000)
                    queued.append((st - c).total_seconds() * 1000)
                    ran.append((fin - st).total_seconds() * 1000)
                statuses = sorted({t["status"] for t in tasks.values()})
                reps.append(
                    {"exec_ms": to_exec, "fin_ms": to_fin, "enq_ms": to_enq, "queued_ms": queued,
                     "ran_ms": ran, "rtt_ms": rtts, "statuses": statuses, **cpu}
                )  # fmt: skip
                log(
                    f"latency/{what}: rep {rep + 1}/{cfg.reps}: event -> EXECUTING median "
                    f"{median(to_exec):.1f} ms, p95 {pct(to_exec, 95):.1f} ms, -> finished "
                    f"median {median(to_fin):.1f} ms, p95 {pct(to_fin, 95):.1f} ms "
                    f"(other CPU {cpu['other_pct']:.0f}%)"
                )
    rows = []
    for n, r in enumerate(reps):
        rows.append(
            [
                f"repetition {n + 1}",
                fmt(median(r["exec_ms"]), 1),
                fmt(pct(r["exec_ms"], 95), 1),
                fmt(median(r["fin_ms"]), 1),
                fmt(pct(r["fin_ms"], 95), 1),
                fmt(median(r["enq_ms"]), 1),
                fmt(median(r["queued_ms"]), 1),
                fmt(median(r["ran_ms"]), 1),
                ",".join(r["statuses"]),
                fmt(r["other_pct"]),
            ]
        )
    med = median([median(r["exec_ms"]) for r in reps])
    p95 = median([pct(r["exec_ms"], 95) for r in reps])
    fin_med = median([median(r["fin_ms"]) for r in reps])
    fin_p95 = median([pct(r["fin_ms"], 95) for r in reps])
    rows.append(
        [
            "median of repetitions",
            fmt(med, 1),
            fmt(p95, 1),
            fmt(fin_med, 1),
            fmt(fin_p95, 1),
            fmt(median([median(r["enq_ms"]) for r in reps]), 1),
            fmt(median([median(r["queued_ms"]) for r in reps]), 1),
            fmt(median([median(r["ran_ms"]) for r in reps]), 1),
            "",
            "",
        ]
    )
    text = table(
        [
            f"{what}, {cfg.events} events one at a time",
            "event -> EXECUTING median ms",
            "p95 ms",
            "event -> finished median ms",
            "p95 ms",
            "event -> ENQUEUED median ms",
            "ENQUEUED -> EXECUTING median ms",
            "EXECUTING -> finished median ms",
            "statuses",
            "other CPU %",
        ],
        rows,
    )
    if broker is None:
        verdict = f"target event -> EXECUTING median < 25 ms: {'met' if med < 25 else 'MISSED'}"
        verdict += f" ({med:.1f} ms)"
    else:
        verdict = "target event -> finished median < 30 ms (issue 10): "
        verdict += f"{'met' if fin_med < 30 else 'MISSED'} ({fin_med:.1f} ms, p95 {fin_p95:.1f})"
    text += (
        f"\n\n{verdict}\n"
        f"(events ~{cfg.pause_s * 1000:.0f} ms apart, each task finished before the next event; "
        "server timestamps read back through the API)"
    )
    return {
        "name": "latency", "executor": what, "text": text, "median_ms": med, "p95_ms": p95,
        "finished_median_ms": fin_med, "finished_p95_ms": fin_p95, "reps": reps,
    }  # fmt: skip


def broker_label(broker: str) -> str:
    return "RabbitMQ" if broker == "amqp" else "Redis"


# --------------------------------------------------------------------------- e. throughput


@dataclass
class ThroughputConfig:
    tasks: int  # per repetition, local executor
    celery_tasks: int  # per repetition, Celery
    reps: int  # at most; fewer when a repetition would overrun the budget
    budget_s: float  # per executor
    inprocess_tasks: int
    brokers: list[str] = field(default_factory=lambda: ["amqp", "redis"])
    postgres: bool = True  # also the local executor on PostgreSQL (not a target; a figure)
    celery_rounds: int = 5  # per side, stepd and the bare Celery app interleaved
    wait_load_s: float = 300  # before each broker's rounds: wait for load (1 min) < 1.5


def baselines(n: int = 200_000, forks: int = 300) -> dict[str, float]:
    """µs per call of the no-op task function in a plain loop (direct, and through stepd's
    param validation), and of fork()+_exit(0)+waitpid (the work-horse floor)."""
    sys.path.insert(0, str(HERE))
    import bench_tasks

    from stepd.runner.params import call_args

    fn = bench_tasks.bench_noop
    params = {"date": "2024-01-01"}  # what the benchmark's tasks carry
    t0 = time.perf_counter()
    for _ in range(n):
        fn(**params)
    direct = (time.perf_counter() - t0) / n * 1e6
    m = n // 20
    t0 = time.perf_counter()
    for _ in range(m):
        fn(**call_args(fn, params))
    validated = (time.perf_counter() - t0) / m * 1e6
    t0 = time.perf_counter()
    for _ in range(forks):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    fork = (time.perf_counter() - t0) / forks * 1e6
    return {"direct_us": direct, "validated_us": validated, "fork_us": fork}


def _throughput_reps(
    db: Db, pids: list[int], cfg: ThroughputConfig, label: str, n: int
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    t_start = time.monotonic()
    for rep in range(cfg.reps):
        used = time.monotonic() - t_start
        if out and used + used / len(out) > cfg.budget_s:
            log(f"throughput/{label}: {len(out)} repetitions fit in the {cfg.budget_s:g} s budget")
            break
        meter = TreeCpuMeter(pids)
        ids, committed = insert_tasks(db, n, "BENCH_NOOP", {"date": "2024-01-01"}, [])
        ok = wait_terminal(db, ids, timeout_s=max(60.0, n / 10))
        cpu = meter.stop()
        times = task_times(db, ids)
        wall = (times["last_finished"] - committed).total_seconds()
        steady = (times["last_finished"] - times["first_started"]).total_seconds()
        r = {
            "rep": rep,
            "complete": ok,
            "tasks": n,
            "success": times["success"],
            "tasks_per_s": n / wall if wall > 0 else float("nan"),
            "steady_per_s": n / steady if steady > 0 else float("nan"),
            "first_start_ms": (times["first_started"] - committed).total_seconds() * 1000,
            "cpu_ms_per_task": cpu["stepd_cpu_s"] / n * 1000,
            "root_ms_per_task": cpu["root_cpu_s"] / n * 1000,
            "workers_ms_per_task": cpu["workers_cpu_s"] / n * 1000,
            "horses_ms_per_task": cpu["horses_cpu_s"] / n * 1000,
            **cpu,
        }
        out.append(r)
        log(
            f"throughput/{label}: rep {rep + 1}/{cfg.reps}: {r['tasks_per_s']:,.0f} tasks/s "
            f"({r['success']}/{n} SUCCESS, stepd CPU {cpu['stepd_pct']:.0f}%, "
            f"other {cpu['other_pct']:.0f}%)"
        )
    return out


def wait_load(max_wait_s: float, threshold: float = 1.5) -> float:
    """Wait (at most `max_wait_s`) until the 1-minute load average is under `threshold`;
    return the last reading. Our own rounds raise it too: this is for the start of a section."""
    deadline = time.monotonic() + max_wait_s
    while True:
        load1 = os.getloadavg()[0]
        if load1 < threshold or time.monotonic() >= deadline:
            log(f"load average (1 min) {load1:.2f}")
            return load1
        log(f"load average (1 min) {load1:.2f} >= {threshold}: waiting")
        time.sleep(10)


def _stepd_celery_round(
    db: Path, broker: str, queue: str, work: Path, n: int, rnd: int
) -> dict[str, Any]:
    """One round of stepd through Celery: start `stepd serve --executor celery` and `stepd
    worker --executor celery -c 2`, warm up, time N no-op tasks, stop both."""
    url = BROKERS[broker]
    argv = serve_argv(
        db, "--executor", "celery", "--broker", url, "--queue", queue, "--workers", "0"
    )
    worker = celery_worker(db, url, queue, work / f"worker-{broker}-{rnd}.log")
    with Server(f"stepd-celery-{broker}", argv, work / f"celery-{broker}-{rnd}.log") as s:
        try:
            worker.start()
            warm_up(db)
            one = ThroughputConfig(0, n, 1, 1e9, 0)
            (r,) = _throughput_reps(db, [s.pid, worker.pid], one, f"stepd {broker}", n)
        finally:
            worker.stop()
    r["load1"] = os.getloadavg()[0]
    return r


def bare_worker(broker: str, queue: str, done: Path, log_path: Path, concurrency: int) -> Process:
    """`python -m celery -A bare_celery worker` with the options stepd's worker passes."""
    argv = [
        "env", f"PYTHONPATH={HERE}", f"BENCH_BROKER={BROKERS[broker]}", f"BENCH_QUEUE={queue}",
        f"BENCH_DONE_FILE={done}",
        PY, "-m", "celery", "-A", "bare_celery", "worker", "-Q", queue,
        "--concurrency", str(concurrency), "--loglevel", "WARNING", "-P", "prefork",
        "--without-gossip", "--without-mingle", "--hostname", f"bare-{queue}-%n@%h",
    ]  # fmt: skip
    return Process("bare-celery-worker", argv, log_path, grace_seconds=20, whole_group=True)


def _done_times(done: Path, tag: str) -> list[float]:
    if not done.exists():
        return []
    return [
        float(t) for line in done.read_text().splitlines() for g, t in [line.split()] if g == tag
    ]


def _bare_send_and_wait(app: Any, done: Path, tag: str, n: int, timeout_s: float) -> dict[str, Any]:
    import bare_celery

    t0 = time.time()
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            app.send_task(bare_celery.TASK_NAME, args=[tag], producer=producer)
    sent = time.time()
    deadline = time.monotonic() + timeout_s
    times = _done_times(done, tag)
    while len(times) < n and time.monotonic() < deadline:
        time.sleep(0.05)
        times = _done_times(done, tag)
    wall = max(times) - t0 if times else float("nan")
    return {
        "tasks": n, "done": len(times), "complete": len(times) >= n,
        "tasks_per_s": n / wall if wall > 0 else float("nan"),
        "send_ms": (sent - t0) * 1000,
        "steady_per_s": n / (max(times) - min(times)) if len(times) > 1 else float("nan"),
    }  # fmt: skip


def _bare_round(
    broker: str, queue: str, work: Path, n: int, rnd: int, concurrency: int = 2
) -> dict[str, Any]:
    """One round of the bare Celery app: start its worker, warm up, time N no-ops, stop it.
    The clock runs from the first send to the last task's line in the done file."""
    import bare_celery

    done = work / f"bare-{broker}.done"
    app = bare_celery.make_app(BROKERS[broker], queue)
    worker = bare_worker(broker, queue, done, work / f"bare-{broker}-{rnd}.log", concurrency)
    worker.start()
    try:
        warm = _bare_send_and_wait(app, done, f"warm{rnd}", 10, 90)
        if not warm["complete"]:
            raise RuntimeError(f"bare Celery warm-up did not finish (see {work})")
        meter = TreeCpuMeter([worker.pid])
        r = _bare_send_and_wait(app, done, f"r{rnd}", n, max(60.0, n / 10))
        cpu = meter.stop()
        r.update(cpu)
        r["cpu_ms_per_task"] = cpu["stepd_cpu_s"] / n * 1000
    finally:
        worker.stop()
        app.close()
    r["load1"] = os.getloadavg()[0]
    log(
        f"throughput/bare celery {broker}: round {rnd + 1}: {r['tasks_per_s']:,.0f} tasks/s "
        f"({r['done']}/{n} done, worker CPU {r['stepd_pct']:.0f}%, other {r['other_pct']:.0f}%)"
    )
    return r


def _celery_rounds(
    work: Path, broker: str, cfg: ThroughputConfig
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """stepd through Celery and the bare Celery app, `cfg.celery_rounds` rounds each,
    interleaved stepd, bare, bare, stepd, ... (each side's processes only run in its rounds);
    each on a unique queue of its own, deleted afterwards."""
    url = BROKERS[broker]
    stepd_queue = f"stepd-bench-{uuid.uuid4().hex[:8]}"
    bare_queue = f"bare-bench-{uuid.uuid4().hex[:8]}"
    db = work / f"celery-{broker}.db"
    make_token(db)
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    n = cfg.celery_tasks
    try:
        wait_load(cfg.wait_load_s)
        for rnd in range(cfg.celery_rounds):
            order = ("stepd", "bare") if rnd % 2 == 0 else ("bare", "stepd")
            for side in order:
                if side == "stepd":
                    ours.append(_stepd_celery_round(db, broker, stepd_queue, work, n, rnd))
                else:
                    theirs.append(_bare_round(broker, bare_queue, work, n, rnd))
    finally:
        delete_queue(url, stepd_queue)
        delete_queue(url, bare_queue)
    return ours, theirs


def bare_table(
    results: dict[str, list[dict[str, Any]]], bare: dict[str, list[dict[str, Any]]]
) -> str:
    rows = []
    verdicts = []
    for broker, theirs in bare.items():
        ours = results.get(f"celery {broker_label(broker)}, -c 2", [])
        if not ours or not theirs:
            continue
        o = [r["tasks_per_s"] for r in ours]
        t = [r["tasks_per_s"] for r in theirs]
        ratio = median(o) / median(t)
        per_round = median([a / b for a, b in zip(o, t, strict=False)])
        for name, reps in ((f"stepd, {broker_label(broker)}", ours),
                           (f"bare Celery, {broker_label(broker)}", theirs)):  # fmt: skip
            xs = [r["tasks_per_s"] for r in reps]
            rows.append([
                f"{name} (N={reps[0]['tasks']:,}, {len(reps)} rounds)", fmt(median(xs)),
                f"{fmt(min(xs))}-{fmt(max(xs))}",
                fmt(median([r["cpu_ms_per_task"] for r in reps]), 2),
                fmt(median([r["other_pct"] for r in reps])),
                f"{min(r['load1'] for r in reps):.1f}-{max(r['load1'] for r in reps):.1f}",
            ])  # fmt: skip
        verdicts.append(
            f"{broker_label(broker)}: stepd/bare = {ratio:.1%} (per-round median "
            f"{per_round:.1%}); target >= 50%: {'met' if ratio >= 0.5 else 'MISSED'}"
        )
    text = table(
        ["no-op tasks through Celery, -c 2 -P prefork", "tasks/s (median)", "range",
         "CPU ms per task (stepd processes / bare worker)", "other CPU %", "load (1 min)"],
        rows,
    )  # fmt: skip
    note = (
        "(rounds interleaved stepd, bare, bare, stepd, ...; each side's processes started for "
        "its round and stopped after it; stepd: N inserts committed -> last `finished`; bare: "
        "first send -> last task's line in the done file)"
    )
    return "\n".join([text, *verdicts, note])


PG_URL = os.environ.get("STEPD_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def pg_database() -> Any:
    """A PostgreSQL database of its own for one benchmark (migrated), dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from stepd.store.engine import normalize_url

    admin = create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    name = f"stepd_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        open_store(url).close()  # migrated here, once
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def bench_throughput(cfg: ThroughputConfig, profile: bool = False) -> dict[str, Any]:
    base = baselines()
    inproc = inprocess_breakdown(cfg.inprocess_tasks, profile)
    log(f"throughput: one Worker in process, no server: {inproc['tasks_per_s']:,.0f} tasks/s")
    log(
        f"throughput: baselines: no-op call {base['direct_us']:.3f} us, with call_args "
        f"{base['validated_us']:.1f} us, fork+waitpid {base['fork_us']:.0f} us"
    )
    results: dict[str, list[dict[str, Any]]] = {}
    work = fresh_dir("runner-throughput")
    # local executor
    db = work / "local.db"
    make_token(db)
    with Server("stepd-local", serve_argv(db, "--workers", "2"), work / "local.log") as s:
        warm_up(db)
        results["local, 2 workers"] = _throughput_reps(db, [s.pid], cfg, "local", cfg.tasks)
    if cfg.postgres:
        try:
            with (
                pg_database() as url,
                Server(
                    "stepd-local-pg", serve_argv(url, "--workers", "2"), work / "local-pg.log"
                ) as s,
            ):
                warm_up(url)
                results["local, 2 workers, PostgreSQL"] = _throughput_reps(
                    url, [s.pid], cfg, "local-pg", cfg.tasks
                )
        except Exception as exc:  # no PostgreSQL here: report, go on
            log(f"throughput/local-pg: failed: {exc}")
            results[f"local PostgreSQL: FAILED ({exc})"] = []
    # celery: stepd and a bare Celery app on the same broker, rounds interleaved (ABBA)
    bare: dict[str, list[dict[str, Any]]] = {}
    for broker in cfg.brokers:
        label = f"celery {broker_label(broker)}, -c 2"
        try:
            results[label], bare[broker] = _celery_rounds(work, broker, cfg)
        except Exception as exc:  # a broker that does not answer: report, go on
            log(f"throughput/celery-{broker}: failed: {exc}")
            results[f"celery {broker}: FAILED ({exc})"] = []
    rows = []
    for label, reps in results.items():
        if not reps:
            rows.append([label, "-", "-", "-", "-", "-", "-", "-", "-"])  # fmt: skip
            continue
        rate = median([r["tasks_per_s"] for r in reps])
        low, high = min(r["tasks_per_s"] for r in reps), max(r["tasks_per_s"] for r in reps)
        rows.append(
            [
                f"{label} (N={reps[0]['tasks']:,}, {len(reps)} reps)",
                fmt(rate),
                f"{fmt(low)}-{fmt(high)}",
                fmt(median([r["steady_per_s"] for r in reps])),
                fmt(1000 / rate * 2, 2),
                fmt(median([r["cpu_ms_per_task"] for r in reps]), 1)
                + " = "
                + " + ".join(
                    fmt(median([r[k] for r in reps]), 1)
                    for k in ("root_ms_per_task", "workers_ms_per_task", "horses_ms_per_task")
                ),
                f"{sum(r['success'] for r in reps):,}/{sum(r['tasks'] for r in reps):,}",
                fmt(median([r["stepd_pct"] for r in reps])),
                fmt(median([r["other_pct"] for r in reps])),
            ]
        )
    text = table(
        [
            "no-op tasks (N per repetition)",
            "tasks/s (median)",
            "range",
            "tasks/s first start -> last finish",
            "wall ms per task per worker",
            "stepd CPU ms per task = server(s) + workers + horses",
            "SUCCESS",
            "stepd CPU %",
            "other CPU %",
        ],
        rows,
    )
    text += "\n\n" + table(
        [f"one stepd Worker in process, no server ({inproc['tasks']} tasks, RSS "
         f"{inproc['rss_mb']:.0f} MB): {inproc['tasks_per_s']:,.0f} tasks/s", "ms per task",
         "share"],
        [[k, fmt(v, 2), f"{v / sum(inproc['ms_per_task'].values()):.0%}"]
         for k, v in inproc["ms_per_task"].items()],
    )  # fmt: skip
    verdicts = []
    for label, reps in results.items():
        if reps:
            rate = median([r["tasks_per_s"] for r in reps])
            target = 300 if label.startswith("local") else 150
            verdicts.append(
                f"{label}: {rate:,.0f}/s vs target {target}/s: "
                f"{'met' if rate >= target else 'MISSED'}"
            )
    if bare:
        text += "\n\n" + bare_table(results, bare)
    text += (
        "\n\nbaselines (this process, same run): the no-op function in a plain loop "
        f"{base['direct_us']:.3f} us/call; through stepd.runner.params.call_args "
        f"{base['validated_us']:.1f} us/call; fork()+_exit(0)+waitpid {base['fork_us']:,.0f} us\n"
        + "\n".join(verdicts)
        + "\n(tasks/s = N / (last `finished` - commit of the N inserts), median of repetitions; "
        "'wall ms per task per worker' = 2 workers / rate, the per-task overhead since the "
        "function itself costs well under a microsecond)"
    )
    if inproc["profile"]:
        text += "\n\ncProfile of the in-process Worker (by own time):\n" + inproc["profile"]
    inproc.pop("profile")
    return {
        "name": "throughput", "text": text, "baselines": base, "results": results,
        "bare_celery": bare, "inprocess": inproc,
    }  # fmt: skip


def inprocess_breakdown(tasks: int, profile: bool) -> dict[str, Any]:
    """One stepd Worker in this process (no server, no reactor, nothing else writing): where a
    no-op task's time goes. Each transaction is timed whole (lock, BEGIN, statements, COMMIT)
    labelled by the runs.* functions that ran inside it; Horse.run is request -> result."""
    import cProfile
    import io
    import pstats

    from stepd.runner import worker as worker_mod
    from stepd.runner.attempt import Horse
    from stepd.runner.registry import load_task_types
    from stepd.store import runs

    work = fresh_dir("runner-inproc")
    db = work / "inproc.db"
    make_token(db)
    spent: dict[str, float] = {}
    label: list[str] = []

    def add(name: str, seconds: float) -> None:
        spent[name] = spent.get(name, 0.0) + seconds

    def labelled(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            label.append(name)
            return fn(*a, **k)

        return wrapper

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                add(name, time.perf_counter() - t0)

        return wrapper

    store = open_store(f"sqlite:///{db}", migrate=False)
    originals = (runs.has_work, runs.claim, runs.finish, Horse.run)
    plain_write, plain_read = store.write, store.read

    def txn(kind: str, plain: Any) -> Any:
        @contextlib.contextmanager
        def wrapped() -> Any:
            label.clear()
            t0 = time.perf_counter()
            with plain() as conn:
                yield conn
            what = " + ".join(dict.fromkeys(label)) or "other"
            add(f"{what}: {kind} transaction", time.perf_counter() - t0)

        return wrapped

    def drain(worker: Any, count: int) -> int:
        """Worker.run as a worker process runs it, until `count` attempts have ended."""
        ended = [0]

        def count_one() -> None:
            ended[0] += 1

        worker.on_finished[:] = [count_one]
        worker.run(lambda: ended[0] >= count)
        return ended[0]

    prof_text = ""
    try:
        runs.has_work = labelled("has_work", runs.has_work)
        runs.claim = labelled("claim", runs.claim)
        runs.finish = labelled("finish + status event", runs.finish)
        Horse.run = timed(  # type: ignore[method-assign]
            "Horse.run: the attempt in the work horse, result read", Horse.run
        )
        store.write = txn("write", plain_write)  # type: ignore[method-assign]
        store.read = txn("read", plain_read)  # type: ignore[method-assign]
        w = worker_mod.Worker(store, load_task_types((TASKS_FILE,)), "bench-inprocess")
        insert_tasks(db, 20, "BENCH_NOOP", {"date": "2024-01-01"}, [])
        drain(w, 20)
        spent.clear()
        insert_tasks(db, tasks, "BENCH_NOOP", {"date": "2024-01-01"}, [])
        t0 = time.perf_counter()
        n = drain(w, tasks)
        wall = time.perf_counter() - t0
        measured = dict(spent)
        if profile:
            insert_tasks(db, min(tasks, 300), "BENCH_NOOP", {"date": "2024-01-01"}, [])
            prof = cProfile.Profile()
            prof.enable()
            drain(w, min(tasks, 300))
            prof.disable()
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(20)
            prof_text = buf.getvalue()
    finally:
        runs.has_work, runs.claim, runs.finish, Horse.run = originals  # type: ignore[method-assign]
        store.close()
    per_task = {k: v / max(n, 1) * 1000 for k, v in sorted(measured.items())}
    per_task["rest of Worker.run"] = wall / max(n, 1) * 1000 - sum(per_task.values())
    rss_mb = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    return {
        "tasks": n, "tasks_per_s": n / wall, "ms_per_task": per_task, "profile": prof_text,
        "rss_mb": rss_mb,
    }  # fmt: skip


# --------------------------------------------------------------------------- f. semaphore


@dataclass
class SemaphoreConfig:
    tasks: int


def check_overlap(attempts: list[tuple[datetime, datetime, int]]) -> dict[str, Any]:
    """Sorted by start, each start must be >= every earlier finish; also the peak concurrency."""
    attempts = sorted(attempts)
    violations: list[tuple[int, int | None, float]] = []
    latest_finish: datetime | None = None
    latest_id = None
    for start, finish, task_id in attempts:
        if latest_finish is not None and start < latest_finish:
            violations.append((task_id, latest_id, (latest_finish - start).total_seconds() * 1000))
        if latest_finish is None or finish > latest_finish:
            latest_finish, latest_id = finish, task_id
    # sweep line: +1 at each start, -1 at each finish (finish first on ties: touching is fine)
    points = sorted([(f, 0) for _s, f, _i in attempts] + [(s, 1) for s, _f, _i in attempts])
    running = peak = 0
    for _t, kind in points:
        running += 1 if kind else -1
        peak = max(peak, running)
    return {"violations": violations, "peak": peak}


def bench_semaphore(cfg: SemaphoreConfig) -> dict[str, Any]:
    work = fresh_dir("runner-semaphore")
    db = work / "semaphore.db"
    token = make_token(db)
    sem = "bench-capacity-1"
    with Server("stepd", serve_argv(db, "--workers", "2"), work / "server.log") as s:
        warm_up(db)
        headers = {"Authorization": f"OAuth {token}"}
        with httpx.Client(base_url=s.url, headers=headers, timeout=30) as client:
            client.put(f"/api/v1/semaphores/{sem}", json={"capacity": 1}).raise_for_status()
            meter = TreeCpuMeter([s.pid])
            ids, committed = insert_tasks(
                db, cfg.tasks, "BENCH_SLEEP", {"ms": 1}, [{"name": sem, "weight": 1}]
            )
            ok = wait_terminal(db, ids, timeout_s=max(120.0, cfg.tasks / 5))
            cpu = meter.stop()
            attempts = []
            statuses: dict[str, int] = {}
            for task_id in ids:
                body = client.get(f"/api/v1/tasks/{task_id}").json()["result"]
                statuses[body["status"]] = statuses.get(body["status"], 0) + 1
                for a in body["attempt_history"]:
                    if a["started"] and a["finished"]:
                        attempts.append(
                            (parse_time(a["started"]), parse_time(a["finished"]), task_id)
                        )
            sem_state = client.get(f"/api/v1/semaphores/{sem}").json()["result"]
    times = task_times(db, ids)
    wall = (times["last_finished"] - committed).total_seconds()
    check = check_overlap(attempts)
    workers = set()
    conn = _ro(db)
    try:
        workers = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT worker FROM task_attempts WHERE task_id BETWEEN ? AND ?",
                (min(ids), max(ids)),
            )
        }
    finally:
        conn.close()
    rows = [
        [
            f"{cfg.tasks:,} tasks on a capacity-1 semaphore, 2 local workers",
            f"{len(attempts):,}",
            str(len(check["violations"])),
            str(max(0, check["peak"] - 1)),
            ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items())),
            str(len(workers)),
            fmt(cfg.tasks / wall if wall > 0 else float("nan")),
            fmt(cpu["other_pct"]),
        ]
    ]
    text = table(
        ["semaphore", "attempts checked", "violations", "max overlap", "statuses",
         "workers used", "tasks/s", "other CPU %"],
        rows,
    )  # fmt: skip
    verdict = (
        "max overlap = 0"
        if not check["violations"]
        else (
            f"{len(check['violations'])} VIOLATIONS, e.g. task {check['violations'][0][0]} started "
            f"{check['violations'][0][2]:.2f} ms before task {check['violations'][0][1]} finished"
        )
    )
    text += (
        f"\n\n{verdict}; all finished: {ok}; semaphore afterwards: {json.dumps(sem_state)}\n"
        "(attempt history from GET /api/v1/tasks/{id}; sorted by start, each start must be >= "
        "every earlier finish)"
    )
    return {
        "name": "semaphore",
        "text": text,
        "violations": check["violations"][:20],
        "n_violations": len(check["violations"]),
        "peak": check["peak"],
        "statuses": statuses,
        "all_finished": ok,
        "other_pct": cpu["other_pct"],
    }


# --------------------------------------------------------------------------- g. fleet cost


def _base_env(base_src: str) -> list[str]:
    return ["env", f"PYTHONPATH={base_src}"]


def imported_stepd(base_src: str | None) -> str:
    """Where `import stepd` comes from under that side's environment (a check, logged)."""
    argv = [*(_base_env(base_src) if base_src else []), PY, "-c",
            "import stepd; print(stepd.__file__)"]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def bench_fleet(n: int, rounds: int, base_src: str, wait_load_s: float) -> dict[str, Any]:
    """Local executor no-op throughput, this tree against an older one (`base_src`, e.g. a
    worktree of 293e11f, before the worker registry and heartbeats), rounds interleaved
    new, base, base, new, ...; each round starts its side's server, warms up, times N
    tasks, stops the server. Each side has its own store, made by its own code."""
    work = fresh_dir("runner-fleet")
    where = {"new": imported_stepd(None), "base": imported_stepd(base_src)}
    log(f"fleet: new imports {where['new']}, base imports {where['base']}")
    dbs = {"new": work / "new.db", "base": work / "base.db"}
    make_token(dbs["new"])
    subprocess.run(
        [*_base_env(base_src), PY, "-c",
         f"import sys; sys.path.insert(0, {str(HERE)!r}); from pathlib import Path; "
         f"from common import make_token; make_token(Path({str(dbs['base'])!r}))"],
        check=True,
    )  # fmt: skip
    load0 = wait_load(wait_load_s)
    out: dict[str, list[dict[str, Any]]] = {"new": [], "base": []}
    one = ThroughputConfig(n, 0, 1, 1e9, 0)
    for rnd in range(rounds):
        for side in ("new", "base") if rnd % 2 == 0 else ("base", "new"):
            argv = serve_argv(dbs[side], "--workers", "2")
            if side == "base":
                argv = [*_base_env(base_src), *argv]
            with Server(f"stepd-{side}", argv, work / f"{side}-{rnd}.log") as s:
                warm_up(dbs[side])
                (r,) = _throughput_reps(dbs[side], [s.pid], one, f"fleet {side}", n)
            r["load1"] = os.getloadavg()[0]
            out[side].append(r)
    rows = []
    for side, reps in out.items():
        xs = [r["tasks_per_s"] for r in reps]
        rows.append([
            f"{side}: {where[side]} (N={n:,}, {len(reps)} rounds)", fmt(median(xs)),
            f"{fmt(min(xs))}-{fmt(max(xs))}",
            fmt(median([r["cpu_ms_per_task"] for r in reps]), 2),
            fmt(median([r["other_pct"] for r in reps])),
            f"{min(r['load1'] for r in reps):.1f}-{max(r['load1'] for r in reps):.1f}",
        ])  # fmt: skip
    new = [r["tasks_per_s"] for r in out["new"]]
    base = [r["tasks_per_s"] for r in out["base"]]
    cost = 1 - median(new) / median(base)
    per_round = median([1 - a / b for a, b in zip(new, base, strict=True)])
    text = table(
        ["local executor, 2 workers, no-op tasks", "tasks/s (median)", "range",
         "stepd CPU ms per task", "other CPU %", "load (1 min)"],
        rows,
    )  # fmt: skip
    text += (
        f"\ncost of new vs base: {cost:.1%} of base's throughput (per-round median "
        f"{per_round:.1%}); target < 5%: {'met' if cost < 0.05 else 'MISSED'}\n"
        f"(load average at the start: {load0:.2f}; rounds interleaved new, base, base, new, ...)"
    )
    return {"name": "fleet", "text": text, "results": out, "imports": where, "cost": cost}


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description="runner benchmarks (issue 4; no pass/fail)")
    parser.add_argument("--quick", action="store_true", help="smaller counts (~1 minute)")
    parser.add_argument(
        "--only", choices=("latency", "throughput", "semaphore", "fleet"), action="append"
    )
    parser.add_argument(
        "--base-src",
        help="fleet: the src/ of an older tree to compare with (e.g. a worktree of 293e11f)",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds per side (Celery, fleet)"
    )
    parser.add_argument(
        "--wait-load", type=float, default=300,
        help="before a section, wait up to this long for the 1-minute load to drop under 1.5",
    )  # fmt: skip
    parser.add_argument(
        "--latency-executors", default="local,celery",
        help="latency: local and/or celery (on each of --brokers)",
    )  # fmt: skip
    parser.add_argument(
        "--brokers", default="amqp,redis", help="Celery brokers to try: amqp,redis or none"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores (/tmp)")
    parser.add_argument(
        "--no-pg", action="store_true", help="skip the local executor on PostgreSQL (throughput)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the in-process Worker (throughput)"
    )
    args = parser.parse_args()
    reactor_bench.KEEP = args.keep
    only = set(args.only or ("latency", "throughput", "semaphore", "fleet"))
    brokers = [b for b in args.brokers.split(",") if b in BROKERS]
    q = args.quick
    started = time.time()
    fingerprint = src_fingerprint()
    whole = TreeCpuMeter([])
    results: list[dict[str, Any]] = []
    if "latency" in only:
        cfg = LatencyConfig(1, 60, 0.08) if q else LatencyConfig(3, 200, 0.08)
        executors = args.latency_executors.split(",")
        if "local" in executors:
            wait_load(args.wait_load)
            show(results, bench_latency(cfg))
        if "celery" in executors:
            for broker in brokers:
                wait_load(args.wait_load)
                show(results, bench_latency(cfg, broker))
    if "throughput" in only:
        tcfg = (
            ThroughputConfig(300, 300, 1, 30, 100, brokers, not args.no_pg, 2, args.wait_load)
            if q
            else ThroughputConfig(
                2000, 1000, 3, 90, 300, brokers, not args.no_pg, args.rounds, args.wait_load
            )
        )
        show(results, bench_throughput(tcfg, args.profile))
    if "fleet" in only:
        if args.base_src:
            show(
                results,
                bench_fleet(300 if q else 3000, 2 if q else args.rounds, args.base_src,
                            args.wait_load),
            )  # fmt: skip
        else:
            log("fleet: skipped (no --base-src)")
    if "semaphore" in only:
        show(results, bench_semaphore(SemaphoreConfig(150 if q else 1000)))
    load = whole.stop()
    summary = run_summary(fingerprint, started, load["other_pct"])
    print(summary)
    save_figures("runner", q, {"results": results, "summary": summary, "load": load})
    return 0


if __name__ == "__main__":
    sys.exit(main())
