"""What a firing launches: the task's params from the binding and the config's templates."""

from __future__ import annotations

from stepd.domain.configs import ConfigSpec
from stepd.domain.events import format_event_id
from stepd.domain.matching import Firing, MatchEvent
from stepd.domain.templates import render_task_params
from stepd.timeutil import iso


def _event_view(event: MatchEvent) -> dict[str, object]:
    return {
        "id": format_event_id(event.seq),
        "name": event.name,
        "params": dict(event.params),
        "created": iso(event.created),
    }


def task_params_for(spec: ConfigSpec, firing: Firing, trigger: MatchEvent) -> dict[str, object]:
    """The binding, with the config's task_params (rendered templates) added or overriding.

    Raises TemplateProblem when a template fails on this firing.
    """
    params: dict[str, object] = dict(firing.binding)
    if spec.task_params:
        context = {
            **firing.binding,
            "binding": dict(firing.binding),
            "event": _event_view(trigger),
            "deps": [_event_view(e) for e in firing.events],
        }
        params.update(render_task_params(spec.task_params, context))
    return params
