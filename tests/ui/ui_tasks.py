"""Task types of the UI's browser tests (not a test module): `stepd serve --tasks` loads it
next to the examples. UI_SLEEP runs long enough to be stopped from its task page."""

from __future__ import annotations

from stepd import command_task

ui_sleep = command_task("UI_SLEEP", argv=["sleep", "{seconds}"])
