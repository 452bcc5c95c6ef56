"""stepd's benchmark harness: measures, prints tables and ratios; asserts nothing.

    .venv/bin/python benchmarks/run.py            # full run (~8 minutes on 2 cores)
    .venv/bin/python benchmarks/run.py --quick    # smaller counts (< 2 minutes)
    .venv/bin/python benchmarks/run.py --only single|batch|query [--loadgen wrk|python]

Every comparison is measured in the same run on the same machine (servers and load
generator share the cores, which is why ratios are reported next to absolute figures).
Results also go to benchmarks/out/results-<time>.json; temporary stores to benchmarks/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, log, out_dir, wait_quiet, wrk_path
from ingest import IngestConfig, bench_batch, bench_single
from query import QueryConfig, bench_query

BENCHMARKS = ("single", "batch", "query")


def machine() -> str:
    import fastapi
    import sqlalchemy
    import uvicorn

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:
        http = "h11"
    return (
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, uvicorn "
        f"{uvicorn.__version__} ({loop}, {http}), FastAPI {fastapi.__version__}, SQLAlchemy "
        f"{sqlalchemy.__version__}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="stepd benchmarks (no pass/fail)")
    parser.add_argument("--quick", action="store_true", help="smaller counts, < 2 minutes")
    parser.add_argument(
        "--only", choices=BENCHMARKS, action="append", help="run only this benchmark (repeatable)"
    )
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="auto: wrk when installed, else benchmarks/loadgen.py",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        metavar="SECONDS",
        help="before each benchmark, wait up to this long for other work on the machine to "
        "drop under 30%% of a core (default: 20, --quick: 0)",
    )
    args = parser.parse_args()
    if args.loadgen == "wrk" and not wrk_path():
        parser.error("wrk is not installed (apt-get install -y wrk), use --loadgen python")
    only = args.only or list(BENCHMARKS)

    if args.quick:
        ingest = IngestConfig(rounds=3, seconds=2, warmup=1, tool=args.loadgen)
        query = QueryConfig(sizes=(10_000, 100_000), requests=300, reps=3, warmup=50)
    else:
        ingest = IngestConfig(rounds=5, seconds=8, warmup=2, tool=args.loadgen)
        query = QueryConfig(sizes=(10_000, 1_000_000), requests=2_000, reps=3, warmup=200)

    tool = args.loadgen if args.loadgen != "auto" else ("wrk" if wrk_path() else "python")
    started = time.time()
    header = [
        f"stepd benchmarks, {time.strftime('%Y-%m-%d %H:%M %Z')}"
        f"{' (--quick)' if args.quick else ''}",
        f"machine: {machine()}",
        f"load generator: {tool}",
    ]
    print("\n".join(header), flush=True)
    out_dir()
    existing = set(OUT.iterdir())
    results = []
    try:
        for name in only:
            quiet = wait_quiet(
                args.wait_quiet if args.wait_quiet is not None else (0 if args.quick else 20)
            )
            log(f"running {name} (other work on the machine: {quiet:.0f}% of a core)")
            t0 = time.time()
            if name == "single":
                res = bench_single(ingest)
            elif name == "batch":
                res = bench_batch(ingest)
            else:
                res = bench_query(query)
            res["seconds"] = time.time() - t0
            res["other_pct_before"] = quiet
            results.append(res)
            print(
                f"\n## {name} ({res['seconds']:.0f} s; other work on the machine before it: "
                f"{quiet:.0f}% of a core)\n\n{res['text']}\n",
                flush=True,
            )
    finally:
        if not args.keep:
            for path in set(OUT.iterdir()) - existing:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
    total = time.time() - started
    print(f"total: {total:.0f} s", flush=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = OUT / f"results-{stamp}{'-quick' if args.quick else ''}.json"
    path.write_text(
        json.dumps(
            {"header": header, "total_seconds": total, "results": results}, indent=1, default=str
        )
    )
    log(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
