"""A bare Celery app: the baseline of runner_bench.py's Celery throughput (issue 10).

Configured as stepd's own Celery app (stepd.runner.celery_app.make_celery): JSON only, late
acks, prefetch 1, no results. Its worker is started as stepd's is (`-P prefork`, the same
concurrency, no gossip or mingle) on a queue of its own:

    BENCH_BROKER=URL BENCH_QUEUE=Q BENCH_DONE_FILE=PATH \\
        python -m celery -A bare_celery worker -Q Q -c 2 -P prefork \\
        --without-gossip --without-mingle

The completion signal is result-free and costs next to nothing: each task appends one line
(`TAG TIME`) to BENCH_DONE_FILE with a single O_APPEND write on a descriptor its pool process
keeps open (no network round trip, no broker or Redis traffic that stepd's side does not pay).
"""

from __future__ import annotations

import os
import time

from celery import Celery

from stepd.runner.celery_app import CELERY_CONF

TASK_NAME = "bench.bare_noop"


def make_app(broker: str, queue: str) -> Celery:
    # Configured exactly as stepd's own app (stepd.runner.celery_app.make_celery).
    app = Celery("bare", broker=broker)
    app.conf.update(CELERY_CONF, task_default_queue=queue)
    return app


_fd: list[int] = []


def _done(tag: str) -> None:
    if not _fd:  # opened in the pool process, after the fork
        _fd.append(os.open(os.environ["BENCH_DONE_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT))
    os.write(_fd[0], f"{tag} {time.time():.6f}\n".encode())


if os.environ.get("BENCH_QUEUE"):  # the worker's side (`celery -A bare_celery worker`)
    app = make_app(os.environ["BENCH_BROKER"], os.environ["BENCH_QUEUE"])

    @app.task(name=TASK_NAME, acks_late=True)  # type: ignore[untyped-decorator]
    def bare_noop(tag: str) -> None:
        _done(tag)
