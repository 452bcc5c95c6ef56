"""`stepd serve` stops when its whole process group gets SIGTERM, as systemd (KillMode=
control-group) and `timeout` send it: the server, its reactor process and its workers all
get the signal at once, and none of them may hang the shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from conftest import free_port


def test_sigterm_to_the_whole_process_group_stops_the_server(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "stepd", "serve", "--db", f"sqlite:///{tmp_path / 'stepd.db'}",
         "--port", str(port), "--workers", "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        time.sleep(1.0)  # the reactor process and the workers are up and waiting
        os.killpg(server.pid, signal.SIGTERM)
        code = server.wait(timeout=30)
        output = (tmp_path / "server.log").read_text()
        assert code in (0, -signal.SIGTERM), output
        assert "stepd stopped: the API, its loops and the store are closed" in output
        # Wake-ups and stops are pipes: no semaphore for the resource tracker to find leaked.
        assert "leaked" not in output, output
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
