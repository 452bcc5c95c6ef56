"""The Jinja2 environment of the UI: autoescaped templates and the filters they use.

Event params are untrusted input, so every template is autoescaped and no filter
returns markup: what a client sent is always shown as text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources

from jinja2 import Environment, PackageLoader

from stepd.display import value_text, when

STATUS_CLASSES = {
    "SUCCESS": "ok",
    "PROCESSED": "ok",
    "FAILURE": "bad",
    "EXCEPTION": "bad",
    "TIMEOUT": "bad",
    "REJECTED": "bad",
    "EXECUTING": "run",
    "ENQUEUED": "wait",
    "WAIT_MUTEX": "wait",
    "NEW": "wait",
    "STOPPED": "off",
    "deleted": "off",  # a config's tombstone (its page, its tasks)
}
OUTCOME_CLASSES = {
    "fired": "ok",
    "waiting": "wait",
    "pending": "wait",
    "not_matched": "bad",
    "disabled": "off",
    "not_fired": "off",
}
STATIC_FILES = {"style.css": "text/css", "app.js": "text/javascript"}


def condition(value: object) -> str:
    """A dependency param's condition: `~` for a free param, else the value or operator."""
    if value is None or value == "~":
        return "~"
    if isinstance(value, Mapping):
        return " ".join(f"{k}:{value_text(v)}" for k, v in value.items())
    return value_text(value)


def pretty(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False)


def status_class(value: object) -> str:
    return STATUS_CLASSES.get(str(value), "")


def outcome_class(value: object) -> str:
    return OUTCOME_CLASSES.get(str(value), "")


def make_env() -> Environment:
    env = Environment(
        loader=PackageLoader("stepd.ui", "templates"),
        autoescape=True,  # params are untrusted: never off
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        value=value_text,
        when=when,
        condition=condition,
        pretty=pretty,
        status_class=status_class,
        outcome_class=outcome_class,
    )
    return env


def static_file(name: str) -> bytes | None:
    """A file of `stepd/ui/static` (package data), or None if it is not one we serve."""
    if name not in STATIC_FILES:
        return None
    return resources.files("stepd.ui").joinpath("static", name).read_bytes()
