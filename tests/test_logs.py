"""stepd.logs: both formats carry the ids of a line, from `extra=` and from `bound`."""

from __future__ import annotations

import io
import json
import logging
import re

from stepd import logs


def _line(log_format: logs.LogFormat, emit: object = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(log_format))
    handler.addFilter(logs.IdsFilter())
    log = logging.getLogger(f"stepd.test_logs.{log_format}")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        with logs.bound(request_id="r-1", worker="w-1"):
            log.info("task %s ended", 7, extra=logs.ids(task_id=7, attempt=2, config_id=None))
        log.info("nothing bound")
    finally:
        log.removeHandler(handler)
    return stream.getvalue()


def test_json_lines_have_time_level_logger_message_and_the_ids() -> None:
    first, second = (json.loads(line) for line in _line("json").splitlines())
    assert first["message"] == "task 7 ended"
    assert first["level"] == "INFO"
    assert first["logger"] == "stepd.test_logs.json"
    assert re.fullmatch(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert {k: first[k] for k in ("request_id", "worker", "task_id", "attempt")} == {
        "request_id": "r-1",
        "worker": "w-1",
        "task_id": 7,
        "attempt": 2,
    }
    assert "config_id" not in first and "ids" not in first  # None ids are left out
    assert "request_id" not in second  # bound ids end with their block


def test_plain_lines_carry_the_same_ids() -> None:
    first, second = _line("plain").splitlines()
    assert first.endswith("task 7 ended [request_id=r-1 task_id=7 attempt=2 worker=w-1]")
    assert second.endswith("stepd.test_logs.plain: nothing bound")
