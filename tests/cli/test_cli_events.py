"""`stepd tokens` and `stepd events`: the real command in a subprocess, against a real server."""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest
from conftest import LiveServer, free_port
from conftest import run_stepd as stepd
from typer.testing import CliRunner

from stepd.cli.main import app
from stepd.cli.render import parse_param


def environment(**values: str) -> dict[str, str]:
    """This process's environment without any STEPD_* variable, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPD_")}
    return {**env, **values}


def test_events_sent_by_the_cli_can_be_shown_listed_and_rejected(live_server: LiveServer) -> None:
    env = environment(STEPD_URL=live_server.url, STEPD_DATABASE_URL=live_server.db_url)

    created = stepd("tokens", "create", "robot-crypta", env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert created.stdout == f"{token}\n" and " " not in token  # only the token
    env["STEPD_TOKEN"] = token

    sent = stepd(
        "events", "send", "cryptaTaskEvent", "taskType=PREPARE", "date=2019-01-01", "count:=3",
        env=env,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    event_id = sent.stdout.strip()
    assert sent.stdout == f"{event_id}\n"  # only the id, for `ID=$(stepd events send ...)`

    shown = stepd("events", "show", event_id, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    event = json.loads(shown.stdout)
    assert event["_id"] == event_id
    assert event["params"] == {"taskType": "PREPARE", "date": "2019-01-01", "count": 3}
    assert event["author"] == "robot-crypta"
    assert event["source_type"] == "cli"

    listed = stepd(
        "events", "list", "--name", "cryptaTaskEvent", "--param", "taskType=PREPARE", "--json",
        env=env,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert [e["_id"] for e in json.loads(listed.stdout)] == [event_id]
    # The table for people, rendered in this process (a subprocess costs a second here).
    table = CliRunner().invoke(app, ["events", "list", "--url", live_server.url])
    assert table.exit_code == 0, table.output
    rows = [line for line in table.stdout.splitlines() if event_id in line]
    assert len(rows) == 1 and "count:=3" in rows[0]  # one line per event in a pipe

    # Time windows: a time ago, or an ISO 8601 date or time; a bad one says what it takes.
    for since, found in (("10m", [event_id]), ("2019-01-01", [event_id]), ("2099-01-01", [])):
        window = CliRunner().invoke(
            app,
            [*("events", "list", "--name", "cryptaTaskEvent", "--since", since, "--json"),
             *("--url", live_server.url)],
        )  # fmt: skip
        assert window.exit_code == 0, window.output
        assert [e["_id"] for e in json.loads(window.stdout)] == found, since
    before = CliRunner().invoke(
        app, ["events", "list", "--until", "1h", "--json", "--url", live_server.url]
    )
    assert before.exit_code == 0 and json.loads(before.stdout) == [], before.output
    tasks = CliRunner().invoke(
        app, ["tasks", "list", "--since", "1d", "--until", "2099-01-01", "--url", live_server.url]
    )
    assert tasks.exit_code == 0, tasks.output
    for bad in ("--since=yesterday", "--until=3 fortnights"):
        refused = CliRunner().invoke(app, ["events", "list", bad, "--url", live_server.url])
        assert refused.exit_code == 2 and "neither a time ago" in refused.output, refused.output

    rejected = stepd("events", "reject", event_id, env=env)
    assert rejected.returncode == 0, rejected.stderr
    assert rejected.stdout.strip() == f"rejected {event_id}"
    state = httpx.get(f"{live_server.url}/api/v1/events/{event_id}").json()["result"]["state"]
    assert state == "REJECTED"

    del env["STEPD_TOKEN"]
    anonymous = stepd("events", "send", "cryptaTaskEvent", "taskType=X", env=env)
    assert anonymous.returncode == 1
    assert "token" in anonymous.stderr and "STEPD_TOKEN" in anonymous.stderr
    assert "Traceback" not in anonymous.stderr
    assert anonymous.stdout == ""


def test_events_list_fired_shows_only_what_fired_and_what_each_fired(
    live_server: LiveServer,
) -> None:
    env = environment(STEPD_URL=live_server.url, STEPD_DATABASE_URL=live_server.db_url)
    token = stepd("tokens", "create", "robot-crypta", env=env).stdout.strip()
    env["STEPD_TOKEN"] = token
    auth = {"Authorization": f"OAuth {token}"}
    config = {
        "name": "fired-cli", "task_type": "NO_SUCH_TYPE_HERE",
        "event_deps": [{"name": "firedCli", "params": {"status": "SUCCESS", "date": "~"}}],
    }  # fmt: skip
    made = httpx.post(f"{live_server.url}/api/v1/configs", json=config, headers=auth)
    assert made.status_code == 200, made.text
    ids = [
        stepd(
            "events", "send", "firedCli", f"status={status}", "date=2019-01-01", env=env
        ).stdout.strip()
        for status in ("SUCCESS", "FAILURE")
    ]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the server's reactor evaluates them
        states = [
            httpx.get(f"{live_server.url}/api/v1/events/{i}").json()["result"]["state"] for i in ids
        ]
        if "NEW" not in states:
            break
        time.sleep(0.2)

    listed = stepd("events", "list", "--fired", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert [e["_id"] for e in found] == [ids[0]]
    assert found[0]["fired"] == {"tasks": 1, "errors": 0}

    table = stepd("events", "list", "--name", "firedCli", env=env)
    assert table.returncode == 0, table.stderr
    assert "fired" in table.stdout.splitlines()[0]  # the column's header
    rows = {i: [line for line in table.stdout.splitlines() if i in line] for i in ids}
    assert len(rows[ids[0]]) == 1 and "1 task" in rows[ids[0]][0]
    assert len(rows[ids[1]]) == 1 and "no task" in rows[ids[1]][0]
    only = stepd("events", "list", "--fired", env=env)
    assert ids[0] in only.stdout and ids[1] not in only.stdout


def test_an_unreachable_server_is_one_line_that_says_what_to_do() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = stepd("events", "list", env=environment(STEPD_URL=url))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert f"cannot reach stepd at {url}" in result.stderr
    assert "stepd serve" in result.stderr and "STEPD_URL" in result.stderr


def test_params_are_strings_or_json_scalars_as_in_httpie() -> None:
    assert parse_param("date=2019-01-01") == ("date", "2019-01-01")
    assert parse_param("count:=3") == ("count", 3)
    assert parse_param("ok:=true") == ("ok", True)
    assert parse_param("url=http://x/?a=b:=c") == ("url", "http://x/?a=b:=c")
    assert parse_param("empty=") == ("empty", "")
    for bad in ("noequals", "=value", ":=1", "count:=nope", "nested:=[1]", "obj:={}"):
        with pytest.raises(ValueError):
            parse_param(bad)


def test_a_malformed_param_exits_2_before_any_request() -> None:
    env = environment(STEPD_URL=f"http://127.0.0.1:{free_port()}", STEPD_TOKEN="unused")
    result = stepd("events", "send", "cryptaTaskEvent", "date=1", "tag:=[red]", env=env)
    assert result.returncode == 2
    assert "'tag:=[red]'" in result.stderr and "is not JSON" in result.stderr  # not markup
    assert "Traceback" not in result.stderr and "cannot reach" not in result.stderr
