"""Task types of the UI's browser tests (not a test module): `stepd serve --tasks` loads it
next to the examples. UI_SLEEP runs long enough to be stopped from its task page; UI_LINES
writes its log over a few seconds (the log pane's follow mode)."""

from __future__ import annotations

import time

from stepd import command_task, task_type

ui_sleep = command_task("UI_SLEEP", argv=["sleep", "{seconds}"])


@task_type("UI_LINES")
def ui_lines(count: int, marker: str, seconds: float = 0.4) -> int:
    """Prints `count` lines, one every `seconds`: a log that grows while its page is open."""
    for i in range(count):
        print(f"{marker} line {i:03d}", flush=True)
        time.sleep(seconds)
    return count
