"""Luigi tasks report START / SUCCESS / FAILURE to a real `stepd serve` (SQLite), through
real `luigi.build` runs on Luigi's local scheduler; and a SUCCESS chains a stepd task.

Each test reports with an `environment` of its own, so that the events of one test are
told apart from the others' on the shared server.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import luigi
import pytest
from conftest import LiveServer, free_port, served, server_token

from stepd.client import Client
from stepd.integrations.luigi import (
    START,
    Outages,
    Reporter,
    StepdReported,
    install,
    task_params,
)

TASKS = ("--tasks", "examples/crypta_tasks.py")
FINISHED = {"SUCCESS", "FAILURE", "EXCEPTION", "TIMEOUT", "STOPPED"}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with served("sqlite", tmp_path_factory.mktemp("luigi"), *TASKS) as server:
        yield server


@pytest.fixture(scope="module")
def token(live_server: LiveServer) -> str:
    return server_token(live_server)


@pytest.fixture
def client(live_server: LiveServer, token: str) -> Iterator[Client]:
    with Client(live_server.url, token) as c:
        yield c


@pytest.fixture
def environment() -> str:
    """The `environment` this test's events carry (and no other test's)."""
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def stepd_env(
    monkeypatch: pytest.MonkeyPatch, live_server: LiveServer, token: str, environment: str
) -> None:
    """The variables a team's Luigi process is given to report to this server."""
    monkeypatch.setenv("STEPD_URL", live_server.url)
    monkeypatch.setenv("STEPD_TOKEN", token)
    monkeypatch.setenv("STEPD_ENVIRONMENT", environment)


@pytest.fixture(scope="module", autouse=True)
def luigi_leaves_logging_alone() -> Iterator[None]:
    """Luigi's `[core] no_configure_logging`: caplog keeps seeing the warnings."""
    config = luigi.configuration.get_config()
    config.set("core", "no_configure_logging", "true")
    yield
    config.remove_option("core", "no_configure_logging")


def build(*tasks: luigi.Task) -> bool:
    """`luigi.build` as a pipeline runs it: one worker, Luigi's local scheduler."""
    ok: bool = luigi.build(list(tasks), local_scheduler=True)
    return ok


def eventually(check: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def reported(client: Client, environment: str) -> list[tuple[str, str]]:
    """(taskType, taskStatus) of every cryptaTaskEvent of `environment`, oldest first."""
    events = client.get_events("cryptaTaskEvent", {"environment": environment}, limit=100)
    return [(e["params"]["taskType"], e["params"]["taskStatus"]) for e in events]


# --- the pipeline: soup, then matching on it; and a task that fails ------------------------


class PrepareSoup(StepdReported):
    """Writes the day's soup."""

    stepd_task_type = "CRYPTA_GRAPH_PREPARE_SOUP_YAML"
    date = luigi.DateParameter()
    root = luigi.Parameter(significant=False)  # where outputs go: not part of the report

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"{self.root}/soup-{self.date:%Y-%m-%d}")

    def run(self) -> None:
        with self.output().open("w") as f:
            f.write("soup\n")


class HumanMatching(StepdReported):
    """Matches on the day's soup."""

    stepd_task_type = "CRYPTA_GRAPH_HUMAN_MATCHING_YAML"
    date = luigi.DateParameter()
    limit = luigi.IntParameter(default=1000)
    dry_run = luigi.BoolParameter(default=False)
    root = luigi.Parameter(significant=False)

    def requires(self) -> PrepareSoup:
        return PrepareSoup(date=self.date, root=self.root)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"{self.root}/matching-{self.date:%Y-%m-%d}")

    def run(self) -> None:
        with self.output().open("w") as f:
            f.write("matched\n")


class BrokenExport(StepdReported):
    """Fails every time it runs."""

    date = luigi.DateParameter()
    root = luigi.Parameter(significant=False)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"{self.root}/export-{self.date:%Y-%m-%d}")

    def run(self) -> None:
        raise RuntimeError("the export is broken")


class FlakyExport(StepdReported):
    """Fails while its `root` holds a file named `fail`."""

    date = luigi.DateParameter()
    root = luigi.Parameter(significant=False)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"{self.root}/flaky-{self.date:%Y-%m-%d}")

    def run(self) -> None:
        if Path(f"{self.root}/fail").exists():
            raise RuntimeError("not yet")
        with self.output().open("w") as f:
            f.write("done\n")


class PlainTask(luigi.Task):
    """A task that knows nothing of stepd (install() reports it)."""

    day = luigi.DateParameter()
    root = luigi.Parameter(significant=False)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"{self.root}/plain-{self.day:%Y-%m-%d}")

    def run(self) -> None:
        with self.output().open("w") as f:
            f.write("plain\n")


class OtherPlainTask(PlainTask):
    """Another plain task, which install() in the test does not name."""

    stepd_task_type: ClassVar[str] = "OTHER"

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"{self.root}/other-{self.day:%Y-%m-%d}")


DAY = dt.date(2019, 1, 1)


# --- tests --------------------------------------------------------------------------------


@pytest.mark.usefixtures("stepd_env")
def test_a_luigi_pipeline_reports_start_success_and_failure_with_its_params(
    client: Client, environment: str, tmp_path: Path
) -> None:
    ok = build(
        HumanMatching(date=DAY, root=str(tmp_path)), BrokenExport(date=DAY, root=str(tmp_path))
    )

    assert ok is False  # the broken export failed the build, as it would have without stepd
    assert (tmp_path / "matching-2019-01-01").exists()
    events = eventually(
        lambda: found if len(found := reported(client, environment)) == 6 else None,
        "six status events",
    )
    soup, matching, broken = (
        "CRYPTA_GRAPH_PREPARE_SOUP_YAML",
        "CRYPTA_GRAPH_HUMAN_MATCHING_YAML",
        "BrokenExport",
    )
    assert sorted(events) == sorted(
        [
            (soup, "START"),
            (soup, "SUCCESS"),
            (matching, "START"),
            (matching, "SUCCESS"),
            (broken, "START"),
            (broken, "FAILURE"),
        ]
    )
    # The dependency ran, and reported, before the task that needs it.
    assert events.index((soup, "SUCCESS")) < events.index((matching, "START"))

    [success] = client.get_events(
        "cryptaTaskEvent",
        {"environment": environment, "taskType": matching, "taskStatus": "SUCCESS"},
    )
    assert success["params"] == {
        "taskType": matching,
        "taskStatus": "SUCCESS",
        "environment": environment,
        "date": "2019-01-01",
        "limit": "1000",
        "dry_run": "false",
    }
    assert success["source_type"] == "luigi"
    assert success["source"] == HumanMatching(date=DAY, root=str(tmp_path)).task_id
    assert success["author"] == "robot-crypta"
    [failure] = client.get_events(
        "cryptaTaskEvent", {"environment": environment, "taskStatus": "FAILURE"}
    )
    assert failure["params"] == {
        "taskType": broken,
        "taskStatus": "FAILURE",
        "environment": environment,
        "date": "2019-01-01",
    }


@pytest.mark.usefixtures("stepd_env")
def test_a_task_run_again_after_a_failure_reports_again(
    client: Client, environment: str, tmp_path: Path
) -> None:
    (tmp_path / "fail").touch()
    assert build(FlakyExport(date=DAY, root=str(tmp_path))) is False
    (tmp_path / "fail").unlink()
    assert build(FlakyExport(date=DAY, root=str(tmp_path))) is True
    # A complete task is not run, so a third build reports nothing.
    assert build(FlakyExport(date=DAY, root=str(tmp_path))) is True

    events = eventually(
        lambda: found if len(found := reported(client, environment)) >= 4 else None,
        "four status events",
    )
    assert [status for _, status in events] == ["START", "FAILURE", "START", "SUCCESS"]


@pytest.mark.usefixtures("stepd_env")
def test_tasks_run_in_forked_worker_processes_report_too(
    client: Client, environment: str, tmp_path: Path
) -> None:
    days = [dt.date(2019, 1, d) for d in (1, 2, 3)]
    ok: bool = luigi.build(
        [PrepareSoup(date=d, root=str(tmp_path)) for d in days], local_scheduler=True, workers=2
    )
    assert ok is True

    def sent() -> list[dict[str, Any]] | None:
        found = client.get_events("cryptaTaskEvent", {"environment": environment})
        return found if len(found) >= 6 else None

    events = eventually(sent, "six status events from the worker processes")
    assert sorted((e["params"]["date"], e["params"]["taskStatus"]) for e in events) == [
        (d.isoformat(), status) for d in days for status in ("START", "SUCCESS")
    ]


def test_install_reports_the_named_task_classes_only(
    client: Client, live_server: LiveServer, token: str, environment: str, tmp_path: Path
) -> None:
    reporter = Reporter(url=live_server.url, token=token, environment=environment)
    with install(reporter, tasks=(PlainTask,), event_name="luigiTaskEvent"):
        assert build(PlainTask(day=DAY, root=str(tmp_path))) is True
        # A subclass of a named class is reported too, under its own taskType.
        assert build(OtherPlainTask(day=DAY, root=str(tmp_path))) is True
    # Uninstalled: nothing more is reported.
    assert build(PlainTask(day=dt.date(2019, 1, 2), root=str(tmp_path))) is True

    def sent() -> list[dict[str, Any]] | None:
        found = client.get_events("luigiTaskEvent", {"environment": environment})
        return found if len(found) >= 4 else None

    events = eventually(sent, "four luigiTaskEvent events")
    assert [(e["params"]["taskType"], e["params"]["taskStatus"]) for e in events] == [
        ("PlainTask", "START"),
        ("PlainTask", "SUCCESS"),
        ("OTHER", "START"),
        ("OTHER", "SUCCESS"),
    ]
    assert events[0]["params"]["day"] == "2019-01-01"
    assert client.get_events("cryptaTaskEvent", {"environment": environment}) == []


@pytest.mark.usefixtures("stepd_env")
def test_a_stepd_reported_task_is_not_reported_twice_by_an_install(
    client: Client, environment: str, tmp_path: Path
) -> None:
    with install():  # every luigi.Task, from the same variables
        assert build(PrepareSoup(date=DAY, root=str(tmp_path))) is True
    time.sleep(0.5)  # a second report, if any, would have been sent by now
    assert reported(client, environment) == [
        ("CRYPTA_GRAPH_PREPARE_SOUP_YAML", "START"),
        ("CRYPTA_GRAPH_PREPARE_SOUP_YAML", "SUCCESS"),
    ]


@pytest.mark.usefixtures("stepd_env")
def test_a_luigi_success_fires_a_config_whose_task_runs_in_stepd(
    client: Client, environment: str, tmp_path: Path
) -> None:
    config_id = client.create_config(
        {
            "name": f"echo-after-soup-{environment}",
            "event_deps": [
                {
                    "name": "cryptaTaskEvent",
                    "params": {
                        "taskType": "CRYPTA_GRAPH_PREPARE_SOUP_YAML",
                        "taskStatus": "SUCCESS",
                        "environment": environment,
                        "date": "~",
                    },
                }
            ],
            "task_type": "ECHO_DATE",
        }
    )

    assert build(PrepareSoup(date=DAY, root=str(tmp_path))) is True

    [task] = eventually(lambda: client.list_tasks(config_id=config_id), "the task the config fired")
    assert (task["type"], task["params"]) == ("ECHO_DATE", {"date": "2019-01-01"})
    done = eventually(
        lambda: (t := client.get_task(task["id"]))["status"] in FINISHED and t, "the task's end"
    )
    assert done["status"] == "SUCCESS"
    assert "processing 2019-01-01" in client.task_logs(task["id"])["text"]
    [start] = client.get_events(
        "cryptaTaskEvent", {"environment": environment, "taskStatus": "START"}
    )
    assert client.list_tasks(event_id=start["_id"]) == []  # START fires nothing


def test_with_stepd_down_the_task_still_succeeds_and_a_warning_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = Reporter(
        url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        token="t",
        timeout_seconds=1.0,
        retries=1,
        backoff_seconds=0.05,
    )
    caplog.set_level(logging.WARNING, logger="stepd.integrations.luigi")
    started = time.monotonic()
    with install(down, tasks=(PlainTask,)):
        assert build(PlainTask(day=DAY, root=str(tmp_path))) is True

    assert time.monotonic() - started < 30
    assert (tmp_path / "plain-2019-01-01").read_text() == "plain\n"
    warnings = [r.getMessage() for r in caplog.records if r.name == "stepd.integrations.luigi"]
    assert len(warnings) == 2, warnings
    assert "START of PlainTask(day=2019-01-01" in warnings[0]
    assert "SUCCESS of PlainTask(day=2019-01-01" in warnings[1]
    assert "cannot reach stepd" in warnings[1] and "the task goes on" in warnings[1]


def test_while_stepd_hangs_reports_after_the_first_try_once_briefly(
    live_server: LiveServer, token: str, tmp_path: Path
) -> None:
    hung = socket.socket()  # accepts connections (the kernel does) and never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)
    try:
        reporter = Reporter(
            url=f"http://127.0.0.1:{hung.getsockname()[1]}",
            token="t",
            timeout_seconds=0.5,
            retries=2,
            backoff_seconds=0.05,
            outage_timeout_seconds=0.1,
        )
        outages = Outages()
        task = PlainTask(day=DAY, root=str(tmp_path))
        took = []
        for _ in range(4):
            started = time.monotonic()
            assert reporter.report(task, START, outages) is None
            took.append(time.monotonic() - started)
        assert took[0] >= 1.5  # three attempts of 0.5 s: the server may only be slow
        assert all(t < 0.5 for t in took[1:]), took  # then one brief try each
        assert outages.is_down(reporter.url)
    finally:
        hung.close()
    # The first report that gets through ends the outage.
    back = Reporter(url=live_server.url, token=token)
    outages.down(back.url, 60)
    assert back.report(task, START, outages) is not None
    assert not outages.is_down(back.url)


def test_a_refused_report_is_a_warning_too(
    live_server: LiveServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad_token = Reporter(url=live_server.url, token="not-a-token", retries=0)
    caplog.set_level(logging.WARNING, logger="stepd.integrations.luigi")
    with install(bad_token, tasks=(PlainTask,)):
        assert build(PlainTask(day=DAY, root=str(tmp_path))) is True
    warnings = [r.getMessage() for r in caplog.records if r.name == "stepd.integrations.luigi"]
    assert len(warnings) == 2 and "401" in warnings[0], warnings


def test_params_are_the_significant_public_ones_as_strings() -> None:
    class Typed(luigi.Task):
        date = luigi.DateParameter()
        hour = luigi.DateHourParameter()
        flag = luigi.BoolParameter()
        count = luigi.IntParameter()
        tables = luigi.ListParameter()
        unset = luigi.OptionalParameter(default=None)
        root = luigi.Parameter(significant=False)
        secret = luigi.Parameter(visibility=luigi.parameter.ParameterVisibility.PRIVATE)
        hidden = luigi.Parameter(visibility=luigi.parameter.ParameterVisibility.HIDDEN)

    task = Typed(
        date=DAY,
        hour=dt.datetime(2019, 1, 1, 13),
        flag=True,
        count=3,
        tables=["a", "b"],
        root="/tmp",
        secret="s",
        hidden="h",
    )
    assert task_params(task) == {
        "date": "2019-01-01",
        "hour": "2019-01-01T13",
        "flag": "true",
        "count": "3",
        "tables": '["a", "b"]',
    }
    name, params = Reporter(environment="stable").event(task, "START")
    assert name == "cryptaTaskEvent"
    assert params["taskType"] == "Typed" and params["taskStatus"] == "START"
    assert params["environment"] == "stable"
