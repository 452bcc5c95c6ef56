"""`GET /metrics` at scale (issue 13): this branch's scrape against the baseline's (a git
ref, by default where this branch left `main`, run from its own sources) on the same SQLite
store, in the same run.

    .venv/bin/python benchmarks/metrics_bench.py            # 1,000,000 events, 100,000 tasks
    .venv/bin/python benchmarks/metrics_bench.py --quick    # 100,000 events, 10,000 tasks
    .venv/bin/python benchmarks/metrics_bench.py --baseline <git ref>

The store: `query.fill`'s events (source type api), then `tasks` finished tasks, each with
its attempt, its status event (source type task, linked in task_events) and the trigger
that made it, all with plain sqlite3 into the schema `open_store` made. Two servers
(`stepd serve --executor none --no-clock --no-schedules`, no reactor) run side by side on
it; rounds of sequential scrapes alternate between them (baseline, branch, baseline, ...),
and the table shows per-side medians and the ratio of the medians. The branch's first
scrape (the full count of the store's facts, once per server start) is shown apart.

Also: what the per-process instruments cost a request, in the same run: one histogram
observation (in memory and in prometheus-client's multiprocess files) against the median
`POST /api/v1/events` of one event on the branch's server.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tarfile
import tempfile
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path

import httpx
from common import (
    PY,
    SERVER_OPTS,
    Server,
    fmt,
    fresh_dir,
    log,
    make_token,
    median,
    raw_connect,
    sqlite_time,
    table,
)
from query import fill

from stepd.store import open_store

TYPES = [f"TASK_{i:02d}" for i in range(20)]
STATUSES = ["SUCCESS"] * 8 + ["FAILURE", "EXCEPTION"]


def fill_tasks(db: Path, first_seq: int, count: int) -> None:
    """`count` finished tasks, their attempts, status events, task_events and triggers."""
    conn = raw_connect(db, synchronous="OFF")
    created = sqlite_time(datetime(2024, 1, 1, tzinfo=UTC))
    conn.execute("BEGIN IMMEDIATE")
    tasks, attempts, events, links, triggers = [], [], [], [], []
    for i in range(count):
        task_id, seq = i + 1, first_seq + i
        task_type, status = TYPES[i % len(TYPES)], STATUSES[i % len(STATUSES)]
        tasks.append(
            (task_id, task_type, "{}", status, "robot", 0, "[]", 0, 1, created, created,
             created, created, 1)
        )  # fmt: skip
        attempts.append((task_id, 1, status, "w", created, created))
        params = json.dumps(
            {"taskType": task_type, "taskStatus": status, "taskId": str(task_id),
             "environment": "stable"}, separators=(",", ":"),
        )  # fmt: skip
        events.append((seq, "taskEvent", params, "PROCESSED", created, "robot", None, "task",
                       str(task_id)))  # fmt: skip
        links.append((task_id, seq))
        triggers.append((task_id, 1, 1, max(1, seq - count), f"h{i}", "{}", "[]", task_id,
                         created))  # fmt: skip
    conn.executemany(
        "INSERT INTO tasks (id, type, params, status, author, priority, semaphores, "
        "max_retries, attempts, created, updated, started, finished, config_seq) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        tasks,
    )
    conn.executemany(
        "INSERT INTO task_attempts (task_id, attempt, status, worker, started, finished) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        attempts,
    )
    conn.executemany(
        "INSERT INTO events (seq, name, params, state, created, author, request_id, "
        "source_type, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        events,
    )
    conn.executemany("INSERT INTO task_events (task_id, event_seq) VALUES (?, ?)", links)
    conn.executemany(
        "INSERT INTO triggers (id, config_seq, config_version, event_seq, binding_hash, "
        "binding, dep_events, task_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        triggers,
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def baseline_src(ref: str, work: Path) -> Path:
    """The baseline's `src/` (git archive of `ref`), to run it with PYTHONPATH."""
    target = work / "baseline"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "src"], check=True, capture_output=True
    ).stdout
    tar_path = work / "baseline.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(target, filter="data")
    return target / "src"


def server(name: str, db: Path, work: Path, pythonpath: Path | None) -> Server:
    env = ["env", "STEPD_REACTOR=false"] + ([f"PYTHONPATH={pythonpath}"] if pythonpath else [])
    argv = [*env, PY, "-m", "stepd", "serve", "--db", f"sqlite:///{db}", *SERVER_OPTS,
            "--executor", "none", "--no-clock", "--no-schedules"]  # fmt: skip
    return Server(name, argv, work / f"{name}.log")


def scrape_ms(client: httpx.Client, n: int) -> float:
    """The median of `n` sequential scrapes, in ms."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get("/metrics")
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.text
    return median(times)


def instrument_cost_us() -> dict[str, float]:
    """One labelled histogram observation, in memory and in multiprocess files, in µs."""
    from stepd import instruments as inst

    figures = {}
    for mode in ("memory", "multiprocess"):
        with tempfile.TemporaryDirectory() as d:
            if mode == "multiprocess":
                os.environ[inst.MULTIPROC_ENV] = d
            try:
                h = inst.instruments().http_seconds
                child = h.labels("/api/v1/events", "POST", "200")
                runs = 100_000
                seconds = timeit.timeit(lambda c=child: c.observe(0.001), number=runs)  # type: ignore[misc]
                figures[mode] = seconds / runs * 1e6
            finally:
                os.environ.pop(inst.MULTIPROC_ENV, None)
    return figures


def post_ms(url: str, token: str, n: int) -> float:
    body = {"events": [{"name": "bench", "params": {"k": "v"}}]}
    headers = {"Authorization": f"OAuth {token}"}
    with httpx.Client(base_url=url, headers=headers) as client:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            assert client.post("/api/v1/events", json=body).status_code == 200
            times.append((time.perf_counter() - t0) * 1000)
    return median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--baseline", default="", help="a git ref (default: where this branch left main)"
    )
    ap.add_argument("--rounds", type=int, default=0)
    args = ap.parse_args()
    if not args.baseline:  # the same schema as the branch: its own start
        args.baseline = subprocess.run(
            ["git", "merge-base", "HEAD", "main"], check=True, capture_output=True, text=True
        ).stdout.strip()[:12]
    events, tasks = (100_000, 10_000) if args.quick else (1_000_000, 100_000)
    rounds = args.rounds or (3 if args.quick else 7)
    per_round = 20 if args.quick else 50
    work = fresh_dir("metrics")
    db = work / "stepd.db"
    open_store(f"sqlite:///{db}").close()
    log(f"filling {events:,} events and {tasks:,} finished tasks")
    fill(db, 1, events + 1)
    fill_tasks(db, events + 1, tasks)
    token = make_token(db)
    base = server("baseline", db, work, baseline_src(args.baseline, work)).start()
    branch = server("branch", db, work, None).start()
    try:
        with httpx.Client(base_url=branch.url, timeout=60) as c:
            t0 = time.perf_counter()
            assert c.get("/metrics").status_code == 200
            first_ms = (time.perf_counter() - t0) * 1000
        figures: dict[str, list[float]] = {"baseline": [], "branch": []}
        with (
            httpx.Client(base_url=base.url, timeout=60) as cb,
            httpx.Client(base_url=branch.url, timeout=60) as cn,
        ):
            scrape_ms(cb, 5)
            scrape_ms(cn, 5)
            for _ in range(rounds):
                figures["baseline"].append(scrape_ms(cb, per_round))
                figures["branch"].append(scrape_ms(cn, per_round))
        post = post_ms(branch.url, token, 300)
    finally:
        base.stop()
        branch.stop()
    cost = instrument_cost_us()
    b, n = median(figures["baseline"]), median(figures["branch"])
    print(f"\n/metrics at {events:,} events + {tasks:,} tasks (their status events), SQLite, "
          f"{rounds} rounds x {per_round} scrapes, interleaved\n")  # fmt: skip
    print(
        table(
            ["side", "median ms", "range ms"],
            [
                [f"baseline ({args.baseline})", fmt(b, 2),
                 f"{fmt(min(figures['baseline']), 2)}-{fmt(max(figures['baseline']), 2)}"],
                ["branch", fmt(n, 2),
                 f"{fmt(min(figures['branch']), 2)}-{fmt(max(figures['branch']), 2)}"],
                ["branch, first scrape (full count)", fmt(first_ms, 1), ""],
            ],
        )
    )  # fmt: skip
    print(f"\nratio branch / baseline: {n / b:.2f}x")
    for mode, us in cost.items():
        print(
            f"one HTTP histogram observation ({mode}): {us:.2f} us = "
            f"{us / (post * 1000) * 100:.2f}% of a single-event POST ({fmt(post, 2)} ms median)"
        )


if __name__ == "__main__":
    main()
