"""Against a real `stepd serve` (its background reactor, its own process): configs that
fail at fire time do not stop the reactor, and the real `stepd story` shows why (issue 9,
item 1). On the old code the reactor retried the failing batch forever: no event after the
bad config's was ever evaluated."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import run_stepd as stepd
from conftest import served, server_token
from sqlalchemy import select, update

from stepd.domain.events import parse_event_id
from stepd.store import open_store
from stepd.store.schema import config_generation, configs

EVENT = "nightlyDone"
WAIT_SECONDS = 20.0


def _store_priority(db_url: str, config_id: str, priority: int) -> None:
    """Rewrite a stored config past the API's checks: a config saved before the bounds."""
    store = open_store(db_url)
    try:
        seq = parse_event_id(config_id)
        with store.write() as conn:
            body = json.loads(
                conn.execute(select(configs.c.body).where(configs.c.seq == seq)).scalar_one()
            )
            body["priority"] = priority
            conn.execute(update(configs).where(configs.c.seq == seq).values(body=json.dumps(body)))
            conn.execute(
                update(config_generation).values(generation=config_generation.c.generation + 1)
            )
    finally:
        store.close()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_live_reactor_goes_past_failing_configs_and_the_cli_story_shows_why(
    store: str, tmp_path: Path
) -> None:
    with served(store, tmp_path, "--workers", "0") as server:
        token = server_token(server)
        headers = {"Authorization": f"OAuth {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:

            def config(name: str, **fields: Any) -> str:
                body = {"name": name, "event_deps": [{"name": EVENT, "params": {}}], **fields}
                made = client.post("/api/v1/configs", json=body)
                assert made.status_code in (200, 201), made.text
                config_id: str = made.json()["id"]
                return config_id

            config("good", task_type="GOOD")
            template = config("template", task_type="BAD", task_params={"x": "{{ 1/0 }}"})
            priority = config("priority", task_type="BAD")
            _store_priority(server.db_url, priority, 2**70)
            sent = client.post(
                "/api/v1/events",
                json={"events": [{"name": EVENT, "params": {"n": i}} for i in range(3)]},
            )
            assert sent.status_code == 200, sent.text
            ids = sent.json()["ids"]

            deadline = time.monotonic() + WAIT_SECONDS
            made: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                made = client.get("/api/v1/tasks", params={"limit": 100}).json()["result"]
                states = [client.get(f"/api/v1/events/{i}").json()["result"] for i in ids]
                if len(made) == 3 and all(s["state"] == "PROCESSED" for s in states):
                    break
                time.sleep(0.1)
            assert sorted(t["type"] for t in made) == ["GOOD"] * 3, (
                made,
                server.log_path.read_text()[-3000:],
            )
            metrics = client.get("/metrics").text
            found = re.search(r"^stepd_trigger_errors_total (\S+)$", metrics, re.MULTILINE)
            assert found is not None and float(found.group(1)) == 6, metrics

        env = {**os.environ, "STEPD_URL": server.url, "STEPD_TOKEN": token}
        told = stepd("story", ids[0], "--json", env=env)
        assert told.returncode == 0, told.stderr
        entries = {c["config_id"]: c for c in json.loads(told.stdout)["configs"]}
        assert "ZeroDivisionError" in entries[template]["fired"][0]["error"]
        assert "priority is" in entries[priority]["fired"][0]["error"]
        tree = stepd("story", ids[0], env=env)
        assert tree.returncode == 0, tree.stderr
        assert "ZeroDivisionError" in tree.stdout and "priority is" in tree.stdout, tree.stdout
