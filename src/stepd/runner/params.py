"""Fitting a task's params to its type: typed Python parameters, argv and URL substitution."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter, ValidationError

PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


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
