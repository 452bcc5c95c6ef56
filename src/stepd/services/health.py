"""Health you can alert on: one check per part a deployment needs, each with its remedy.

`/healthz` and `stepd doctor` run the same checks. A check is `ok`, `degraded` (stepd
serves, but something a team relies on is late or at risk: the reactor behind, the
broker unreachable, tasks of a type no live worker runs, the disk nearly full) or
`down` (requests fail: the store does not answer or cannot write). The whole is the
worst of its checks; a load balancer takes a server out of rotation only when it is
down (503), as a degraded one still answers correctly.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from stepd.errors import QueryTimeout, StoreUnavailable
from stepd.services.fleet import FleetService
from stepd.store import metrics as store_metrics
from stepd.store import workers as worker_store
from stepd.store.engine import Store
from stepd.timeutil import iso, utcnow

Status = Literal["ok", "degraded", "down"]
_RANK: dict[Status, int] = {"ok": 0, "degraded": 1, "down": 2}

REACTOR_LAG_DEGRADED_SECONDS = 60.0  # the oldest unevaluated event waits longer: behind
DISK_FREE_DEGRADED_BYTES = 1 << 30  # less free than this on the store's disk
DISK_FREE_DEGRADED_FRACTION = 0.05  # ... or less than this share of it
TASK_WAIT_DEGRADED_SECONDS = 60.0  # an ENQUEUED task waits longer for a worker: late
BROKER_CHECK_SECONDS = 10.0  # a broker's answer is reused this long (probes are frequent)
BROKER_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    status: Status
    message: str
    remedy: str | None = None  # what to do, when it is not ok
    details: dict[str, object] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"status": self.status, "message": self.message}
        if self.remedy is not None:
            body["remedy"] = self.remedy
        body.update(self.details)
        return body


@dataclass(frozen=True, kw_only=True)
class Health:
    checks: list[Check]

    @property
    def status(self) -> Status:
        return max((c.status for c in self.checks), key=_RANK.__getitem__, default="ok")

    def as_json(self, backend: str) -> dict[str, object]:
        body: dict[str, object] = {"status": self.status, "store": backend}
        worst = [c for c in self.checks if c.status == self.status and c.status != "ok"]
        if worst:
            # A probe's script reads one line: the worst check's message (and, for a store
            # out of space, its `problem`, as /healthz said before the checks existed).
            body["message"] = worst[0].message
            body.update({k: v for k, v in worst[0].details.items() if k == "problem"})
        body["checks"] = {c.name: c.as_json() for c in self.checks}
        return body


def broker_reachable(url: str, timeout: float = BROKER_TIMEOUT_SECONDS) -> str | None:
    """None when the broker at `url` accepts a connection, else why not."""
    from kombu.connection import Connection  # Celery's own client (the celery extra)

    try:
        with Connection(url, connect_timeout=timeout) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # any failure to connect is the answer, whatever its class
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass
class HealthService:
    store: Store
    broker_url: str | None = None  # checked when this server dispatches to Celery
    fleet: FleetService | None = None  # the workers check (None: not made)
    probe_broker: Callable[[str], str | None] = broker_reachable
    _broker_answer: tuple[float, str | None] | None = None
    _broker_lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> Health:
        """Every check (blocking: call it from a thread)."""
        store = self.check_store()
        checks = [store]
        if store.status != "down" or "problem" in store.details:
            checks.append(self.check_reactor())
        if self.broker_url:
            checks.append(self.check_broker(self.broker_url))
        if self.fleet is not None and store.status != "down":
            checks.append(self.check_workers(self.fleet))
        disk = self.check_disk()
        if disk is not None:
            checks.append(disk)
        return Health(checks=checks)

    def check_store(self) -> Check:
        try:
            self.store.ping()
        except StoreUnavailable as exc:
            return Check(
                name="store",
                status="down",
                message=exc.message,
                remedy="start the database or fix --db (STEPD_DATABASE_URL); "
                "`stepd doctor` tries it from this machine",
            )
        if self.store.problem is not None:
            # A write failed for want of space and none has committed since.
            return Check(
                name="store",
                status="down",
                message=f"the store is {self.store.problem}: writes fail until space is freed",
                remedy="free space on the database's disk; the next write that commits clears this",
                details={"problem": self.store.problem},
            )
        return Check(name="store", status="ok", message=f"{self.store.backend} answers")

    def check_reactor(self) -> Check:
        try:
            with self.store.read() as conn:
                pending, oldest = store_metrics.reactor_backlog(conn)
        except QueryTimeout as exc:
            # The store answers (the store check says so) but counting the backlog took
            # longer than a statement may: a backlog that large is itself the news.
            return Check(
                name="reactor",
                status="degraded",
                message=f"the reactor's backlog could not be counted in time ({exc.message})",
                remedy="check the reactor's log and /metrics stepd_events_pending",
            )
        except StoreUnavailable as exc:
            return Check(name="reactor", status="down", message=exc.message)
        lag = 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())
        details: dict[str, object] = {"lag_seconds": round(lag, 3), "pending_events": pending}
        if lag > REACTOR_LAG_DEGRADED_SECONDS:
            return Check(
                name="reactor",
                status="degraded",
                message=f"the oldest unevaluated event has waited {lag:.0f} s ({pending} wait)",
                remedy="check that a server runs the reactor (not --no-reactor everywhere) "
                "and its log for errors; /metrics stepd_reactor_lag_seconds shows the trend",
                details=details,
            )
        return Check(
            name="reactor",
            status="ok",
            message=f"{pending} events wait for evaluation, the oldest {lag:.1f} s",
            details=details,
        )

    def check_broker(self, url: str) -> Check:
        with self._broker_lock:
            cached = self._broker_answer
            if cached is None or time.monotonic() - cached[0] > BROKER_CHECK_SECONDS:
                cached = (time.monotonic(), self.probe_broker(url))
                self._broker_answer = cached
        problem = cached[1]
        if problem is None:
            return Check(name="broker", status="ok", message="the Celery broker answers")
        return Check(
            name="broker",
            status="degraded",
            message=f"the Celery broker does not answer ({problem}): tasks stay ENQUEUED",
            remedy="start the broker or fix --broker (STEPD_BROKER_URL); events are still "
            "stored and evaluated, and queued tasks are sent once it answers",
        )

    def check_workers(self, fleet: FleetService) -> Check:
        try:
            workers = fleet.workers(running=False)
            with self.store.read() as conn:
                waiting = worker_store.waiting(conn)
        except StoreUnavailable as exc:
            return Check(name="workers", status="degraded", message=exc.message)
        live = [w for w in workers if w.state == "live"]
        runnable = {str(t.get("name")) for w in live for t in w.row.task_types}
        now = utcnow()
        late = {
            name: (count, oldest)
            for name, (count, oldest) in waiting.items()
            if (now - oldest).total_seconds() > TASK_WAIT_DEGRADED_SECONDS
        }
        details: dict[str, object] = {
            "live": len(live),
            "gone": len(workers) - len(live),
            "waiting_tasks": sum(count for count, _ in waiting.values()),
        }
        start = "start workers (stepd worker --tasks MODULE, or stepd serve --workers N)"
        if not live and (late or workers):
            # Workers were here (or work waits) and none is left: tasks wait for nobody.
            queued = sum(count for count, _ in waiting.values())
            return Check(
                name="workers",
                status="degraded",
                message=f"no live worker: {queued} tasks wait ENQUEUED"
                + (
                    f"; the last was seen {iso(max(w.row.last_seen for w in workers))}"
                    if workers
                    else ""
                ),
                remedy=f"{start}; `stepd workers list` shows which stopped and when",
                details=details,
            )
        unknown = sorted(name for name in late if name not in runnable)
        if live and unknown:
            details["unknown_types"] = unknown
            return Check(
                name="workers",
                status="degraded",
                message="tasks wait for types no live worker runs: " + ", ".join(unknown),
                remedy=f"{start} naming the modules that declare them",
                details=details,
            )
        if not workers:
            return Check(
                name="workers",
                status="ok",
                message="no worker has announced itself yet (nothing waits)",
                details=details,
            )
        return Check(
            name="workers",
            status="ok",
            message=f"{len(live)} live workers, {details['waiting_tasks']} tasks wait",
            details=details,
        )

    def check_disk(self) -> Check | None:
        directory = self.store.local_directory()
        if directory is None:
            return None  # the database's disk is its server's: watch it there
        usage = shutil.disk_usage(directory)
        details: dict[str, object] = {
            "path": directory,
            "free_bytes": usage.free,
            "total_bytes": usage.total,
        }
        low = usage.free < min(DISK_FREE_DEGRADED_BYTES, usage.total * 0.5) or (
            usage.free < usage.total * DISK_FREE_DEGRADED_FRACTION
        )
        free = f"{usage.free / 2**30:.1f} GiB of {usage.total / 2**30:.1f} GiB free"
        if low:
            return Check(
                name="disk",
                status="degraded",
                message=f"the store's disk is nearly full: {free} at {directory}",
                remedy="free space or move the store; when it fills, writes answer 507 "
                "store_full (and `stepd backup` needs room for a copy)",
                details=details,
            )
        return Check(name="disk", status="ok", message=free, details=details)
