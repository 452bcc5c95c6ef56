"""A refusal (403) reaches a person through the real CLI as one clear line naming the owner,
not a traceback, and changes nothing."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import run_stepd as stepd
from conftest import served, server_token

from stepd.client import Client


def test_the_cli_prints_the_403_naming_the_owner(tmp_path: Path) -> None:
    with served("sqlite", tmp_path, "--executor", "none", "--no-clock") as server:
        robot = server_token(server, "robot-crypta")
        alice = server_token(server, "alice")
        with Client(server.url, robot) as c:
            event_id = c.create_event("robots.nightly", {"date": "2019-01-01"})
            task_id = c.create_task("ECHO")["id"]
            c.set_semaphore("yt-hahn", 2)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEPD_")}
        env.update(STEPD_URL=server.url, STEPD_TOKEN=alice)

        for args, owner_says in (
            (("events", "reject", event_id), f"event {event_id} was sent by robot-crypta"),
            (("tasks", "stop", str(task_id)), f"task {task_id} belongs to robot-crypta"),
            (("semaphores", "set", "yt-hahn", "0"), "semaphore 'yt-hahn' belongs to robot-crypta"),
        ):
            refused = stepd(*args, env=env)
            assert refused.returncode == 1, (args, refused.stdout, refused.stderr)
            assert "Traceback" not in refused.stderr, refused.stderr
            message = " ".join(refused.stderr.split())  # rich may wrap a long line
            assert message.startswith(f"error: {owner_says}"), message
            assert "(this token's user may not do this)" in message, message
            assert refused.stdout == ""

        with Client(server.url, robot) as c:
            assert c.get_event(event_id)["state"] != "REJECTED"
            assert c.get_task(task_id)["status"] == "ENQUEUED"
            assert c.get_semaphore("yt-hahn")["capacity"] == 2
