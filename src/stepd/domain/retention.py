"""Retention: how long events, finished tasks and their logs are kept, and what a join
still needs. Pure values and rules; store/retention.py deletes, services/retention.py
drives the rounds.

What "a join still needs" means here: a config with two or more dependencies looks up
stored events of its dependencies' names (a single dependency only ever matches the
event that arrives, never a stored one). With a `window`, an arriving event joins only
events at most `window` older than itself, so an event of such a name is kept while it
is younger than that window, when the window is longer than the retention. A config
without a window would join events of any age: for it the retention is the window (an
event older than the retention no longer completes its joins; give the config a window
to keep its events longer). The ages count back from the oldest event the reactor has
not evaluated yet when there is one (it may still join events that far back), else
from now. Paused configs count (a join completed after `enable` fires with events from
before); configs whose `enabled` is false do not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from stepd.domain.durations import parse_duration
from stepd.domain.tasks import ACTIVE, TERMINAL
from stepd.errors import InvalidInput

if TYPE_CHECKING:
    from stepd.domain.configs import ActionConfig

MIN_RETENTION_SECONDS = 3600.0  # shorter would race the reactor and the people reading stories
OFF = "off"  # keep everything (the default)


def parse_retention(text: object, *, field: str) -> float | None:
    """Seconds of a retention such as `90d` or `12h` (None: `off`, keep everything), or
    InvalidInput naming `field` for anything else or shorter than an hour."""
    if isinstance(text, str) and text.strip().lower() in (OFF, ""):
        return None
    seconds = parse_duration(text, field=field)
    if seconds < MIN_RETENTION_SECONDS:
        raise InvalidInput(
            f"{field} must be at least 1h (3600 seconds) or `off`, not {text!r}: shorter "
            "would delete events the reactor and people reading stories still need",
            field=field,
        )
    return seconds


def normal(text: object, *, field: str) -> str:
    """The stored spelling of a retention: `off`, or the duration as written (`90d`)."""
    seconds = parse_retention(text, field=field)
    if seconds is None:
        return OFF
    return text.strip() if isinstance(text, str) else f"{seconds:g}s"


@dataclass(frozen=True, kw_only=True)
class Policy:
    """How long each kind is kept, in seconds; None: forever."""

    event_seconds: float | None  # events (their params index rows, triggers, request ids)
    task_seconds: float | None  # finished tasks (their attempts, logs, emitted-event links)
    log_seconds: float | None  # the logs of finished tasks

    @classmethod
    def of(cls, retention: object, task: object = None, log: object = None) -> Policy:
        """From the three settings as written: an unset (None) task retention follows
        `retention`, an unset log retention the task retention; `off` keeps that kind."""
        events = parse_retention(retention or OFF, field="retention")
        tasks = events if task is None else parse_retention(task, field="task_retention")
        logs = tasks if log is None else parse_retention(log, field="log_retention")
        return cls(event_seconds=events, task_seconds=tasks, log_seconds=logs)

    @property
    def off(self) -> bool:
        return self.event_seconds is None and self.task_seconds is None and self.log_seconds is None


@dataclass(frozen=True, kw_only=True)
class Cutoffs:
    """What one round may delete: rows older than these times (None: none of that kind)."""

    # Events created before it (unless kept longer, below): the latest event cutoff, so a
    # scan in creation order stops at the first event created after it.
    events: datetime | None
    # Event names that a join may look up further back, and the time before which they go.
    kept_longer: Mapping[str, datetime] = field(default_factory=dict)
    tasks: datetime | None  # finished tasks that finished before it
    logs: datetime | None  # logs of finished tasks that finished before it

    def event_cutoff(self, name: str) -> datetime | None:
        """The time before which an event of `name` may be deleted (None: never)."""
        if self.events is None:
            return None
        return self.kept_longer.get(name, self.events)


def cutoffs(
    policy: Policy,
    configs: Iterable[ActionConfig],
    *,
    now: datetime,
    oldest_unevaluated: datetime | None,
) -> Cutoffs:
    """The cutoffs of a round at `now`: events counted back from the oldest event not yet
    evaluated (`oldest_unevaluated`, which may still join that far back) when it is older,
    tasks and logs from `now`."""
    since = now if oldest_unevaluated is None else min(now, oldest_unevaluated)
    events = None
    kept: dict[str, datetime] = {}
    if policy.event_seconds is not None:
        events = since - timedelta(seconds=policy.event_seconds)
        for config in configs:
            window = config.spec.window_seconds
            if not config.spec.enabled or len(config.spec.event_deps) < 2 or window is None:
                continue
            if window <= policy.event_seconds:
                continue
            back = since - timedelta(seconds=window)
            for dep in config.spec.event_deps:
                kept[dep.name] = min(back, kept.get(dep.name, back))
    return Cutoffs(
        events=events,
        kept_longer=kept,
        tasks=_before(now, policy.task_seconds),
        logs=_before(now, policy.log_seconds),
    )


def _before(now: datetime, seconds: float | None) -> datetime | None:
    return None if seconds is None else now - timedelta(seconds=seconds)


def finished_before(status: str, finished: datetime | None, cutoff: datetime | None) -> bool:
    """Whether a task may go: finished (a terminal status, never an active one) before
    `cutoff`."""
    return (
        cutoff is not None
        and finished is not None
        and status in TERMINAL_VALUES
        and finished < cutoff
    )


TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)
ACTIVE_VALUES = frozenset(s.value for s in ACTIVE)
