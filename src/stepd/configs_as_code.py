"""Configs as code: a Python module declares action configs; `stepd configs sync` applies them.

A team keeps its configs in its own repository, in a module such as
`action_configs.py` with a module-level list `CONFIGS`. Each item is a dict in the
API's config shape (docs/configs.md), written by hand or with the helpers here:

    from stepd.configs_as_code import FREE, config, dep

    CONFIGS = [
        config(
            "human-matching-after-soup",
            task_type="CRYPTA_GRAPH_HUMAN_MATCHING_YAML",
            deps=[dep("cryptaTaskEvent", taskType="CRYPTA_GRAPH_PREPARE_SOUP_YAML",
                      taskStatus="SUCCESS", environment="stable", date=FREE)],
            max_retries=2,
        ),
    ]

Loading the module needs no server: it is imported from its path, and every config
is parsed by the server's own parser (`stepd.domain.configs.parse_config`), so a
config the parser refuses is reported before anything is sent. `plan` compares the
declared configs with the author's stored ones by name; both sides go through the
same parser, so read-only fields (`_id`, `author`, `version`, `created`, `updated`)
and omitted defaults never count as changes.
"""

from __future__ import annotations

import json
import sys
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

from stepd.domain.config_diff import change_lines
from stepd.domain.configs import READ_ONLY, ConfigSpec, parse_config
from stepd.errors import StepdError
from stepd.pyfile import NotPython, import_file

__all__ = [
    "FREE",
    "ConfigBody",
    "ConfigsFileError",
    "Declared",
    "DepBody",
    "Step",
    "change_lines",
    "config",
    "dep",
    "load_configs",
    "plan",
    "server_problems",
]

FREE = "~"
"""A free dependency param: matches any value, binds it, and joins on it."""

ATTRIBUTE = "CONFIGS"  # the module-level list a configs module declares

Action = Literal["created", "updated", "unchanged", "deleted", "kept"]


class DepBody(TypedDict):
    """One dependency: events named `name` whose params match `params`."""

    name: str
    params: dict[str, object]


class ConfigBody(TypedDict, total=False):
    """A config in the API's shape; every field but `event_deps` and `task_type` may be
    left out and then takes its default (docs/configs.md#fields)."""

    name: str
    description: str
    enabled: bool
    event_deps: list[DepBody]
    action_type: str
    task_type: str
    task_params: dict[str, object]
    action_params: dict[str, object]
    semaphores: list[str | dict[str, object]]
    priority: int
    kill_timeout: int | None
    max_retries: int
    window: str | int | None


def dep(name: str, params: Mapping[str, object] | None = None, /, **more: object) -> DepBody:
    """A dependency on events named `name`: `dep("e", date=FREE, logtype="access-log")`.

    Params that are not Python names go in the mapping: `dep("e", {"log-type": "x"})`.
    """
    merged = {**(params or {}), **more}
    return {"name": name, "params": merged}


def config(
    name: str,
    *,
    task_type: str,
    deps: Sequence[DepBody],
    task_params: Mapping[str, object] | None = None,
    description: str = "",
    enabled: bool = True,
    semaphores: Sequence[str | Mapping[str, object]] = (),
    priority: int = 0,
    kill_timeout: int | None = None,
    max_retries: int = 0,
    window: str | int | None = None,
    action_params: Mapping[str, object] | None = None,
) -> ConfigBody:
    """A config dict in the API's shape; the defaults are the server's."""
    return {
        "name": name,
        "description": description,
        "enabled": enabled,
        "event_deps": [{"name": d["name"], "params": dict(d["params"])} for d in deps],
        "task_type": task_type,
        "task_params": dict(task_params or {}),
        "action_params": dict(action_params or {}),
        "semaphores": [s if isinstance(s, str) else dict(s) for s in semaphores],
        "priority": priority,
        "kill_timeout": kill_timeout,
        "max_retries": max_retries,
        "window": window,
    }


class ConfigsFileError(StepdError):
    """The configs module cannot be used: missing, not importable, or a config is invalid."""

    code = "invalid_configs_file"


@dataclass(frozen=True, kw_only=True)
class Declared:
    """One config of the module, as written and as parsed."""

    index: int  # its place in CONFIGS
    body: dict[str, Any]  # as written, as JSON: what is sent to the server
    spec: ConfigSpec  # as parsed: what is compared

    @property
    def name(self) -> str:
        return self.spec.name


def _import(path: Path) -> object:
    """The module at `path`, imported under a private name; its folder is importable
    while it runs, so that it can import its neighbours."""
    if not path.exists():
        raise ConfigsFileError(f"{path}: no such file")
    if not path.is_file():
        raise ConfigsFileError(f"{path}: not a file (give the .py module that declares CONFIGS)")
    name = f"_stepd_configs_{uuid.uuid4().hex}"
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        return import_file(path, name)
    except NotPython as exc:
        raise ConfigsFileError(
            f"{path}: cannot be imported as a Python module (is it a .py file?)"
        ) from exc
    except Exception as exc:
        raise ConfigsFileError(f"cannot import {path}: {_describe(exc, path)}") from exc
    finally:
        sys.path.remove(folder)
        sys.modules.pop(name, None)  # read once: nothing needs it after


def _describe(exc: BaseException, path: Path) -> str:
    """The exception as Python prints its last line, with the line of `path` it came from."""
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if isinstance(exc, SyntaxError):
        return text
    here = str(path.resolve())
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == here]
    return f"{text} (line {lines[-1]})" if lines else text


def load_configs(path: Path) -> list[Declared]:
    """The configs `path` declares in CONFIGS, parsed; ConfigsFileError lists every problem.

    Needs no server. A config must be a mapping in the API's shape, JSON-serialisable,
    valid for `parse_config`, and named uniquely in the module.
    """
    module = _import(path)
    raw = getattr(module, ATTRIBUTE, None)
    if raw is None:
        raise ConfigsFileError(
            f"{path} defines no {ATTRIBUTE}: declare a module-level list, "
            f"{ATTRIBUTE} = [config(...), ...] (see docs/configs.md#configs-as-code)"
        )
    if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Sequence):
        raise ConfigsFileError(
            f"{path}: {ATTRIBUTE} must be a list of configs, not {type(raw).__name__}"
        )
    problems: list[str] = []
    declared: list[Declared] = []
    first_of: dict[str, int] = {}
    for i, item in enumerate(raw):
        where = f"{ATTRIBUTE}[{i}]"
        if not isinstance(item, Mapping):
            problems.append(
                f"{where} is a {type(item).__name__}, not a mapping: a config is a dict "
                "in the API's shape"
            )
            continue
        name = item.get("name")
        label = f"{where} ({name!r})" if isinstance(name, str) else where
        try:
            # What is checked is what is sent: tuples become lists, and so on.
            body = json.loads(json.dumps(dict(item), allow_nan=False))
        except (TypeError, ValueError) as exc:
            problems.append(f"{label}: not JSON: {exc}")
            continue
        try:
            spec = parse_config(body)
        except StepdError as exc:
            problems.append(f"{label}: {exc.message}")
            continue
        if spec.name in first_of:
            problems.append(
                f"{label}: the name {spec.name!r} is already used by "
                f"{ATTRIBUTE}[{first_of[spec.name]}]; names are unique per author"
            )
            continue
        first_of[spec.name] = i
        declared.append(Declared(index=i, body=body, spec=spec))
    if problems:
        if len(problems) == 1:
            raise ConfigsFileError(f"{path}: {problems[0]}")
        listed = "\n  ".join(problems)
        raise ConfigsFileError(f"{path} has {len(problems)} problems:\n  {listed}")
    return declared


def comparable(stored: Mapping[str, Any]) -> dict[str, object]:
    """A config as the server returns it, without its read-only fields, normalised
    through the same parser as the declared ones (raw when this client cannot parse it)."""
    body = {k: v for k, v in stored.items() if k not in READ_ONLY}
    try:
        return parse_config(body).to_json()
    except StepdError:
        return body


@dataclass(frozen=True, kw_only=True)
class Step:
    """What sync does (or, in a dry run, would do) to one config."""

    name: str
    action: Action  # created, updated, unchanged, deleted (pruned), kept (not in the file)
    config_id: str | None  # the stored config's id (None until a new one is created)
    body: dict[str, Any] | None = None  # what is sent: the declared config
    changes: dict[str, dict[str, object]] = field(default_factory=dict)  # field: {old, new}

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "action": self.action,
            "id": self.config_id,
            "changes": self.changes,
        }


def plan(
    declared: Sequence[Declared], stored: Sequence[Mapping[str, Any]], *, prune: bool
) -> list[Step]:
    """Declared configs in file order (created, updated or unchanged), then the stored
    ones the file does not name (deleted when `prune`, else kept)."""
    by_name = {str(s.get("name")): s for s in stored}
    steps: list[Step] = []
    for item in declared:
        old = by_name.get(item.name)
        if old is None:
            steps.append(Step(name=item.name, action="created", config_id=None, body=item.body))
            continue
        before, after = comparable(old), item.spec.to_json()
        changes = {
            k: {"old": before.get(k), "new": v} for k, v in after.items() if before.get(k) != v
        }
        if set(before) - set(after):  # a field this client does not know: let the PUT decide
            changes.update({k: {"old": before[k], "new": None} for k in set(before) - set(after)})
        steps.append(
            Step(
                name=item.name,
                action="updated" if changes else "unchanged",
                config_id=str(old.get("_id")),
                body=item.body,
                changes=changes,
            )
        )
    names = {d.name for d in declared}
    for old in stored:
        name = str(old.get("name"))
        if name not in names:
            action: Action = "deleted" if prune else "kept"
            steps.append(Step(name=name, action=action, config_id=str(old.get("_id"))))
    return steps


Validate = Callable[[Sequence[Mapping[str, Any]]], list[dict[str, Any]]]


def server_problems(
    declared: Sequence[Declared],
    steps: Sequence[Step],
    validate: Validate,
    warned: list[str] | None = None,
) -> list[str]:
    """Why the server would refuse the configs `steps` send (created or updated), in the
    server's own words: `validate` is `Client.validate_configs` (POST /configs/validate),
    which runs the checks `create` runs (event descriptions, semaphores). What it would
    take but warns of (a task type no live worker runs) is appended to `warned`."""
    sent = {s.name for s in steps if s.action in ("created", "updated")}
    checked = [item for item in declared if item.name in sent]
    if not checked:
        return []
    problems: list[str] = []
    for item, answer in zip(checked, validate([item.body for item in checked]), strict=True):
        label = f"{ATTRIBUTE}[{item.index}] ({item.name!r})"
        if warned is not None:
            warned.extend(f"{label}: {w}" for w in answer.get("warnings") or ())
        if not answer.get("ok"):
            where = f" [{answer['field']}]" if answer.get("field") else ""
            problems.append(f"{label}: {answer.get('message')}{where}")
    return problems
