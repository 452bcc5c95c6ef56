"""The log lines of stepd's long-running commands: plain text, or one JSON object a line
(`--log-format json`, python-json-logger), both carrying the ids of what a line is about.

A line is about an event, a config, a task's attempt, a worker, an HTTP request: those ids
come from `extra=` (`log.info(..., extra=ids(task_id=3))`) or from the ones bound for the
code running now (`bound(request_id=...)`, a contextvar, so a request's id follows it into
the thread pool). `IdsFilter` puts them on every record of the handler: JSON shows each as
a key, the plain format appends them as `[task_id=3 attempt=1]`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Literal

LogFormat = Literal["plain", "json"]

# The ids a line may carry, in the order the plain format shows them.
IDS = ("request_id", "event_id", "config_id", "task_id", "attempt", "worker")

PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s%(ids)s"
# JSON keys: time, level, logger, message, then the ids present (and any other extra).
JSON = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}

_NONE: Mapping[str, object] = MappingProxyType({})
_bound: ContextVar[Mapping[str, object]] = ContextVar("stepd_log_ids", default=_NONE)


def ids(**given: object) -> dict[str, object]:
    """`extra=` for a log call: the ids given that are not None."""
    return {k: v for k, v in given.items() if v is not None}


@contextmanager
def bound(**given: object) -> Iterator[None]:
    """Ids every line logged in this block carries (in this thread, and in the tasks and
    threads it starts with a copy of its context)."""
    token = _bound.set({**_bound.get(), **ids(**given)})
    try:
        yield
    finally:
        _bound.reset(token)


def bind(**given: object) -> None:
    """Ids every later line of this context carries (a process's worker name, say)."""
    _bound.set({**_bound.get(), **ids(**given)})


class IdsFilter(logging.Filter):
    """Puts the bound ids on each record (its own `extra=` ones win), and `ids`, their
    text for the plain format."""

    def filter(self, record: logging.LogRecord) -> bool:
        found = record.__dict__
        for key, value in _bound.get().items():
            found.setdefault(key, value)
        shown = [f"{k}={found[k]}" for k in IDS if found.get(k) is not None]
        record.ids = f" [{' '.join(shown)}]" if shown else ""
        return True


def formatter(log_format: LogFormat, plain: str = PLAIN) -> logging.Formatter:
    if log_format == "json":
        from pythonjsonlogger.core import RESERVED_ATTRS
        from pythonjsonlogger.json import JsonFormatter

        json_formatter = JsonFormatter(
            JSON,
            rename_fields=JSON_RENAMES,
            reserved_attrs=[*RESERVED_ATTRS, "ids"],  # `ids` is the plain format's text
            json_ensure_ascii=False,
        )
        # ISO 8601 in UTC with milliseconds (2026-12-06T21:19:04.123Z): what log stores parse.
        json_formatter.converter = time.gmtime
        json_formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
        json_formatter.default_msec_format = "%s.%03dZ"
        return json_formatter
    return logging.Formatter(plain)


def start(level: str, log_format: LogFormat, *, plain: str = PLAIN) -> None:
    """The root logger of this process: one handler on stderr, in `log_format`. Every
    logger propagates to it, uvicorn's too (it is started without a config of its own)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format, plain))
    handler.addFilter(IdsFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step
    if log_format == "json":
        logging.captureWarnings(True)  # a library's warning is a line of JSON too
