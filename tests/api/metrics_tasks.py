"""Task types of the served metrics and logs tests (tests/api/test_metrics_served.py)."""

from __future__ import annotations

import time

from stepd import TaskFailure, task_type


@task_type("M_SOUP")
def soup(date: str) -> str:
    time.sleep(0.05)  # longer than the duration histogram's first bucket (0.01 s)
    return date


@task_type("M_FAILS")
def fails(date: str) -> None:
    raise TaskFailure(f"no soup on {date}")
