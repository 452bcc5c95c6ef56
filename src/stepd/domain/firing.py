"""What a firing launches: the task's params from the binding and the config's templates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stepd.domain.configs import ConfigSpec
from stepd.domain.events import format_event_id
from stepd.domain.matching import Dependency, Firing, MatchEvent
from stepd.domain.params import Scalar, is_scalar
from stepd.domain.templates import TemplateProblem, render_task_params
from stepd.errors import InvalidInput
from stepd.timeutil import iso

MAX_SEMAPHORE_NAME = 200  # the semaphores table's name column


def _event_view(event: MatchEvent) -> dict[str, object]:
    return {
        "id": format_event_id(event.seq),
        "name": event.name,
        "params": dict(event.params),
        "created": iso(event.created),
    }


def task_params_for(
    spec: ConfigSpec, firing: Firing, trigger: MatchEvent | None
) -> dict[str, object]:
    """The binding, with the config's task_params (rendered templates) added or overriding.

    `trigger` is None for a run by hand (no event fired it): a template then sees `event`
    as null and `deps` empty, and one that reads them fails as an undefined name would.
    Raises TemplateProblem when a template fails on this firing.
    """
    params: dict[str, object] = dict(firing.binding)
    if spec.task_params:
        params.update(render_task_params(spec.task_params, _context(firing, trigger)))
    return params


def _context(firing: Firing, trigger: MatchEvent | None) -> dict[str, object]:
    return {
        **firing.binding,
        "binding": dict(firing.binding),
        "event": None if trigger is None else _event_view(trigger),
        "deps": [_event_view(e) for e in firing.events],
    }


def task_semaphores(
    spec: ConfigSpec, firing: Firing, trigger: MatchEvent | None
) -> list[dict[str, object]] | None:
    """The semaphores a firing's task takes, names rendered where they are templates
    (`yt-{{ cluster }}` over the binding, as task_params are); None when no name is one
    (the config's own list then). Raises TemplateProblem for a template that fails or
    renders a name no semaphore may have."""
    if not any(use.templated for use in spec.semaphores):
        return None
    context = _context(firing, trigger)
    uses: list[dict[str, object]] = []
    for i, use in enumerate(spec.semaphores):
        body = use.to_json()
        if use.templated:
            where = f"semaphores[{i}].name"
            name = str(render_task_params({"name": use.name}, context, path=where[:-5])["name"])
            if not name.strip() or len(name) > MAX_SEMAPHORE_NAME or not name.isprintable():
                raise TemplateProblem(
                    where,
                    f"renders {name[:50]!r}, which is no semaphore name (1 to "
                    f"{MAX_SEMAPHORE_NAME} printable characters)",
                )
            body["name"] = name
        uses.append(body)
    return uses


def free_params(deps: Sequence[Dependency]) -> tuple[str, ...]:
    """The params a firing of a config with `deps` binds, in the order they first appear:
    every dependency's free (`~`/null) params, a join key once."""
    return tuple(dict.fromkeys(key for dep in deps for key in dep.free))


def manual_firing(spec: ConfigSpec, params: object) -> Firing:
    """The firing a run by hand with `params` stands for: a binding of exactly the config's
    free params (InvalidInput naming the missing, unknown or ill-typed ones), no events."""
    if not isinstance(params, Mapping):
        raise InvalidInput(
            'params must be an object: the binding, e.g. {"date": "2019-01-01"}', field="params"
        )
    free = free_params(spec.event_deps)
    missing = [key for key in free if key not in params]
    if missing:
        raise InvalidInput(
            f"params lacks {', '.join(map(repr, missing))}: a run needs every param a firing "
            f"of this config binds ({', '.join(free)})",
            field=f"params.{missing[0]}",
        )
    unknown = [key for key in params if key not in free]
    if unknown:
        binds = f"binds only {', '.join(free)}" if free else "binds no params"
        raise InvalidInput(
            f"params has {', '.join(map(repr, unknown))}, which this config does not bind "
            f"(it {binds}); constant params belong in its task_params",
            field=f"params.{unknown[0]}",
        )
    binding: dict[str, Scalar] = {}
    for key in free:
        value = params[key]
        if not is_scalar(value):
            raise InvalidInput(
                f"params.{key} must be a JSON scalar (string, number, true/false), as an "
                "event param is",
                field=f"params.{key}",
            )
        binding[key] = value
    return Firing(binding=binding, events=())
