"""`GET /metrics`: stepd's figures in Prometheus' text format (0.0.4), by prometheus-client.

Three sources, one exposition:
- the store's snapshot (store/metrics.py): gauges of the backlog, the queue, semaphores;
- the counts of stored facts (store/tally.py): events ingested, firings, tasks finished,
  and their histograms; read from the store so that every server says the same;
- the processes' own instruments (instruments.py): HTTP latency, reactor batches, and this
  server's process figures (CPU, memory, open files: prometheus-client's ProcessCollector).
The store's figures are read in one read transaction, in the thread pool.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool

from stepd import __version__
from stepd.api.context import AppContext, ctx, reader
from stepd.domain.tasks import TaskStatus
from stepd.errors import StoreUnavailable
from stepd.store import dbapi, tally
from stepd.store import metrics as store_metrics
from stepd.store.tokens import Principal
from stepd.timeutil import utcnow

router = APIRouter(tags=["operations"])

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what scrapers and stepd's tests have always read
SKIPPED = "stepd_firings_skipped"  # the reactor's counter, shown as firings{result=skipped}


def _age_seconds(since: datetime | None, now: datetime) -> float:
    # A clock a little behind another replica's would make a fresh item's age negative.
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _gauges(
    name: str, doc: str, label: str, samples: Iterable[tuple[str, float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for value, n in samples:
        family.add_metric([value], n)
    return family


def store_families(m: store_metrics.StoreMetrics, now: datetime) -> Iterator[Metric]:
    """The gauges read from the store's snapshot (names and meanings as they always were)."""
    yield CounterMetricFamily(
        "stepd_events_stored_total",
        "Events ever stored: the highest event sequence number (ids are never reused).",
        value=m.events_stored,
    )
    yield _gauge(
        "stepd_events_pending",
        "Events in state NEW: the reactor's backlog, not yet evaluated against configs.",
        m.events_pending,
    )
    yield _gauge(
        "stepd_reactor_lag_seconds",
        "Age of the oldest NEW event (0 when there is none): how far the reactor is behind.",
        _age_seconds(m.oldest_pending_event, now),
    )
    yield _gauge("stepd_events_rejected", "Events in state REJECTED.", m.events_rejected)
    yield _gauges(
        "stepd_tasks",
        "Active tasks by status: ENQUEUED (waiting for a worker), WAIT_MUTEX (waiting for "
        "semaphore capacity), EXECUTING.",
        "status",
        ((s.value, n) for s, n in m.active_tasks.items()),
    )
    yield _gauge(
        "stepd_tasks_oldest_enqueued_seconds",
        "How long the oldest ENQUEUED or WAIT_MUTEX task has waited, from its creation or "
        "its retry's due time (0 when none waits).",
        _age_seconds(m.oldest_waiting_task, now),
    )
    yield _gauges(
        "stepd_tasks_recent",
        f"Tasks by status among the newest {store_metrics.RECENT_TASKS} tasks (by id): "
        "the recent share of failures without counting all history.",
        "status",
        ((s.value, m.recent_tasks.get(s, 0)) for s in TaskStatus),
    )
    yield _gauges(
        "stepd_semaphore_capacity",
        "Units a semaphore grants at once.",
        "name",
        ((s.name, s.capacity) for s in m.semaphores),
    )
    yield _gauges(
        "stepd_semaphore_used",
        "Units of a semaphore held by dispatched or running tasks.",
        "name",
        ((s.name, s.used) for s in m.semaphores),
    )
    yield _gauge(
        "stepd_semaphores_truncated",
        f"1 when there are more than {store_metrics.MAX_SEMAPHORES} semaphores and only the "
        "first (by name) are reported.",
        int(m.semaphores_truncated),
    )
    yield _gauge("stepd_configs", "Configs stored.", m.configs)
    yield _gauge("stepd_configs_enabled", "Configs stored and enabled.", m.configs_enabled)
    yield CounterMetricFamily(
        "stepd_trigger_errors_total",
        "Firings that made no task because they failed (a template that raised, a value a "
        "task cannot hold, an evaluation that raised): the triggers recording an error.",
        value=m.trigger_errors,
    )


def _histogram(family: HistogramMetricFamily, labels: list[str], h: tally.Histogram) -> None:
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, n in zip((*h.bounds, float("inf")), h.counts, strict=True):
        running += n
        buckets.append((floatToGoString(bound), running))  # type: ignore[no-untyped-call]
    family.add_metric(labels, buckets, h.total)


def fact_families(f: tally.Facts, skipped: float) -> Iterator[Metric]:
    """The counters and histograms of stored facts (store/tally.py)."""
    ingested = CounterMetricFamily(
        "stepd_events_ingested",
        "Events stored, by source type (api, task, clock, ...; at most "
        f"{tally.MAX_LABEL_VALUES} values, the rest as other).",
        labels=["source_type"],
    )
    for source_type, n in f.events.items():
        ingested.add_metric([source_type], n)
    yield ingested
    firings = CounterMetricFamily(
        "stepd_firings",
        "Configs fired: task (a task made), error (none made, the trigger says why; all "
        "servers agree on these two), skipped (a second evaluation found it made already: "
        "counted by this server's reactor since it started).",
        labels=["result"],
    )
    for result in ("task", "error"):
        firings.add_metric([result], f.firings[result])
    firings.add_metric(["skipped"], skipped)
    yield firings
    finished = CounterMetricFamily(
        "stepd_tasks_finished",
        "Tasks that reached a terminal status (their status events), by task type "
        f"(at most {tally.MAX_LABEL_VALUES}, the rest as other) and status.",
        labels=["task_type", "status"],
    )
    for (task_type, status), n in f.finished.items():
        finished.add_metric([task_type, status], n)
    yield finished
    durations = HistogramMetricFamily(
        "stepd_task_duration_seconds",
        "How long the attempt that ended a task ran (started to finished), by task type.",
        labels=["task_type"],
    )
    for task_type, h in f.durations.items():
        _histogram(durations, [task_type], h)
    yield durations
    latency = HistogramMetricFamily(
        "stepd_event_to_task_seconds",
        "From an event's arrival to the task its firing made (the reactor's delay).",
    )
    _histogram(latency, [], f.event_to_task)
    yield latency


class _Families:
    """The families of one scrape, in the shape generate_latest collects from."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _read(context: AppContext) -> tuple[store_metrics.StoreMetrics, tally.Facts, float]:
    started = time.perf_counter()
    try:
        with context.store.read() as conn:
            figures = store_metrics.read(conn)
            facts = context.tally.read(dbapi.raw(conn), figures.events_stored)
    except (OperationalError, InterfaceError) as exc:  # a bad statement stays a 500
        raise StoreUnavailable(f"the database does not answer: {exc.orig}") from exc
    return figures, facts, time.perf_counter() - started


def warm(context: AppContext) -> None:
    """Count what the first scrape would (see daemon.py's warm-up)."""
    _read(context)


def render(
    context: AppContext, figures: store_metrics.StoreMetrics, facts: tally.Facts, seconds: float
) -> bytes:
    """The whole exposition: the store's families, the processes', this process's."""
    own: list[Metric] = []
    skipped = 0.0
    for metric in context.instruments.collect():
        if metric.name == SKIPPED:
            skipped += sum(s.value for s in metric.samples if s.name.endswith("_total"))
        else:
            own.append(metric)
    families: list[Metric] = [
        _gauge("stepd_up", "1: the server answers and its store was read.", 1),
    ]
    info = GaugeMetricFamily(
        "stepd_info",
        "The stepd version and store dialect of this server (always 1).",
        labels=["version", "store"],
    )
    info.add_metric([__version__, context.store.backend], 1)
    families.append(info)
    families += store_families(figures, utcnow())
    families += fact_families(facts, skipped)
    families.append(
        _gauge(
            "stepd_metrics_read_seconds",
            "Time this scrape took to read the store's figures.",
            seconds,
        )
    )
    families += own
    families += context.instruments.process.collect()
    return generate_latest(_Families(families))


@router.get("/metrics", summary="Prometheus metrics: backlog, queue, counters, latencies")
async def metrics(
    request: Request, _reader: Annotated[Principal | None, Depends(reader)]
) -> Response:
    """The text exposition format 0.0.4; 503 with a JSON body when the store does not answer."""
    context = ctx(request)
    try:
        figures, facts, seconds = await run_in_threadpool(_read, context)
    except StoreUnavailable as exc:
        return JSONResponse(
            {"error": "store_unavailable", "status": "unavailable", "message": exc.message}, 503
        )
    return Response(render(context, figures, facts, seconds), media_type=CONTENT_TYPE)
