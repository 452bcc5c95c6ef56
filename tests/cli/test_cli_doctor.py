"""`stepd doctor`: the health checks from the command line, with remedies; exit 1 unless ok."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import LiveServer
from conftest import run_stepd as stepd


def test_doctor_says_what_is_wrong_and_what_to_do(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'stepd.db'}"
    missing = stepd("doctor", "--db", db)
    assert missing.returncode == 1
    assert "there is no database at" in missing.stdout and "stepd is down" in missing.stdout
    assert not (tmp_path / "stepd.db").exists()  # asking made nothing
    assert stepd("migrate", "--db", db).returncode == 0
    fine = stepd("doctor", "--db", db, "--json")
    assert fine.returncode == 0, fine.stdout + fine.stderr
    body = json.loads(fine.stdout)
    assert body["status"] == "ok"
    assert {name: c["status"] for name, c in body["checks"].items()} == {
        "store": "ok",
        "reactor": "ok",
        "workers": "ok",
        "disk": "ok",
        "schema": "ok",
    }
    broker = stepd("doctor", "--db", db, "--broker", "redis://127.0.0.1:1/0")
    assert broker.returncode == 1
    assert "broker" in broker.stdout and "degraded" in broker.stdout
    assert "start the broker or fix --broker" in broker.stdout


def test_doctor_url_shows_a_running_servers_healthz(live_server: LiveServer) -> None:
    done = stepd("doctor", "--url", live_server.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "store" in done.stdout and "reactor" in done.stdout
    assert "stepd is ok" in done.stdout
    gone = stepd("doctor", "--url", "http://127.0.0.1:1")
    assert gone.returncode == 1 and "cannot reach http://127.0.0.1:1" in gone.stderr
