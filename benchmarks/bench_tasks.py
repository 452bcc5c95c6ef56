"""No-op task types for benchmarks/runner_bench.py and benchmarks/reactor_bench.py.

    stepd serve --tasks benchmarks/bench_tasks.py ...
    stepd worker --executor celery --tasks benchmarks/bench_tasks.py ...

Their bodies do (next to) nothing, so what a benchmark measures is stepd's own cost per
task: claim, fork the work horse, record the result, emit the status event.
"""

from __future__ import annotations

import time
from typing import Any

from stepd import task_type


@task_type("BENCH_NOOP", description="Does nothing (benchmarks).")
def bench_noop(**params: Any) -> None:
    """Accepts any params and returns nothing."""
    return None


@task_type("BENCH_SLEEP", description="Sleeps `ms` milliseconds (benchmarks).")
def bench_sleep(ms: int = 2, **params: Any) -> None:
    """A short task with a measurable duration (the semaphore benchmark)."""
    time.sleep(ms / 1000)
