"""`/metrics` of a real `stepd serve` (a subprocess, its reactor process and two worker
processes) after a chain has run, on both stores: the counters and histograms count what
happened, whichever process did it; and its `--log-format json` log, line by line."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import LiveServer, served, server_token
from test_metrics import Family, parse

TASKS = str(Path(__file__).with_name("metrics_tasks.py"))


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    extra = ("--tasks", TASKS, "--workers", "2", "--log-format", "json", "--no-clock")
    with served(request.param, tmp_path, *extra) as live:
        yield live


def scrape(server: LiveServer) -> dict[str, Family]:
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def _wait_for(server: LiveServer, done: int, timeout: float = 60) -> dict[str, Family]:
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(server)
        finished = sum(v for _, v in m["stepd_tasks_finished_total"].samples)
        if finished >= done or time.monotonic() > deadline:
            return m
        time.sleep(0.2)


def test_a_chain_run_by_worker_processes_moves_the_counters_and_histograms(
    server: LiveServer,
) -> None:
    auth = {"Authorization": f"OAuth {server_token(server)}"}
    client = httpx.Client(base_url=server.url, headers=auth, timeout=10)
    before = scrape(server)
    assert before["stepd_events_ingested_total"].samples == []
    assert before["stepd_firings_total"].value(result="task") == 0
    for name, deps, task_type in (
        ("soup", [{"name": "soup_ready", "params": {"date": "~"}}], "M_SOUP"),
        # the chain: M_SOUP's status events fire the next config, which fails
        ("after", [{"name": "taskEvent", "params": {"taskType": "M_SOUP", "date": "~"}}],
         "M_FAILS"),
    ):  # fmt: skip
        body = {"name": name, "event_deps": deps, "task_type": task_type}
        assert client.post("/api/v1/configs", json=body).status_code == 200
    dates = ["2019-01-01", "2019-01-02", "2019-01-03"]
    response = client.post(
        "/api/v1/events",
        json={"events": [{"name": "soup_ready", "params": {"date": d}} for d in dates]},
    )
    assert response.status_code == 200, response.text

    m = _wait_for(server, done=6)
    finished = m["stepd_tasks_finished_total"]
    assert finished.value(task_type="M_SOUP", status="SUCCESS") == 3
    assert finished.value(task_type="M_FAILS", status="FAILURE") == 3
    # 3 posted through the API, 6 status events stored by the workers' processes
    ingested = m["stepd_events_ingested_total"]
    assert ingested.value(source_type="task") == 6
    assert sum(v for _, v in ingested.samples) == 9
    firings = m["stepd_firings_total"]
    assert firings.value(result="task") == 6
    assert firings.value(result="error") == 0
    assert firings.value(result="skipped") == 0

    durations = m["stepd_task_duration_seconds"]
    assert durations.sample("_count", task_type="M_SOUP") == 3
    assert durations.sample("_sum", task_type="M_SOUP") >= 0.15
    # each slept 0.05 s: none in the first bucket (a lower bound only, so no timing race)
    assert durations.sample("_bucket", task_type="M_SOUP", le="0.01") == 0
    assert durations.sample("_bucket", task_type="M_SOUP", le="+Inf") == 3
    latency = m["stepd_event_to_task_seconds"]
    assert latency.sample("_count") == 6
    assert 0 < latency.sample("_sum") < 60
    # The reactor runs in a process of its own: its batches reach the server's /metrics.
    assert m["stepd_reactor_batch_seconds"].sample("_count") >= 2
    http = m["stepd_http_request_duration_seconds"]
    assert http.sample("_count", route="/api/v1/events", method="POST", status="200") == 1
    assert http.sample("_count", route="/api/v1/configs", method="POST", status="200") == 2
    routes = {labels["route"] for _, labels, _ in http.raw}
    assert all(r.startswith("/") or r == "unmatched" for r in routes), routes

    # The counts are the store's: a second server on the same store says the same.
    again = scrape(server)
    assert again["stepd_tasks_finished_total"].samples == finished.samples
    assert again["stepd_events_ingested_total"].samples == ingested.samples

    # --- the JSON log: every line an object, with the ids of what it is about ---
    client.get("/api/v1/events", headers={"X-Request-Id": "req-from-test"})
    server.stop()
    lines = server.log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # each line parses
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
    assert any(r["logger"] == "uvicorn.error" for r in records), "uvicorn logs in JSON too"
    fired = [r for r in records if "fired task" in r["message"]]
    assert len(fired) == 6
    assert all({"config_id", "event_id", "task_id"} <= r.keys() for r in fired), fired
    ended = [r for r in records if "ended" in r["message"] and "task_id" in r]
    assert len(ended) == 6
    task_ids = {r["task_id"] for r in fired}
    assert {r["task_id"] for r in ended} == task_ids
    assert all(r["attempt"] == 1 and r["worker"] for r in ended), ended
