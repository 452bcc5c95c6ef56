"""No API read holds the server's event loop (issue 9: one request never stalls stepd for
everyone).

On SQLite, `GET /api/v1/events` and `GET /events/{id}` run their read on the event loop
(a fast path: an indexed read costs less than the hop to a thread). But a `params__`
filter without a name walks the events in seq order, and one no event matches walks them
all: inline, such reads held the loop (every other request, /healthz) for as long as
they ran, up to the statement timeout. Now the inline try is stopped after
`api_loop_read_seconds` and the read runs again in the threadpool.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import served

from stepd.domain.events import EventState
from stepd.store import events as event_store
from stepd.store.engine import open_store
from stepd.timeutil import utcnow

EVENTS = 50_000
KEYS = 19  # every event has k0..k18 = "1": each filter but the last holds, and is probed
# Every filter but the last matches every event, the last none: each event costs 20 probes.
SLOW = "/api/v1/events?" + "&".join(
    [*(f"params__k{j}=1" for j in range(KEYS)), "params__zz=nothing", "limit=1"]
)
HEALTHZ_BOUND = 5.0  # seconds; generous, as the machine is shared: the read takes far longer
STALL = 15.0  # seconds of slow reads sent at once: what /healthz waited behind before


def _store_events(db_url: str) -> None:
    store = open_store(db_url, migrate=False)
    try:
        now = utcnow()
        params = {f"k{j}": "1" for j in range(KEYS)}
        for _ in range(0, EVENTS, 10_000):
            new = [
                event_store.NewEvent(
                    name="e", params=params, created=now, state=EventState.PROCESSED
                )
                for _ in range(10_000)
            ]
            with store.write() as conn:
                event_store.insert_events(conn, new)
    finally:
        store.close()


def _slow(url: str) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    response = httpx.get(url + SLOW, timeout=120)
    return time.monotonic() - started, response


@pytest.mark.timeout(300)
def test_healthz_answers_while_slow_event_queries_run(tmp_path: Path) -> None:
    with served("sqlite", tmp_path, "--executor", "none", "--no-clock") as server:
        _store_events(server.db_url)
        # One slow read alone: it answers, right (nothing matches), and takes this long.
        alone, response = _slow(server.url)
        assert response.status_code == 200, response.text
        assert response.json() == {"result": []}
        # Enough of them at once that, run one after the other on the loop, they would
        # hold it for STALL seconds, far past the bound.
        count = min(max(math.ceil(STALL / alone), 4), 30)
        with ThreadPoolExecutor(count) as pool:
            slow = [pool.submit(_slow, server.url) for _ in range(count)]
            time.sleep(0.5)  # the slow reads are in
            started = time.monotonic()
            health = httpx.get(server.url + "/healthz", timeout=120)
            waited = time.monotonic() - started
            answers = [f.result() for f in slow]
        print(f"one slow read {alone:.2f} s; /healthz behind {count} of them: {waited:.2f} s")
        assert health.status_code == 200, health.text
        assert waited < HEALTHZ_BOUND, (waited, alone, count)
        # The reads run again in the threadpool answer as the inline one did.
        for _, response in answers:
            assert response.status_code == 200, response.text
            assert response.json() == {"result": []}
        # The hot reads still answer (inline: an indexed read ends well within the budget).
        found = httpx.get(server.url + "/api/v1/events?name=e&params__k0=1&limit=2", timeout=30)
        assert found.status_code == 200 and len(found.json()["result"]) == 2, found.text
        event_id = found.json()["result"][0]["_id"]
        one = httpx.get(f"{server.url}/api/v1/events/{event_id}", timeout=30)
        assert one.status_code == 200 and one.json()["result"]["_id"] == event_id, one.text
