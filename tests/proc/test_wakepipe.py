"""`WakePipe`: an Event-like wake-up across `spawn`ed processes that no process, killed at
any moment, can make another block on (a `multiprocessing.Event`'s `set()` waits for every
sleeper to acknowledge, a dead one too: see tests/runner/test_wake_after_kill.py)."""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess

from stepd.proc.wakepipe import WakePipe
from stepd.runner.local import LocalConfig, LocalExecutor

SPAWN = multiprocessing.get_context("spawn")


def _wait_then_ack(wake: WakePipe, ack: WakePipe, ready: WakePipe) -> None:
    ready.set()
    if wake.wait(30):
        ack.set()


@contextmanager
def _child(wake: WakePipe, ack: WakePipe, ready: WakePipe) -> Iterator[BaseProcess]:
    """A spawned process that sets `ack` once `wake` is set, when it waits; killed at the end."""
    proc = SPAWN.Process(target=_wait_then_ack, args=(wake, ack, ready), daemon=True)
    proc.start()
    try:
        assert ready.wait(30), "the child did not start"
        time.sleep(0.05)  # from `ready` to inside `wake.wait`
        yield proc
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(10)


def _returns_within(seconds: float, call: object) -> bool:
    """Whether `call()` returns within `seconds` (in a thread: a hang must not hang the test)."""
    assert callable(call)
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def test_set_stays_set_for_every_look_until_cleared() -> None:
    wake = WakePipe()
    assert not wake.is_set()
    wake.set()
    wake.set()
    assert wake.is_set() and wake.is_set()
    assert wake.wait(0) and wake.wait(5)
    wake.clear()
    assert not wake.is_set()
    started = time.monotonic()
    assert not wake.wait(0.05)
    assert time.monotonic() - started >= 0.04


def test_set_never_blocks_when_nobody_reads_and_the_pipe_is_full() -> None:
    wake = WakePipe()
    assert _returns_within(30, lambda: [wake.set() for _ in range(200_000)])  # > 64 KiB
    assert wake.is_set()
    wake.clear()
    assert not wake.is_set()


def test_a_set_wakes_a_spawned_process_waiting_on_it_at_once() -> None:
    wake, ack, ready = WakePipe(), WakePipe(), WakePipe()
    with _child(wake, ack, ready):
        started = time.monotonic()
        wake.set()
        assert ack.wait(10), "the child was not woken"
        took = time.monotonic() - started
    assert took < 0.5, f"the wake-up took {took * 1000:.1f} ms"


def test_a_waiter_killed_mid_wait_leaves_set_and_wait_working_for_the_others() -> None:
    wake, ack, ready = WakePipe(), WakePipe(), WakePipe()
    with _child(wake, ack, ready) as killed:
        os.kill(killed.pid or 0, signal.SIGKILL)
        killed.join(10)
    assert _returns_within(5, wake.set), "set() blocked after its waiter was killed"
    wake.clear()
    ready.clear()
    with _child(wake, ack, ready):  # a restarted waiter, on the same pipe
        assert _returns_within(5, wake.set)
        assert ack.wait(10), "the restarted child was not woken"


def test_a_stop_nobody_clears_is_seen_by_every_process_sharing_it() -> None:
    stop = WakePipe()
    acks = [WakePipe() for _ in range(3)]
    readies = [WakePipe() for _ in range(3)]
    procs = [
        SPAWN.Process(target=_wait_then_ack, args=(stop, ack, ready), daemon=True)
        for ack, ready in zip(acks, readies, strict=True)
    ]
    for proc in procs:
        proc.start()
    try:
        assert all(ready.wait(30) for ready in readies)
        stop.set()
        assert all(ack.wait(10) for ack in acks), "a process missed the stop"
        assert stop.is_set()
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()


def test_works_on_descriptors_beyond_select_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:  # a process may raise its own soft limit up to the hard one
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1200, hard), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        wake = WakePipe()
        assert not wake.wait(0.01)
        wake.set()
        assert wake.wait(1)
        wake.close()
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_one_notify_wakes_every_local_worker_slot() -> None:
    # A byte in one shared pipe wakes one reader; every idle worker must look.
    executor = LocalExecutor(LocalConfig(database_url="sqlite://", tasks=()), workers=3)
    assert len({id(w) for w in executor.wakes}) == 3
    executor.notify()
    assert all(w.is_set() for w in executor.wakes)
    executor.wakes[0].clear()
    assert [w.is_set() for w in executor.wakes] == [False, True, True]
