"""The one Settings model: every STEPD_* variable reaches it, flags override, bad values are
named, the reactor's poll has one default, and docs/operations.md lists the model's table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import pytest
import typer

from stepd.cli.main import app
from stepd.cli.settings_list import markdown_table, setting_flags
from stepd.reactor.loop import ReactorLoop
from stepd.reactor.process import ReactorConfig
from stepd.runner.celery_app import CeleryWorkerConfig, settings_from_env
from stepd.settings import Settings, SettingsError, env_name

OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"

# The spellings existing deployments use, with what each must become.
LEGACY = [
    ("STEPD_DATABASE_URL", "postgresql://u@h/db", "database_url", "postgresql://u@h/db"),
    ("STEPD_TASKS", "a.tasks,b/extra.py", "tasks", ("a.tasks", "b/extra.py")),
    ("STEPD_TASKS", "a.tasks b.py,,c", "tasks", ("a.tasks", "b.py", "c")),
    ("STEPD_PRIVATE_READS", "1", "private_reads", True),
    ("STEPD_PRIVATE_READS", "yes", "private_reads", True),
    ("STEPD_PRIVATE_READS", "TRUE", "private_reads", True),
    ("STEPD_PRIVATE_READS", "0", "private_reads", False),
    ("STEPD_REACTOR_PROCESS", "false", "reactor_process", False),
    ("STEPD_API_STATEMENT_TIMEOUT_SECONDS", "2.5", "api_statement_timeout_seconds", 2.5),
    ("STEPD_SQLITE_SYNCHRONOUS", "full", "sqlite_synchronous", "FULL"),
    ("STEPD_BROKER_URL", "redis://r:6379/0", "broker_url", "redis://r:6379/0"),
    ("STEPD_PORT", "9090", "port", 9090),
    ("STEPD_WORKERS", "0", "workers", 0),
    ("STEPD_CLOCK", "off", "clock", False),
    ("STEPD_ACCESS_LOG", "no", "access_log", False),
    ("STEPD_HEARTBEAT_TIMEOUT_SECONDS", "7", "heartbeat_timeout_seconds", 7.0),
    ("STEPD_HORSE_MAX_TASKS", "1", "horse_max_tasks", 1),
    ("STEPD_URL", "http://stepd:80", "url", "http://stepd:80"),
    ("STEPD_TOKEN", "secret", "token", "secret"),
]


@pytest.mark.parametrize(("var", "raw", "field", "expected"), LEGACY)
def test_each_documented_spelling_reaches_its_setting(
    var: str, raw: str, field: str, expected: object
) -> None:
    assert getattr(Settings.from_env({var: raw}), field) == expected


def _other_value(field: str, default: Any) -> tuple[str, Any]:
    """A value unlike the default, as a variable would spell it, and what it parses to."""
    if default is None:  # `X | None`: a value of X
        kinds = get_args(Settings.model_fields[field].annotation)
        default = next(kind for kind in kinds if kind is not type(None))()
    if field == "sqlite_synchronous":
        return "extra", "EXTRA"
    if field.endswith("retention"):
        return "90d", "90d"
    if field == "log_format":
        return "JSON", "json"
    if isinstance(default, bool):
        return ("false", False) if default else ("true", True)
    if isinstance(default, int):
        return str(default + 3), default + 3
    if isinstance(default, float):
        return str(default + 1.5), default + 1.5
    if isinstance(default, tuple):
        return "m1,m2", ("m1", "m2")
    return "some-value", "some-value"


@pytest.mark.parametrize("field", list(Settings.model_fields))
def test_every_field_is_read_from_its_stepd_variable(field: str) -> None:
    raw, expected = _other_value(field, Settings.model_fields[field].default)
    assert expected != Settings.model_fields[field].default
    settings = Settings.from_env({env_name(field): raw, "UNRELATED": "x"})
    assert getattr(settings, field) == expected
    # and only that one
    for other in Settings.model_fields:
        if other != field:
            assert getattr(settings, other) == Settings.model_fields[other].default


def test_flags_override_variables_and_none_means_not_given() -> None:
    env = {"STEPD_PORT": "9000", "STEPD_HOST": "0.0.0.0", "STEPD_TASKS": "env.py"}
    settings = Settings.from_env(env, port=9001, host=None, tasks=["flag.py", "more.py,x.py"])
    assert settings.port == 9001
    assert settings.host == "0.0.0.0"
    assert settings.tasks == ("flag.py", "more.py", "x.py")


def test_an_empty_variable_counts_as_unset() -> None:
    assert Settings.from_env({"STEPD_BROKER_URL": "", "STEPD_PORT": ""}) == Settings()


def test_direct_construction_takes_only_what_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests build Settings(...) directly: the shell's variables must not leak into them.
    monkeypatch.setenv("STEPD_PRIVATE_READS", "1")
    settings = Settings(database_url="unused://", reactor=False, clock=False, executor="none")
    assert settings.private_reads is False and settings.database_url == "unused://"
    assert Settings.from_env().private_reads is True  # (from os.environ by default)


def test_settings_are_frozen_and_replace_validates() -> None:
    settings = Settings()
    with pytest.raises(ValueError):
        settings.port = 1  # type: ignore[misc]
    assert settings.replace(port=1).port == 1
    with pytest.raises(ValueError):
        settings.replace(port="abc")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"STEPD_PORT": "abc"}, "STEPD_PORT='abc'"),
        ({"STEPD_SQLITE_SYNCHRONOUS": "sometimes"}, "STEPD_SQLITE_SYNCHRONOUS='SOMETIMES'"),
        ({"STEPD_WORKERS": "-1"}, "STEPD_WORKERS='-1'"),
        ({"STEPD_PRIVATE_READS": "perhaps"}, "STEPD_PRIVATE_READS='perhaps'"),
    ],
)
def test_a_malformed_variable_is_an_error_naming_it(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert named in caught.value.message


def test_a_bad_override_is_named_by_its_setting() -> None:
    with pytest.raises(SettingsError, match="setting port='x'"):
        Settings.from_env({"STEPD_PORT": "1"}, port="x")


def test_the_reactor_poll_interval_has_one_default_from_settings() -> None:
    # Before: ReactorLoop polled every 0.5 s, ReactorConfig and Settings every 0.1 s.
    default = Settings().reactor_poll_interval_seconds
    assert ReactorLoop(reactor=None).poll_interval_seconds == default  # type: ignore[arg-type]
    assert ReactorConfig(database_url="x").poll_interval_seconds == default


def test_the_plain_celery_app_takes_every_worker_setting_from_the_variables() -> None:
    env = {
        "STEPD_BROKER_URL": "amqp://b//",
        "STEPD_DATABASE_URL": "sqlite:///x.db",
        "STEPD_TASKS": "a.py,b.py",
        "STEPD_SQLITE_SYNCHRONOUS": "full",
        "STEPD_TASK_EVENT_NAME": "cryptaTaskEvent",
        "STEPD_ENVIRONMENT": "testing",
        "STEPD_HORSE_MAX_TASKS": "1",
    }
    config = CeleryWorkerConfig.from_settings(settings_from_env(env))
    assert config.database_url == "sqlite:///x.db"
    assert config.tasks == ("a.py", "b.py")
    assert config.sqlite_synchronous == "FULL"
    assert config.worker.status_events.name == "cryptaTaskEvent"
    assert config.worker.status_events.environment == "testing"
    assert config.worker.horse.max_tasks == 1
    with pytest.raises(RuntimeError, match="STEPD_DATABASE_URL"):
        settings_from_env({"STEPD_BROKER_URL": "amqp://b//"})


def _docs_table() -> str:
    text = OPERATIONS.read_text(encoding="utf-8")
    found = re.search(
        r"<!-- settings table:.*?-->\n(.*?)<!-- end of settings table -->", text, re.S
    )
    assert found, "docs/operations.md lost its settings table markers"
    return found.group(1)


def test_the_docs_settings_table_is_the_models() -> None:
    expected = markdown_table(setting_flags(typer.main.get_command(app)))
    assert _docs_table() == expected, (
        "docs/operations.md's settings table differs from the Settings model: paste the "
        "output of `stepd settings --markdown` between its markers"
    )


def test_every_stepd_variable_the_docs_or_code_name_is_a_setting() -> None:
    root = Path(__file__).resolve().parents[1]
    named: set[str] = set()
    for path in [*root.glob("docs/*.md"), *root.glob("src/stepd/**/*.py"), root / "README.md"]:
        named |= set(re.findall(r"\bSTEPD_[A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8")))
    settings = {env_name(field) for field in Settings.model_fields}
    assert named - settings == set()


@pytest.mark.parametrize("field", ["retention", "task_retention", "log_retention"])
def test_a_retention_shorter_than_an_hour_is_refused_naming_its_variable(field: str) -> None:
    for bad in ("30m", "3599s", "soon", "-1d"):
        with pytest.raises(SettingsError, match=f"{env_name(field)}=.*{field} must be"):
            Settings.from_env({env_name(field): bad})
    assert getattr(Settings.from_env({env_name(field): "1h"}), field) == "1h"
    assert getattr(Settings.from_env({env_name(field): "OFF"}), field) == "off"
