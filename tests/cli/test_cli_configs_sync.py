"""`stepd configs sync`: the real command in a subprocess against a real server on SQLite,
plus the loader and the plan as plain functions.

One server serves the module; every test syncs as a user of its own, so that each
starts with no configs (configs are managed per author).
"""

from __future__ import annotations

import json
import os
import textwrap
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LiveServer, served, server_token
from conftest import run_stepd as stepd

from stepd.client import Client
from stepd.configs_as_code import (
    FREE,
    ConfigsFileError,
    Declared,
    change_lines,
    config,
    dep,
    load_configs,
    plan,
    server_problems,
)
from stepd.domain.configs import parse_config
from stepd.store import events as event_store
from stepd.store import open_store
from stepd.timeutil import utcnow

TASKS = ("--tasks", "examples/crypta_tasks.py")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # The Crypta team's deployment: its configs wait for cryptaTaskEvent, and dayClosed
    # events have been sent before; so a sync of its configs has nothing to warn of.
    flags = (*TASKS, "--task-event-name", "cryptaTaskEvent")
    with served("sqlite", tmp_path_factory.mktemp("sync"), *flags) as server:
        store = open_store(server.db_url, migrate=False)
        try:
            with store.write() as conn:
                day = event_store.NewEvent(name="dayClosed", params={}, created=utcnow())
                event_store.insert_events(conn, [day])
        finally:
            store.close()
        yield server


@pytest.fixture
def user(live_server: LiveServer) -> tuple[str, str]:
    """A user of this test alone, and a token for it."""
    name = f"robot-{uuid.uuid4().hex[:8]}"
    return name, server_token(live_server, name)


@pytest.fixture
def env(live_server: LiveServer, user: tuple[str, str]) -> dict[str, str]:
    """The command's environment: this process's without STEPD_*, plus the server's."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STEPD_")}
    return {**clean, "STEPD_URL": live_server.url, "STEPD_TOKEN": user[1]}


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[Client]:
    with Client(env["STEPD_URL"], env["STEPD_TOKEN"]) as c:
        yield c


def sync(path: Path, *args: str, env: dict[str, str]) -> str:
    """`stepd configs sync` as a person runs it; it must succeed, saying nothing on stderr."""
    result = stepd("configs", "sync", str(path), *args, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def sync_json(path: Path, *args: str, env: dict[str, str]) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(sync(path, "--json", *args, env=env))
    return answer


def actions(answer: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["action"] for c in answer["configs"]}


def row(output: str, name: str) -> str:
    """The table line of config `name`."""
    return next(line for line in output.splitlines() if line.strip().startswith(name + " "))


MODULE = """\
from stepd.configs_as_code import FREE, config, dep

CONFIGS = [
    config(
        "human-matching-after-soup",
        task_type="CRYPTA_GRAPH_HUMAN_MATCHING_YAML",
        deps=[dep("cryptaTaskEvent", taskType="CRYPTA_GRAPH_PREPARE_SOUP_YAML",
                  taskStatus="SUCCESS", environment="stable", date=FREE)],
        task_params={"limit": PRIORITY_LIMIT},
        max_retries=2,
    ),
    # A plain dict in the API's shape; the fields left out take their defaults.
    {
        "name": "echo-date",
        "event_deps": [{"name": "dayClosed", "params": {"date": "~"}}],
        "task_type": "ECHO_DATE",
    },
]
"""


def write_module(tmp_path: Path, limit: int = 20, *, extra: str = "") -> Path:
    path = tmp_path / "action_configs.py"
    path.write_text(MODULE.replace("PRIORITY_LIMIT", str(limit)) + textwrap.dedent(extra))
    return path


def stored(client: Client, author: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in client.list_configs(author=author)}


# --- the command against a live server ----------------------------------------------------


def test_sync_creates_the_declared_configs_and_a_second_run_changes_nothing(
    tmp_path: Path, env: dict[str, str], client: Client, user: tuple[str, str]
) -> None:
    path = write_module(tmp_path)
    output = sync(path, env=env)
    configs = stored(client, user[0])
    assert set(configs) == {"human-matching-after-soup", "echo-date"}
    soup = configs["human-matching-after-soup"]
    assert soup["author"] == user[0] and soup["max_retries"] == 2
    assert soup["event_deps"][0]["params"]["date"] == "~"
    assert soup["task_params"] == {"limit": 20}
    assert "created" in row(output, "human-matching-after-soup")
    assert soup["_id"] in row(output, "human-matching-after-soup")
    assert f"for {user[0]}: 2 created" in output

    again = sync(path, env=env)
    assert "unchanged" in row(again, "human-matching-after-soup")
    assert "unchanged" in row(again, "echo-date")
    assert "2 unchanged" in again
    after = stored(client, user[0])
    assert after == configs  # same versions, same `updated` times: nothing was written
    assert len(client.config_history(soup["_id"])) == 1


def test_an_edited_config_is_updated_and_the_changed_fields_are_shown(
    tmp_path: Path, env: dict[str, str], client: Client, user: tuple[str, str]
) -> None:
    sync(write_module(tmp_path, limit=20), env=env)
    before = stored(client, user[0])
    path = write_module(tmp_path, limit=50)
    path.write_text(path.read_text().replace("max_retries=2", "max_retries=2, priority=5"))

    output = sync(path, env=env)
    assert "updated" in row(output, "human-matching-after-soup")
    assert "unchanged" in row(output, "echo-date")
    assert 'task_params: {"limit": 20} -> {"limit": 50}' in output
    assert "priority: 0 -> 5" in output
    after = stored(client, user[0])
    soup = after["human-matching-after-soup"]
    assert soup["version"] == 2 and soup["priority"] == 5 and soup["task_params"] == {"limit": 50}
    assert after["echo-date"] == before["echo-date"]
    assert sync_json(path, env=env)["summary"] == {"unchanged": 2}


def test_a_dry_run_prints_the_plan_and_changes_nothing(
    tmp_path: Path, env: dict[str, str], client: Client, user: tuple[str, str]
) -> None:
    path = write_module(tmp_path)
    output = sync(path, "--dry-run", env=env)
    assert "create" in row(output, "echo-date")
    assert "nothing changed" in output
    assert stored(client, user[0]) == {}

    sync(path, env=env)
    before = stored(client, user[0])
    edited = write_module(tmp_path, limit=99)
    plan_json = sync_json(edited, "--dry-run", env=env)
    assert plan_json["dry_run"] is True
    assert actions(plan_json) == {"human-matching-after-soup": "updated", "echo-date": "unchanged"}
    soup_plan = next(c for c in plan_json["configs"] if c["name"] == "human-matching-after-soup")
    assert soup_plan["changes"] == {"task_params": {"old": {"limit": 20}, "new": {"limit": 99}}}
    assert stored(client, user[0]) == before


def test_a_config_removed_from_the_file_is_kept_unless_prune_deletes_it(
    tmp_path: Path,
    live_server: LiveServer,
    env: dict[str, str],
    client: Client,
    user: tuple[str, str],
) -> None:
    # Another author's config of the same name, and another of theirs, stay whatever happens.
    other = f"robot-other-{uuid.uuid4().hex[:8]}"
    with Client(live_server.url, server_token(live_server, other)) as theirs:
        for name in ("echo-date", "their-own"):
            theirs.create_config(
                {"name": name, "event_deps": [{"name": "x"}], "task_type": "ECHO_DATE"}
            )
    theirs_before = stored(client, other)

    sync(write_module(tmp_path), env=env)
    ids = {name: c["_id"] for name, c in stored(client, user[0]).items()}
    only_soup = tmp_path / "only_soup.py"
    only_soup.write_text(write_module(tmp_path).read_text().split("    # A plain dict")[0] + "]\n")

    kept = sync(only_soup, env=env)
    assert "not in file (kept)" in row(kept, "echo-date")
    assert "--prune deletes them" in kept
    assert set(stored(client, user[0])) == {"human-matching-after-soup", "echo-date"}

    assert actions(sync_json(only_soup, "--prune", "--dry-run", env=env))["echo-date"] == "deleted"
    assert set(stored(client, user[0])) == {"human-matching-after-soup", "echo-date"}

    pruned = sync(only_soup, "--prune", env=env)
    assert "deleted" in row(pruned, "echo-date") and ids["echo-date"] in row(pruned, "echo-date")
    assert set(stored(client, user[0])) == {"human-matching-after-soup"}
    assert stored(client, other) == theirs_before


def _more(extra: str) -> str:
    """A line appending one config to CONFIGS: `extra` is the rest of its dict."""
    return (
        f"CONFIGS.append({{'event_deps': [{{'name': 'a'}}], 'task_type': 'ECHO_DATE', {extra}}})\n"
    )


# Code appended to a valid module (after an edit and a new config), and what the error says.
BAD_MODULES = {
    "syntax error": ("CONFIGS = [\n", "SyntaxError: '[' was never closed"),
    "import error": ("import no_such_module_here\n", "No module named 'no_such_module_here'"),
    "no CONFIGS": ("del CONFIGS\n", "defines no CONFIGS"),
    "CONFIGS not a list": ("CONFIGS = {'name': 'x'}\n", "CONFIGS must be a list"),
    "a config not a mapping": ("CONFIGS.append('x')\n", "CONFIGS[3] is a str, not a mapping"),
    "duplicate names": (
        _more("'name': 'echo-date'"),
        "CONFIGS[3] ('echo-date'): the name 'echo-date' is already used by CONFIGS[1]",
    ),
    "a field the parser refuses": (
        _more("'name': 'x', 'retries': 3"),
        "CONFIGS[3] ('x'): unknown field 'retries'",
    ),
    "a template that does not parse": (
        _more("'name': 'x', 'task_params': {'d': '{{ date'}"),
        "task_params.d: template does not parse",
    ),
    "a semaphore weight over its capacity": (
        _more("'name': 'x', 'semaphores': [{'name': 'never-made', 'weight': 3}]"),
        "semaphore 'never-made' has capacity 1",
    ),
}


@pytest.mark.parametrize("case", list(BAD_MODULES))
def test_a_bad_module_is_refused_with_a_clear_message_and_nothing_changes(
    case: str, tmp_path: Path, env: dict[str, str], client: Client, user: tuple[str, str]
) -> None:
    good = write_module(tmp_path)
    sync(good, env=env)
    before = stored(client, user[0])
    code, message = BAD_MODULES[case]
    # The bad part comes after a valid edit and a new config: neither may be applied.
    bad = tmp_path / "bad_configs.py"
    bad.write_text(
        good.read_text().replace("max_retries=2", "max_retries=7")
        + _more("'name': 'brand-new'")
        + code
    )
    # The four runs are refused before they write, so they may run at once (each is a
    # Python start-up of a second or more; one after the other they were most of the test).
    variants = ((), ("--dry-run",), ("--prune",), ("--json",))
    with ThreadPoolExecutor(len(variants)) as pool:
        results = list(
            pool.map(lambda args: stepd("configs", "sync", str(bad), *args, env=env), variants)
        )
    for args, result in zip(variants, results, strict=True):
        assert result.returncode == 1, (args, result.stdout)
        assert result.stderr.startswith("error: ")
        assert message in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
    assert stored(client, user[0]) == before


def test_a_task_type_no_worker_announced_is_synced_with_a_warning(
    tmp_path: Path, env: dict[str, str], client: Client, user: tuple[str, str]
) -> None:
    # As the original STEP took configs for any Sandbox task type: stored, and said.
    good = write_module(tmp_path)
    path = tmp_path / "unknown_type.py"
    path.write_text(good.read_text() + _more("'name': 'x', 'task_type': 'NO_SUCH_TYPE'"))
    warning = "warning: CONFIGS[2] ('x'): no worker has announced task type 'NO_SUCH_TYPE'"
    planned = stepd("configs", "sync", str(path), "--dry-run", env=env)
    assert planned.returncode == 0 and warning in planned.stderr, planned.stderr
    done = stepd("configs", "sync", str(path), env=env)
    assert done.returncode == 0, done.stderr
    assert "warning: no worker has announced task type 'NO_SUCH_TYPE'" in done.stderr
    assert stored(client, user[0])["x"]["task_type"] == "NO_SUCH_TYPE"


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path, env: dict[str, str]) -> None:
    result = stepd("configs", "sync", str(tmp_path / "nope.py"), env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {tmp_path / 'nope.py'}: no such file")


def test_sync_without_a_valid_token_says_how_to_get_one(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = write_module(tmp_path)
    for token in ("", "not-a-token"):
        result = stepd("configs", "sync", str(path), env={**env, "STEPD_TOKEN": token})
        assert result.returncode == 1
        assert "STEPD_TOKEN" in result.stderr and "Traceback" not in result.stderr


def test_whoami_names_the_tokens_user_and_refuses_without_a_token(
    live_server: LiveServer, user: tuple[str, str], client: Client
) -> None:
    assert client.whoami() == {"user": user[0], "admin": False}
    answer = httpx.get(f"{live_server.url}/api/v1/whoami")
    assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
    wrong = httpx.get(f"{live_server.url}/api/v1/whoami", headers={"Authorization": "OAuth nope"})
    assert wrong.status_code == 401


# --- the loader and the plan, without a server ---------------------------------------------


def _load(tmp_path: Path, text: str) -> list[Declared]:
    path = tmp_path / f"m_{uuid.uuid4().hex[:6]}.py"
    path.write_text(textwrap.dedent(text))
    return load_configs(path)


def test_the_helpers_build_the_apis_config_shape() -> None:
    body = config(
        "c",
        task_type="T",
        deps=[dep("e", {"log-type": "access"}, date=FREE)],
        semaphores=["yt", {"name": "db", "weight": 2}],
        window="1d",
    )
    spec = parse_config(dict(body))
    assert body["event_deps"] == [{"name": "e", "params": {"log-type": "access", "date": "~"}}]
    assert spec.name == "c" and spec.window_seconds == 86400
    assert [(s.name, s.weight) for s in spec.semaphores] == [("yt", 1), ("db", 2)]


def test_a_module_can_import_its_neighbours(tmp_path: Path) -> None:
    (tmp_path / "shared_deps.py").write_text("SOUP = {'name': 'soup', 'params': {'date': '~'}}\n")
    declared = _load(
        tmp_path,
        """
        from shared_deps import SOUP
        CONFIGS = [{"name": "a", "event_deps": [SOUP], "task_type": "T"}]
        """,
    )
    assert [d.name for d in declared] == ["a"]


def test_a_module_may_use_dataclasses_and_tuples(tmp_path: Path) -> None:
    declared = _load(
        tmp_path,
        """
        from __future__ import annotations
        from dataclasses import dataclass

        @dataclass
        class Pipeline:
            name: str
            task_type: str

        CONFIGS = [
            {"name": p.name, "event_deps": ({"name": "e", "params": {"date": "~"}},),
             "task_type": p.task_type}
            for p in (Pipeline("a", "T"), Pipeline("b", "U"))
        ]
        """,
    )
    assert [d.name for d in declared] == ["a", "b"]
    assert declared[0].body["event_deps"] == [{"name": "e", "params": {"date": "~"}}]


def test_every_problem_of_a_module_is_listed_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigsFileError) as caught:
        _load(
            tmp_path,
            """
            import datetime
            CONFIGS = [
                42,
                {"name": "a", "event_deps": [{"name": "e"}], "task_type": "T",
                 "task_params": {"when": datetime.date(2019, 1, 1)}},
                {"name": "b", "event_deps": [], "task_type": "T"},
            ]
            """,
        )
    message = caught.value.message
    assert "has 3 problems" in message
    assert "CONFIGS[0] is a int" in message
    assert "CONFIGS[1] ('a'): not JSON" in message
    assert "CONFIGS[2] ('b'): event_deps is required" in message


def test_an_import_error_shows_the_exception_and_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigsFileError) as caught:
        _load(tmp_path, "x = 1\ny = 1 / 0\n")
    assert "ZeroDivisionError: division by zero (line 2)" in caught.value.message


def _stored(body: dict[str, Any], **read_only: object) -> dict[str, Any]:
    """`body` as a GET returns it: every field filled in, plus the read-only ones."""
    return {
        "_id": "000000000000000000000001",
        "author": "robot",
        "version": 3,
        "created": "2026-01-01T00:00:00Z",
        "updated": "2026-01-02T00:00:00Z",
        **parse_config(body).to_json(),
        **read_only,
    }


def test_defaults_left_out_and_read_only_fields_do_not_count_as_changes(tmp_path: Path) -> None:
    declared = _load(
        tmp_path,
        """
        CONFIGS = [{"name": "a", "event_deps": [{"name": "e", "params": {"d": None}}],
                    "task_type": "T", "semaphores": ["yt"]}]
        """,
    )
    server_copy = _stored(
        {
            "name": "a",
            "event_deps": [{"name": "e", "params": {"d": None}}],
            "task_type": "T",
            "semaphores": [{"name": "yt", "weight": 1}],
            "priority": 0,
            "enabled": True,
            "description": "",
        }
    )
    [step] = plan(declared, [server_copy], prune=False)
    assert step.action == "unchanged" and step.changes == {}
    assert step.config_id == "000000000000000000000001"


def test_the_plan_creates_updates_and_keeps_or_prunes_by_name(tmp_path: Path) -> None:
    declared = _load(
        tmp_path,
        """
        CONFIGS = [
            {"name": "new", "event_deps": [{"name": "e"}], "task_type": "T"},
            {"name": "same", "event_deps": [{"name": "e"}], "task_type": "T"},
            {"name": "edited", "event_deps": [{"name": "e"}], "task_type": "T", "priority": 5},
        ]
        """,
    )
    base = {"event_deps": [{"name": "e"}], "task_type": "T"}
    server = [
        _stored({"name": "same", **base}, _id="1"),
        _stored({"name": "edited", **base}, _id="2"),
        _stored({"name": "gone", **base}, _id="3"),
    ]
    kept = {s.name: (s.action, s.config_id) for s in plan(declared, server, prune=False)}
    assert kept == {
        "new": ("created", None),
        "same": ("unchanged", "1"),
        "edited": ("updated", "2"),
        "gone": ("kept", "3"),
    }
    pruned = plan(declared, server, prune=True)
    assert [s.action for s in pruned] == ["created", "unchanged", "updated", "deleted"]
    assert pruned[2].changes == {"priority": {"old": 0, "new": 5}}


def test_changes_read_as_old_to_new_or_as_a_diff_when_long() -> None:
    short = change_lines({"priority": {"old": 0, "new": 5}})
    assert short == ["priority: 0 -> 5"]
    long_old = {"day": "{{ date }}", "cluster": "hahn", "limit": 20, "note": "x" * 30}
    long_new = {**long_old, "limit": 50}
    lines = change_lines({"task_params": {"old": long_old, "new": long_new}})
    assert lines[0] == "task_params:"
    assert '  -  "limit": 20,' in lines and '  +  "limit": 50,' in lines


def test_the_servers_own_checks_run_on_what_would_be_sent_only(tmp_path: Path) -> None:
    declared = _load(
        tmp_path,
        """
        CONFIGS = [
            {"name": "sent", "event_deps": [{"name": "logs", "params": {"cluster": "~"}}],
             "task_type": "UNKNOWN", "semaphores": [{"name": "yt", "weight": 3}]},
            {"name": "untouched", "event_deps": [{"name": "e"}], "task_type": "UNKNOWN"},
        ]
        """,
    )
    steps = plan(declared, [_stored(declared[1].body, _id="9")], prune=False)
    sent: list[list[str]] = []

    def validate(bodies: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        sent.append([str(b["name"]) for b in bodies])
        return [
            {
                "index": 0,
                "ok": False,
                "message": "unknown task type 'UNKNOWN'",
                "field": "task_type",
            }
        ]

    problems = server_problems(declared, steps, validate)
    assert sent == [["sent"]]  # the unchanged config is not checked
    assert problems == ["CONFIGS[0] ('sent'): unknown task type 'UNKNOWN' [task_type]"]
    assert server_problems(declared, steps, lambda bodies: [{"ok": True} for _ in bodies]) == []


def test_a_refusal_mid_sync_says_what_was_applied_and_what_was_not() -> None:
    from stepd.cli.configs_sync import _partial
    from stepd.configs_as_code import Step

    steps = [
        Step(name="a", action="created", config_id=None),
        Step(name="b", action="unchanged", config_id="2"),
        Step(name="c", action="updated", config_id="3"),
        Step(name="d", action="deleted", config_id="4"),
    ]
    done = [Step(name="a", action="created", config_id="1"), steps[1]]
    message = _partial(steps[2], "c is taken", done, steps)
    assert message.startswith("could not update config 'c': c is taken.")
    assert "Already applied: a created." in message
    assert "Not attempted: d." in message


def test_sync_leaves_a_paused_config_paused_whether_it_changes_it_or_not(
    tmp_path: Path, env: dict[str, str], client: Client, user: tuple[str, str]
) -> None:
    sync(write_module(tmp_path), env=env)
    soup = stored(client, user[0])["human-matching-after-soup"]
    assert client.disable_config(soup["_id"])["disabled"] is True

    again = sync(write_module(tmp_path), env=env)
    assert "unchanged" in row(again, "human-matching-after-soup")
    changed = sync(write_module(tmp_path, limit=30), env=env)
    assert "updated" in row(changed, "human-matching-after-soup")
    after = stored(client, user[0])["human-matching-after-soup"]
    assert after["task_params"] == {"limit": 30} and after["version"] == 2
    assert after["disabled"] is True and after["disabled_by"] == user[0]
    assert stored(client, user[0])["echo-date"]["disabled"] is False
