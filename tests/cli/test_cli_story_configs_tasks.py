"""`stepd story`, `stepd configs`, `stepd tasks` and `stepd semaphores`: the real command in a
subprocess, against a real server running the example task types, on every store.

One server per store serves the module (starting `stepd serve` costs seconds), so every
test uses names of its own. Setting up (sending events, waiting for tasks) goes through
the Python client; what is under test goes through the command.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import LiveServer, served, server_token
from conftest import run_stepd as stepd
from crowded_story import EVENT_PARAMS, crowd
from typer.testing import CliRunner

from stepd.cli.main import app
from stepd.cli.tasks import parse_semaphore
from stepd.client import Client

TASKS = ("--tasks", "examples/crypta_tasks.py")
FINISHED = {"SUCCESS", "FAILURE", "EXCEPTION", "TIMEOUT", "STOPPED"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with served(request.param, tmp_path_factory.mktemp("cli"), *TASKS) as server:
        yield server


@pytest.fixture(scope="module")
def env(live_server: LiveServer) -> dict[str, str]:
    """The environment of the command: this process's without STEPD_*, plus the server's."""
    token = server_token(live_server)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STEPD_")}
    return {**clean, "STEPD_URL": live_server.url, "STEPD_TOKEN": token}


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[Client]:
    with Client(env["STEPD_URL"], env["STEPD_TOKEN"]) as c:
        yield c


def ok(*args: str, env: dict[str, str]) -> str:
    """The command's stdout; it must succeed and say nothing on stderr."""
    result = stepd(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def here(*args: str, env: dict[str, str]) -> Result:
    """The same command run in this process: quicker than a subprocess (which costs a
    second or so to import), for the second looks at output and the error paths."""
    return CliRunner().invoke(
        app, [*args, "--url", env["STEPD_URL"], "--token", env["STEPD_TOKEN"]]
    )


def in_process(*args: str, env: dict[str, str]) -> str:
    """`here`'s stdout; the command must succeed."""
    result = here(*args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def unique(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}"


def eventually(check: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def write_config(tmp_path: Path, body: dict[str, Any]) -> str:
    path = tmp_path / f"{body['name']}.json"
    path.write_text(json.dumps(body))
    return str(path)


# --- story --------------------------------------------------------------------------------


def test_story_shows_the_fired_config_its_task_and_the_chain(
    client: Client, env: dict[str, str]
) -> None:
    event_name, run = unique("dayClosed"), unique("run")
    # dayClosed(log=access) -> ECHO_DATE -> taskEvent(ECHO_DATE SUCCESS) -> PREPARE_SOUP
    fired = client.create_config(
        {
            "name": unique("echo"),
            "event_deps": [{"name": event_name, "params": {"log": "access", "date": "~"}}],
            "task_type": "ECHO_DATE",
            "task_params": {"run": run},
        }
    )
    waiting = client.create_config(
        {
            "name": unique("join"),
            "event_deps": [
                {"name": event_name, "params": {"log": "access", "date": "~"}},
                {"name": event_name, "params": {"log": "redir", "date": "~"}},
            ],
            "task_type": "ECHO_DATE",
        }
    )
    not_matched = client.create_config(
        {
            "name": unique("other-log"),
            "event_deps": [{"name": event_name, "params": {"log": "bs", "date": "~"}}],
            "task_type": "ECHO_DATE",
        }
    )
    chained = client.create_config(
        {
            "name": unique("soup"),
            "event_deps": [
                {
                    "name": "taskEvent",
                    "params": {"taskType": "ECHO_DATE", "taskStatus": "SUCCESS", "run": run},
                }
            ],
            "task_type": "CRYPTA_GRAPH_PREPARE_SOUP_YAML",
            "task_params": {"date": "{{ deps[0].params.date }}"},
        }
    )
    event_id = client.create_event(event_name, {"log": "access", "date": "2019-01-01"})

    def chain_done() -> dict[str, Any] | None:
        told = client.story(event_id)
        if not told["chain"]:
            return None
        link = told["chain"][0]
        done = link["produced_tasks"] and link["produced_tasks"][0]["status"] in FINISHED
        return told if done else None

    told = eventually(chain_done, "the chain ECHO_DATE -> PREPARE_SOUP")
    echo_task = told["produced_tasks"][0]["sandbox_task_id"]
    soup_task = told["chain"][0]["produced_tasks"][0]["sandbox_task_id"]
    status_event = told["chain"][0]["event"]["_id"]

    tree = ok("story", event_id, env=env)
    lines = tree.splitlines()
    assert lines[0].startswith(f"event {event_id} {event_name}")
    assert "log=access date=2019-01-01" in lines[0] and "PROCESSED" in lines[0]
    # Each config with its outcome, ids whole so that a person can copy them.
    assert any(f"config {fired} " in line and line.endswith(": fired") for line in lines)
    assert any(f"config {waiting} " in line and line.endswith(": waiting") for line in lines)
    assert any(f"config {not_matched} " in line and "not matched" in line for line in lines)
    assert f"binding date=2019-01-01 -> task {echo_task} ECHO_DATE SUCCESS" in tree
    assert f"{event_name}(log=redir, date=~)" in tree  # what the join still waits for
    assert "log: expected bs got access (differs)" in tree
    # The chain: the task's status event, the config it fired, that task.
    assert f"event {status_event} taskEvent" in tree
    assert f"config {chained} " in tree
    assert f"task {soup_task} CRYPTA_GRAPH_PREPARE_SOUP_YAML SUCCESS date=2019-01-01" in tree
    assert "\x1b[" not in tree  # no colour codes in a pipe

    as_json = json.loads(ok("story", event_id, "--json", env=env))
    assert as_json["story_id"] == event_id
    outcomes = {c["config_id"]: c["outcome"] for c in as_json["configs"]}
    assert outcomes == {fired: "fired", waiting: "waiting", not_matched: "not_matched"}
    assert as_json["chain"][0]["task_id"] == echo_task

    shallow = in_process("story", event_id, "--depth", "0", env=env)
    assert status_event not in shallow and "raise --depth" in shallow

    missing = here("story", "0" * 8 + "7" + "f" * 15, env=env)
    assert missing.exit_code == 1 and missing.stdout == ""
    assert missing.stderr.startswith("error: no") and missing.stderr.count("\n") == 1


def test_story_leads_with_the_fired_config_and_collapses_the_unrelated_ones(
    client: Client, env: dict[str, str]
) -> None:
    event_name = unique("crowdEvent")
    ids = crowd(client.create_config, event_name, unique("crowd"), "ECHO_DATE")
    event_id = client.create_event(event_name, {**EVENT_PARAMS, "date": "2019-01-01"})
    eventually(lambda: client.story(event_id)["evaluated"], "the reactor to evaluate it")

    lines = ok("story", event_id, env=env).splitlines()
    # The lines of this event's configs (the chain below names taskEvent's configs).
    named = [(m.group(1), line) for line in lines if (m := re.search(r"config (\w{24}) ", line))]
    config_lines = [line for config_id, line in named if config_id in ids.every]
    # The answer first: fired, waiting, the two near misses, the disabled one it matches.
    assert [config_id for config_id, _ in named if config_id in ids.every] == ids.shown
    assert config_lines[0].endswith(": fired")
    assert sum("near miss" in line for line in config_lines) == 2
    # The other 25: one line per param they differ in.
    [by_type] = [line for line in lines if "expect another taskType" in line]
    assert "24 configs expect another taskType: OTHER_00, OTHER_01" in by_type
    assert "--all" in by_type
    assert any("1 config expects another environment: testing" in line for line in lines)
    assert len(lines) < 40, "\n".join(lines)

    every = ok("story", event_id, "--all", env=env)
    assert all(f"config {i} " in every for i in ids.every)
    assert "expect another" not in every


# --- configs ------------------------------------------------------------------------------


def test_configs_are_created_listed_shown_tried_and_deleted(
    client: Client, env: dict[str, str], tmp_path: Path
) -> None:
    event_name, action_id = unique("dayClosed"), unique("action")
    body = {
        "name": unique("match"),
        "event_deps": [
            {"name": event_name, "params": {"log": "access", "date": "~"}},
            {"name": event_name, "params": {"log": "redir", "date": "~"}},
        ],
        "task_type": "CRYPTA_GRAPH_HUMAN_MATCHING_YAML",
        "task_params": {"limit": "{{ 5 * 2 }}"},
        "action_params": {"action_id": action_id},
    }
    made = stepd("configs", "create", "--file", write_config(tmp_path, body), env=env)
    assert made.returncode == 0, made.stderr
    # Stored, and told that no event of that name was ever sent (a typo would break it).
    assert made.stderr.startswith(f"warning: no event named {event_name!r} has been stored")
    created = made.stdout
    config_id = created.strip()
    assert created == f"{config_id}\n"  # only the id
    client.update_config(config_id, {**body, "description": "after the logs close"})

    listed = json.loads(
        ok("configs", "list", "--author", "robot-crypta", "--filter",
           f"action_params__action_id={action_id}", "--json", env=env)
    )  # fmt: skip
    assert [c["_id"] for c in listed] == [config_id]
    table = in_process(
        "configs", "list", "--task-type", "CRYPTA_GRAPH_HUMAN_MATCHING_YAML", env=env
    )
    [row] = [line for line in table.splitlines() if config_id in line]
    assert body["name"] in row and "robot-crypta" in row and "yes" in row
    assert f"{event_name}(log=access, date=~) + {event_name}(log=redir, date=~)" in row

    shown = json.loads(ok("configs", "show", config_id, "--json", env=env))
    assert shown["_id"] == config_id and shown["version"] == 2
    assert [h["action"] for h in shown["history"]] == ["created", "updated"]
    page = in_process("configs", "show", config_id, env=env)
    assert 'description: "" -> "after the logs close"' in page
    assert "{{ 5 * 2 }}" in page

    # With access stored for 2019-01-02 only, a made-up redir event fires for that day
    # and waits for access on any other.
    client.create_event(event_name, {"log": "access", "date": "2019-01-02"})
    waits = ok("configs", "test", "--id", config_id, "--event", event_name,
               "log=redir", "date=2019-01-03", env=env)  # fmt: skip
    assert "-> waiting" in waits and "binding date=2019-01-03" in waits
    assert f"dep 0 {event_name}(log=access, date=~)" in waits
    fires = in_process("configs", "test", "--id", config_id, "--event", event_name,
                       "log=redir", "date=2019-01-02", env=env)  # fmt: skip
    assert "would fire" in fires and "binding date=2019-01-02" in fires
    assert "task CRYPTA_GRAPH_HUMAN_MATCHING_YAML date=2019-01-02 limit=10" in fires
    # An unsaved config from a file, on the stored events.
    draft = {"name": event_name, "params": {"log": "redir", "date": "~"}}
    other = {**body, "name": unique("draft"), "event_deps": [draft]}
    tried = json.loads(
        in_process("configs", "test", "--file", write_config(tmp_path, other),
                   "--events", event_name, "--param", "date=2019-01-02", "--limit", "5",
                   "--json", env=env)
    )  # fmt: skip
    [entry] = tried["events"]
    assert entry["outcome"] == "not_matched"
    assert entry["not_matched"][0]["param"] == "log"
    page = in_process("configs", "test", "--file", write_config(tmp_path, other),
                      "--events", event_name, env=env)  # fmt: skip
    assert "-> not matched" in page and "log: expected redir got access (differs)" in page
    assert client.list_tasks(config_id=config_id) == []  # trying launched nothing

    usage = here("configs", "test", "--id", config_id, env=env)
    assert usage.exit_code == 2 and "--event" in usage.stderr

    assert ok("configs", "delete", config_id, env=env) == f"deleted {config_id}\n"
    gone = stepd("configs", "show", config_id, env=env)
    assert gone.returncode == 1 and f"no config with id '{config_id}'" in gone.stderr
    assert "Traceback" not in gone.stderr and gone.stderr.count("\n") == 1


# --- tasks and semaphores -------------------------------------------------------------------


def test_a_task_run_by_hand_is_followed_listed_shown_restarted_and_stopped(
    client: Client, env: dict[str, str]
) -> None:
    day, semaphore = unique("2019-01-01"), unique("yt")
    assert in_process("semaphores", "set", semaphore, "2", env=env).startswith(semaphore)
    started = ok("tasks", "run", "ECHO_DATE", f"date={day}", "--priority", "3",
                 "--semaphore", f"{semaphore}:2", "--max-retries", "1", env=env)  # fmt: skip
    task_id = int(started)
    assert started == f"{task_id}\n"  # only the id

    followed = stepd("tasks", "logs", str(task_id), "--follow", env=env)
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == f"$ echo processing {day}\nprocessing {day}\n"
    assert client.get_task(task_id)["status"] == "SUCCESS"  # it returned once the task ended

    listed = json.loads(ok("tasks", "list", "--type", "ECHO_DATE", "--status", "success",
                           "--limit", "1000", "--json", env=env))  # fmt: skip
    [task] = [t for t in listed if t["id"] == task_id]
    assert task["params"] == {"date": day} and task["priority"] == 3
    assert task["semaphores"] == [{"name": semaphore, "weight": 2}]
    table = in_process("tasks", "list", "--type", "ECHO_DATE", env=env)
    [row] = [line for line in table.splitlines() if f"date={day}" in line]
    assert row.split()[:4] == [str(task_id), "ECHO_DATE", "SUCCESS", "1"]

    assert ok("tasks", "restart", str(task_id), env=env) == f"restarted {task_id} (ENQUEUED)\n"
    again = stepd("tasks", "logs", str(task_id), "--follow", env=env)
    assert again.returncode == 0
    assert again.stdout.endswith(f"processing {day}\n")
    shown = json.loads(in_process("tasks", "show", str(task_id), "--json", env=env))
    assert [a["status"] for a in shown["attempt_history"]] == ["SUCCESS", "SUCCESS"]
    assert shown["config_id"] is None and "trigger" not in shown  # run by hand
    page = in_process("tasks", "show", str(task_id), env=env)
    assert "- (run by hand)" in page and f"{semaphore}:2" in page and "attempts" in page
    assert in_process("tasks", "logs", str(task_id), "--attempt", "1", env=env).endswith(
        f"processing {day}\n"
    )

    ended = here("tasks", "stop", str(task_id), env=env)
    assert ended.exit_code == 1 and "has already ended (SUCCESS)" in ended.stderr

    # A failing task with retries waits out its backoff ENQUEUED; stopping it is at once.
    failing = client.create_task("CRYPTA_GRAPH_PREPARE_SOUP_YAML", {}, max_retries=5)["id"]
    eventually(
        lambda: (t := client.get_task(failing))["attempts"] >= 2 and t["status"] == "ENQUEUED",
        "the second retry's backoff",
    )
    assert in_process("tasks", "stop", str(failing), env=env) == f"stopped {failing}\n"
    assert client.get_task(failing)["status"] == "STOPPED"

    bad = here("tasks", "run", "ECHO_DATE", "--semaphore", f"{semaphore}:x", env=env)
    assert bad.exit_code == 2 and "is not a positive integer" in bad.stderr
    unknown = here("tasks", "run", "NO_SUCH_TYPE", env=env)  # made, with a warning
    assert unknown.exit_code == 0, unknown.stderr
    assert "warning: no worker has announced task type 'NO_SUCH_TYPE'" in unknown.stderr
    ended = client.get_task(int(unknown.stdout.strip().splitlines()[-1]))
    assert ended["type"] == "NO_SUCH_TYPE"
    types = in_process("tasks", "types", env=env)
    assert "echo processing {date}" in types and "date: str, limit: int = ..." in types


def test_semaphores_are_set_listed_and_deleted(env: dict[str, str]) -> None:
    name = unique("yt-hahn")
    assert ok("semaphores", "set", name, "3", env=env) == f"{name} capacity 3 (used 0)\n"
    listed = json.loads(ok("semaphores", "list", "--json", env=env))
    assert [(s["capacity"], s["used"], s["auto"]) for s in listed if s["name"] == name] == [
        (3, 0, False)
    ]
    [row] = [
        line for line in in_process("semaphores", "list", env=env).splitlines() if name in line
    ]
    assert row.split()[:4] == [name, "3", "0", "no"]
    assert ok("semaphores", "delete", name, env=env) == f"deleted semaphore {name}\n"
    again = here("semaphores", "delete", name, env=env)
    assert again.exit_code == 1 and f"no semaphore '{name}'" in again.stderr


def test_a_semaphore_is_a_name_and_an_optional_weight() -> None:
    assert parse_semaphore("yt") == {"name": "yt", "weight": 1}
    assert parse_semaphore("yt:3") == {"name": "yt", "weight": 3}
    assert parse_semaphore("pool:hahn:2") == {"name": "pool:hahn", "weight": 2}
    for bad in (":2", "yt:", "yt:0", "yt:-1", "yt:x"):
        with pytest.raises(ValueError):
            parse_semaphore(bad)
