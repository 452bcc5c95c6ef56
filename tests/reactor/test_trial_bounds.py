"""`POST /api/v1/configs/test` computes on the server (issue 9, item 2): it needs a token,
and it reads at most `Settings.trial_scan_limit` stored events, saying so when it stops."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Api, make_token, run_stepd, served, server_token, serving
from reactor_helpers import config_body, create_config, dep

from stepd.client import ApiError, Client
from stepd.settings import Settings
from stepd.store.engine import Store

JOIN = config_body(dep("soup", date="~"), dep("part", date="~", n="~"))
SOUP = {"name": "soup", "params": {"date": "2019-01-01"}}


def trial(api: Api, body: dict[str, object]) -> dict[str, Any]:
    response = api.client.post("/api/v1/configs/test", json=body, headers=api.auth)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def test_a_trial_needs_a_token(api: Api) -> None:
    body = {"config": JOIN, "event": SOUP}
    anonymous = api.client.post("/api/v1/configs/test", json=body)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"] == "unauthorized"
    assert "Authorization: OAuth <token>" in anonymous.json()["message"]
    bad = api.client.post(
        "/api/v1/configs/test", json=body, headers={"Authorization": "OAuth not-a-token"}
    )
    assert bad.status_code == 401, bad.text
    assert trial(api, body)["events"][0]["outcome"] == "waiting"


@pytest.fixture
def bounded(store: Store) -> Iterator[Api]:
    """The API with a trial bound of 50 stored events."""
    settings = Settings(
        database_url="unused://", reactor=False, clock=False, executor="none", trial_scan_limit=50
    )
    with serving(settings, store) as client:
        yield Api(client=client, store=store, token=make_token(store, "robot-crypta"))


def store_events(api: Api, events: list[dict[str, object]]) -> None:
    response = api.client.post("/api/v1/events", json={"events": events}, headers=api.auth)
    assert response.status_code == 200, response.text


def test_a_join_over_more_stored_events_than_the_bound_stops_and_says_so(bounded: Api) -> None:
    parts = [{"name": "part", "params": {"date": "2019-01-01", "n": i}} for i in range(60)]
    parts += [{"name": "part", "params": {"date": "2019-01-02", "n": i}} for i in range(2)]
    store_events(bounded, parts)
    result = trial(bounded, {"config": JOIN, "event": SOUP})
    assert result["truncated"] is True
    assert result["events"] == []  # an evaluation cut short is not answered at all
    assert result["scanned"] == 51  # the bound, and the one row that showed it was passed
    assert "stopped after reading 50 stored events" in result["message"]
    assert "0 of 1 event(s) tried" in result["message"]

    # Under the bound, the same trial answers in full: one firing per part of that date.
    other_day = {"name": "soup", "params": {"date": "2019-01-02"}}
    narrow = trial(bounded, {"config": JOIN, "event": other_day})
    assert narrow["truncated"] is False and "message" not in narrow
    assert narrow["scanned"] == 2
    [entry] = narrow["events"]
    assert entry["outcome"] == "fired"
    assert sorted(f["binding"]["n"] for f in entry["would_fire"]) == [0, 1]


def test_stored_events_tried_count_toward_the_bound(bounded: Api) -> None:
    store_events(bounded, [{"name": "soup", "params": {"date": f"2019-01-{d:02}"}}
                           for d in range(1, 31)])  # fmt: skip
    single = config_body(dep("soup", date="~"))
    result = trial(bounded, {"config": single, "events": {"name": "soup", "limit": 30}})
    assert result["truncated"] is False and len(result["events"]) == 30
    assert result["scanned"] == 30
    # Each of them joins on every soup before it: the trial stops after one.
    joined = config_body(dep("soup", date="~"), dep("soup", kind="~"))
    # The 10 newest are read (10), the newest's join reads the 29 before it (39), the next
    # one's would read 28: the 12th passes the bound, and only the newest is answered.
    cut = trial(bounded, {"config": joined, "events": {"name": "soup", "limit": 10}})
    assert cut["truncated"] is True and cut["scanned"] == 51
    [newest] = cut["events"]
    assert newest["event"]["params"] == {"date": "2019-01-30"}
    assert "1 of 10 event(s) tried" in cut["message"]


def test_a_join_whose_search_multiplies_stored_events_stops_and_says_so(bounded: Api) -> None:
    # Deps that share no free param: every b joins every c, 8 x 8 = 64 bindings from 16
    # stored events, a product that grows with the store.
    def product(b: str, c: str) -> dict[str, object]:
        return config_body(dep("a", x="~"), dep(b, y="~"), dep(c, z="~"))

    for b, c, n in (("b", "c", 8), ("b4", "c4", 4)):
        store_events(bounded, [{"name": b, "params": {"y": i}} for i in range(n)])
        store_events(bounded, [{"name": c, "params": {"z": i}} for i in range(n)])
    a = {"name": "a", "params": {"x": 1}}
    result = trial(bounded, {"config": product("b", "c"), "event": a})
    assert result["truncated"] is True and result["events"] == []
    assert result["scanned"] == 16  # within the bound of 50: the search stopped it
    assert "stopped after 50 steps of one event's join search" in result["message"]
    # Four of each (1 + 4 + 16 steps) are answered in full.
    small = trial(bounded, {"config": product("b4", "c4"), "event": a})
    assert small["truncated"] is False
    [entry] = small["events"]
    assert len(entry["would_fire"]) == 16


def test_the_cli_and_the_client_send_their_token_when_a_trial_needs_one(tmp_path: Path) -> None:
    with served("sqlite", tmp_path, "--executor", "none", "--no-clock") as server:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("STEPD_")}
        env = {**clean, "STEPD_URL": server.url}
        draft = tmp_path / "draft.json"
        draft.write_text('{"event_deps": [{"name": "soup", "params": {"date": "~"}}],'
                         ' "task_type": "T"}')  # fmt: skip
        args = ("configs", "test", "--file", str(draft), "--event", "soup", "date=2019-01-01")
        anonymous = run_stepd(*args, env=env)
        assert anonymous.returncode == 1, anonymous
        assert "needs 'Authorization: OAuth <token>'" in anonymous.stderr
        assert "set STEPD_TOKEN or pass --token" in anonymous.stderr
        token = server_token(server)
        tried = run_stepd(*args, env={**env, "STEPD_TOKEN": token})
        assert tried.returncode == 0, tried.stderr
        assert "would fire" in tried.stdout
        # The Python client likewise: its token goes with the trial.
        config = json.loads(draft.read_text())
        with Client(server.url) as anonymous, pytest.raises(ApiError) as refused:
            anonymous.test_config(config=config, event=SOUP)
        assert refused.value.status_code == 401
        with Client(server.url, token) as client:
            result = client.test_config(config=config, event=SOUP)
        assert result["events"][0]["outcome"] == "fired" and result["truncated"] is False


def test_a_saved_config_is_tried_with_a_token(api: Api) -> None:
    config_id = create_config(api, dep("soup", date="~"))
    body = {"config_id": config_id, "event": SOUP}
    assert api.client.post("/api/v1/configs/test", json=body).status_code == 401
    assert trial(api, body)["events"][0]["outcome"] == "fired"
