"""Tombstones cost the reactor nothing (issue 11): its catalog reads live configs only, so a
store where 10,000 configs were deleted reloads and evaluates as one where none ever were.
Measures and prints ratios against that baseline in the same run; asserts nothing.

    .venv/bin/python benchmarks/tombstones_bench.py [--quick]

Two SQLite stores get the same 1,000 live configs over 100 event names; one also gets
10,000 configs created and deleted (tombstones and their history). Per round, on each store
in turn (interleaved): a catalog reload (`Catalog.refresh` into an empty catalog) and
`Reactor.run_once` on a batch of 200 NEW events. Medians over the rounds, and the ratio
tombstones / baseline (1.00: no cost).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from stepd.domain.configs import ActionConfig, parse_config
from stepd.reactor.catalog import Catalog
from stepd.reactor.reactor import Reactor
from stepd.store import Store, open_store
from stepd.store import configs as config_store
from stepd.store import events as event_store

T0 = datetime(2026, 12, 1, tzinfo=UTC)
NAMES = 100


def _config(i: int, name: str) -> ActionConfig:
    spec = parse_config(
        {
            "name": name,
            "task_type": "T",
            "event_deps": [{"name": f"e{i % NAMES}", "params": {"k": str(i), "date": "~"}}],
        }
    )
    return ActionConfig(id="", seq=0, author="u", version=1, spec=spec, created=T0, updated=T0)


def _fill(store: Store, live: int, deleted: int) -> None:
    with store.write() as conn:
        for i in range(deleted):
            gone = config_store.insert_config(conn, _config(i, f"gone-{i}"), actor="u")
            config_store.delete_config(conn, gone, actor="u")
        for i in range(live):
            config_store.insert_config(conn, _config(i, f"live-{i}"), actor="u")


def _events(store: Store, batch: int, round_no: int) -> None:
    new = [
        event_store.NewEvent(
            name=f"e{i % NAMES}", params={"k": str(i), "date": f"r{round_no}"}, created=T0
        )
        for i in range(batch)
    ]
    with store.write() as conn:
        event_store.insert_events(conn, new)


def _round(store: Store, reactor: Reactor, n: int) -> tuple[float, float]:
    start = time.perf_counter()
    Catalog().refresh(store)  # what a reactor does after any config change: load them all
    reload_s = time.perf_counter() - start
    _events(store, 200, n)
    start = time.perf_counter()
    reactor.run_once()
    return reload_s, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer configs and rounds")
    args = parser.parse_args()
    live, deleted, rounds = (200, 2_000, 5) if args.quick else (1_000, 10_000, 9)
    with tempfile.TemporaryDirectory(prefix="stepd-bench-tomb-") as tmp:
        sides: dict[str, tuple[Store, Catalog, Reactor]] = {}
        for side, gone in (("baseline", 0), ("tombstones", deleted)):
            store = open_store(f"sqlite:///{Path(tmp) / side}.db")
            _fill(store, live, gone)
            catalog = Catalog()
            sides[side] = (store, catalog, Reactor(store, catalog=catalog))
            sides[side][2].run_once()  # warm: the first load
        figures: dict[str, tuple[list[float], list[float]]] = {s: ([], []) for s in sides}
        for n in range(rounds):
            for side, (store, _, reactor) in sides.items():
                reload_s, react_s = _round(store, reactor, n)
                figures[side][0].append(reload_s)
                figures[side][1].append(react_s)
        for store, _, _ in sides.values():
            store.close()
    print(f"{live} live configs; the tombstones store also has {deleted} deleted ones")
    print(f"{'':12} {'catalog reload ms':>18} {'run_once 200 events ms':>24}")
    medians = {s: [statistics.median(f) * 1000 for f in figures[s]] for s in figures}
    for side, (reload_ms, react_ms) in medians.items():
        print(f"{side:12} {reload_ms:18.1f} {react_ms:24.1f}")
    base, tomb = medians["baseline"], medians["tombstones"]
    print(f"{'ratio':12} {tomb[0] / base[0]:18.2f} {tomb[1] / base[1]:24.2f}")


if __name__ == "__main__":
    main()
