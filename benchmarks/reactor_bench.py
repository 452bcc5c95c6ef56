"""Reactor benchmarks (issue 3): cost per event vs number of configs, ingest with configs
loaded, and event accepted -> task ENQUEUED latency. Measures and prints; asserts nothing.

    .venv/bin/python benchmarks/reactor_bench.py            # full run, ~5.5 minutes
    .venv/bin/python benchmarks/reactor_bench.py --quick    # smaller counts, no PostgreSQL, ~70 s
    .venv/bin/python benchmarks/reactor_bench.py --only cost|ingest|latency  [--no-pg | --pg]
    .venv/bin/python benchmarks/reactor_bench.py --only cost --profile   # cProfile of run_once

a. cost:    Reactor(store).run_once() in process on batches of 200 NEW events (inserted with
            stepd.store.events.insert_events), timed around run_once only, with 10 configs vs
            10,000 configs over 1,000 event names; on SQLite, and on PostgreSQL (a fresh schema,
            dropped afterwards) when it answers. The two stores get the same events in the same
            order, repetitions interleaved.
b. ingest:  single-event POSTs from 32 keep-alive connections (wrk, else benchmarks/loadgen.py)
            against two `stepd serve --workers 0` running side by side, one with 1,000 configs
            loaded and one with none; rounds interleaved.
c. latency: on an idle `stepd serve --workers 0` with one config, 200 events sent one at a
            time with a pause; server-side figure: the task's `created` minus the event's
            `created` (both written by the server, read back from the API after the run).

Temporary stores go to /tmp/stepd-bench-* (removed at exit unless --keep), figures to
benchmarks/out/reactor-*.json (gitignored).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import cProfile
import io
import json
import pstats
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import httpx
from common import (
    CpuMeter,
    LoadResult,
    Server,
    fmt,
    log,
    make_token,
    median,
    pct,
    run_load,
    run_summary,
    save_figures,
    show,
    src_fingerprint,
    stepd_serve_argv,
    table,
)

from stepd.domain.configs import ActionConfig, parse_config
from stepd.reactor.reactor import Reactor
from stepd.store import configs as config_store
from stepd.store import events as event_store
from stepd.store import open_store
from stepd.store.engine import Store
from stepd.timeutil import utcnow

PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
AUTHOR = "robot-bench"
N_NAMES = 1000
KINDS = [f"k{i}" for i in range(10)]
DATES = [f"2024-01-{d:02d}" for d in range(1, 31)]
BATCH = 200  # the reactor's batch size: one run_once evaluates one inserted batch
MIXES = ("targeted", "near-miss", "spread")


# --------------------------------------------------------------------------- work dirs

KEEP = False  # --keep: leave the temporary stores in place


def fresh_dir(prefix: str) -> Path:
    """A temporary directory under /tmp, removed at exit unless --keep (benchmarks/run.py
    removes directories that appear in benchmarks/out/ while it runs, so not there)."""
    path = Path(tempfile.mkdtemp(prefix=f"stepd-bench-{prefix}-"))
    atexit.register(lambda: None if KEEP else shutil.rmtree(path, ignore_errors=True))
    return path


# common.run_load keeps the load generator's files in common.fresh_dir (benchmarks/out/), which
# a concurrent benchmarks/run.py deletes when it ends; in this process, put them in /tmp too.
common.fresh_dir = fresh_dir


# --------------------------------------------------------------------------- configs and events


def ev_name(i: int) -> str:
    return f"benchEvent{i:04d}"


def base_configs() -> list[dict[str, Any]]:
    """The 10 configs both stores of (a) hold: 5 with one dep, 5 with two deps joined on
    `date`; their fixed values (`kind=baseN`) are used by no other config."""
    out = []
    for j in range(10):
        name = ev_name(j * 100)
        if j % 2 == 0:
            deps = [{"name": name, "params": {"kind": f"base{j}", "date": "~"}}]
        else:
            deps = [
                {"name": name, "params": {"kind": f"base{j}a", "date": "~"}},
                {"name": ev_name(j * 100 + 1), "params": {"kind": f"base{j}b", "date": "~"}},
            ]
        out.append({"name": f"base-{j}", "event_deps": deps, "task_type": "BENCH_NOOP"})
    return out


def random_configs(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """`n` configs with 1-2 deps on random names of 1,000, a fixed `kind` (of 10) and a free
    `date` (the join key of two-dep configs)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        deps = [
            {
                "name": ev_name(rng.randrange(N_NAMES)),
                "params": {"kind": rng.choice(KINDS), "date": "~"},
            }
            for _ in range(rng.choice((1, 2)))
        ]
        out.append({"name": f"rand-{i}", "event_deps": deps, "task_type": "BENCH_NOOP"})
    return out


def dep_events(configs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(event name, kind) of every dependency of `configs`."""
    return [(d["name"], d["params"]["kind"]) for c in configs for d in c["event_deps"]]


def event_mix(kind: str, count: int, rng: random.Random) -> list[tuple[str, dict[str, str]]]:
    """targeted: every event fills a dependency of one of the 10 base configs (so both stores
    fire the same tasks). near-miss: names the random configs depend on, but a `kind` no config
    asks for (configs that cannot match). spread: 90% random (name of 1,000, kind of 10: they
    fill deps of the random configs, which only the 10,000-config store holds) + 10% targeted."""
    base = dep_events(base_configs())
    out = []
    for _ in range(count):
        if kind == "near-miss":
            name, k = ev_name(rng.randrange(N_NAMES)), f"x{rng.randrange(10)}"
        elif kind == "targeted" or rng.random() < 0.1:
            name, k = rng.choice(base)
        else:
            name, k = ev_name(rng.randrange(N_NAMES)), rng.choice(KINDS)
        out.append((name, {"kind": k, "date": rng.choice(DATES)}))
    return out


def insert_configs(store: Store, bodies: list[dict[str, Any]]) -> float:
    """Store configs directly (one transaction); return the seconds it took."""
    t0 = time.perf_counter()
    now = utcnow()
    with store.write() as conn:
        for body in bodies:
            config = ActionConfig(
                id="",
                seq=0,
                author=AUTHOR,
                version=1,
                spec=parse_config(body),
                created=now,
                updated=now,
            )
            config_store.insert_config(conn, config, actor=AUTHOR)
    return time.perf_counter() - t0


def insert_new(store: Store, events: list[tuple[str, dict[str, str]]]) -> None:
    now = utcnow()
    with store.write() as conn:
        event_store.insert_events(
            conn,
            [
                event_store.NewEvent(
                    name=n, params=p, created=now, author=AUTHOR, source_type="bench"
                )
                for n, p in events
            ],
        )


def count_tasks(store: Store) -> int:
    from sqlalchemy import func, select

    from stepd.store.schema import tasks

    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(tasks)).scalar_one())


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema (search_path in the URL), dropped afterwards."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_BASE.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def pg_available() -> bool:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(
            PG_BASE.replace("postgresql://", "postgresql+psycopg://"),
            connect_args={"connect_timeout": 3},
        )
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


# --------------------------------------------------------------------------- a. reactor cost


@dataclass
class CostConfig:
    reps: int  # interleaved repetitions (the median is reported)
    batches: int  # batches of 200 events per store, mix and repetition
    warm_batches: int  # unmeasured batches first (catalog load, caches)


@dataclass
class Cell:
    us_per_event: list[float]  # one figure per repetition
    tasks_per_event: list[float]


def _measure_batches(
    store: Store, reactor: Reactor, events: list[tuple[str, dict[str, str]]]
) -> tuple[float, int]:
    """Insert and evaluate `events` in batches of 200; (seconds inside run_once, tasks made)."""
    spent = 0.0
    before = count_tasks(store)
    for start in range(0, len(events), BATCH):
        insert_new(store, events[start : start + BATCH])
        t0 = time.perf_counter()
        n = reactor.run_once()
        spent += time.perf_counter() - t0
        assert n == len(events[start : start + BATCH]), n  # the batch, nothing else
    return spent, count_tasks(store) - before


def bench_cost(backend: str, cfg: CostConfig, profile: bool) -> dict[str, Any]:
    """10 vs 10,000 configs, same events, interleaved; on `backend` ('sqlite' or 'postgresql')."""
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            work = fresh_dir("reactor-cost")
            urls = {n: f"sqlite:///{work / f'c{n}.db'}" for n in (10, 10_000)}
        else:
            urls = {n: stack.enter_context(pg_schema()) for n in (10, 10_000)}
        stores = {n: open_store(url) for n, url in urls.items()}
        for s in stores.values():
            stack.callback(s.close)
        load_s = {
            10: insert_configs(stores[10], base_configs()),
            10_000: insert_configs(stores[10_000], base_configs() + random_configs(9_990)),
        }
        log(f"cost/{backend}: stored 10 and 10,000 configs ({load_s[10_000]:.1f} s)")
        reactors = {n: Reactor(s) for n, s in stores.items()}
        catalog_ms = {}
        for n, s in stores.items():
            with s.read() as conn:
                t0 = time.perf_counter()
                reactors[n].catalog.snapshot(conn)
                catalog_ms[n] = (time.perf_counter() - t0) * 1000
        rng = random.Random(5)
        # warm-up: the same events into both stores (statement caches, page cache)
        warm = event_mix("spread", cfg.warm_batches * BATCH, rng)
        for n in stores:
            _measure_batches(stores[n], reactors[n], warm)
        cells: dict[tuple[str, int], Cell] = {
            (mix, n): Cell([], []) for mix in MIXES for n in stores
        }
        meter = CpuMeter()
        for rep in range(cfg.reps):
            for mix in MIXES:
                events = event_mix(mix, cfg.batches * BATCH, rng)
                order = list(stores) if rep % 2 == 0 else list(stores)[::-1]
                for n in order:
                    spent, made = _measure_batches(stores[n], reactors[n], events)
                    cells[(mix, n)].us_per_event.append(spent / len(events) * 1e6)
                    cells[(mix, n)].tasks_per_event.append(made / len(events))
            log(
                f"cost/{backend}: rep {rep + 1}/{cfg.reps}: "
                + ", ".join(
                    f"{mix}/{n}: {c.us_per_event[-1]:,.0f} us" for (mix, n), c in cells.items()
                )
            )
        load = meter.stop()
        prof_text = ""
        if profile:
            prof = cProfile.Profile()
            events = event_mix("spread", cfg.batches * BATCH, rng)
            spent = 0.0
            for start in range(0, len(events), BATCH):
                insert_new(stores[10_000], events[start : start + BATCH])
                prof.enable()
                reactors[10_000].run_once()
                prof.disable()
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(35)
            prof_text = buf.getvalue()
    rows = []
    ratios = {}
    for mix in MIXES:
        small, big = cells[(mix, 10)], cells[(mix, 10_000)]
        ratio = median(big.us_per_event) / median(small.us_per_event)
        paired = median([b / s for b, s in zip(big.us_per_event, small.us_per_event, strict=True)])
        ratios[mix] = ratio
        for n, c in ((10, small), (10_000, big)):
            rows.append(
                [
                    f"{backend}: {mix}, {n:,} configs",
                    fmt(median(c.us_per_event)),
                    f"{fmt(min(c.us_per_event))}-{fmt(max(c.us_per_event))}",
                    fmt(median(c.tasks_per_event), 2),
                    f"{ratio:.2f}x (paired {paired:.2f}x)" if n == 10_000 else "",
                ]
            )
    text = table(
        [
            "reactor run_once, batches of 200",
            "us/event (median)",
            "range",
            "tasks/event",
            "10,000 / 10",
        ],
        rows,
    )
    text += (
        f"\n\ncatalog load (first snapshot): {catalog_ms[10]:.1f} ms with 10 configs, "
        f"{catalog_ms[10_000]:,.0f} ms with 10,000 (once per config change)\n"
        "target: 10,000 configs within 2x of 10: "
        + ", ".join(f"{m} {r:.2f}x ({'met' if r <= 2 else 'MISSED'})" for m, r in ratios.items())
        + "\n"
        f"({cfg.reps} repetitions x {cfg.batches * BATCH:,} events per cell, interleaved; "
        f"other CPU on the machine meanwhile: {load['other_pct']:.0f}% of a core)"
    )
    if prof_text:
        text += "\n\ncProfile of run_once, 10,000 configs, spread mix:\n" + prof_text
    return {
        "name": f"cost-{backend}",
        "text": text,
        "cells": {f"{m}/{n}": vars(c) for (m, n), c in cells.items()},
        "ratios": ratios,
        "catalog_ms": catalog_ms,
        "other_pct": load["other_pct"],
    }


# --------------------------------------------------------------------------- servers


def prepared_db(work: Path, name: str, configs: list[dict[str, Any]]) -> tuple[Path, str]:
    """A migrated SQLite store holding `configs` and a write token."""
    db = work / f"{name}.db"
    token = make_token(db)
    if configs:
        store = open_store(f"sqlite:///{db}")
        try:
            insert_configs(store, configs)
        finally:
            store.close()
    return db, token


def new_events(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM events WHERE state = 'NEW'").fetchone()[0])
    finally:
        conn.close()


# --------------------------------------------------------------------------- b. ingest


@dataclass
class IngestConfig:
    rounds: int
    seconds: float
    warmup: float
    connections: int = 32


def ingest_bodies(configs: list[dict[str, Any]], count: int = 2000) -> list[bytes]:
    """Single-event bodies, each filling a dependency of one of `configs` (random date)."""
    rng = random.Random(3)
    deps = dep_events(configs)
    out = []
    for _ in range(count):
        name, kind = rng.choice(deps)
        body = {"events": [{"name": name, "params": {"kind": kind, "date": rng.choice(DATES)}}]}
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out


def load_round(
    server: Server, bodies: list[bytes], token: str, connections: int, seconds: float
) -> LoadResult:
    """common.run_load, tried twice: a load generator that fails is logged, not fatal."""
    for attempt in (1, 2):
        try:
            return run_load(
                server.url,
                "/api/v1/events",
                bodies,
                token=token,
                connections=connections,
                seconds=seconds,
            )
        except subprocess.CalledProcessError as exc:
            err = (exc.stderr or b"").decode(errors="replace")[-300:]
            out = (exc.stdout or b"").decode(errors="replace")[-300:]
            log(f"load generator failed (try {attempt}/2, exit {exc.returncode}): {err} {out}")
            if server.process is not None and server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited: see {server.log_path}") from exc
    raise RuntimeError("the load generator failed twice")


def bench_ingest(cfg: IngestConfig) -> dict[str, Any]:
    work = fresh_dir("reactor-ingest")
    configs = random_configs(1000, seed=17)
    bodies = ingest_bodies(configs)
    db_none, token_none = prepared_db(work, "none", [])
    db_cfg, token_cfg = prepared_db(work, "configs", configs)
    sides: dict[str, list[dict[str, Any]]] = {"none": [], "1000": []}
    backlog: dict[str, list[int]] = {"none": [], "1000": []}
    argv_extra = ("--workers", "0")
    with (
        Server("stepd-none", stepd_serve_argv(db_none, *argv_extra), work / "none.log") as s_none,
        Server("stepd-1000", stepd_serve_argv(db_cfg, *argv_extra), work / "configs.log") as s_cfg,
    ):
        servers = {"none": (s_none, token_none, db_none), "1000": (s_cfg, token_cfg, db_cfg)}
        log(f"ingest: warm-up {cfg.warmup:g} s per server")
        for s, token, _ in servers.values():
            load_round(s, bodies, token, cfg.connections, cfg.warmup)
        for i in range(cfg.rounds):
            order = ["none", "1000"] if i % 2 == 0 else ["1000", "none"]
            for side in order:
                s, token, db = servers[side]
                meter = CpuMeter(s.pid)
                res = load_round(s, bodies, token, cfg.connections, cfg.seconds)
                cpu = meter.stop()
                sides[side].append({**vars(res), "ids": None, **cpu, "rps": res.rps})
                backlog[side].append(new_events(db))
                time.sleep(0.5)  # let the reactor drain before the other side's round
            log(
                f"ingest: round {i + 1}/{cfg.rounds}: none {sides['none'][-1]['rps']:,.0f}/s, "
                f"1,000 configs {sides['1000'][-1]['rps']:,.0f}/s"
            )
        # how long the reactor needs to catch up after the last round
        drain = {}
        for side, (_s, _t, db) in servers.items():
            t0 = time.monotonic()
            while new_events(db) and time.monotonic() - t0 < 60:
                time.sleep(0.05)
            drain[side] = time.monotonic() - t0
        conn = sqlite3.connect(f"file:{db_cfg}?mode=ro", uri=True)
        made = int(conn.execute("SELECT count(*) FROM tasks").fetchone()[0])
        stored = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        conn.close()
    r_none = median([r["rps"] for r in sides["none"]])
    r_cfg = median([r["rps"] for r in sides["1000"]])
    paired = median(
        [c["rps"] / n["rps"] for c, n in zip(sides["1000"], sides["none"], strict=True)]
    )
    rows = []
    for side, label in (("none", "stepd, no configs"), ("1000", "stepd, 1,000 configs")):
        rs = sides[side]
        rows.append(
            [
                label,
                fmt(median([r["rps"] for r in rs])),
                f"{fmt(min(r['rps'] for r in rs))}-{fmt(max(r['rps'] for r in rs))}",
                fmt(median([r["p50_ms"] for r in rs]), 1),
                fmt(median([r["p99_ms"] for r in rs]), 1),
                str(sum(r["errors"] for r in rs)),
                fmt(median([r["server_pct"] for r in rs])),
                fmt(median([r["other_pct"] for r in rs])),
                fmt(max(backlog[side])),
            ]
        )
    text = table(
        [
            f"single-event POSTs, {cfg.connections} conns, --workers 0",
            "req/s (median)",
            "range",
            "p50 ms",
            "p99 ms",
            "errors",
            "server CPU %",
            "other CPU %",
            "max NEW backlog",
        ],
        rows,
    )
    ratio = r_cfg / r_none
    text += (
        f"\n\nratio 1,000 configs / none: {ratio:.1%} (median of per-round ratios {paired:.1%}); "
        f"target >= 80%: {'met' if ratio >= 0.8 else 'MISSED'}\n"
        f"with configs: {stored:,} events stored, {made:,} tasks made; the reactor caught up "
        f"{drain['1000']:.1f} s after the last round (no configs: {drain['none']:.1f} s)\n"
        f"({cfg.rounds} rounds x {cfg.seconds:g} s per side, interleaved; 'max NEW backlog' = "
        f"events not yet evaluated when a round ended)"
    )
    return {
        "name": "ingest",
        "text": text,
        "ratio": ratio,
        "paired_ratio": paired,
        "rps": {"none": r_none, "1000": r_cfg},
        "rounds": sides,
        "backlog": backlog,
        "drain_s": drain,
    }


# --------------------------------------------------------------------------- c. latency


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def send_one_at_a_time(
    client: httpx.Client, name: str, count: int, pause_s: float, rng: random.Random, tag: str
) -> tuple[list[str], list[float]]:
    """POST `count` single events one at a time; (their ids, the POST round trips in ms)."""
    ids, rtts = [], []
    for i in range(count):
        body = {"events": [{"name": name, "params": {"kind": "ping", "date": f"{tag}-{i}"}}]}
        t0 = time.perf_counter()
        r = client.post("/api/v1/events", json=body)
        rtts.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        ids.append(r.json()["ids"][0])
        time.sleep(pause_s * rng.uniform(0.7, 1.3))  # jitter: no lock-step with any poll
    return ids, rtts


def tasks_for_events(
    client: httpx.Client, ids: list[str], until: str, timeout_s: float = 60
) -> dict[str, dict[str, Any]]:
    """event id -> its task (as GET /api/v1/tasks shows it), once every one has `until` set."""
    wanted = set(ids)
    deadline = time.monotonic() + timeout_s
    while True:
        found: dict[str, dict[str, Any]] = {}
        skip = 0
        while True:
            page = client.get("/api/v1/tasks", params={"limit": 1000, "skip": skip}).json()
            for t in page["result"]:
                if t["event_id"] in wanted:
                    found[t["event_id"]] = t
            if len(page["result"]) < 1000:
                break
            skip += 1000
        if len(found) == len(wanted) and all(t[until] for t in found.values()):
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"only {len(found)}/{len(wanted)} tasks with {until} after {timeout_s} s"
            )
        time.sleep(0.2)


def event_times(client: httpx.Client, ids: list[str]) -> dict[str, datetime]:
    return {
        i: parse_time(client.get(f"/api/v1/events/{i}").json()["result"]["created"]) for i in ids
    }


def latency_config(name: str) -> dict[str, Any]:
    return {
        "name": "bench-latency",
        "event_deps": [{"name": name, "params": {"kind": "ping", "date": "~"}}],
        "task_type": "BENCH_NOOP",
    }


@dataclass
class LatencyConfig:
    reps: int
    events: int
    pause_s: float


def inprocess_latency(work: Path, name: str, count: int) -> list[float]:
    """The same path without HTTP, threads or wake-ups: insert one event (one write
    transaction), then Reactor.run_once; ms from the event's insert to the task's creation."""
    db, _token = prepared_db(work, "inprocess", [latency_config(name)])
    store = open_store(f"sqlite:///{db}")
    reactor = Reactor(store)
    out = []
    try:
        for i in range(count + 10):
            t0 = time.perf_counter()
            insert_new(store, [(name, {"kind": "ping", "date": f"p{i}"})])
            reactor.run_once()
            if i >= 10:  # the first ones warm up
                out.append((time.perf_counter() - t0) * 1000)
    finally:
        store.close()
    return out


def bench_latency(cfg: LatencyConfig) -> dict[str, Any]:
    work = fresh_dir("reactor-latency")
    name = "benchPing"
    db, token = prepared_db(work, "latency", [latency_config(name)])
    rng = random.Random(9)
    reps: list[dict[str, Any]] = []
    floor = inprocess_latency(work, name, cfg.events)
    with Server("stepd", stepd_serve_argv(db, "--workers", "0"), work / "server.log") as s:
        headers = {"Authorization": f"OAuth {token}"}
        with httpx.Client(base_url=s.url, headers=headers, timeout=30) as client:
            send_one_at_a_time(client, name, 10, cfg.pause_s, rng, "warm")  # warm-up
            for rep in range(cfg.reps):
                meter = CpuMeter(s.pid)
                ids, rtts = send_one_at_a_time(
                    client, name, cfg.events, cfg.pause_s, rng, f"r{rep}"
                )
                cpu = meter.stop()
                tasks = tasks_for_events(client, ids, "created")
                created = event_times(client, ids)
                lat = [
                    (parse_time(tasks[i]["created"]) - created[i]).total_seconds() * 1000
                    for i in ids
                ]
                reps.append({"lat_ms": lat, "rtt_ms": rtts, **cpu})
                log(
                    f"latency: rep {rep + 1}/{cfg.reps}: median {median(lat):.2f} ms, "
                    f"p95 {pct(lat, 95):.2f} ms (other CPU {cpu['other_pct']:.0f}%)"
                )
    rows = []
    for i, r in enumerate(reps):
        rows.append(
            [
                f"repetition {i + 1}",
                fmt(median(r["lat_ms"]), 2),
                fmt(pct(r["lat_ms"], 95), 2),
                fmt(max(r["lat_ms"]), 2),
                fmt(median(r["rtt_ms"]), 2),
                fmt(r["other_pct"]),
            ]
        )
    med = median([median(r["lat_ms"]) for r in reps])
    p95 = median([pct(r["lat_ms"], 95) for r in reps])
    rows.append(
        [
            "median of repetitions",
            fmt(med, 2),
            fmt(p95, 2),
            "",
            fmt(median([median(r["rtt_ms"]) for r in reps]), 2),
            "",
        ]
    )
    rows.append(
        [
            "in process, no HTTP: insert_events txn + Reactor.run_once",
            fmt(median(floor), 2),
            fmt(pct(floor, 95), 2),
            fmt(max(floor), 2),
            "",
            "",
        ]
    )
    text = table(
        [
            f"event created -> task created (ENQUEUED), {cfg.events} events",
            "median ms",
            "p95 ms",
            "max ms",
            "POST round trip median ms",
            "other CPU %",
        ],
        rows,
    )
    text += (
        f"\n\ntarget median < 10 ms: {'met' if med < 10 else 'MISSED'} ({med:.2f} ms)\n"
        "(idle server, --workers 0, one config; events one at a time, "
        f"~{cfg.pause_s * 1000:.0f} ms apart; server timestamps read back through the API)"
    )
    return {
        "name": "latency",
        "text": text,
        "median_ms": med,
        "p95_ms": p95,
        "reps": reps,
        "inprocess_ms": floor,
    }


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description="reactor benchmarks (issue 3; no pass/fail)")
    parser.add_argument("--quick", action="store_true", help="smaller counts, SQLite only (~70 s)")
    parser.add_argument("--only", choices=("cost", "ingest", "latency"), action="append")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL cost run")
    parser.add_argument(
        "--pg", action="store_true", help="with --quick: do the PostgreSQL cost run too"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile run_once (10,000 configs)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores (/tmp)")
    args = parser.parse_args()
    global KEEP
    KEEP = args.keep
    only = set(args.only or ("cost", "ingest", "latency"))
    q = args.quick
    started = time.time()
    fingerprint = src_fingerprint()
    whole = CpuMeter()
    results: list[dict[str, Any]] = []
    if "cost" in only:
        cost_cfg = CostConfig(reps=3, batches=2, warm_batches=1) if q else CostConfig(5, 5, 2)
        show(results, bench_cost("sqlite", cost_cfg, args.profile))
        want_pg = not args.no_pg and (args.pg or not q)
        if want_pg and pg_available():
            pg_cfg = CostConfig(reps=3, batches=1, warm_batches=1) if q else CostConfig(5, 2, 1)
            show(results, bench_cost("postgresql", pg_cfg, args.profile))
        elif want_pg:
            log("PostgreSQL does not answer at 127.0.0.1:5432: its cost run is skipped")
    if "ingest" in only:
        ing = IngestConfig(rounds=3, seconds=2, warmup=1) if q else IngestConfig(5, 6, 2)
        show(results, bench_ingest(ing))
    if "latency" in only:
        lat = LatencyConfig(reps=1, events=100, pause_s=0.03) if q else LatencyConfig(3, 200, 0.05)
        show(results, bench_latency(lat))
    load = whole.stop()
    summary = run_summary(fingerprint, started, load["other_pct"])
    print(summary)
    save_figures("reactor", q, {"results": results, "summary": summary, "load": load})
    return 0


if __name__ == "__main__":
    sys.exit(main())
