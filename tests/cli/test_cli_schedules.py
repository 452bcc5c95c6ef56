"""`stepd schedules list|set|delete`: the real command in a subprocess, against a real server."""

from __future__ import annotations

import json

from conftest import LiveServer, server_token
from conftest import run_stepd as stepd
from test_cli_events import environment


def test_schedules_are_set_listed_changed_and_deleted_from_the_cli(
    live_server: LiveServer,
) -> None:
    env = environment(STEPD_URL=live_server.url, STEPD_TOKEN=server_token(live_server))

    made = stepd(
        "schedules", "set", "nightly", "--cron", "0 6 * * 1-5", "--timezone", "Europe/Moscow",
        "environment=stable", "team=crypta", env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("created schedule nightly: 0 6 * * 1-5 (Europe/Moscow)")
    assert made.stdout.rstrip().endswith(" 03:00:00 UTC")  # 06:00 in Moscow

    table = stepd("schedules", "list", env=env)
    assert table.returncode == 0, table.stderr
    [row] = [line for line in table.stdout.splitlines() if line.lstrip().startswith("nightly")]
    for shown in ("0 6 * * 1-5", "Europe/Moscow", "yes", "robot-crypta", "environment=stable"):
        assert shown in row, (shown, row)

    changed = stepd("schedules", "set", "nightly", "--disable", "--catch-up", "3", env=env)
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.startswith("updated schedule nightly:") and "disabled" in changed.stdout
    listed = stepd("schedules", "list", "--json", env=env)
    [schedule] = json.loads(listed.stdout)
    assert (schedule["enabled"], schedule["catch_up"]) == (False, 3)
    assert schedule["params"] == {"environment": "stable", "team": "crypta"}  # kept

    deleted = stepd("schedules", "delete", "nightly", env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert "deleted schedule nightly" in deleted.stdout
    empty = stepd("schedules", "list", env=env)
    assert "no schedules" in empty.stdout


def test_bad_schedules_are_refused_with_the_servers_reason(live_server: LiveServer) -> None:
    env = environment(STEPD_URL=live_server.url, STEPD_TOKEN=server_token(live_server))
    seconds = stepd("schedules", "set", "fast", "--cron", "* * * * * *", env=env)
    assert seconds.returncode == 1 and "seconds columns are refused" in seconds.stderr
    no_cron = stepd("schedules", "set", "absent", "key=value", env=env)
    assert no_cron.returncode == 1 and "cron is required" in no_cron.stderr
    zone = stepd("schedules", "set", "z", "--cron", "@daily", "--timezone", "Mars/Base", env=env)
    assert zone.returncode == 1 and "time zone" in zone.stderr
    anonymous = stepd("schedules", "set", "x", "--cron", "@daily", env={**env, "STEPD_TOKEN": ""})
    assert anonymous.returncode == 1 and "STEPD_TOKEN" in anonymous.stderr
    assert json.loads(stepd("schedules", "list", "--json", env=env).stdout) == []
