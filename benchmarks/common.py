"""What the benchmarks share: server subprocesses, load generation, data, statistics, tables.

Nothing here asserts anything: the harness measures and prints. See benchmarks/README.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PY = sys.executable

# The options both servers run with (stepd's `serve` passes them on to uvicorn.run;
# noop_app.py calls uvicorn.run with the same ones).
SERVER_OPTS = ["--no-access-log", "--log-level", "warning"]


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def out_dir() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    return OUT


def fresh_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=out_dir()))


def spawn(argv: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
    """`argv` in a subprocess of its own process group (start_new_session), output to `log_path`."""
    return subprocess.Popen(
        list(argv),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_process(
    p: subprocess.Popen[bytes] | None, *, grace_seconds: float = 15.0, whole_group: bool = False
) -> None:
    """Graceful stop: SIGTERM to the process (`whole_group`: to its whole process group), SIGKILL
    after `grace_seconds`; then SIGKILL to whatever is left of its group (kill_group)."""
    if p is None:
        return
    if p.poll() is None:
        if whole_group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        else:
            p.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(grace_seconds)
    kill_group(p)


def kill_group(p: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL to a process and its process group (its own, from spawn's start_new_session)."""
    if p is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)
    if p.poll() is None:
        p.wait(10)


@dataclass
class Process:
    """A command in a subprocess of its own process group, nothing to wait for once started
    (a Celery worker); an HTTP server is a Server."""

    name: str
    argv: list[str]
    log_path: Path
    grace_seconds: float = 15.0  # from SIGTERM to SIGKILL in stop()
    whole_group: bool = False  # stop() sends SIGTERM to the whole group, not only the leader
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.process = spawn(self.argv, self.log_path)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        stop_process(self.process, grace_seconds=self.grace_seconds, whole_group=self.whole_group)

    def kill(self) -> None:
        kill_group(self.process)


@dataclass
class Server:
    """An HTTP server in a subprocess (its own process group), ready once `health` answers 200."""

    name: str
    argv: list[str]
    log_path: Path
    health: str = "/healthz"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        self.process = spawn([*self.argv, "--port", str(self.port)], self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_path.read_text()}")
            try:
                if httpx.get(self.url + self.health, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(
            f"{self.name} did not answer in {timeout} s:\n{self.log_path.read_text()}"
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        """Graceful stop (SIGTERM), SIGKILL after 15 s; then whatever is left of its group."""
        stop_process(self.process)

    def kill(self) -> None:
        """SIGKILL to the server and its process group (its worker processes), as a crash
        would: nothing gets to flush. The group is the server's own (start_new_session)."""
        kill_group(self.process)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def db_url(db: Path | str) -> str:
    """A store's URL: a Path is a SQLite file, a str already a URL (a PostgreSQL database)."""
    return db if isinstance(db, str) else f"sqlite:///{db}"


def stepd_serve_argv(db: Path | str, *extra: str) -> list[str]:
    """`python -m stepd serve --db URL --no-access-log --log-level warning EXTRA...` (Server
    adds --port)."""
    return [PY, "-m", "stepd", "serve", "--db", db_url(db), *SERVER_OPTS, *extra]


def stepd_server(db_path: Path, log_path: Path) -> Server:
    """`python -m stepd serve --db sqlite:///DB --port P --no-access-log --log-level warning`."""
    return Server("stepd", stepd_serve_argv(db_path), log_path)


def noop_server(log_path: Path) -> Server:
    """benchmarks/noop_app.py: a FastAPI app with a no-op POST, same uvicorn options."""
    argv = [PY, str(HERE / "noop_app.py"), *SERVER_OPTS]
    return Server("noop", argv, log_path)


def make_token(db_path: Path, user: str = "robot-bench") -> str:
    """A write token for `user`, made as `stepd tokens create` does (the store is migrated)."""
    from stepd.store import open_store
    from stepd.store import tokens as token_store

    store = open_store(f"sqlite:///{db_path}")
    try:
        with store.write() as conn:
            return token_store.create_token(conn, user)
    finally:
        store.close()


# --------------------------------------------------------------------------- load generation


@dataclass
class LoadResult:
    tool: str
    requests: int  # responses received
    ok: int  # 200 responses
    errors: int  # everything else: non-200, socket errors, timeouts
    seconds: float
    p50_ms: float
    p99_ms: float
    ids: list[str]

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_load(
    url: str,
    path: str,
    bodies: Sequence[bytes],
    *,
    token: str | None,
    connections: int,
    seconds: float,
    tool: str = "auto",
    threads: int = 2,
) -> LoadResult:
    """POST `bodies` (cycled) to url+path from `connections` keep-alive connections for `seconds`.

    `wrk` when installed (tool="auto"), else benchmarks/loadgen.py (raw asyncio HTTP/1.1),
    always in a separate process. The ids of every 200 answer (`{"ids": [...]}`) are returned.
    """
    if tool == "auto":
        tool = "wrk" if wrk_path() else "python"
    work = fresh_dir("load")
    bodies_file = work / "bodies.txt"
    # One body a line (JSON has no raw newlines): both load generators read this file.
    bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
    result_file = work / "result.json"
    ids_file = work / "ids.txt"
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"OAuth {token}"
    try:
        if tool == "wrk":
            env = {
                **os.environ,
                "BENCH_BODIES": str(bodies_file),
                "BENCH_RESULT": str(result_file),
                "BENCH_IDS": str(ids_file),
                "BENCH_PATH": path,
                "BENCH_HEADERS": json.dumps(headers),
            }
            argv = [
                "wrk",
                f"-t{min(threads, connections)}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(HERE / "wrk_post.lua"),
                url,
            ]
            subprocess.run(argv, env=env, check=True, capture_output=True, timeout=seconds + 60)
        elif tool == "python":
            argv = [
                PY,
                str(HERE / "loadgen.py"),
                "--url",
                url + path,
                "--bodies",
                str(bodies_file),
                "--connections",
                str(connections),
                "--seconds",
                str(seconds),
                "--result",
                str(result_file),
                "--ids",
                str(ids_file),
                "--headers",
                json.dumps(headers),
            ]
            subprocess.run(argv, check=True, capture_output=True, timeout=seconds + 60)
        else:
            raise ValueError(f"unknown load generator {tool!r}")
        res = json.loads(result_file.read_text())
        ids = ids_file.read_text().split() if ids_file.exists() else []
        return LoadResult(
            tool=tool,
            requests=int(res["requests"]),
            ok=int(res["ok"]),
            errors=int(res["errors"]),
            seconds=float(res["seconds"]),
            p50_ms=float(res["p50_ms"]),
            p99_ms=float(res["p99_ms"]),
            ids=ids,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- realistic data

TASK_TYPES = [
    "CRYPTA_GRAPH_PREPARE_SOUP_YAML",
    "CRYPTA_GRAPH_MATCHING",
    "CRYPTA_GRAPH_FUZZY",
    "CRYPTA_GRAPH_V2",
    "CRYPTA_PROFILES_EXPORT",
    "CRYPTA_PROFILES_BUILD",
    "CRYPTA_ID_STORAGE",
    "CRYPTA_MAIL_INDEX",
    "CRYPTA_RT_SOCDEM",
    "CRYPTA_SEGMENTS_BUILD",
    "CRYPTA_SEGMENTS_UPLOAD",
    "CRYPTA_LOOKALIKE_TRAIN",
    "CRYPTA_LOOKALIKE_APPLY",
    "CRYPTA_DMP_UPLOAD",
    "CRYPTA_SITE2VEC",
    "CRYPTA_APP_METRICA_IMPORT",
    "CRYPTA_YANDEXUID_DAY",
    "CRYPTA_AUDIENCE_STATS",
    "CRYPTA_HOSTS_DICT",
    "CRYPTA_RARE_BACKFILL",
]
COMMON_TASK = TASK_TYPES[0]  # ~23% of cryptaTaskEvents
RARE_TASK = TASK_TYPES[-1]  # 1 in ~2,000 cryptaTaskEvents
# Zipf-like weights, the last type forced rare.
_W = [1 / (k**1.2) for k in range(1, len(TASK_TYPES))]
_W = [w / sum(_W) * (1 - 0.0005) for w in _W] + [0.0005]
TASK_WEIGHTS = _W
STATUSES = ["SUCCESS", "FAILURE", "STARTED", "SKIPPED"]
STATUS_WEIGHTS = [0.86, 0.04, 0.08, 0.02]
ENVIRONMENTS = ["stable", "testing", "prestable"]
ENV_WEIGHTS = [0.7, 0.2, 0.1]
OTHER_NAMES = ["clock", "cryptaDailyEvent", "externalTableReady"]  # ~15% of events


def task_params(rng: random.Random, day: datetime) -> dict[str, str]:
    """Params like a cryptaTaskEvent's: taskType, taskStatus, environment, date."""
    return {
        "taskType": rng.choices(TASK_TYPES, TASK_WEIGHTS)[0],
        "taskStatus": rng.choices(STATUSES, STATUS_WEIGHTS)[0],
        "environment": rng.choices(ENVIRONMENTS, ENV_WEIGHTS)[0],
        "date": day.strftime("%Y-%m-%d"),
    }


def batch_bodies(count: int, per_batch: int, seed: int = 7) -> list[bytes]:
    """`count` POST bodies of `per_batch` cryptaTaskEvents each (4 params), distinct dates/types."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    bodies = []
    for b in range(count):
        events = [
            {
                "name": "cryptaTaskEvent",
                "params": task_params(rng, start + timedelta(days=b + i // 50)),
            }
            for i in range(per_batch)
        ]
        body = {"events": events, "source_type": "bench", "source": "benchmarks/ingest.py"}
        bodies.append(json.dumps(body, separators=(",", ":")).encode())
    return bodies


def sqlite_time(dt: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite DateTime stores it (naive UTC text)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def event_rows_from_bodies(
    bodies: Sequence[bytes], author: str
) -> list[tuple[list[tuple[object, ...]], list[list[tuple[str, str, str]]]]]:
    """For each body: the events rows stepd stores, and per event its (name, key, value) index rows.

    The same columns and values that stepd's insert_events writes (params as compact JSON,
    state NEW, created as SQLite text, author, request_id NULL, source_type, source).
    """
    now = sqlite_time(datetime.now(UTC))
    out = []
    for raw in bodies:
        body = json.loads(raw)
        rows: list[tuple[object, ...]] = []
        params_rows: list[list[tuple[str, str, str]]] = []
        for e in body["events"]:
            rows.append(
                (
                    e["name"],
                    json.dumps(e["params"], separators=(",", ":"), ensure_ascii=False),
                    "NEW",
                    now,
                    author,
                    None,
                    body.get("source_type"),
                    body.get("source"),
                )
            )
            params_rows.append([(e["name"], k, str(v)) for k, v in e["params"].items()])
        out.append((rows, params_rows))
    return out


INSERT_EVENT = (
    "INSERT INTO events (name, params, state, created, author, request_id, source_type, source) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_EVENT_SEQ = (
    "INSERT INTO events (seq, name, params, state, created, author, request_id, source_type, "
    "source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_PARAM = "INSERT INTO event_params (name, key, value, event_seq) VALUES (?, ?, ?, ?)"


def raw_connect(db_path: Path, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """A plain sqlite3 connection with stepd's PRAGMAs (WAL, synchronous), autocommit mode."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def stored_seqs(db_path: Path) -> set[int]:
    conn = sqlite3.connect(db_path)
    try:
        return {row[0] for row in conn.execute("SELECT seq FROM events")}
    finally:
        conn.close()


def verify_acked(db_path: Path, acked: Iterable[str]) -> dict[str, int]:
    """How many acknowledged ids (hex `_id`s) are missing from the events table."""
    seqs = stored_seqs(db_path)
    acked_list = list(acked)
    missing = sum(1 for i in acked_list if int(i, 16) not in seqs)
    return {
        "acked": len(acked_list),
        "unique_acked": len(set(acked_list)),
        "stored": len(seqs),
        "missing": missing,
    }


# --------------------------------------------------------------------------- statistics, output


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def pct(xs: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of xs."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))
    return s[k]


def fmt(x: float, digits: int = 0) -> str:
    if x != x:  # NaN
        return "-"
    return f"{x:,.{digits}f}"


def table(headers: Sequence[str], cells: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table (also readable in a terminal)."""
    rows = [[str(c) for c in r] for r in cells]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """user+system CPU seconds a process has used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def proc_stats() -> dict[int, list[str]]:
    """Every live process's /proc/PID/stat fields after the command name: [1] the parent's pid,
    [11]+[12] its utime+stime, [13]+[14] cutime+cstime (its reaped children's), in clock ticks."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    return stats


def process_tree(pid: int, stats: dict[int, list[str]]) -> set[int]:
    """`pid` and all its live descendants, as `stats` (proc_stats) saw them."""
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, fields in stats.items():
            if int(fields[1]) == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and all its descendants (stepd serve's worker processes)."""
    tree = process_tree(pid, proc_stats())
    total = 0.0
    for p in tree:
        t = cpu_seconds(p)
        if t == t:  # gone in between: NaN
            total += t
    return total


def system_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: all but idle and iowait)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def harness_cpu_seconds() -> float:
    """CPU seconds of this process and its reaped children (the load generator) so far."""
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return float(s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime)


def tree_cpu_split(pid: int) -> dict[str, float]:
    """CPU seconds of a process tree, split into the root process, its live descendants
    (worker processes, Celery pool processes) and reaped children (cutime+cstime of every
    member: the forked work horses, which end within the interval and would otherwise look
    like other work; tree_cpu_seconds counts live processes' utime+stime only)."""
    tick = float(os.sysconf("SC_CLK_TCK"))
    stats = proc_stats()
    tree = process_tree(pid, stats)

    def own(p: int) -> float:
        return (int(stats[p][11]) + int(stats[p][12])) / tick if p in stats else 0.0

    def reaped(p: int) -> float:
        return (int(stats[p][13]) + int(stats[p][14])) / tick if p in stats else 0.0

    return {
        "root": own(pid),
        "descendants": sum(own(p) for p in tree if p != pid),
        "reaped": sum(reaped(p) for p in tree),
    }


class CpuMeter:
    """CPU use over an interval, in % of one core: of a server (with its child processes),
    and of everything that is
    neither that server, nor this process, nor its finished children (the load generator).
    The latter is other work on the machine competing with the measurement."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid
        self.t0 = time.perf_counter()
        self.busy0 = system_busy_seconds()
        self.server0 = tree_cpu_seconds(pid) if pid else 0.0
        self.mine0 = self._mine()

    @staticmethod
    def _mine() -> float:
        return harness_cpu_seconds()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        server = (tree_cpu_seconds(self.pid) - self.server0) if self.pid else 0.0
        mine = self._mine() - self.mine0
        busy = system_busy_seconds() - self.busy0
        return {
            "server_pct": server / wall * 100,
            "harness_pct": mine / wall * 100,
            "other_pct": max(0.0, busy - server - mine) / wall * 100,
        }


class TreeCpuMeter:
    """CPU use over an interval, % of one core: of some process trees (the stepd processes,
    their work horses included: tree_cpu_split), and of everything else on the machine except
    this harness (other work). With no pids, the other work alone (as CpuMeter())."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.t0 = time.perf_counter()
        self.busy0 = system_busy_seconds()
        self.split0 = self._split()
        self.mine0 = harness_cpu_seconds()

    def _split(self) -> dict[str, float]:
        total = {"root": 0.0, "descendants": 0.0, "reaped": 0.0}
        for p in self.pids:
            for k, v in tree_cpu_split(p).items():
                total[k] += v
        return total

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        split = {k: v - self.split0[k] for k, v in self._split().items()}
        tree = sum(split.values())
        mine = harness_cpu_seconds() - self.mine0
        busy = system_busy_seconds() - self.busy0
        return {
            "wall_s": wall,
            "stepd_cpu_s": tree,
            "root_cpu_s": split["root"],
            "workers_cpu_s": split["descendants"],
            "horses_cpu_s": split["reaped"],
            "stepd_pct": tree / wall * 100,
            "other_pct": max(0.0, busy - tree - mine) / wall * 100,
        }


def wait_quiet(max_wait: float, threshold_pct: float = 30.0, sample: float = 2.0) -> float:
    """Wait (at most `max_wait` s) until other work on the machine uses under `threshold_pct`
    of a core over `sample` s; return the last reading (% of one core)."""
    deadline = time.monotonic() + max_wait
    while True:
        meter = CpuMeter()
        time.sleep(sample)
        other = meter.stop()["other_pct"]
        if other < threshold_pct or time.monotonic() >= deadline:
            return other
        log(f"machine busy ({other:.0f}% of a core used by other work), waiting")


# --------------------------------------------------------------------------- a script's run


def src_fingerprint() -> str:
    """Which stepd was measured (the tree may change between runs): a digest of src/stepd/**.py
    and the newest modification time among them."""
    import hashlib

    root = HERE.parent / "src" / "stepd"
    files = sorted(root.rglob("*.py"))
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    newest = max(f.stat().st_mtime for f in files)
    stamp = datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"src/stepd sha256 {digest.hexdigest()[:12]} (newest file {stamp})"


def show(results: list[dict[str, Any]], result: dict[str, Any]) -> None:
    """Keep a section's figures and print its text (the table and what follows it)."""
    results.append(result)
    print(result["text"] + "\n", flush=True)


def run_summary(fingerprint: str, started: float, other_pct: float) -> str:
    """The closing line: which stepd was measured (flagged when src/stepd changed since
    `fingerprint` was taken at the start), the total time since `started` (time.time()), and
    the other work on the machine meanwhile (`other_pct`, % of one core) against its cores."""
    now = src_fingerprint()
    if now != fingerprint:
        now = f"SRC CHANGED DURING THE RUN: at start {fingerprint}, at end {now}"
    return (
        f"{now}; "
        f"total {time.time() - started:.0f} s; other work on the machine used "
        f"{other_pct:.0f}% of a core on average (of {(os.cpu_count() or 1) * 100}% on "
        f"{os.cpu_count()} cores)"
    )


def save_figures(name: str, quick: bool, figures: dict[str, Any]) -> Path:
    """`figures` as JSON in benchmarks/out/NAME-<time>[-quick].json; the path is logged."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out_dir() / f"{name}-{stamp}{'-quick' if quick else ''}.json"
    path.write_text(json.dumps(figures, default=str))
    log(f"figures written to {path}")
    return path
