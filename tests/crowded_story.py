"""A store with 30 configs on one event name, as a team has (issue 13); not a test module.

One fires, one waits for a second event, two are near misses (one param differs), one
is disabled though the event matches it, and 25 are unrelated: 24 expect another
`taskType` (one of them disabled) and one differs in two params. The story must lead
with the first five and collapse the 25.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SOUP = "CRYPTA_GRAPH_PREPARE_SOUP_YAML"
EVENT_PARAMS = {"taskType": SOUP, "taskStatus": "SUCCESS", "environment": "stable"}
OTHER_TYPES = 23  # enabled configs for another taskType


@dataclass
class Crowd:
    """The ids of the configs, by the part of the story they belong to."""

    fired: str = ""
    waiting: str = ""
    near: list[str] = field(default_factory=list)
    disabled: str = ""  # the event matches it
    other_types: list[str] = field(default_factory=list)  # one of them disabled
    two_off: str = ""  # differs in taskStatus and environment

    @property
    def shown(self) -> list[str]:
        return [self.fired, self.waiting, *self.near, self.disabled]

    @property
    def every(self) -> list[str]:
        return [*self.shown, *self.other_types, self.two_off]


def crowd(
    create: Callable[[dict[str, Any]], str], event_name: str, prefix: str, task_type: str
) -> Crowd:
    """Create the 30 configs through `create(body) -> id` (the API, the client)."""

    def config(name: str, *, enabled: bool = True, extra: Any = (), **params: object) -> str:
        deps = [{"name": event_name, "params": {**EVENT_PARAMS, "date": "~", **params}}]
        return create({
            "name": f"{prefix}-{name}", "task_type": task_type, "enabled": enabled,
            "event_deps": deps + list(extra),
        })  # fmt: skip

    found = Crowd()
    # Unrelated ones first, so that the answer is not first merely by being made first.
    found.other_types = [config(f"type{i:02d}", taskType=f"OTHER_{i:02d}") for i in range(12)]
    found.fired = config("fired")
    found.other_types += [config(f"type{i:02d}", taskType=f"OTHER_{i:02d}")
                          for i in range(12, OTHER_TYPES)]  # fmt: skip
    found.other_types.append(config("type-off", taskType="OTHER_OFF", enabled=False))
    found.waiting = config(
        "waiting", extra=[{"name": f"{event_name}.second", "params": {"date": "~"}}]
    )
    found.two_off = config("two-off", taskStatus="FAILURE", environment="testing")
    found.near = [config("failure", taskStatus="FAILURE"), config("testing", environment="testing")]
    found.disabled = config("disabled", enabled=False)
    assert len(found.every) == 30
    return found
