"""The servers of a kill -9 loop: one or more `stepd serve` on one database, and the
killing of their processes.

A killed server is started again (on a new port) by the loop, as its supervisor
(systemd) would. A killed reactor process or worker is restarted by its server, and a
killed work horse by its worker: the loop only waits for the replacement.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conftest import LiveServer, start_server
from fault_procs import children_named, comm, gone, horses_of, kill9

KINDS = ("server", "reactor", "worker", "horse")
WORKERS = 2  # local worker processes per server
READY_SECONDS = 45.0


@dataclass
class Node:
    """One server slot: the server running in it now, and how many times it was started."""

    index: int
    live: LiveServer
    starts: int = 1
    up: bool = True


@dataclass
class Cluster:
    db_url: str
    tmp: Path
    server_args: tuple[str, ...]
    nodes: list[Node] = field(default_factory=list)
    kills: Counter[str] = field(default_factory=Counter)
    log: list[str] = field(default_factory=list)  # what was killed, when: for failure messages
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _began: float = field(default_factory=time.monotonic)

    def start(self, count: int) -> None:
        for index in range(count):
            self.nodes.append(Node(index=index, live=self._start(index, 1)))
        for node in self.nodes:
            self.wait_ready(node)

    def _start(self, index: int, starts: int) -> LiveServer:
        log = self.tmp / f"server-{index}-{starts}.log"
        return start_server(self.db_url, log, *self.server_args)

    def urls(self) -> list[str]:
        """Where a client may send requests now (servers being restarted are left out)."""
        with self._lock:
            return [n.live.url for n in self.nodes if n.up]

    def logs(self) -> list[Path]:
        return sorted(self.tmp.glob("server-*.log"))

    def wait_ready(self, node: Node) -> None:
        """Until the server's reactor process and workers have started and named themselves.

        Only then is the server killed: a child records its parent's pid as it starts, and
        one killed before that is issue 9 item 6 (`a child outlives a server killed during
        start-up`), not what these loops test."""
        pid = node.live.process.pid
        deadline = time.monotonic() + READY_SECONDS
        while True:
            # A killed child stays a zombie, with its name, until the server reaps it.
            reactors = [p for p in children_named(pid, "stepd-reactor") if not gone(p)]
            workers = [p for p in children_named(pid, "stepd-worker") if not gone(p)]
            if len(reactors) == 1 and len(workers) == WORKERS:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"server {node.index} (pid {pid}) has reactors {reactors} and workers "
                    f"{workers} after {READY_SECONDS}s; see {node.live.log_path}"
                )
            time.sleep(0.05)
        # A child names itself after its imports, and records its parent's pid right after.
        time.sleep(0.3)

    def kill(self, node: Node, kind: str, rng: random.Random) -> bool:
        """kill -9 one process of `kind` in `node`'s server; False when there was none (a
        reactor or worker just killed whose replacement has not started yet)."""
        if kind == "server":
            self._kill_server(node)
            return True
        pid = node.live.process.pid
        if kind == "horse":
            victims = self._wait_for(
                lambda: [h for h in horses_of(pid) if not gone(h)], timeout=2.0
            )
        else:
            victims = [p for p in children_named(pid, f"stepd-{kind}") if not gone(p)]
        if not victims:
            return False
        victim = rng.choice(victims)
        self._note(f"kill -9 {kind} {victim} ({comm(victim)}) of server {node.index}")
        kill9(victim)
        self.kills[kind] += 1
        return True

    def _kill_server(self, node: Node) -> None:
        """kill -9 the server once its children are up, and start another in its slot."""
        self.wait_ready(node)
        pid = node.live.process.pid
        self._note(f"kill -9 server {node.index} (pid {pid})")
        with self._lock:
            node.up = False
        kill9(pid)
        node.live.process.wait(10)
        self.kills["server"] += 1
        node.starts += 1
        node.live = self._start(node.index, node.starts)
        with self._lock:
            node.up = True
        self._note(f"server {node.index} restarted (pid {node.live.process.pid})")

    @staticmethod
    def _wait_for(find: Callable[[], list[int]], *, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        while True:
            found: list[int] = find()
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def _note(self, what: str) -> None:
        self.log.append(f"{time.monotonic() - self._began:6.2f}s {what}")

    def stop(self) -> None:
        """Stop every server the way an operator does (SIGTERM), waiting for each."""
        for node in self.nodes:
            node.live.stop()
