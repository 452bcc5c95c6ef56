"""Backfills (issue 11): how long a 10,000-binding backfill takes to plan, and how fast
its tasks are made, against firings of the same config in the same run and store.

    .venv/bin/python benchmarks/backfill_bench.py [--rounds 3] [--store sqlite|postgres]

Planning is `BackfillService.submit(..., dry_run=True)`: every binding's task rendered
(templates included). Making is the feed (`BackfillService.feed`, max_in_flight 1,000):
between rounds the tasks made are marked ended, untimed, as workers would. The baseline
is the reactor making the same number of tasks from 10,000 events that each fire the
config once (`Reactor.run_once` until none is left; the events stored untimed). Rounds of
the two are interleaved, medians reported; nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select, update

from stepd.api.app import build_context
from stepd.api.context import AppContext
from stepd.reactor.reactor import Reactor
from stepd.services.events import EventBatch
from stepd.settings import Settings
from stepd.store import open_store
from stepd.store.schema import tasks
from stepd.store.tokens import Principal

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
DAYS, CLUSTERS = 100, 100  # 10,000 bindings
ADMIN = Principal(user="bench", is_admin=True)
BODY_PARAMS = {
    "date": {"from": "2019-01-01", "to": "2019-04-10"},
    "cluster": [f"c{i:03}" for i in range(CLUSTERS)],
}


def new_config(c: AppContext, name: str) -> str:
    config = c.configs.create(
        {
            "name": f"{name}-{uuid.uuid4().hex[:6]}",
            "event_deps": [{"name": name, "params": {"date": "~", "cluster": "~"}}],
            "task_type": "BENCH",
            "task_params": {"out": "//home/{{ cluster }}/{{ date }}", "n": "{{ 2 * 3 }}"},
        },
        ADMIN,
    )
    return config.id


def end_all(c: AppContext) -> None:
    with c.store.write() as conn:
        conn.execute(update(tasks).where(tasks.c.status == "ENQUEUED").values(status="SUCCESS"))


def plan_seconds(c: AppContext, config_id: str) -> float:
    start = time.perf_counter()
    plan = c.backfills.submit(config_id, {"params": BODY_PARAMS, "dry_run": True}, ADMIN)
    elapsed = time.perf_counter() - start
    assert not isinstance(plan, tuple) and len(plan.tasks) == DAYS * CLUSTERS
    return elapsed


def backfill_rate(c: AppContext, config_id: str) -> float:
    """Tasks a second the feed makes (the first batch, made with the backfill, excluded)."""
    c.backfills.submit(config_id, {"params": BODY_PARAMS, "max_in_flight": 1000}, ADMIN)
    made, spent = 0, 0.0
    while True:
        end_all(c)
        start = time.perf_counter()
        fed = c.backfills.feed()
        spent += time.perf_counter() - start
        made += fed.made
        if fed.running == 0:
            return made / spent


def firing_rate(c: AppContext, name: str) -> float:
    """Tasks a second the reactor makes from events that fire a config once each."""
    new_config(c, name)
    days = [f"2019-{m:02}-{d:02}" for m in range(1, 5) for d in range(1, 26)][:DAYS]
    for day in days:
        events = [
            {"name": name, "params": {"date": day, "cluster": f"c{i:03}"}} for i in range(CLUSTERS)
        ]
        c.events.submit(EventBatch(events=events), author="bench")
    reactor = Reactor(c.store)
    start = time.perf_counter()
    while reactor.run_once() > 0:
        pass
    elapsed = time.perf_counter() - start
    with c.store.read() as conn:
        count = conn.execute(
            select(func.count()).select_from(tasks).where(tasks.c.status == "ENQUEUED")
        ).scalar_one()
    end_all(c)
    assert count == DAYS * CLUSTERS, count
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}" if args.store == "sqlite" else PG_URL
        store = open_store(url)
        context = build_context(
            Settings.model_validate(
                {"database_url": url, "reactor": False, "clock": False, "executor": "none"}
            ),
            store,
        )
        plans, backfills, firings = [], [], []
        try:
            for number in range(args.rounds):
                config_id = new_config(context, f"bfBench{number}")
                plans.append(plan_seconds(context, config_id))
                backfills.append(backfill_rate(context, config_id))
                firings.append(firing_rate(context, f"fireBench{number}"))
                print(
                    f"round {number + 1}: plan {plans[-1]:.3f} s, backfill {backfills[-1]:,.0f} "
                    f"tasks/s, firings {firings[-1]:,.0f} tasks/s",
                    flush=True,
                )
        finally:
            context.close()
    ratios = [b / f for b, f in zip(backfills, firings, strict=True)]
    print(f"\n{args.store}, {DAYS * CLUSTERS:,} bindings, {args.rounds} rounds (medians):")
    print(f"  plan (dry run):       {statistics.median(plans):.3f} s   (target < 1 s)")
    print(f"  backfill makes:       {statistics.median(backfills):,.0f} tasks/s")
    print(f"  firings make:         {statistics.median(firings):,.0f} tasks/s")
    print(f"  backfill / firings:   {statistics.median(ratios):.2f}x   (target >= 1x)")


if __name__ == "__main__":
    main()
