"""Runner benchmarks (issue 4): event -> task EXECUTING latency, no-op task throughput
(local executor, Celery on RabbitMQ and on Redis), and a capacity-1 semaphore under 1,000
queued tasks. Measures and prints; asserts nothing.

    .venv/bin/python benchmarks/runner_bench.py            # full run, ~5 minutes
    .venv/bin/python benchmarks/runner_bench.py --quick    # smaller counts, ~1 minute
    .venv/bin/python benchmarks/runner_bench.py --only throughput --profile  # + cProfile
    .venv/bin/python benchmarks/runner_bench.py --only latency|throughput|semaphore
    .venv/bin/python benchmarks/runner_bench.py --brokers amqp,redis   # or none: local only

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


def insert_tasks(
    db: Db, count: int, task_type: str, params: dict[str, Any], semaphores: list[dict[str, Any]]
) -> tuple[list[int], datetime]:
    """`count` tasks in one transaction; (their ids, the time right after the commit)."""
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


def bench_latency(cfg: LatencyConfig) -> dict[str, Any]:
    work = fresh_dir("runner-latency")
    name = "benchPing"
    db, token = prepared_db(work, "latency", [latency_config(name)])
    rng = random.Random(13)
    reps: list[dict[str, Any]] = []
    with Server("stepd", serve_argv(db, "--workers", "2"), work / "server.log") as s:
        warm_up(db)
        headers = {"Authorization": f"OAuth {token}"}
        with httpx.Client(base_url=s.url, headers=headers, timeout=30) as client:
            ids, _ = send_one_at_a_time(client, name, 10, cfg.pause_s, rng, "warm")
            tasks_for_events(client, ids, "finished")
            for rep in range(cfg.reps):
                meter = TreeCpuMeter([s.pid])
                ids, rtts = send_one_at_a_time(
                    client, name, cfg.events, cfg.pause_s, rng, f"r{rep}"
                )
                cpu = meter.stop()
                tasks = tasks_for_events(client, ids, "finished")
                created = event_times(client, ids)
                to_exec, to_enq, queued, ran = [], [], [], []
                for i in ids:
                    t = tasks[i]
                    c, st, fin = (parse_time(t[k]) for k in ("created", "started", "finished"))
                    to_exec.append((st - created[i]).total_seconds() * 1000)
                    to_enq.append((c - created[i]).total_seconds() * 1000)
                    queued.append((st - c).total_seconds() * 1000)
                    ran.append((fin - st).total_seconds() * 1000)
                statuses = sorted({t["status"] for t in tasks.values()})
                reps.append(
                    {"exec_ms": to_exec, "enq_ms": to_enq, "queued_ms": queued, "ran_ms": ran,
                     "rtt_ms": rtts, "statuses": statuses, **cpu}
                )  # fmt: skip
                log(
                    f"latency: rep {rep + 1}/{cfg.reps}: event -> EXECUTING median "
                    f"{median(to_exec):.1f} ms, p95 {pct(to_exec, 95):.1f} ms "
                    f"(other CPU {cpu['other_pct']:.0f}%)"
                )
    rows = []
    for n, r in enumerate(reps):
        rows.append(
            [
                f"repetition {n + 1}",
                fmt(median(r["exec_ms"]), 1),
                fmt(pct(r["exec_ms"], 95), 1),
                fmt(median(r["enq_ms"]), 1),
                fmt(median(r["queued_ms"]), 1),
                fmt(median(r["ran_ms"]), 1),
                ",".join(r["statuses"]),
                fmt(r["other_pct"]),
            ]
        )
    med = median([median(r["exec_ms"]) for r in reps])
    p95 = median([pct(r["exec_ms"], 95) for r in reps])
    rows.append(
        [
            "median of repetitions",
            fmt(med, 1),
            fmt(p95, 1),
            fmt(median([median(r["enq_ms"]) for r in reps]), 1),
            fmt(median([median(r["queued_ms"]) for r in reps]), 1),
            fmt(median([median(r["ran_ms"]) for r in reps]), 1),
            "",
            "",
        ]
    )
    text = table(
        [
            f"local executor, 2 workers, {cfg.events} events one at a time",
            "event -> EXECUTING median ms",
            "p95 ms",
            "event -> ENQUEUED median ms",
            "ENQUEUED -> EXECUTING median ms",
            "EXECUTING -> finished median ms",
            "statuses",
            "other CPU %",
        ],
        rows,
    )
    text += (
        f"\n\ntarget median < 25 ms: {'met' if med < 25 else 'MISSED'} ({med:.1f} ms)\n"
        f"(events ~{cfg.pause_s * 1000:.0f} ms apart, each task finished before the next event; "
        "server timestamps read back through the API)"
    )
    return {"name": "latency", "text": text, "median_ms": med, "p95_ms": p95, "reps": reps}


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
    # celery
    for broker in cfg.brokers:
        url = BROKERS[broker]
        queue = f"stepd-bench-{uuid.uuid4().hex[:8]}"
        db = work / f"celery-{broker}.db"
        make_token(db)
        argv = serve_argv(
            db, "--executor", "celery", "--broker", url, "--queue", queue, "--workers", "0"
        )
        worker = celery_worker(db, url, queue, work / f"worker-{broker}.log")
        try:
            with Server(f"stepd-celery-{broker}", argv, work / f"celery-{broker}.log") as s:
                worker.start()
                warm_up(db)
                label = f"celery {'RabbitMQ' if broker == 'amqp' else 'Redis'}, -c 2"
                results[label] = _throughput_reps(
                    db, [s.pid, worker.pid], cfg, label, cfg.celery_tasks
                )
        except Exception as exc:  # a broker that does not answer: report, go on
            log(f"throughput/celery-{broker}: failed: {exc}")
            results[f"celery {broker}: FAILED ({exc})"] = []
        finally:
            worker.stop()
            delete_queue(url, queue)
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
        "inprocess": inproc,
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


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description="runner benchmarks (issue 4; no pass/fail)")
    parser.add_argument("--quick", action="store_true", help="smaller counts (~1 minute)")
    parser.add_argument("--only", choices=("latency", "throughput", "semaphore"), action="append")
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
    only = set(args.only or ("latency", "throughput", "semaphore"))
    brokers = [b for b in args.brokers.split(",") if b in BROKERS]
    q = args.quick
    started = time.time()
    fingerprint = src_fingerprint()
    whole = TreeCpuMeter([])
    results: list[dict[str, Any]] = []
    if "latency" in only:
        cfg = LatencyConfig(1, 60, 0.08) if q else LatencyConfig(3, 200, 0.08)
        show(results, bench_latency(cfg))
    if "throughput" in only:
        tcfg = (
            ThroughputConfig(300, 300, 1, 30, 100, brokers, postgres=not args.no_pg)
            if q
            else ThroughputConfig(2000, 1000, 3, 90, 300, brokers, postgres=not args.no_pg)
        )
        show(results, bench_throughput(tcfg, args.profile))
    if "semaphore" in only:
        show(results, bench_semaphore(SemaphoreConfig(150 if q else 1000)))
    load = whole.stop()
    summary = run_summary(fingerprint, started, load["other_pct"])
    print(summary)
    save_figures("runner", q, {"results": results, "summary": summary, "load": load})
    return 0


if __name__ == "__main__":
    sys.exit(main())
