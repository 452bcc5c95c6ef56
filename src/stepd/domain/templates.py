"""Task params templated from a firing: Jinja2 in a sandbox, never code execution.

Event params are untrusted: a template sees plain data (the binding, the matched
events) in an immutable sandbox, and anything undefined is an error rather than
an empty string, so a typo shows up on the story instead of launching a task with
a blank parameter. The sandbox is bounded too (template_limits.py): no template can
make a value over MAX_RENDERED_LENGTH characters, an integer of thousands of digits,
or loop without end, and whatever goes wrong in a render is a TemplateProblem.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError

from stepd.domain.template_limits import (
    MAX_OUTPUT,
    BoundedEnvironment,
    end_loop_budget,
    loop_budget,
)

MAX_RENDERED_LENGTH = MAX_OUTPUT


class TemplateProblem(ValueError):
    """A template that does not parse or does not render; `field` names where it is."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@lru_cache(maxsize=1)
def _env() -> BoundedEnvironment:
    return BoundedEnvironment(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=4096)
def _compile(source: str):  # type: ignore[no-untyped-def]
    return _env().from_string(source)


def _strings(value: object, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{path}[{i}]")]
    return []


def check_templates(task_params: Mapping[str, object], *, path: str = "task_params") -> None:
    """Raise TemplateProblem for the first string that does not parse as a template."""
    for field, source in _strings(dict(task_params), path):
        try:
            _compile(source)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(field, f"template does not parse: {exc.message}") from exc


def _render_text(source: str, context: Mapping[str, object], path: str) -> str:
    # Streamed, so that output past the cap is never gathered: a loop printing a little
    # each time stops at the cap, not after it built the whole text.
    parts: list[str] = []
    size = 0
    budget = loop_budget()
    try:
        for part in _compile(source).generate(context):
            size += len(part)
            if size > MAX_RENDERED_LENGTH:
                raise TemplateProblem(
                    path, f"rendered value is over {MAX_RENDERED_LENGTH} characters"
                )
            parts.append(part)
    except TemplateProblem:
        raise
    except TemplateError as exc:
        raise TemplateProblem(path, f"template failed: {exc}") from exc
    except Exception as exc:  # 1/0, int('x'), a limit: anything a template can raise
        raise TemplateProblem(path, f"template failed: {type(exc).__name__}: {exc}") from exc
    finally:
        end_loop_budget(budget)
    return "".join(parts)


def _render(value: object, context: Mapping[str, object], path: str) -> object:
    if isinstance(value, str):
        if "{" not in value:
            return value  # no template syntax: skip the engine on the common case
        return _render_text(value, context, path)
    if isinstance(value, dict):
        return {k: _render(v, context, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, context, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def render_task_params(
    task_params: Mapping[str, object],
    context: Mapping[str, object],
    *,
    path: str = "task_params",
) -> dict[str, object]:
    """Each value rendered over `context` (strings are templates; other JSON passes through)."""
    return {k: _render(v, context, f"{path}.{k}") for k, v in task_params.items()}
