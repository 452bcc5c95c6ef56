"""`stepd configs backfill` and `stepd backfills list|show|cancel`: the real command in a
subprocess against a real server running the example task types, on every store."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest
from conftest import LiveServer, served, server_token
from conftest import run_stepd as stepd

from stepd.cli.backfills import parse_axis
from stepd.client import Client

TASKS = ("--tasks", "examples/crypta_tasks.py")
MATCHING = "CRYPTA_GRAPH_HUMAN_MATCHING_YAML"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with served(request.param, tmp_path_factory.mktemp("backfills"), *TASKS) as server:
        yield server


@pytest.fixture(scope="module")
def env(live_server: LiveServer) -> dict[str, str]:
    token = server_token(live_server)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STEPD_")}
    return {**clean, "STEPD_URL": live_server.url, "STEPD_TOKEN": token, "COLUMNS": "200"}


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[Client]:
    with Client(env["STEPD_URL"], env["STEPD_TOKEN"]) as c:
        yield c


def day_config(client: Client) -> str:
    return client.create_config(
        {
            "name": f"daily.{uuid.uuid4().hex[:8]}",
            "event_deps": [{"name": "bfCli", "params": {"date": "~", "cluster": "~"}}],
            "task_type": MATCHING,
            "task_params": {"limit": "{{ 5 * 2 }}"},
        }
    )


def test_the_command_line_forms_of_a_backfills_params() -> None:
    assert parse_axis("date=2019-01-01..2019-01-31") == (
        "date",
        {"from": "2019-01-01", "to": "2019-01-31"},
    )
    assert parse_axis("n=-2..9") == ("n", {"from": -2, "to": 9})
    assert parse_axis("cluster=hahn,arnold") == ("cluster", ["hahn", "arnold"])
    assert parse_axis("env=stable") == ("env", "stable")
    assert parse_axis("ids:=[1, 2]") == ("ids", [1, 2])
    for bad in ("nothing", "=x", ":=1", "x:=[1"):
        with pytest.raises(ValueError):
            parse_axis(bad)


def test_a_dry_run_lists_the_bindings_and_a_run_follows_to_the_end(
    env: dict[str, str], client: Client
) -> None:
    config_id = day_config(client)
    args = ("configs", "backfill", config_id, "date=2019-01-01..2019-01-03", "cluster=hahn,arnold")
    planned = stepd(*args, "--dry-run", env=env)
    assert planned.returncode == 0, planned.stderr
    assert "would make 6 tasks" in planned.stdout
    assert "date=2019-01-03 cluster=arnold" in planned.stdout and "limit=10" in planned.stdout
    assert client.list_backfills() == [] or all(
        b["config_id"] != config_id for b in client.list_backfills()
    )

    result = stepd(*args, "--max-in-flight", "2", env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 bindings, 2 at a time" in result.stderr
    assert "6 of 6 ended" in result.stdout and "SUCCESS:6" in result.stdout

    listed = stepd("backfills", "list", "--config", config_id, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "done" in listed.stdout and "SUCCESS:6" in listed.stdout
    backfill_id = client.list_backfills(config_id=config_id)[0]["id"]
    shown = stepd("backfills", "show", str(backfill_id), "--json", env=env)
    assert json.loads(shown.stdout)["counts"] == {"SUCCESS": 6}
    again = stepd("backfills", "cancel", str(backfill_id), env=env)
    assert again.returncode == 1 and "already ended" in again.stderr


def test_no_wait_prints_the_id_and_cancel_stops_it(env: dict[str, str], client: Client) -> None:
    config_id = day_config(client)
    client.disable_config(config_id)
    refused = stepd("configs", "backfill", config_id, "date=2019-01-01", "cluster=x", env=env)
    assert refused.returncode == 1 and "disabled" in refused.stderr
    client.enable_config(config_id)
    started = stepd(
        "configs",
        "backfill",
        config_id,
        "date=2019-01-01..2019-12-31",
        "cluster=x",
        "--max-in-flight",
        "1",
        "--no-wait",
        env=env,
    )
    assert started.returncode == 0, started.stderr
    backfill_id = started.stdout.strip()
    cancelled = stepd("backfills", "cancel", backfill_id, env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"cancelled backfill {backfill_id}" in cancelled.stdout
    assert client.get_backfill(backfill_id)["state"] == "cancelled"


def test_bad_params_are_a_usage_error_or_the_servers_400(
    env: dict[str, str], client: Client
) -> None:
    config_id = day_config(client)
    usage = stepd("configs", "backfill", config_id, "date", env=env)
    assert usage.returncode == 2 and "key=value" in usage.stderr
    none = stepd("configs", "backfill", config_id, env=env)
    assert none.returncode == 2 and "give the params" in none.stderr
    backwards = stepd(
        "configs", "backfill", config_id, "date=2019-02-01..2019-01-01", "cluster=x", env=env
    )
    assert backwards.returncode == 1 and "after" in backwards.stderr
    huge = stepd(
        "configs", "backfill", config_id, "date=2000-01-01..2099-01-01", "cluster=x", env=env
    )
    assert huge.returncode == 1 and "at most 10,000" in huge.stderr
