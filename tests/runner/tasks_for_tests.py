"""Task types of the runner contract suite: `stepd serve --tasks tests/runner/tasks_for_tests.py`.

Every test on a shared server uses task types or params of its own, so these are
small and parametrised by what the test wants to see (a marker, a file to write).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from stepd import TaskFailure, command_task, http_task, task_type

log = logging.getLogger("tasks_for_tests")


def _write_atomically(path: Path, text: str) -> None:
    """The test polls for the file: it must never see it half written."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.rename(path)


@task_type("T_TYPED")
def typed(count: int, label: str, ratio: float = 0.5) -> dict[str, object]:
    """Typed params: `count` arrives as "3" from events and must reach the code as 3."""
    print(f"print says {label}")
    log.info("logging says %s", label)
    return {
        "count": count,
        "count_type": type(count).__name__,
        "double": count * 2,
        "label": label,
        "ratio": ratio,
    }


@task_type("T_ECHO")
def echo(marker: str, **rest: object) -> dict[str, object]:
    """Succeeds at once, printing its marker."""
    print(f"echo {marker}")
    return {"marker": marker, "rest": rest}


@task_type("T_RAISES")
def raises(marker: str) -> None:
    print(f"about to raise {marker}")
    raise ValueError(f"boom {marker}")


@task_type("T_FAILS")
def fails(marker: str) -> None:
    print(f"failing on purpose {marker}")
    raise TaskFailure(f"business failure {marker}")


@task_type("T_OWN_EVENT", status_event="ownTaskDone")
def own_event(marker: str) -> dict[str, object]:
    """Reports its end as `ownTaskDone`, not the deployment's status event."""
    return {"marker": marker}


@task_type("T_SLEEP")
def sleep(seconds: float, marker: str = "") -> dict[str, object]:
    print(f"sleeping {seconds}s {marker}", flush=True)
    time.sleep(seconds)
    return {"slept": seconds, "marker": marker}


@task_type("T_GATE")
def gate(path: str, seconds: float = 60.0) -> dict[str, object]:
    """Runs until `path` exists (at most `seconds`): a blocker that a test releases when it
    is ready, rather than one that ends after a guess of how long the test needs."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TaskFailure(f"{path} did not appear within {seconds} s")
        time.sleep(0.02)
    return {"opened": path}


@task_type("T_HOLD")
def hold(seconds: float, **rest: object) -> dict[str, object]:
    """Runs `seconds` whatever else a config's binding passes (its started and finished
    times then say what overlapped)."""
    time.sleep(seconds)
    return {"held": seconds, **rest}


@task_type("T_RECORD")
def record(journal: str, marker: str, seconds: float = 0.0) -> str:
    """Notes its start and end in a journal: the order tasks really ran in, by their own account."""
    with open(journal, "a") as out:  # O_APPEND: lines from several processes never interleave
        out.write(f"start {marker}\n")
    time.sleep(seconds)
    with open(journal, "a") as out:
        out.write(f"end {marker}\n")
    return marker


@task_type("T_SPAWN_AND_SLEEP")
def spawn_and_sleep(pid_file: str, seconds: float = 60.0) -> None:
    """Forks a grandchild (`sleep 300`) that must die with the task."""
    child = subprocess.Popen(["sleep", "300"])
    _write_atomically(Path(pid_file), str(child.pid))
    print(f"spawned sleep as pid {child.pid}", flush=True)
    time.sleep(seconds)


@task_type("T_HUGE_LOG")
def huge_log(megabytes: int, marker: str) -> dict[str, object]:
    line = "x" * 1023 + "\n"
    print(f"start {marker}", flush=True)
    for _ in range(megabytes * 1024):
        sys.stdout.write(line)
    sys.stdout.flush()
    return {"printed_bytes": megabytes * 1024 * 1024, "marker": marker}


@task_type("T_LINES")
def lines(count: int, marker: str) -> int:
    for i in range(count):
        print(f"{marker} line {i:04d}")
    return count


@task_type("T_CRASHABLE")
def crashable(state_dir: str, seconds: float = 60.0) -> dict[str, object]:
    """First attempt: says which worker runs it, then hangs; any later attempt succeeds.

    The horse is forked by the worker, so its parent pid is the worker's pid.
    """
    state = Path(state_dir)
    if (state / "worker.pid").exists():
        print("a later attempt: done at once", flush=True)
        return {"attempt": "again"}
    _write_atomically(state / "horse.pid", str(os.getpid()))
    _write_atomically(state / "worker.pid", str(os.getppid()))
    print(f"first attempt in worker {os.getppid()}; hanging", flush=True)
    time.sleep(seconds)
    return {"attempt": "first"}


@task_type("T_FILTERED")
def filtered(n: int, fail: bool = False) -> int:
    """Used only by the list-filter test, so that `type=T_FILTERED` is its own."""
    if fail:
        raise TaskFailure(f"failing {n} on purpose")
    return n


@task_type("T_CHAIN_A")
def chain_a(date: str) -> dict[str, str]:
    print(f"A for {date}")
    return {"step": "A", "date": date}


@task_type("T_CHAIN_B")
def chain_b(date: str) -> dict[str, str]:
    print(f"B for {date}")
    return {"step": "B", "date": date}


@task_type("T_CHAIN_C")
def chain_c(date: str) -> dict[str, str]:
    print(f"C for {date}")
    return {"step": "C", "date": date}


# Prints its arguments as JSON: one param must stay one argument, whatever it holds.
cmd_argv = command_task(
    "T_CMD_ARGV",
    argv=[
        sys.executable,
        "-c",
        "import json, sys; print('argv=' + json.dumps(sys.argv[1:]))",
        "{value}",
    ],
)

_EXIT_SCRIPT = (
    "import sys\n"
    "print('out-' + sys.argv[1], flush=True)\n"
    "print('err-' + sys.argv[1], file=sys.stderr, flush=True)\n"
    "sys.exit(int(sys.argv[2]))\n"
)
# Writes to stdout and stderr, then exits with the code asked for.
cmd_exit = command_task(
    "T_CMD_EXIT", argv=[sys.executable, "-c", _EXIT_SCRIPT, "{token}", "{code}"]
)

# A program with an option that does something (as ssh's -oProxyCommand runs a command):
# `--touch PATH` creates PATH. Its positional argument only prints.
_OPTIONS_SCRIPT = (
    "import argparse, pathlib\n"
    "parser = argparse.ArgumentParser()\n"
    "parser.add_argument('--touch')\n"
    "parser.add_argument('name', nargs='?')\n"
    "args = parser.parse_args()\n"
    "if args.touch:\n"
    "    pathlib.Path(args.touch).touch()\n"
    "print('name=' + repr(args.name))\n"
)
cmd_options = command_task("T_CMD_OPTIONS", argv=[sys.executable, "-c", _OPTIONS_SCRIPT, "{name}"])
cmd_options_after_dashes = command_task(
    "T_CMD_OPTIONS_DASHES", argv=[sys.executable, "-c", _OPTIONS_SCRIPT, "--", "{name}"]
)
cmd_options_allowed = command_task(
    "T_CMD_OPTIONS_ALLOWED",
    argv=[sys.executable, "-c", _OPTIONS_SCRIPT, "{name}"],
    allow_option_values=("name",),
)
cmd_options_embedded = command_task(
    "T_CMD_OPTIONS_EMBEDDED",
    argv=[sys.executable, "-c", _OPTIONS_SCRIPT, "--touch={path}"],
    cwd="{dir}",
)

# Posts its params to the test's HTTP server, which answers with the status in the path.
http_hook = http_task(
    "T_HTTP", url="http://127.0.0.1:{port}/{code}", method="POST", timeout_seconds=10
)
