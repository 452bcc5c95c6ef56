"""`GET /metrics`: the store's backlog and queue, in Prometheus' text format (0.0.4).

Written by hand (the format is a few lines of text per metric), so stepd needs no
client library. The figures come from one read transaction (store/metrics.py); the
process figures are this server process's own, from /proc (Linux; absent elsewhere).
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool

from stepd import __version__
from stepd.api.context import ctx, reader
from stepd.api.exposition import CONTENT_TYPE, Exposition
from stepd.domain.tasks import TaskStatus
from stepd.errors import StoreUnavailable
from stepd.store import metrics as store_metrics
from stepd.store.engine import Store
from stepd.store.tokens import Principal
from stepd.timeutil import utcnow

router = APIRouter(tags=["operations"])


def _age_seconds(since: datetime | None, now: datetime) -> float:
    # A clock a little behind another replica's would make a fresh item's age negative.
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())


def store_families(out: Exposition, m: store_metrics.StoreMetrics, now: datetime) -> None:
    """The families read from the store."""
    out.one(
        "stepd_events_stored_total",
        "counter",
        "Events ever stored: the highest event sequence number (ids are never reused).",
        m.events_stored,
    )
    out.one(
        "stepd_events_pending",
        "gauge",
        "Events in state NEW: the reactor's backlog, not yet evaluated against configs.",
        m.events_pending,
    )
    out.one(
        "stepd_reactor_lag_seconds",
        "gauge",
        "Age of the oldest NEW event (0 when there is none): how far the reactor is behind.",
        _age_seconds(m.oldest_pending_event, now),
    )
    out.one(
        "stepd_events_rejected",
        "gauge",
        "Events in state REJECTED.",
        m.events_rejected,
    )
    out.family(
        "stepd_tasks",
        "gauge",
        "Active tasks by status: ENQUEUED (waiting for a worker), WAIT_MUTEX (waiting for "
        "semaphore capacity), EXECUTING.",
        [({"status": s.value}, n) for s, n in m.active_tasks.items()],
    )
    out.one(
        "stepd_tasks_oldest_enqueued_seconds",
        "gauge",
        "How long the oldest ENQUEUED or WAIT_MUTEX task has waited, from its creation or "
        "its retry's due time (0 when none waits).",
        _age_seconds(m.oldest_waiting_task, now),
    )
    out.family(
        "stepd_tasks_recent",
        "gauge",
        f"Tasks by status among the newest {store_metrics.RECENT_TASKS} tasks (by id): "
        "the recent share of failures without counting all history.",
        [({"status": s.value}, m.recent_tasks.get(s, 0)) for s in TaskStatus],
    )
    out.family(
        "stepd_semaphore_capacity",
        "gauge",
        "Units a semaphore grants at once.",
        [({"name": s.name}, s.capacity) for s in m.semaphores],
    )
    out.family(
        "stepd_semaphore_used",
        "gauge",
        "Units of a semaphore held by dispatched or running tasks.",
        [({"name": s.name}, s.used) for s in m.semaphores],
    )
    out.one(
        "stepd_semaphores_truncated",
        "gauge",
        f"1 when there are more than {store_metrics.MAX_SEMAPHORES} semaphores and only the "
        "first (by name) are reported.",
        int(m.semaphores_truncated),
    )
    out.one("stepd_configs", "gauge", "Configs stored.", m.configs)
    out.one("stepd_configs_enabled", "gauge", "Configs stored and enabled.", m.configs_enabled)
    out.one(
        "stepd_trigger_errors_total",
        "counter",
        "Firings that made no task because they failed (a template that raised, a value a "
        "task cannot hold, an evaluation that raised): the triggers recording an error.",
        m.trigger_errors,
    )


def process_families(out: Exposition) -> None:
    """This server process's CPU, memory, open files and start time, where /proc has them."""
    times = os.times()
    out.one(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        times.user + times.system,
    )
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            size_pages, resident_pages = (int(x) for x in f.read().split()[:2])
        page = os.sysconf("SC_PAGE_SIZE")
        out.one(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            size_pages * page,
        )
        out.one(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            resident_pages * page,
        )
        out.one(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            len(os.listdir("/proc/self/fd")),
        )
        out.one(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            _start_time_seconds(),
        )
    except (OSError, ValueError):
        pass  # not Linux: the store's figures are what matters


def _start_time_seconds() -> float:
    with open("/proc/self/stat", encoding="ascii") as f:
        # Field 22, counted after the command name (which may hold spaces) in parentheses.
        started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat", encoding="ascii") as f:
        boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    return boot + started_ticks / os.sysconf("SC_CLK_TCK")


def _read(store: Store) -> tuple[store_metrics.StoreMetrics, float]:
    started = time.perf_counter()
    try:
        with store.read() as conn:
            figures = store_metrics.read(conn)
    except (OperationalError, InterfaceError) as exc:  # a bad statement stays a 500
        raise StoreUnavailable(f"the database does not answer: {exc.orig}") from exc
    return figures, time.perf_counter() - started


def render(figures: store_metrics.StoreMetrics, read_seconds: float, store: str) -> str:
    """The whole exposition: stepd's own families, then the process's."""
    out = Exposition()
    out.one("stepd_up", "gauge", "1: the server answers and its store was read.", 1)
    out.family(
        "stepd_info",
        "gauge",
        "The stepd version and store dialect of this server (always 1).",
        [({"version": __version__, "store": store}, 1)],
    )
    store_families(out, figures, utcnow())
    out.one(
        "stepd_metrics_read_seconds",
        "gauge",
        "Time this scrape took to read the store's figures.",
        read_seconds,
    )
    process_families(out)
    return out.text()


@router.get("/metrics", summary="Prometheus metrics: backlog, queue, semaphores, configs")
async def metrics(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> Response:
    """The text exposition format 0.0.4; 503 with a JSON body when the store does not answer."""
    store = ctx(request).store
    try:
        figures, seconds = await run_in_threadpool(_read, store)
    except StoreUnavailable as exc:
        return JSONResponse(
            {"error": "store_unavailable", "status": "unavailable", "message": exc.message}, 503
        )
    return Response(render(figures, seconds, store.backend), media_type=CONTENT_TYPE)
