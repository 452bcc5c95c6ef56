"""Retention while events arrive: what a round deleting many old events costs ingest, and
how fast it deletes. Side by side in one run: rounds of ingest alone and of ingest with
retention's round running, interleaved, medians compared.

In one process, as in a server (retention's loop is a thread of the API's process): the
ingest thread stores 100-event batches as fast as it can, each in its own write
transaction (what the server's writer thread does with a POST's events), so it competes
for the write turn, the GIL and the cores with the round at its full pace. A real server
takes ingest at the rate HTTP lets it, so this is the worst case for the ratio.

    python benchmarks/retention_bench.py --old 1000000 [--db postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import fmt, fresh_dir, log, table  # noqa: E402

from stepd.domain.events import EventState  # noqa: E402
from stepd.domain.retention import Policy  # noqa: E402
from stepd.services.retention import RetentionService, Round, pause_after  # noqa: E402
from stepd.store import Store, open_store  # noqa: E402
from stepd.store import events as event_store  # noqa: E402

BATCH = 100  # events per ingest transaction


def seed(store: Store, count: int, created: datetime) -> None:
    """`count` old, evaluated events with two params each (and their index rows), stored
    in large transactions: the backlog retention then deletes."""
    chunk = 20_000
    for start in range(0, count, chunk):
        new = [
            event_store.NewEvent(
                name="old",
                params={"date": f"2026-01-{i % 28 + 1:02d}", "i": i},
                created=created,
                state=EventState.PROCESSED,
            )
            for i in range(start, min(count, start + chunk))
        ]
        with store.write() as conn:
            event_store.insert_events(conn, new)
        if start % 200_000 == 0:
            log(f"seeded {start + len(new):,} of {count:,}")


class Ingest(threading.Thread):
    """Stores 100-event batches as fast as it can while `running` is set."""

    def __init__(self, store: Store) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.running = threading.Event()
        self.stopped = threading.Event()
        self.stored = 0
        self.n = 0

    def run(self) -> None:
        while not self.stopped.is_set():
            if not self.running.wait(0.05):
                continue
            now = datetime.now(UTC)
            new = [
                event_store.NewEvent(
                    name="fresh", params={"n": self.n + i, "date": "2026-12-06"}, created=now
                )
                for i in range(BATCH)
            ]
            with self.store.write() as conn:
                event_store.insert_events(conn, new)
            self.n += BATCH
            self.stored += BATCH

    def rate(self, seconds: float) -> float:
        before = self.stored
        time.sleep(seconds)
        return (self.stored - before) / seconds


class Pruning(threading.Thread):
    """One retention round at the loop's pace, while `running` is set."""

    def __init__(self, round_: Round) -> None:
        super().__init__(daemon=True)
        self.round = round_
        self.running = threading.Event()
        self.busy_seconds = 0.0  # time spent while running (batches and pauses)
        self.held: list[float] = []

    def run(self) -> None:
        while not self.round.done:
            if not self.running.wait(0.05):
                continue
            started = time.perf_counter()
            held = self.round.step()
            self.held.append(held)
            time.sleep(pause_after(held))
            self.busy_seconds += time.perf_counter() - started


def table_bytes(store: Store) -> dict[str, int]:
    if store.is_sqlite:
        assert store.sqlite_path is not None
        return {"file": Path(store.sqlite_path).stat().st_size}
    with store.read() as conn:
        rows = conn.execute(
            text(
                "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname IN "
                "('events', 'event_params') AND relnamespace = current_schema()::regnamespace"
            )
        )
        return {str(name): int(size) for name, size in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=int, default=1_000_000, help="old events to delete")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per side")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one round")
    parser.add_argument("--batch-rows", type=int, default=500)
    parser.add_argument("--db", default=None, help="a database URL (default: a new SQLite)")
    args = parser.parse_args()

    url = args.db or f"sqlite:///{fresh_dir('retention') / 'stepd.db'}"
    store = open_store(url)
    old_at = datetime.now(UTC) - timedelta(days=10)
    started = time.perf_counter()
    seed(store, args.old, old_at)
    log(f"seeded {args.old:,} old events in {time.perf_counter() - started:.0f} s")
    size_seeded = table_bytes(store)

    service = RetentionService(store, batch_rows=args.batch_rows)
    round_ = service.begin(policy=Policy.of("1d"))
    assert round_ is not None
    ingest, pruning = Ingest(store), Pruning(round_)
    ingest.start()
    pruning.start()
    ingest.running.set()
    ingest.rate(1.0)  # warm-up
    alone: list[float] = []
    beside: list[float] = []
    for i in range(args.rounds):
        for side in ("alone", "beside") if i % 2 == 0 else ("beside", "alone"):
            if side == "beside":
                pruning.running.set()
                time.sleep(0.2)  # its batches under way
                beside.append(ingest.rate(args.seconds))
                pruning.running.clear()
            else:
                time.sleep(0.2)
                alone.append(ingest.rate(args.seconds))
        log(f"round {i + 1}: alone {alone[-1]:,.0f}, beside {beside[-1]:,.0f} events/s")
    deleted_beside = round_.tally.events
    seconds_beside = pruning.busy_seconds
    # The rest of the round with ingest still running, to its end.
    pruning.running.set()
    rest_started = time.perf_counter()
    while not round_.done:
        time.sleep(0.2)
    rest_seconds = time.perf_counter() - rest_started
    ingest.running.clear()
    ingest.stopped.set()
    size_after = table_bytes(store)
    with store.read() as conn:
        left = conn.execute(text("SELECT count(*) FROM events WHERE name = 'old'")).scalar_one()
    store.close()

    ratio = statistics.median(beside) / statistics.median(alone)
    total_seconds = seconds_beside + rest_seconds
    figures: dict[str, Any] = {
        "store": "sqlite" if args.db is None else "postgresql",
        "old_events": args.old,
        "ingest_alone_events_per_s": round(statistics.median(alone)),
        "ingest_beside_events_per_s": round(statistics.median(beside)),
        "ingest_ratio": round(ratio, 3),
        "deleted_events": round_.tally.events,
        "deleted_index_rows": round_.tally.params,
        "deletion_rate_events_per_s": round(round_.tally.events / total_seconds),
        "deletion_rate_during_rounds": round(deleted_beside / max(seconds_beside, 1e-9)),
        "batch_held_ms_median": round(statistics.median(pruning.held) * 1000, 2),
        "old_events_left": int(left),
        "bytes_seeded": size_seeded,
        "bytes_after": size_after,
    }
    print(
        table(
            ["figure", "value"],
            [(k, fmt(v) if isinstance(v, int | float) else v) for k, v in figures.items()],
        )
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
