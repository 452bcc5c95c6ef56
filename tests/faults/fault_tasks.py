"""Task types of the kill -9 loops (not a test module): `stepd serve --tasks` loads it.

They are quick, so that many run while processes are killed around them, and they
sleep a little, so that a kill can land in the middle of one.
"""

from __future__ import annotations

import os
import random
import time

from stepd import task_type


@task_type("F_QUICK")
def quick(**params: object) -> dict[str, object]:
    """Succeeds after a short nap (long enough for a horse to be killed in it)."""
    time.sleep(random.uniform(0.0, 0.08))
    return {"params": params}


@task_type("F_SEM")
def under_semaphore(journal: str, k: str) -> str:
    """Runs under a semaphore of capacity 1 and writes its own account of when it ran:
    `start <k> <epoch> <pid>` and `end <k> <epoch>`, appended (O_APPEND: whole lines)."""
    with open(journal, "a") as out:
        out.write(f"start {k} {time.time():.6f} {os.getpid()}\n")
    time.sleep(0.04)
    with open(journal, "a") as out:
        out.write(f"end {k} {time.time():.6f}\n")
    return k
