"""Luigi tasks report START, SUCCESS and FAILURE to stepd as events, as the Crypta team's did.

Reporting is an explicit opt-in, per class or per pipeline:

    import luigi
    from stepd.integrations.luigi import StepdReported

    class PrepareSoup(StepdReported):        # a luigi.Task that reports itself
        stepd_task_type = "CRYPTA_GRAPH_PREPARE_SOUP_YAML"   # default: the task family
        date = luigi.DateParameter()

or, for task classes you would rather not change, once before `luigi.build` / `luigi.run`:

    from stepd.integrations.luigi import install

    install(tasks=(PrepareSoup, HumanMatching))   # default: every luigi.Task

Each START, SUCCESS or FAILURE of a task becomes one event (by default a
`cryptaTaskEvent`) with params `taskType`, `taskStatus`, `environment` and the task's
significant public Luigi parameters as strings (`date=2019-01-01`); its `source_type` is
`luigi` and its `source` the Luigi task id. The server, token and environment come from
`STEPD_URL`, `STEPD_TOKEN` and `STEPD_ENVIRONMENT`, or from a `Reporter`.

Reporting never changes a task's outcome: when stepd cannot be reached (after the
client's retries, each attempt bounded by `timeout_seconds`) or refuses the event, a
warning is logged and the task goes on as if nothing had been sent. After stepd could
not be reached, the reports of the next `outage_seconds` try once, briefly: a pipeline
of a hundred tasks must not wait out every retry of every report while stepd is down.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, ClassVar

try:
    import luigi
    from luigi.parameter import ParameterVisibility
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError("stepd.integrations.luigi needs Luigi: pip install 'stepd[luigi]'") from exc

from stepd.client import DEFAULT_URL, Client, ServerUnreachable
from stepd.domain.params import Scalar

__all__ = [
    "DEFAULT_EVENT_NAME",
    "FAILURE",
    "START",
    "SUCCESS",
    "Installation",
    "Outages",
    "Reporter",
    "StepdReported",
    "install",
    "param_text",
    "task_params",
    "task_type",
]

log = logging.getLogger(__name__)

DEFAULT_EVENT_NAME = "cryptaTaskEvent"
DEFAULT_ENVIRONMENT = "stable"

START = "START"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"

# The reporter's own params: a Luigi parameter of the same name is not sent.
RESERVED = ("taskType", "taskStatus", "environment")

# Luigi's events and the taskStatus each reports. A task whose process died or ran past
# its worker timeout (PROCESS_FAILURE, TIMEOUT, fired in the parent worker) has failed
# as surely as one whose run() raised (FAILURE); Luigi fires only one of them per run.
STATUSES: Mapping[str, str] = {
    luigi.Event.START: START,
    luigi.Event.SUCCESS: SUCCESS,
    luigi.Event.FAILURE: FAILURE,
    luigi.Event.PROCESS_FAILURE: FAILURE,
    luigi.Event.TIMEOUT: FAILURE,
}


def param_text(param: Any, value: object) -> str | None:
    """The text a Luigi parameter value is sent as (None: not sent).

    The original STEP's users sent strings, so every value is one: a `date` is ISO
    (`2019-01-01`), a boolean `true`/`false` (the text stepd compares a JSON boolean
    by), anything else what the parameter's own `serialize` writes (the text Luigi's
    command line takes: `2019-01-01T13` for a DateHourParameter, JSON for lists and
    dicts, the member name for an enum). None (an unset optional parameter) is not sent.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if type(value) is dt.date:
        return value.isoformat()
    try:
        text = param.serialize(value)
    except Exception:
        text = None
    return text if isinstance(text, str) else str(value)


def task_params(task: luigi.Task) -> dict[str, str]:
    """The task's significant, public Luigi parameters as event params (`param_text`).

    Insignificant parameters (`significant=False`: not part of the task's identity,
    such as an output directory) and hidden or private ones (secrets) are left out.
    """
    params: dict[str, str] = {}
    untyped: Any = task  # Luigi's classmethods carry no type hints
    for name, param in untyped.get_params():
        if not param.significant or param.visibility != ParameterVisibility.PUBLIC:
            continue
        text = param_text(param, task.param_kwargs.get(name))
        if text is not None:
            params[name] = text
    return params


def task_type(task: luigi.Task) -> str:
    """The `taskType` of a task: its `stepd_task_type` (a string attribute, or a method
    returning one) when it has one, else its Luigi task family."""
    override = getattr(task, "stepd_task_type", None)
    if callable(override):
        override = override()
    if isinstance(override, str) and override:
        return override
    untyped: Any = task
    return str(untyped.get_task_family())


def _event_params(task: luigi.Task) -> dict[str, Scalar]:
    custom = getattr(task, "stepd_params", None)
    params: Mapping[str, Scalar] = custom() if callable(custom) else task_params(task)
    return dict(params)


class Outages:
    """When each stepd server last could not be reached, shared by the handlers of one
    installation (Luigi's forked worker processes each get a copy)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_until: dict[str, float] = {}

    def is_down(self, url: str) -> bool:
        with self._lock:
            return time.monotonic() < self._down_until.get(url, 0.0)

    def down(self, url: str, seconds: float) -> None:
        with self._lock:
            self._down_until[url] = time.monotonic() + seconds

    def up(self, url: str) -> None:
        with self._lock:
            self._down_until.pop(url, None)


def _env(name: str, default: str | None) -> str | None:
    return os.environ.get(name) or default


@dataclass(frozen=True, kw_only=True)
class Reporter:
    """Where and how Luigi task statuses are sent. Fields left out are read from the
    environment when the Reporter is made: `STEPD_URL`, `STEPD_TOKEN`, `STEPD_ENVIRONMENT`.

    Each report is one `POST /api/v1/events` with a request_id of its own, which the
    client repeats on its retries (`retries` more attempts, `timeout_seconds` each,
    sleeping `backoff_seconds`, then twice that): a retry after a lost answer never
    stores the event twice, while a task that runs again (after a FAILURE, or in a
    later `luigi.build`) reports again, as it must to re-trigger what depends on it.
    With the defaults an unreachable server costs a report at most about 3 x 5 s + 1.5 s,
    and the reports of the next `outage_seconds` at most `outage_timeout_seconds` each.
    """

    url: str = field(default_factory=lambda: _env("STEPD_URL", DEFAULT_URL) or DEFAULT_URL)
    token: str | None = field(default_factory=lambda: _env("STEPD_TOKEN", None), repr=False)
    event_name: str = DEFAULT_EVENT_NAME  # the name of every event sent
    environment: str = field(
        default_factory=lambda: _env("STEPD_ENVIRONMENT", DEFAULT_ENVIRONMENT) or "stable"
    )  # the `environment` param (stable, testing, ...)
    timeout_seconds: float = 5.0  # bounds each attempt
    retries: int = 2  # attempts after the first
    backoff_seconds: float = 0.5  # the sleep before the first retry, doubled after
    # After stepd could not be reached: this long, each report tries once, for at most
    # `outage_timeout_seconds`, and the first that gets through ends it.
    outage_seconds: float = 60.0
    outage_timeout_seconds: float = 1.0

    def event(self, task: luigi.Task, status: str) -> tuple[str, dict[str, Scalar]]:
        """The event reporting `status` (START, SUCCESS, FAILURE) of `task`: (name, params)."""
        params = _event_params(task)
        clash = sorted(set(params) & set(RESERVED))
        if clash:
            log.warning(
                "stepd: %s has parameters named %s; the reported %s are the reporter's",
                task,
                clash,
                clash,
            )
        params.update(taskType=task_type(task), taskStatus=status, environment=self.environment)
        return self.event_name, params

    def report(self, task: luigi.Task, status: str, outages: Outages | None = None) -> str | None:
        """Send the event of `status` of `task`; its id, or None (logged) when it was not
        stored. Never raises: a report must not change the task's outcome. `outages`:
        where an unreachable server is remembered (one try, briefly, while it is down)."""
        down = outages is not None and outages.is_down(self.url)
        try:
            name, params = self.event(task, status)
            with Client(
                self.url,
                self.token,
                timeout=min(self.timeout_seconds, self.outage_timeout_seconds)
                if down
                else self.timeout_seconds,
                retries=0 if down else self.retries,
                backoff_seconds=self.backoff_seconds,
            ) as client:
                [event_id] = client.create_events(
                    [(name, params)],
                    request_id=f"luigi-{uuid.uuid4().hex}",
                    source_type="luigi",
                    source=str(task.task_id),
                )
        except Exception as exc:
            if outages is not None and isinstance(exc, ServerUnreachable):
                outages.down(self.url, self.outage_seconds)
            log.warning(
                "stepd: %s of %s was not reported to %s (%s); the task goes on%s",
                status,
                task,
                self.url,
                exc,
                f" (stepd looks down: one brief try per report for {self.outage_seconds:g} s)"
                if outages is not None and isinstance(exc, ServerUnreachable)
                else "",
            )
            return None
        if outages is not None:
            outages.up(self.url)
        log.info("stepd: reported %s of %s as event %s", status, task, event_id)
        return event_id


@dataclass(frozen=True)
class _Handler:
    """A Luigi event callback reporting one status. Hashable: Luigi keeps callbacks in sets."""

    status: str
    reporter: Reporter | None  # None: the task's own (`StepdReported.stepd_reporter`)
    tasks: tuple[type[luigi.Task], ...]  # the classes it reports
    outages: Outages = field(default_factory=Outages, compare=False, hash=False)

    def __call__(self, task: Any, *_: Any) -> None:
        try:
            if not isinstance(task, self.tasks):
                return
            reporter = self.reporter
            if reporter is None:
                reporter = getattr(task, "stepd_reporter", None) or Reporter()
            elif isinstance(task, StepdReported):
                return  # it reports itself; never twice
            reporter.report(task, self.status, self.outages)
        except Exception as exc:  # Luigi would log it too; say what it was about
            log.warning("stepd: %s of %s was not reported (%s)", self.status, task, exc)


class StepdReported(luigi.Task):
    """A Luigi task that reports its START, SUCCESS and FAILURE to stepd.

    Class attributes to change what is sent: `stepd_task_type` (the `taskType`;
    default: the task family) and `stepd_reporter` (a `Reporter`; default: one made
    from `STEPD_URL`, `STEPD_TOKEN`, `STEPD_ENVIRONMENT` at each report). Override
    `stepd_params()` to send other params than the significant Luigi parameters.
    """

    stepd_task_type: ClassVar[str | None] = None
    stepd_reporter: ClassVar[Reporter | None] = None

    def stepd_params(self) -> Mapping[str, Scalar]:
        """The params reported besides taskType, taskStatus and environment."""
        return task_params(self)


def _register(cls: type[luigi.Task], event: str, handler: _Handler) -> None:
    untyped: Any = cls  # Luigi's classmethods carry no type hints
    untyped.event_handler(event)(handler)


def _unregister(cls: type[luigi.Task], event: str, handler: _Handler) -> None:
    untyped: Any = cls
    with contextlib.suppress(KeyError):  # already removed (an equal installation's)
        untyped.remove_event_handler(event, handler)


_MIXIN_OUTAGES = Outages()  # the mixin's handlers are registered once, at import
for _event, _status in STATUSES.items():
    _register(StepdReported, _event, _Handler(_status, None, (StepdReported,), _MIXIN_OUTAGES))


@dataclass(frozen=True)
class Installation:
    """What `install` registered; `uninstall()` (or leaving a `with` block) removes it."""

    handlers: tuple[tuple[str, _Handler], ...]

    def uninstall(self) -> None:
        """Stop reporting: remove the callbacks from Luigi."""
        for event, handler in self.handlers:
            _unregister(luigi.Task, event, handler)

    def __enter__(self) -> Installation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()


def install(
    reporter: Reporter | None = None,
    *,
    tasks: Iterable[type[luigi.Task]] = (luigi.Task,),
    url: str | None = None,
    token: str | None = None,
    event_name: str | None = None,
    environment: str | None = None,
) -> Installation:
    """Report START, SUCCESS and FAILURE of every task of `tasks` (and their subclasses)
    run in this process from now on, through `reporter` (default: a `Reporter` from the
    environment) with `url`, `token`, `event_name`, `environment` replaced when given.

    Tasks that are `StepdReported` report themselves and are skipped, so nothing is
    reported twice. Call it before `luigi.build` / `luigi.run` (Luigi's worker
    processes, forked, inherit it).
    """
    chosen = reporter or Reporter()
    if url is not None:
        chosen = replace(chosen, url=url)
    if token is not None:
        chosen = replace(chosen, token=token)
    if event_name is not None:
        chosen = replace(chosen, event_name=event_name)
    if environment is not None:
        chosen = replace(chosen, environment=environment)
    classes = tuple(tasks)
    if not classes:
        raise ValueError("tasks is empty: name the luigi.Task classes to report")
    outages = Outages()  # shared by this installation's handlers
    handlers = tuple(
        (event, _Handler(status, chosen, classes, outages)) for event, status in STATUSES.items()
    )
    for event, handler in handlers:
        _register(luigi.Task, event, handler)
    return Installation(handlers)
