"""`stepd tokens list` and `stepd tokens revoke`: the real command against a live server's store."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import LiveServer, run_stepd, served


def stepd(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return run_stepd(*args, "--db", db)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with served("sqlite", tmp_path, "--executor", "none") as live:
        yield live


def send(server: LiveServer, token: str) -> int:
    return httpx.post(
        f"{server.url}/api/v1/events",
        json={"events": [{"name": "e", "params": {}}]},
        headers={"Authorization": f"OAuth {token}"},
    ).status_code


def listed(db: str, *args: str) -> list[dict[str, object]]:
    result = stepd("tokens", "list", "--json", *args, db=db)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_one_token_is_revoked_by_id_and_the_users_other_token_still_works(
    server: LiveServer,
) -> None:
    db = server.db_url
    first, second, other = (
        stepd("tokens", "create", user, db=db).stdout.strip()
        for user in ("robot-a", "robot-a", "robot-b")
    )
    rows = listed(db)
    assert [(r["id"], r["user"], r["admin"], r["revoked"]) for r in rows] == [
        (1, "robot-a", False, False),
        (2, "robot-a", False, False),
        (3, "robot-b", False, False),
    ]
    assert all(first not in json.dumps(r) for r in rows)  # only hashes are stored
    assert send(server, first) == 200  # the server now trusts it for a few seconds

    revoked = stepd("tokens", "revoke", "--id", "1", db=db)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked token 1" in revoked.stderr
    assert [r["id"] for r in listed(db)] == [2, 3]
    assert [(r["id"], r["revoked"]) for r in listed(db, "--all")] == [
        (1, True),
        (2, False),
        (3, False),
    ]
    deadline = time.monotonic() + 15  # servers cache a checked token for 5 s
    while send(server, first) != 401 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert send(server, first) == 401
    assert send(server, second) == 200 and send(server, other) == 200

    again = stepd("tokens", "revoke", "--id", "1", db=db)
    assert again.returncode == 1 and "no live token has id 1" in again.stderr


def test_revoke_takes_a_user_or_an_id_but_not_both(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    assert stepd("tokens", "create", "robot-a", db=db).returncode == 0
    for args in ((), ("robot-a", "--id", "1")):
        result = stepd("tokens", "revoke", *args, db=db)
        assert result.returncode == 1
        assert "either USER" in result.stderr
    everyone = stepd("tokens", "revoke", "robot-a", db=db)
    assert everyone.returncode == 0 and "revoked 1 token(s) of robot-a" in everyone.stderr
    table = stepd("tokens", "list", "--all", db=db)
    assert table.returncode == 0 and "robot-a" in table.stdout and "revoked" in table.stdout
