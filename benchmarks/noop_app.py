"""The baseline server: a no-op FastAPI POST endpoint on uvicorn with stepd's settings.

Run as `python benchmarks/noop_app.py --port P --no-access-log --log-level warning`. It
calls `uvicorn.run(app, host=..., port=..., log_level=..., access_log=...)` exactly as
`stepd serve` does (src/stepd/cli/serve.py), so both get uvicorn's defaults: one process,
loop="auto" (uvloop when installed), http="auto" (httptools when installed).

`POST /api/v1/events` reads the body and answers the same shape stepd does
(`{"ids": [...]}`) without parsing, validating or storing anything; `GET /api/v1/events`
answers a constant two-event result (the floor for the query benchmark).
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request

app = FastAPI(title="noop")

_IDS = {"ids": ["0" * 24]}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/events")
async def post_events(request: Request):  # type: ignore[no-untyped-def]
    await request.body()
    return _IDS


_EVENT = {
    "_id": "0" * 24,
    "name": "cryptaTaskEvent",
    "params": {
        "taskType": "CRYPTA_GRAPH_PREPARE_SOUP_YAML",
        "taskStatus": "SUCCESS",
        "environment": "stable",
        "date": "2024-01-01",
    },
    "state": "NEW",
    "created": "2024-01-01T00:00:00.000000Z",
    "author": "robot-bench",
    "request_id": None,
    "source_type": None,
    "source": None,
}
_RESULT = {"result": [_EVENT, _EVENT]}


@app.get("/api/v1/events")
async def get_events():  # type: ignore[no-untyped-def]
    """A constant answer of the size of a limit=2 query: the HTTP + framework floor for reads."""
    return _RESULT


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", dest="access_log", action="store_true", default=True)
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        access_log=args.access_log,
    )


if __name__ == "__main__":
    main()
