"""Task types are user code: declared with helpers, found by scanning the modules given.

There is no global registry: `@task_type` marks a function, `command_task` and
`http_task` return values, and `load_task_types` collects whatever the modules
named by `--tasks` hold. A worker and a server given the same modules agree.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeVar

from stepd.domain.events import NAME_PATTERN as EVENT_NAME
from stepd.errors import InvalidInput
from stepd.pyfile import NotPython, import_file

F = TypeVar("F", bound=Callable[..., Any])
TYPE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
MARK = "__stepd_task_type__"
# `{name}` in an argv item, env value, cwd or URL is the param's value; `{{`, `}}` are braces.
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TaskFailure(Exception):
    """Raise from a Python task to end it in FAILURE (any other exception is EXCEPTION)."""


@dataclass(frozen=True, kw_only=True)
class TaskType:
    """A kind of task the runner can execute."""

    name: str  # what configs put in task_type
    kind: Literal["python", "command", "http"]
    function: Callable[..., Any] | None = None  # python: called with the task's params
    argv: tuple[str, ...] = ()  # command: `{param}` in an item is replaced by its value
    env: Mapping[str, str] = field(default_factory=dict)  # command: added to the environment
    cwd: str | None = None  # command: working directory
    # command: params whose value may start an argv item with `-` (True: any param)
    allow_option_values: bool | frozenset[str] = False
    url: str = ""  # http: where to send the params (`{param}` replaced, URL-quoted)
    method: str = "POST"  # http
    headers: Mapping[str, str] = field(default_factory=dict)  # http
    timeout_seconds: float = 60.0  # http: per request
    description: str = ""
    # The event its finished tasks report, instead of the deployment's status event name.
    status_event: str | None = None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"name": self.name, "kind": self.kind}
        if self.kind == "python" and self.function is not None:
            body["params"] = [
                {
                    "name": p.name,
                    "required": p.default is inspect.Parameter.empty,
                    "type": getattr(p.annotation, "__name__", str(p.annotation)),
                }
                for p in inspect.signature(self.function).parameters.values()
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            ]
        if self.kind in ("command", "http"):
            # The params it reads: the `{name}` placeholders, each required (as a string).
            body["params"] = [
                {"name": name, "required": True, "type": "str"} for name in self.placeholders()
            ]
        if self.kind == "command":
            body["argv"] = list(self.argv)
            if self.allow_option_values:
                allowed = self.allow_option_values
                body["allow_option_values"] = allowed is True or sorted(allowed)
        if self.kind == "http":
            body["url"], body["method"] = self.url, self.method
        if self.description:
            body["description"] = self.description
        if self.status_event:
            body["status_event"] = self.status_event
        return body

    def placeholders(self) -> list[str]:
        """The params a command or http type substitutes, in order of first use."""
        texts = [*self.argv, *self.env.values(), self.cwd or "", self.url]
        seen: dict[str, None] = {}
        for text in texts:
            for match in PLACEHOLDER.finditer(text):
                if match.group(1):
                    seen.setdefault(match.group(1), None)
        return list(seen)


def _check_name(name: str) -> str:
    if not TYPE_NAME.match(name):
        raise ValueError(f"task type name {name!r} may only use A-Z a-z 0-9 _ . : -")
    return name


def _check_event(status_event: str | None) -> str | None:
    if status_event is not None and not EVENT_NAME.fullmatch(status_event):
        raise ValueError(f"status_event {status_event!r} is not a valid event name")
    return status_event


def task_type(
    name: str, *, description: str = "", status_event: str | None = None
) -> Callable[[F], F]:
    """Declare a Python function as a task type; its typed parameters are the task's params.
    `status_event`: the event its tasks report when they end (default: the deployment's)."""
    _check_name(name)
    _check_event(status_event)

    def mark(function: F) -> F:
        doc = description or inspect.getdoc(function) or ""
        declared = TaskType(
            name=name, kind="python", function=function, description=doc, status_event=status_event
        )
        setattr(function, MARK, declared)
        return function

    return mark


def command_task(
    name: str,
    *,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    description: str = "",
    allow_option_values: bool | Collection[str] = False,
    status_event: str | None = None,
) -> TaskType:
    """A task type that runs a command (never through a shell); exit code 0 is SUCCESS.

    A param value that would start an argv item with `-` is refused (the program would
    read it as an option) unless the item follows a literal `--` item, or the param is
    named in `allow_option_values` (True allows it for every param).
    """
    if not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv must be a non-empty list of strings")
    return TaskType(
        name=_check_name(name),
        kind="command",
        argv=tuple(argv),
        allow_option_values=_option_params(allow_option_values, argv),
        env=dict(env or {}),
        cwd=cwd,
        description=description,
        status_event=_check_event(status_event),
    )


def _option_params(allowed: bool | Collection[str], argv: Sequence[str]) -> bool | frozenset[str]:
    if isinstance(allowed, bool):
        return allowed
    names = frozenset([allowed] if isinstance(allowed, str) else allowed)
    used = {m.group(1) for item in argv for m in PLACEHOLDER.finditer(item) if m.group(1)}
    unknown = sorted(names - used)
    if unknown:  # a typo would silently leave the param refused
        raise ValueError(f"allow_option_values names {unknown}, which argv does not use")
    return names


def http_task(
    name: str,
    *,
    url: str,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    timeout_seconds: float = 60.0,
    description: str = "",
    status_event: str | None = None,
) -> TaskType:
    """A task type that sends its params as a JSON body; a 2xx answer is SUCCESS."""
    return TaskType(
        name=_check_name(name),
        kind="http",
        url=url,
        method=method.upper(),
        headers=dict(headers or {}),
        timeout_seconds=timeout_seconds,
        description=description,
        status_event=_check_event(status_event),
    )


def _import(spec: str) -> ModuleType:
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise InvalidInput(f"--tasks {spec}: no such file")
        name = f"stepd_tasks_{abs(hash(str(path.resolve())))}"
        try:
            return import_file(path, name)
        except NotPython as exc:
            raise InvalidInput(f"--tasks {spec}: cannot load it as Python") from exc
    try:
        return importlib.import_module(spec)
    except ImportError as exc:
        raise InvalidInput(f"--tasks {spec}: cannot import it ({exc})") from exc


def load_task_types(specs: Sequence[str]) -> dict[str, TaskType]:
    """Every task type in the modules or files named by `specs`, by name."""
    found: dict[str, TaskType] = {}
    for spec in specs:
        module = _import(spec)
        for value in vars(module).values():
            declared = getattr(value, MARK, None) if callable(value) else None
            declared = value if isinstance(value, TaskType) else declared
            if not isinstance(declared, TaskType):
                continue
            if declared.name in found and found[declared.name] != declared:
                raise InvalidInput(f"task type {declared.name!r} is declared twice ({spec})")
            found[declared.name] = declared
    return found
