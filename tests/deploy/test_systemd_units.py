"""The systemd units of docs/deploy.md: `systemd-analyze verify` finds nothing to say."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).parents[2] / "deploy" / "systemd"
INSTALLED = "/opt/stepd/bin/stepd"  # where docs/deploy.md installs stepd


def stepd_executable() -> str:
    found = Path(sys.executable).with_name("stepd")
    assert found.exists(), f"no stepd next to {sys.executable}: pip install -e . first"
    return str(found)


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None and not os.environ.get("CI"),
    reason="systemd-analyze is not installed",
)
def test_the_units_verify_cleanly(tmp_path: Path) -> None:
    units = sorted(UNITS.glob("*.service"))
    assert {u.name for u in units} >= {"stepd-api@.service", "stepd-worker@.service"}
    for unit in units:
        text = unit.read_text()
        assert INSTALLED in text, f"{unit.name} does not run {INSTALLED}"
        # The units run the stepd installed here, so verify can check the command exists.
        (tmp_path / unit.name).write_text(text.replace(INSTALLED, stepd_executable()))
    names = [n.replace("@.service", "@a.service") for n in sorted(u.name for u in units)]
    done = subprocess.run(
        ["systemd-analyze", "verify", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = (done.stdout + done.stderr).strip()
    # verify exits 0 on unknown keys, printing a warning: a typo must fail the test too.
    assert done.returncode == 0 and not said, said


def test_the_api_unit_refers_to_what_docs_deploy_says() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "deploy.md").read_text()
    for unit in ("stepd-api@.service", "stepd-worker@.service", "stepd-migrate.service"):
        assert unit in guide, f"docs/deploy.md does not mention {unit}"
