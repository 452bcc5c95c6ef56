"""Task types only some workers of a fleet run (tests/runner/test_heterogeneous_fleet.py)."""

from __future__ import annotations

import os

from stepd import task_type


@task_type("T_ONLY_HERE")
def only_here(marker: str) -> dict[str, object]:
    return {"marker": marker, "pid": os.getpid()}
