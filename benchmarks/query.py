"""Query benchmark: `GET /api/v1/events?name=cryptaTaskEvent&params__taskType=X&sort=-_id&limit=2`
on a store of 10,000 and then 1,000,000 events, over HTTP and through the store directly.
Run through benchmarks/run.py."""

from __future__ import annotations

import random
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from common import (
    COMMON_TASK,
    ENV_WEIGHTS,
    ENVIRONMENTS,
    INSERT_EVENT_SEQ,
    INSERT_PARAM,
    OTHER_NAMES,
    RARE_TASK,
    STATUS_WEIGHTS,
    STATUSES,
    TASK_TYPES,
    TASK_WEIGHTS,
    CpuMeter,
    fmt,
    fresh_dir,
    log,
    median,
    noop_server,
    pct,
    raw_connect,
    sqlite_time,
    stepd_server,
    table,
)

NAME = "cryptaTaskEvent"
RARE_EVERY = 2000  # every 2,000th event is a cryptaTaskEvent of the rare task type


@dataclass
class QueryConfig:
    sizes: tuple[int, ...]  # store sizes, filled one after the other into the same file
    requests: int  # sequential requests per repetition
    reps: int  # repetitions (median of the per-repetition figures is reported)
    warmup: int = 200


# --------------------------------------------------------------------------- filling


def fill(db: Path, start_seq: int, end_seq: int, chunk: int = 50_000, seed: int = 11) -> float:
    """Append events start_seq..end_seq-1 (and their param index rows) with plain sqlite3.

    ~85% cryptaTaskEvent {taskType (19 types, Zipf-like), taskStatus, environment, date}
    (and RARE_TASK every 2,000th event), the rest clock/cryptaDailyEvent/externalTableReady
    with 1-2 params; ~2,700 events a day from 2023-01-01 on. Returns seconds taken.
    (synchronous=OFF and big transactions here only: this is setup, not a measurement.)
    """
    rng = random.Random(seed + start_seq)
    conn = raw_connect(db, synchronous="OFF")
    conn.execute("PRAGMA cache_size=-262144")  # 256 MiB
    t0 = time.perf_counter()
    day0 = datetime(2023, 1, 1, tzinfo=UTC)
    per_day = 2700
    # Text built by hand (all values are plain ASCII): the same as json.dumps(..., compact).
    times = [
        sqlite_time(day0 + timedelta(seconds=k * 86400 / per_day))[11:] for k in range(per_day)
    ]
    dates: dict[int, str] = {}
    common_types = TASK_TYPES[:-1]
    common_weights = TASK_WEIGHTS[:-1]
    try:
        seq = start_seq
        while seq < end_seq:
            n = min(chunk, end_seq - seq)
            kinds = rng.choices((0, 1, 2, 3), (85, 5, 5, 5), k=n)
            types = rng.choices(common_types, common_weights, k=n)
            statuses = rng.choices(STATUSES, STATUS_WEIGHTS, k=n)
            envs = rng.choices(ENVIRONMENTS, ENV_WEIGHTS, k=n)
            events: list[tuple[object, ...]] = []
            params: list[tuple[str, str, str, int]] = []
            for j in range(n):
                s = seq + j
                d = s // per_day
                date = dates.get(d)
                if date is None:
                    date = dates[d] = (day0 + timedelta(days=d)).strftime("%Y-%m-%d")
                created = f"{date} {times[s % per_day]}"
                rare = s % RARE_EVERY == 0
                kind = 0 if rare else kinds[j]
                if kind == 0:
                    name = NAME
                    task = RARE_TASK if rare else types[j]
                    text = (
                        f'{{"taskType":"{task}","taskStatus":"{statuses[j]}",'
                        f'"environment":"{envs[j]}","date":"{date}"}}'
                    )
                    params += (
                        (name, "taskType", task, s),
                        (name, "taskStatus", statuses[j], s),
                        (name, "environment", envs[j], s),
                        (name, "date", date, s),
                    )
                elif kind == 1:
                    name = OTHER_NAMES[0]
                    text = '{"period":"hourly"}'
                    params.append((name, "period", "hourly", s))
                else:
                    name = OTHER_NAMES[kind - 1]
                    text = f'{{"date":"{date}","cluster":"hahn"}}'
                    params += ((name, "date", date, s), (name, "cluster", "hahn", s))
                events.append(
                    (s, name, text, "PROCESSED", created, "robot-crypta", None, "api", None)
                )
            params.sort()  # the index's order: its b-tree is then written front to back
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT_EVENT_SEQ, events)
            conn.executemany(INSERT_PARAM, params)
            conn.execute("COMMIT")
            seq += n
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - t0


def expected_ids(db: Path, task: str) -> list[str]:
    """The two newest cryptaTaskEvents of `task`, by a plain scan (the ground truth)."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT event_seq FROM event_params WHERE name=? AND key='taskType' AND value=? "
            "ORDER BY event_seq DESC LIMIT 2",
            (NAME, task),
        ).fetchall()
        count = conn.execute(
            "SELECT count(*) FROM event_params WHERE name=? AND key='taskType' AND value=?",
            (NAME, task),
        ).fetchone()[0]
    finally:
        conn.close()
    from stepd.domain.events import format_event_id

    return [format_event_id(r[0]) for r in rows] + [f"count={count}"]


# --------------------------------------------------------------------------- measuring


def _stats(samples_per_rep: list[list[float]]) -> dict[str, float]:
    """Median and p95 (ms) of each repetition, then the median over repetitions."""
    return {
        "median_ms": median([median(s) * 1000 for s in samples_per_rep]),
        "p95_ms": median([pct(s, 95) * 1000 for s in samples_per_rep]),
    }


class HttpProbe:
    """A keep-alive httpx client sending the query for `task`, one request at a time."""

    def __init__(self, url: str, task: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=10)
        self.task = task
        self.params = {"name": NAME, "params__taskType": task, "sort": "-_id", "limit": "2"}
        self.reps: list[list[float]] = []

    def check(self, warmup: int, expect: list[str] | None) -> None:
        for _ in range(warmup):
            r = self.client.get("/api/v1/events", params=self.params)
            r.raise_for_status()
        if expect is not None:
            got = [e["_id"] for e in r.json()["result"]]
            if got != expect[:2]:
                raise RuntimeError(f"wrong answer for {self.task}: {got} != {expect}")

    def rep(self, requests: int) -> None:
        samples = []
        for _ in range(requests):
            t0 = time.perf_counter()
            r = self.client.get("/api/v1/events", params=self.params)
            samples.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise RuntimeError(f"GET answered {r.status_code}: {r.text[:200]}")
        self.reps.append(samples)

    def stats(self) -> dict[str, float]:
        return _stats(self.reps)

    def close(self) -> None:
        self.client.close()


def store_latency(db: Path, task: str, cfg: QueryConfig) -> dict[str, dict[str, float] | str]:
    """The same query without HTTP: the service path, query_events alone, and plain sqlite3."""
    from sqlalchemy import event as sa_event

    from stepd.services.events import EventService
    from stepd.store import open_store
    from stepd.store.events import EventQuery, query_events

    q = EventQuery(name=NAME, params={"taskType": task}, limit=2, newest_first=True)
    store = open_store(f"sqlite:///{db}", migrate=False)
    svc = EventService(store)
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_a: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    out: dict[str, dict[str, float] | str] = {}
    try:
        # What the server runs per request: a read transaction (pool checkout, BEGIN,
        # query, COMMIT) around query_events.
        reps = []
        for _ in range(cfg.warmup):
            svc.query(q)
        for _ in range(cfg.reps):
            samples = []
            for _ in range(cfg.requests):
                t0 = time.perf_counter()
                svc.query(q)
                samples.append(time.perf_counter() - t0)
            reps.append(samples)
        out["service"] = _stats(reps)
        # query_events alone, on one open connection and transaction.
        reps = []
        with store.read() as conn:
            sa_event.listen(conn, "before_cursor_execute", capture)
            query_events(conn, q)
            sa_event.remove(conn, "before_cursor_execute", capture)
            for _ in range(cfg.reps):
                samples = []
                for _ in range(cfg.requests):
                    t0 = time.perf_counter()
                    query_events(conn, q)
                    samples.append(time.perf_counter() - t0)
                reps.append(samples)
        out["query_events"] = _stats(reps)
    finally:
        store.close()
    # The SQL SQLAlchemy sent, run with plain sqlite3 (fetching the rows, no decoding).
    sql, params = captured[-1]
    raw = sqlite3.connect(db)
    try:
        out["plan"] = "; ".join(r[3] for r in raw.execute("EXPLAIN QUERY PLAN " + sql, params))
        reps = []
        for _ in range(cfg.reps):
            samples = []
            for _ in range(cfg.requests):
                t0 = time.perf_counter()
                raw.execute(sql, params).fetchall()
                samples.append(time.perf_counter() - t0)
            reps.append(samples)
        out["sqlite3"] = _stats(reps)
    finally:
        raw.close()
    out["sql"] = " ".join(sql.split())
    return out


def bench_query(cfg: QueryConfig) -> dict[str, Any]:
    """Stores of each size side by side, one server each, repetitions interleaved across them
    (and the no-op floor), so drifting background load hits every column alike."""
    from stepd.store import open_store

    work = fresh_dir("query")
    dbs = {size: work / f"query-{size}.db" for size in cfg.sizes}
    fill_seconds = 0.0
    for size, db in dbs.items():
        open_store(f"sqlite:///{db}").close()  # the schema, by stepd's own migrations
        log(f"query: filling a store with {size:,} events")
        fill_seconds += fill(db, 1, size + 1)
    tasks = (("common", COMMON_TASK), ("rare", RARE_TASK))
    results: dict[int, dict[str, Any]] = {size: {} for size in cfg.sizes}
    servers = [noop_server(work / "noop.log")]
    servers += [stepd_server(db, work / f"stepd-{size}.log") for size, db in dbs.items()]
    probes: list[HttpProbe] = []
    others: list[float] = []
    try:
        for server in servers:
            server.start()
        # The floor: the same httpx loop against a constant answer from the no-op FastAPI app.
        floor = HttpProbe(servers[0].url, COMMON_TASK)
        floor.check(cfg.warmup, None)
        probes.append(floor)
        by_cell: dict[tuple[int, str], HttpProbe] = {}
        for (size, db), server in zip(dbs.items(), servers[1:], strict=True):
            for label, task in tasks:
                expect = expected_ids(db, task)
                probe = HttpProbe(server.url, task)
                probe.check(cfg.warmup, expect)
                probes.append(probe)
                by_cell[size, label] = probe
                results[size][label] = {"task": task, "matching": expect[-1]}
        for i in range(cfg.reps):
            meter = CpuMeter()
            for probe in probes:
                probe.rep(cfg.requests)
            others.append(meter.stop()["other_pct"])
            log(
                f"query: HTTP repetition {i + 1}/{cfg.reps}: "
                + ", ".join(
                    f"{size:,}/{label} {median(p.reps[-1]) * 1000:.2f} ms"
                    for (size, label), p in by_cell.items()
                )
                + f", floor {median(floor.reps[-1]) * 1000:.2f} ms"
            )
    finally:
        for probe in probes:
            probe.close()
        for server in servers:
            server.stop()
    for (size, label), probe in by_cell.items():
        results[size][label]["http"] = probe.stats()
    for size, db in dbs.items():
        for label, task in tasks:
            results[size][label].update(store_latency(db, task, cfg))
            log(
                f"query: {size:,} events, {label}: query_events "
                f"{results[size][label]['query_events']['median_ms']:.3f} ms"
            )
    return _report(cfg, results, floor.stats(), fill_seconds, median(others))


def _report(
    cfg: QueryConfig,
    results: dict[int, dict[str, Any]],
    floor: dict[str, float],
    fill_seconds: float,
    other_pct: float,
) -> dict[str, Any]:
    small, big = min(results), max(results)
    paths = [
        ("http", "HTTP GET (httpx keep-alive, client included)"),
        ("service", "EventService.query (read txn + query_events)"),
        ("query_events", "query_events on an open connection"),
        ("sqlite3", "the same SQL in plain sqlite3"),
    ]
    rows = []
    for label in ("common", "rare"):
        for key, title in paths:
            a, b = results[small][label][key], results[big][label][key]
            rows.append(
                [
                    f"{label}: {title}",
                    fmt(a["median_ms"], 3),
                    fmt(a["p95_ms"], 3),
                    fmt(b["median_ms"], 3),
                    fmt(b["p95_ms"], 3),
                    f"{b['median_ms'] / a['median_ms']:.2f}x",
                ]
            )
    rows.append(
        [
            "floor: no-op FastAPI GET, same httpx loop",
            fmt(floor["median_ms"], 3),
            fmt(floor["p95_ms"], 3),
            "",
            "",
            "",
        ]
    )
    text = table(
        [
            "GET ...&sort=-_id&limit=2 (ms per request)",
            f"{small:,}: median",
            "p95",
            f"{big:,}: median",
            "p95",
            f"median {big:,}/{small:,}",
        ],
        rows,
    )
    http_big = max(results[big][lb]["http"]["median_ms"] for lb in ("common", "rare"))
    growth = max(
        results[big][lb]["http"]["median_ms"] / results[small][lb]["http"]["median_ms"]
        for lb in ("common", "rare")
    )
    common_n = results[big]["common"]["matching"]
    rare_n = results[big]["rare"]["matching"]
    text += (
        f"\n\nHTTP median at {big:,} events: {http_big:.2f} ms (worst of common/rare), "
        f"target < 2 ms: {'met' if http_big < 2 else 'MISSED'}; growth {small:,} -> {big:,}: "
        f"{growth:.2f}x (target: none)\n"
        f"matching events at {big:,}: common {COMMON_TASK} {common_n}, rare {RARE_TASK} {rare_n}\n"
        f"plan: {results[big]['common']['plan']}\n"
        f"({cfg.reps} repetitions x {cfg.requests:,} sequential requests per cell, interleaved "
        f"across cells; stores filled with plain sqlite3 in {fill_seconds:.0f} s; other work on "
        f"the machine during the HTTP repetitions: {other_pct:.0f}% of a core)"
    )
    return {
        "name": "query",
        "text": text,
        "floor": floor,
        "results": results,
        "fill_seconds": fill_seconds,
        "other_pct": other_pct,
    }
