"""Fitting a task's params to its type: typed Python parameters, argv and URL substitution."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter, ValidationError

from stepd.runner.registry import PLACEHOLDER


class ParamsMismatch(ValueError):
    """The params do not fit the task type; the message names the param."""


def call_args(function: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for `function`, each validated (and coerced) to its annotation.

    "3" becomes 3 for an `int` parameter, as event params arrive as strings; a
    missing required param or a value that does not fit names the param.
    """
    signature = inspect.signature(function)
    hints = typing.get_type_hints(function)
    args: dict[str, Any] = {}
    takes_rest = False
    for name, parameter in signature.parameters.items():
        if parameter.kind is parameter.VAR_KEYWORD:
            takes_rest = True
            continue
        if parameter.kind is parameter.VAR_POSITIONAL:
            continue
        if name not in params:
            if parameter.default is parameter.empty:
                raise ParamsMismatch(f"missing param {name!r} (required by {function.__name__})")
            continue
        value = params[name]
        if name in hints:
            try:
                value = TypeAdapter(hints[name]).validate_python(value)
            except ValidationError as exc:
                problem = exc.errors()[0]["msg"] if exc.errors() else str(exc)
                raise ParamsMismatch(f"param {name!r}={value!r} does not fit: {problem}") from exc
        args[name] = value
    if takes_rest:
        args.update({k: v for k, v in params.items() if k not in args})
    return args


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def substitute(template: str, params: Mapping[str, Any], *, quote_values: bool = False) -> str:
    """Replace `{name}` with the param's value; `{{`/`}}` are literal braces.

    Only plain names: no attribute or index access (unlike str.format), so a
    template cannot reach into objects. The value is inserted as one string;
    in an argv item it stays one argument, however it is spelt.
    """

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = match.group(1)
        if name not in params:
            raise ParamsMismatch(f"missing param {name!r} (used in {template!r})")
        text = _text(params[name])
        return quote(text, safe="") if quote_values else text

    return PLACEHOLDER.sub(replace, template)


def _leading_param(template: str, params: Mapping[str, Any]) -> str | None:
    """The param whose value starts the substituted `template`; None when literal text does."""
    at = 0
    for match in PLACEHOLDER.finditer(template):
        if match.start() > at:
            return None  # literal text comes first
        at = match.end()
        name = match.group(1)
        if name is None:
            return None  # `{{`: a literal brace
        if _text(params.get(name)):
            return name
    return None


def command_argv(
    template: Sequence[str],
    params: Mapping[str, Any],
    *,
    allow_option_values: bool | Collection[str] = False,
) -> list[str]:
    """The argv of a command task: each item substituted, option-looking values refused.

    A program reads an argument that starts with `-` as an option, so a param whose value
    begins an argv item with `-` (`host="-oProxyCommand=..."` for `ssh {host}`) could
    change what the program does. Such a value is refused, naming the param, unless the
    item comes after a literal `--` item (the end of options for most programs) or the
    task type allows it (`allow_option_values`: True, or the names of the params).
    An item that starts with literal text (`--host={host}`) is never refused.
    """
    argv: list[str] = []
    options_end = False
    for item in template:
        text = substitute(item, params)
        if not options_end and text.startswith("-"):
            name = _leading_param(item, params)
            allowed = allow_option_values is True or (
                not isinstance(allow_option_values, bool) and name in allow_option_values
            )
            if name is not None and not allowed:
                raise ParamsMismatch(
                    f"param {name!r}={_text(params[name])!r} starts with '-', so the program "
                    f"would read it as an option; put a literal '--' item before {item!r} "
                    f"in argv, or declare the task type with allow_option_values=({name!r},)"
                )
        if item == "--":
            options_end = True
        argv.append(text)
    return argv
