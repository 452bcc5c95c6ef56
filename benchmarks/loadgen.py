"""A small HTTP/1.1 load generator (raw asyncio, keep-alive): the fallback when wrk is absent.

    python benchmarks/loadgen.py --url http://127.0.0.1:P/api/v1/events --bodies FILE \
        --connections 32 --seconds 5 --result OUT.json --ids IDS.txt [--headers JSON]

Each of `--connections` connections sends one POST at a time (bodies from FILE, one a line,
cycled) until `--seconds` pass, then the in-flight answers are awaited (at most 10 s). It
writes {requests, ok, errors, seconds, p50_ms, p99_ms} to --result and the ids of every 200
answer (`{"ids": [...]}`) to --ids. Uses uvloop when installed, like the servers do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit


def _request(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = -1
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(data[:-2])
        return status, b"".join(parts)
    return status, (await reader.readexactly(length)) if length > 0 else b""


async def _worker(
    n: int,
    host: str,
    port: int,
    requests: list[bytes],
    stop_at: float,
    latencies: list[float],
    ids: list[str],
    counts: dict[str, int],
) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        counts["errors"] += 1
        return
    i = n
    try:
        while time.perf_counter() < stop_at:
            i += 1
            t0 = time.perf_counter()
            writer.write(requests[i % len(requests)])
            status, body = await _read_response(reader)
            latencies.append(time.perf_counter() - t0)
            if status == 200:
                counts["ok"] += 1
                ids.extend(json.loads(body).get("ids", ()))
            else:
                counts["errors"] += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        counts["errors"] += 1
    finally:
        writer.close()


async def _main(args: argparse.Namespace) -> dict[str, float]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    path = url.path + (f"?{url.query}" if url.query else "")
    headers = json.loads(args.headers)
    with open(args.bodies, "rb") as f:
        bodies = [line.rstrip(b"\n") for line in f if line.strip()]
    requests = [_request(host, port, path, headers, b) for b in bodies]
    latencies: list[float] = []
    ids: list[str] = []
    counts = {"ok": 0, "errors": 0}
    start = time.perf_counter()
    stop_at = start + args.seconds
    tasks = [
        asyncio.create_task(_worker(n, host, port, requests, stop_at, latencies, ids, counts))
        for n in range(args.connections)
    ]
    _done, pending = await asyncio.wait(tasks, timeout=args.seconds + 10)
    for t in pending:
        t.cancel()
    elapsed = time.perf_counter() - start
    latencies.sort()

    def p(q: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    with open(args.ids, "w") as out:
        out.write("\n".join(ids) + ("\n" if ids else ""))
    return {
        "requests": len(latencies),
        "ok": counts["ok"],
        "errors": counts["errors"] + len(pending),
        "seconds": elapsed,
        "p50_ms": p(0.50),
        "p99_ms": p(0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--result", required=True)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--headers", default="{}")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(_main(args))
    else:
        result = uvloop.run(_main(args))
    with open(args.result, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
