"""The figures a process measures about itself (prometheus-client): HTTP request latency,
the reactor's batch time, the firings its reactor skipped.

Unlike the counts of stored facts (store/tally.py), these exist only in the process that
makes them, and the reactor runs in a process of its own. `stepd serve` therefore runs
prometheus-client's multiprocess mode: `metrics_dir` makes a directory it owns (and removes
at exit) and names it in PROMETHEUS_MULTIPROC_DIR before prometheus-client is imported, so
the server and the processes it spawns write their samples to files there, and `/metrics`
adds them up (`collect`). Without that directory (an app in a test, `stepd worker`) the
instruments live in this process's own registry.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
    from prometheus_client.metrics_core import Metric

    from stepd.reactor.reactor import Reactor

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable
DIR_PREFIX = "stepd-metrics-"  # then the server's pid: stepd-metrics-<pid>-<random>

# Seconds: an API answer takes milliseconds; a reactor batch up to seconds. Few bounds:
# each is a line per route, method and status in every scrape.
HTTP_SECONDS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)
BATCH_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30)


@contextmanager
def metrics_dir() -> Iterator[str]:
    """A directory for this server's multiprocess samples, named in PROMETHEUS_MULTIPROC_DIR
    for the duration of the block (its children inherit it), then removed. Those that
    servers killed before they could remove theirs are removed first.

    One a deployment set already is used as is, and left in place: it is theirs.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        yield given
        return
    _sweep(Path(tempfile.gettempdir()))
    path = tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def _sweep(tmp: Path) -> None:
    """Remove the directories of servers that died without removing theirs (SIGKILL, a
    crash): their pid, in the name, is no longer a process."""
    for old in tmp.glob(f"{DIR_PREFIX}*-*"):
        pid = old.name[len(DIR_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except PermissionError:
            pass  # another user's server, alive


def multiprocess() -> bool:
    """Whether this process writes its samples to a shared directory."""
    return bool(os.environ.get(MULTIPROC_ENV))


@dataclass(frozen=True)
class Instruments:
    """The histograms and counters of one process."""

    http_seconds: Histogram  # {route, method, status}: route templates, never raw paths
    reactor_batch_seconds: Histogram  # one reactor batch: read, evaluate, write, commit
    firings_skipped: Counter  # firings a second evaluation found made already
    registry: CollectorRegistry  # where they are, unless in multiprocess mode
    process: ProcessCollector  # this process's CPU, memory, open files, start time

    def collect(self) -> Iterable[Metric]:
        """Every process's samples (multiprocess mode), else this process's own."""
        if multiprocess():
            from prometheus_client.multiprocess import MultiProcessCollector

            collector = MultiProcessCollector(None, path=os.environ[MULTIPROC_ENV])  # type: ignore[no-untyped-call]
            metrics: Iterable[Metric] = collector.collect()  # type: ignore[no-untyped-call]
            return metrics
        return self.registry.collect()


def instruments() -> Instruments:
    """This process's instruments, in a registry of their own unless in multiprocess mode
    (then every process's files are what is collected)."""
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, values

    # `_created` series are a second sample per series that no stepd figure needs.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    # prometheus-client picks its value class (in memory, or files of the multiprocess
    # directory) when first imported; the directory may have been named since.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=False)
    target = None if multiprocess() else registry
    return Instruments(
        http_seconds=Histogram(
            "stepd_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status code.",
            ["route", "method", "status"],
            buckets=HTTP_SECONDS,
            registry=target,
        ),
        reactor_batch_seconds=Histogram(
            "stepd_reactor_batch_seconds",
            "Time of one reactor batch (NEW events read, evaluated, firings written).",
            buckets=BATCH_SECONDS,
            registry=target,
        ),
        firings_skipped=Counter(
            "stepd_firings_skipped",
            "Firings a second evaluation of an event found made already (nothing written).",
            registry=target,
        ),
        registry=registry,
        process=ProcessCollector(registry=None),
    )


def observe(reactor: Reactor, instruments: Instruments) -> None:
    """Time `reactor`'s batches and count the firings it skips, in `instruments`."""
    reactor.on_batch.append(instruments.reactor_batch_seconds.observe)
    reactor.on_skipped.append(instruments.firings_skipped.inc)
