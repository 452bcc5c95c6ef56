"""stepd.instruments.metrics_dir: the directory `stepd serve` owns for prometheus-client's
multiprocess mode is removed at the end, and a killed server's is removed at the next start."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from stepd import instruments


def test_the_directory_is_named_for_the_block_then_removed_with_a_dead_servers() -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = Path(tempfile.gettempdir()) / f"{instruments.DIR_PREFIX}{dead}-x"
    stale.mkdir()
    (stale / "histogram_1.db").write_bytes(b"")
    assert instruments.MULTIPROC_ENV not in os.environ
    with instruments.metrics_dir() as path:
        assert os.environ[instruments.MULTIPROC_ENV] == path
        assert Path(path).name.startswith(f"{instruments.DIR_PREFIX}{os.getpid()}-")
        assert not stale.exists()
        assert instruments.multiprocess()
        histogram = instruments.instruments().http_seconds
        histogram.labels("/x", "GET", "200").observe(0.01)
        assert any(Path(path).iterdir())  # the samples are files there
    assert not Path(path).exists()
    assert instruments.MULTIPROC_ENV not in os.environ
    assert not instruments.multiprocess()
