"""`stepd prune` in a subprocess on both stores: --dry-run counts and deletes nothing, a
run deletes by the stored retention, bad values are clear errors naming the setting."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import fresh_database, run_stepd
from store.contract import Contract

from stepd.domain.events import EventState
from stepd.store import open_store
from stepd.timeutil import utcnow


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_prune_dry_run_shows_counts_and_cutoffs_then_prune_deletes(
    backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path) as db_url:
        store = open_store(db_url)
        c = Contract(store)
        ago = utcnow() - timedelta(days=3)
        old = c.add_events(
            [("noise", {"i": i}) for i in range(25)], created=ago, state=EventState.PROCESSED
        )
        young = c.add_events([("noise", {})], created=utcnow(), state=EventState.PROCESSED)

        off = run_stepd("prune", "--db", db_url, "--dry-run")
        assert off.returncode == 0, off.stderr
        assert "retention is off" in off.stderr

        dry = run_stepd("prune", "--db", db_url, "--dry-run", "--retention", "2d")
        assert dry.returncode == 0, dry.stderr
        assert "would delete" in dry.stdout
        row = next(line for line in dry.stdout.splitlines() if line.strip().startswith("events"))
        assert row.split()[1] == "25", dry.stdout
        assert len(c.events(old + young)) == 26  # a dry run deletes nothing

        as_json = run_stepd("prune", "--db", db_url, "--dry-run", "--retention", "2d", "--json")
        shown = json.loads(as_json.stdout)
        assert shown["dry_run"] is True and shown["would_delete"]["events"] == 25
        assert shown["cutoffs"]["events"] < utcnow().isoformat()

        stored = run_stepd("settings", "set", "retention", "2d", "--db", db_url)
        assert stored.returncode == 0, stored.stderr
        ran = run_stepd("prune", "--db", db_url, "--json")
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout)["deleted"]["events"] == 25
        assert set(c.events(old + young)) == set(young)
        store.close()


def test_a_retention_under_an_hour_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'stepd.db'}"
    for flag in ("--retention", "--task-retention", "--log-retention"):
        bad = run_stepd("prune", "--db", db, flag, "59m")
        field = flag.removeprefix("--").replace("-", "_")
        assert bad.returncode == 2, bad.stderr
        assert f"{field} must be at least 1h" in bad.stderr
    refused = run_stepd("settings", "set", "retention", "10m", "--db", db)
    assert refused.returncode == 1 and "retention must be at least 1h" in refused.stderr
    served = run_stepd("serve", "--db", db, "--retention", "0.5h")
    assert served.returncode == 2 and "retention must be at least 1h" in served.stderr
