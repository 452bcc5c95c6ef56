"""The events list with its `fired` column at 1,000,000 events (issue 13: under 50 ms).
Measures and prints ratios against the list without the column in the same run; asserts
nothing.

    .venv/bin/python benchmarks/events_fired_bench.py [--events N] [--rounds R]

A SQLite store made by open_store is filled with plain sqlite3 inserts (benchmarks/query.py's
`fill`: ~85% cryptaTaskEvent, the rest clock and other names), and every 10th event gets a
trigger that made a task (100,000 tasks at 1,000,000 events), every 1,000th one a trigger
that failed. Per round, interleaved:

- `list`: the UI's first page of the events list without the column (EventService.query:
  newest 51, the clock's events left out);
- `list+fired`: the same and EventService.fired on that page (the column);
- `page`: GET /ui/events through the app in this process (the list, the column, the HTML);
- `fired=true`: GET /api/v1/events?fired=true&sort=-_id&limit=30 (the filter), against
  `api list`, the same without it.

Medians over the rounds (each round the median of 20 calls), and the ratios.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from query import fill

from stepd.api.app import build_context, create_app
from stepd.settings import Settings
from stepd.store import open_store
from stepd.store.events import EventQuery
from stepd.ui.routes import PAGE_SIZE, TIMER_EVENTS

FIRED_EVERY = 10  # one event in 10 made a task
FAILED_EVERY = 1000  # one in 1,000 completed a firing that made none
CALLS = 20  # per round and figure


def _fill_firings(db: Path, events: int) -> int:
    """A task and its trigger for every FIRED_EVERY-th event, an error trigger for every
    FAILED_EVERY-th; how many tasks."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN IMMEDIATE")
    made = 0
    tasks, triggers = [], []
    for seq in range(1, events + 1):
        if seq % FIRED_EVERY and seq % FAILED_EVERY:
            continue
        created = "2023-01-01 00:00:00.000000"
        binding = json.dumps({"date": "2023-01-01"})
        task_id = None
        if seq % FIRED_EVERY == 0:
            made += 1
            task_id = made
            tasks.append((task_id, "T", binding, "SUCCESS", "robot-crypta", 0, "[]", 0, 1,
                          1, 1, seq, created, created, 0))  # fmt: skip
        triggers.append((1, 1, seq, f"h{seq}", binding, f"[{seq}]", task_id,
                         None if task_id else "a template failed", created))  # fmt: skip
    conn.executemany(
        "INSERT INTO tasks (id, type, params, status, author, priority, semaphores, "
        "max_retries, attempts, config_seq, config_version, event_seq, created, updated, "
        "stop_requested) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        tasks,
    )
    conn.executemany(
        "INSERT INTO triggers (config_seq, config_version, event_seq, binding_hash, binding, "
        "dep_events, task_id, error, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        triggers,
    )
    conn.execute("COMMIT")
    conn.close()
    return made


def _median_ms(call: Callable[[], object]) -> float:
    samples = []
    for _ in range(CALLS):
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stepd-fired-bench-") as tmp:
        db = Path(tmp) / "bench.db"
        open_store(f"sqlite:///{db}").close()  # the schema, at the latest migration
        t0 = time.perf_counter()
        fill(db, 1, args.events + 1)
        tasks = _fill_firings(db, args.events)
        print(f"filled {args.events:,} events, {tasks:,} tasks in {time.perf_counter() - t0:.0f} s")

        store = open_store(f"sqlite:///{db}")
        settings = Settings.model_validate(
            {"database_url": f"sqlite:///{db}", "reactor": False, "clock": False}
            | {"executor": "none"}
        )
        context = build_context(settings, store)
        service = context.events
        query = EventQuery(limit=PAGE_SIZE + 1, newest_first=True, exclude_names=TIMER_EVENTS)
        with TestClient(create_app(context)) as client:

            def listed() -> object:
                return service.query(query)

            def with_fired() -> object:
                return service.fired(service.query(query)[:PAGE_SIZE])

            def page() -> object:
                answer = client.get("/ui/events")
                assert answer.status_code == 200 and 'class="nowrap fired"' in answer.text
                return answer

            def api(**extra: str) -> Callable[[], object]:
                def call() -> object:
                    answer = client.get(
                        "/api/v1/events", params={"sort": "-_id", "limit": "30", **extra}
                    )
                    assert answer.status_code == 200 and answer.json()["result"]
                    return answer

                return call

            figures: dict[str, list[float]] = {}
            probes = {
                "list": listed,
                "list+fired": with_fired,
                "page": page,
                "api list": api(),
                "fired=true": api(fired="true"),
            }
            for probe in probes.values():  # warm the page cache
                probe()
            for _ in range(args.rounds):
                for label, probe in probes.items():
                    figures.setdefault(label, []).append(_median_ms(probe))
        context.close()
    med = {label: statistics.median(values) for label, values in figures.items()}
    print(f"{'figure':<12} {'median ms':>10}")
    for label, value in med.items():
        print(f"{label:<12} {value:>10.2f}")
    print(f"list+fired / list:      {med['list+fired'] / med['list']:.2f}")
    print(f"fired=true / api list:  {med['fired=true'] / med['api list']:.2f}")


if __name__ == "__main__":
    main()
