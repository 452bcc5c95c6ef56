"""Ingest benchmarks: single-event POSTs (vs a no-op FastAPI endpoint) and 100-event batches
(vs plain sqlite3 executemany). Run through benchmarks/run.py."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import (
    INSERT_EVENT,
    INSERT_PARAM,
    CpuMeter,
    LoadResult,
    Server,
    batch_bodies,
    event_rows_from_bodies,
    fmt,
    fresh_dir,
    log,
    make_token,
    median,
    noop_server,
    raw_connect,
    run_load,
    stepd_server,
    table,
    task_params,
    verify_acked,
)

EVENTS_PATH = "/api/v1/events"


@dataclass
class IngestConfig:
    rounds: int  # measured rounds per side (the median is reported)
    seconds: float  # length of one round
    warmup: float  # one unmeasured round per side first
    tool: str  # "auto" | "wrk" | "python"
    single_connections: int = 32
    batch_connections: int = 4
    batch_size: int = 100


@dataclass
class Round:
    load: LoadResult
    cpu_pct: float  # the server's CPU use during the round, % of one core
    other_pct: float  # CPU used by other work on the machine (not server, not load generator)


def _round(
    server: Server, bodies: list[bytes], token: str | None, conns: int, seconds: float, tool: str
) -> Round:
    meter = CpuMeter(server.pid)
    load = run_load(
        server.url, EVENTS_PATH, bodies, token=token, connections=conns, seconds=seconds, tool=tool
    )
    cpu = meter.stop()
    return Round(load, cpu["server_pct"], cpu["other_pct"])


def single_bodies(count: int = 64, seed: int = 3) -> list[bytes]:
    rng = random.Random(seed)
    day = datetime(2024, 3, 1, tzinfo=UTC)
    return [
        json.dumps(
            {"events": [{"name": "cryptaTaskEvent", "params": task_params(rng, day)}]},
            separators=(",", ":"),
        ).encode()
        for _ in range(count)
    ]


def bench_single(cfg: IngestConfig) -> dict[str, Any]:
    """32 connections of single-event POSTs: stepd vs the no-op endpoint, rounds interleaved."""
    work = fresh_dir("single")
    db = work / "single.db"
    token = make_token(db)
    bodies = single_bodies()
    noop_rounds: list[Round] = []
    stepd_rounds: list[Round] = []
    acked: list[str] = []
    conns = cfg.single_connections
    with noop_server(work / "noop.log") as noop, stepd_server(db, work / "stepd.log") as stepd:
        log(f"single: warm-up {cfg.warmup:.0f} s per server")
        _round(noop, bodies, token, conns, cfg.warmup, cfg.tool)
        acked += _round(stepd, bodies, token, conns, cfg.warmup, cfg.tool).load.ids
        for i in range(cfg.rounds):
            noop_rounds.append(_round(noop, bodies, token, conns, cfg.seconds, cfg.tool))
            r = _round(stepd, bodies, token, conns, cfg.seconds, cfg.tool)
            stepd_rounds.append(r)
            acked += r.load.ids
            log(
                f"single: round {i + 1}/{cfg.rounds}: noop {noop_rounds[-1].load.rps:,.0f} req/s, "
                f"stepd {r.load.rps:,.0f} req/s"
            )
        # A crash, not a shutdown: every acknowledged event must already be in the file.
        stepd.kill()
    check = verify_acked(db, acked)
    service = {"service": service_round(work / "service.db", bodies, cfg.seconds / 2)}
    if has_reactor():
        service["service+reactor"] = service_round(
            work / "service-reactor.db", bodies, cfg.seconds / 2, reactor=True
        )
    return _single_report(cfg, noop_rounds, stepd_rounds, check, service)


def _single_report(
    cfg: IngestConfig,
    noop: list[Round],
    stepd: list[Round],
    check: dict[str, int],
    service: dict[str, float],
) -> dict[str, Any]:
    n_rps = median([r.load.rps for r in noop])
    s_rps = median([r.load.rps for r in stepd])
    paired = median([s.load.rps / n.load.rps for s, n in zip(stepd, noop, strict=True)])
    ratio = s_rps / n_rps
    rows = []
    for name, rounds in (("no-op FastAPI endpoint", noop), ("stepd POST /api/v1/events", stepd)):
        rows.append(
            [
                name,
                fmt(median([r.load.rps for r in rounds])),
                f"{fmt(min(r.load.rps for r in rounds))}-{fmt(max(r.load.rps for r in rounds))}",
                fmt(median([r.load.p50_ms for r in rounds]), 1),
                fmt(median([r.load.p99_ms for r in rounds]), 1),
                str(sum(r.load.errors for r in rounds)),
                fmt(median([r.cpu_pct for r in rounds])),
                fmt(median([r.other_pct for r in rounds])),
            ]
        )
    rows.append(
        [
            "in-process EventService.submit, 1 thread (no HTTP)",
            fmt(service["service"]),
            "",
            "",
            "",
            "",
            "",
            "",
        ]
    )
    if "service+reactor" in service:
        rows.append(
            [
                "in-process submit + Reactor.run_once (no HTTP)",
                fmt(service["service+reactor"]),
                "",
                "",
                "",
                "",
                "",
                "",
            ]
        )
    text = table(
        [
            f"single-event POSTs, {cfg.single_connections} connections",
            "req/s (median)",
            "range",
            "p50 ms",
            "p99 ms",
            "errors",
            "server CPU %",
            "other CPU %",
        ],
        rows,
    )
    tool = stepd[0].load.tool if stepd else "?"
    text += (
        f"\n\nratio stepd/no-op: {ratio:.1%} (median of per-round ratios {paired:.1%}); "
        f"target >= 50%: {'met' if ratio >= 0.5 else 'MISSED'}\n"
        f"durability: server SIGKILLed after the last round; {check['acked']:,} acknowledged ids, "
        f"{check['missing']} missing from the SQLite file ({check['stored']:,} rows stored)\n"
        f"({cfg.rounds} rounds x {cfg.seconds:g} s per side, interleaved, load generator: {tool})"
    )
    return {
        "name": "single",
        "text": text,
        "noop_rps": n_rps,
        "stepd_rps": s_rps,
        "service_events_per_s": service,
        "ratio": ratio,
        "paired_ratio": paired,
        "durability": check,
        "rounds": [
            {
                "noop": vars(n.load)
                | {"ids": None, "cpu_pct": n.cpu_pct, "other_pct": n.other_pct},
                "stepd": vars(s.load)
                | {"ids": None, "cpu_pct": s.cpu_pct, "other_pct": s.other_pct},
            }
            for n, s in zip(noop, stepd, strict=True)
        ],
    }


# --------------------------------------------------------------------------- batches


def raw_insert_round(db: Path, batches: list[Any], seconds: float, author: str) -> float:
    """Plain sqlite3: one transaction per 100-event batch, executemany for events and params.

    The same rows stepd writes: events (8 columns), then the param index rows, whose
    event_seq comes from last_insert_rowid() (one writer, so a batch's seqs are contiguous).
    Rows are prepared before the clock starts: this is the store's ceiling. Returns events/s.
    """
    conn = raw_connect(db)
    try:
        done = 0
        start = time.perf_counter()
        stop_at = start + seconds
        i = 0
        while time.perf_counter() < stop_at:
            rows, params_rows = batches[i % len(batches)]
            i += 1
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT_EVENT, rows)
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            first = last - len(rows) + 1
            conn.executemany(
                INSERT_PARAM,
                [(n, k, v, first + j) for j, prs in enumerate(params_rows) for (n, k, v) in prs],
            )
            conn.execute("COMMIT")
            done += len(rows)
        return done / (time.perf_counter() - start)
    finally:
        conn.close()


def service_round(db: Path, bodies: list[bytes], seconds: float, *, reactor: bool = False) -> float:
    """stepd's EventService.submit in this process, sequentially, no HTTP: events/s.

    With `reactor`, each submit is followed by the reactor's evaluation of the new events
    (Reactor.run_once until none is NEW), which `stepd serve` does in a background thread.
    """
    from stepd.services.events import EventBatch, EventService
    from stepd.store import open_store

    store = open_store(f"sqlite:///{db}")  # creates and migrates the file if new
    svc = EventService(store)
    drain = _reactor(store) if reactor else None
    parsed = [json.loads(b) for b in bodies]
    try:
        done = 0
        start = time.perf_counter()
        stop_at = start + seconds
        i = 0
        while time.perf_counter() < stop_at:
            body = parsed[i % len(parsed)]
            i += 1
            svc.submit(
                EventBatch(
                    events=body["events"],
                    source_type=body.get("source_type"),
                    source=body.get("source"),
                ),
                author="robot-bench",
            )
            if drain is not None:
                drain()
            done += len(body["events"])
        return done / (time.perf_counter() - start)
    finally:
        store.close()


def _reactor(store: Any) -> Any:
    """A function evaluating every NEW event, or None when this stepd has no reactor."""
    try:
        from stepd.reactor.reactor import Reactor
    except ImportError:
        return None
    r = Reactor(store)

    def drain() -> None:
        while r.run_once() >= r.batch_size:
            pass

    return drain


def has_reactor() -> bool:
    try:
        import stepd.reactor  # noqa: F401
    except ImportError:
        return False
    return True


def bench_batch(cfg: IngestConfig) -> dict[str, Any]:
    """100-event POSTs from a few connections vs plain sqlite3 executemany, rounds interleaved."""
    work = fresh_dir("batch")
    db = work / "batch.db"
    raw_db = work / "raw.db"
    svc_db = work / "service.db"
    svc_r_db = work / "service-reactor.db"
    token = make_token(db)
    make_token(raw_db)  # the same schema (open_store migrates) and the same kind of token row
    make_token(svc_db)
    bodies = batch_bodies(64, cfg.batch_size)
    prepared = event_rows_from_bodies(bodies, "robot-bench")
    stepd_rounds: list[Round] = []
    raw_eps: list[float] = []
    svc_eps: list[float] = []
    svc_r_eps: list[float] = []
    others: list[float] = []  # other work on the machine during the in-process rounds
    acked: list[str] = []
    conns = cfg.batch_connections
    with stepd_server(db, work / "stepd.log") as stepd:
        log(f"batch: warm-up {cfg.warmup:.0f} s")
        acked += _round(stepd, bodies, token, conns, cfg.warmup, cfg.tool).load.ids
        raw_insert_round(raw_db, prepared, min(cfg.warmup, 1.0), "robot-bench")
        for i in range(cfg.rounds):
            r = _round(stepd, bodies, token, conns, cfg.seconds, cfg.tool)
            stepd_rounds.append(r)
            acked += r.load.ids
            meter = CpuMeter()
            raw_eps.append(raw_insert_round(raw_db, prepared, cfg.seconds, "robot-bench"))
            svc_eps.append(service_round(svc_db, bodies, cfg.seconds / 2))
            if has_reactor():
                svc_r_eps.append(service_round(svc_r_db, bodies, cfg.seconds / 2, reactor=True))
            others.append(meter.stop()["other_pct"])
            log(
                f"batch: round {i + 1}/{cfg.rounds}: stepd {r.load.rps * cfg.batch_size:,.0f} "
                f"events/s, sqlite3 {raw_eps[-1]:,.0f} events/s, in-process service "
                f"{svc_eps[-1]:,.0f} events/s"
                + (f", with reactor {svc_r_eps[-1]:,.0f} events/s" if svc_r_eps else "")
            )
        stepd.kill()
    check = verify_acked(db, acked)
    s_eps = median([r.load.rps * cfg.batch_size for r in stepd_rounds])
    raw = median(raw_eps)
    svc = median(svc_eps)
    ratio = s_eps / raw
    paired = median(
        [r.load.rps * cfg.batch_size / x for r, x in zip(stepd_rounds, raw_eps, strict=True)]
    )
    rows = [
        [
            "plain sqlite3 executemany (1 txn / 100 events)",
            fmt(raw),
            f"{fmt(min(raw_eps))}-{fmt(max(raw_eps))}",
            "-",
            "-",
            "100%",
        ],
        [
            "in-process EventService.submit, 1 thread (no HTTP)",
            fmt(svc),
            f"{fmt(min(svc_eps))}-{fmt(max(svc_eps))}",
            "-",
            "-",
            f"{svc / raw:.0%}",
        ],
    ]
    if svc_r_eps:
        svc_r = median(svc_r_eps)
        rows.append(
            [
                "in-process submit + Reactor.run_once (no HTTP)",
                fmt(svc_r),
                f"{fmt(min(svc_r_eps))}-{fmt(max(svc_r_eps))}",
                "-",
                "-",
                f"{svc_r / raw:.0%}",
            ]
        )
    rows += [
        [
            f"stepd POST /api/v1/events, {conns} connections",
            fmt(s_eps),
            f"{fmt(min(r.load.rps for r in stepd_rounds) * cfg.batch_size)}-"
            f"{fmt(max(r.load.rps for r in stepd_rounds) * cfg.batch_size)}",
            fmt(median([r.load.p50_ms for r in stepd_rounds]), 1),
            fmt(median([r.load.p99_ms for r in stepd_rounds]), 1),
            f"{ratio:.0%}",
        ],
    ]
    text = table(
        [
            f"{cfg.batch_size}-event batches (4 params each)",
            "events/s (median)",
            "range",
            "p50 ms/POST",
            "p99 ms/POST",
            "vs sqlite3",
        ],
        rows,
    )
    tool = stepd_rounds[0].load.tool if stepd_rounds else "?"
    text += (
        f"\n\nstepd: {s_eps:,.0f} events/s, target >= 20,000: "
        f"{'met' if s_eps >= 20_000 else 'MISSED'}; ratio stepd/sqlite3: {ratio:.1%} "
        f"(median of per-round ratios {paired:.1%}), target >= 60%: "
        f"{'met' if ratio >= 0.6 else 'MISSED'}\n"
        f"durability: server SIGKILLed after the last round; {check['acked']:,} acknowledged ids, "
        f"{check['missing']} missing from the SQLite file ({check['stored']:,} rows stored)\n"
        f"(rounds: {cfg.rounds} x {cfg.seconds:g} s, interleaved; stepd server CPU "
        f"{fmt(median([r.cpu_pct for r in stepd_rounds]))}% of one core; other work on the "
        f"machine: {fmt(median([r.other_pct for r in stepd_rounds]))}% of a core during the "
        f"HTTP rounds, {fmt(median(others))}% during the in-process ones; "
        f"load generator: {tool})"
    )
    return {
        "name": "batch",
        "text": text,
        "stepd_events_per_s": s_eps,
        "sqlite3_events_per_s": raw,
        "service_events_per_s": svc,
        "service_reactor_events_per_s": median(svc_r_eps) if svc_r_eps else None,
        "ratio": ratio,
        "paired_ratio": paired,
        "durability": check,
        "rounds": [
            {
                "stepd": vars(r.load)
                | {"ids": None, "cpu_pct": r.cpu_pct, "other_pct": r.other_pct},
                "sqlite3": x,
                "service": s,
                "other_pct": o,
            }
            for r, x, s, o in zip(stepd_rounds, raw_eps, svc_eps, others, strict=True)
        ],
        "service_reactor_rounds": svc_r_eps,
    }
