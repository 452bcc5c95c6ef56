"""proc/loop.py: the daemon's background loops (dispatcher, supervisor, clock) share it."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from stepd.proc import loop as loop_module
from stepd.proc.loop import Loop, backoff


def test_the_backoff_doubles_from_one_second_to_thirty() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4, 5, 6, 7, 100)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_step_runs_again_after_its_wait_or_at_once_when_notified(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds: list[float] = []
    second = threading.Event()

    def step() -> float:
        rounds.append(time.monotonic())
        if len(rounds) >= 2:
            second.set()
        return 60.0  # a long wait: only a notify brings the next round soon

    caplog.set_level(logging.INFO, logger="stepd.proc.loop")
    loop = Loop("test-loop", step)
    loop.start()
    try:
        deadline = time.monotonic() + 5
        while not rounds and time.monotonic() < deadline:
            time.sleep(0.01)
        loop.notify()
        assert second.wait(5), "notify did not wake the loop"
    finally:
        loop.stop(5, reason="the test is done")
    assert not loop.alive
    messages = [r.getMessage() for r in caplog.records]
    assert "test-loop started" in messages
    assert "test-loop stopped: the test is done" in messages


def test_a_failing_step_is_logged_and_retried_after_a_backoff(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop_module, "BACKOFF_FIRST_SECONDS", 0.01)
    calls: list[int] = []
    recovered = threading.Event()

    def step() -> float:
        calls.append(1)
        if len(calls) <= 3:
            raise RuntimeError("the store is away")
        recovered.set()
        return 60.0

    loop = Loop("flaky-loop", step, what="round")
    loop.start()
    try:
        assert recovered.wait(5), "the loop did not retry after failures"
    finally:
        loop.stop(5)
    failures = [r for r in caplog.records if "round failed" in r.getMessage()]
    assert [r.getMessage().split(" (")[1].split(")")[0] for r in failures] == [
        "1 in a row",
        "2 in a row",
        "3 in a row",
    ]
    assert all(r.exc_info is not None for r in failures)  # with the traceback
