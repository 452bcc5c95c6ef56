"""A task's params against its type's parameter schema, as its workers describe it
(`GET /api/v1/task_types`: `params: [{name, required, type}]`).

Checked where params are given for a task that exists (a rerun with new params), so that a
value the type cannot take is a 400 now, not an EXCEPTION on a worker later. The schema
names only the params a type declares; a Python type may also take `**kwargs`, which it
cannot show, so a param it does not name is warned of, not refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import TypeAdapter, ValidationError

from stepd.errors import InvalidInput

# The annotations a schema names that can be checked here (the worker coerces as these do:
# runner/params.py call_args, "3" fits an int).
CHECKABLE: dict[str, TypeAdapter[object]] = {
    "str": TypeAdapter(str),
    "int": TypeAdapter(int),
    "float": TypeAdapter(float),
    "bool": TypeAdapter(bool),
}


def check_params(
    task_type: str,
    described: Mapping[str, object] | None,
    params: Mapping[str, object],
    changed: Mapping[str, object],
) -> list[str]:
    """Warnings about `params` (a task's whole params, `changed` the ones just given);
    InvalidInput naming the param that the type `described` (`GET /task_types`'s entry)
    cannot take. None: the type is not known here, and nothing can be checked.

    Values are checked against the annotations of a Python type only: a command or an
    http type substitutes any scalar as text, its `str` is a placeholder's, not a rule.
    """
    declared = described.get("params") if described is not None else None
    if not isinstance(declared, Sequence):
        return []
    named = {str(p.get("name")): p for p in declared if isinstance(p, Mapping)}
    typed = described is not None and described.get("kind") == "python"
    for name, entry in named.items():
        if entry.get("required") and name not in params:
            raise InvalidInput(
                f"task type {task_type!r} requires param {name!r}", field=f"params.{name}"
            )
    for name, value in changed.items():
        annotation = str(named[name].get("type")) if typed and name in named else None
        adapter = None if annotation is None else CHECKABLE.get(annotation)
        if adapter is None:
            continue
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"] if exc.errors() else str(exc)
            raise InvalidInput(
                f"param {name!r}={value!r} does not fit task type {task_type!r} (it declares "
                f"{name}: {annotation}): {problem}",
                field=f"params.{name}",
            ) from exc
    unknown = sorted(set(changed) - set(named))
    if not unknown:
        return []
    return [
        f"task type {task_type!r} declares no param {', '.join(map(repr, unknown))} "
        f"(it declares {', '.join(sorted(named)) or 'none'}); it is passed on all the same"
    ]
