#!/usr/bin/env bash
# Quick start 2: install what the tests need into .venv, then lint, type-check and test.
# PostgreSQL must answer on 127.0.0.1:5432 (database `test`); .ci/run starts it when it is down.
# As root with apt-get, it also installs Debian's chromium and chromium-driver for the UI tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
# The web UI's browser tests drive Debian's Chromium and ChromeDriver (nothing downloads a
# browser at run time). Installed here when missing and we may; otherwise they skip (CI fails).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "== installing chromium and chromium-driver (browser tests)"
    apt-get install -y -q chromium chromium-driver >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }
  else
    echo "== no chromium/chromedriver: the browser tests will skip (apt-get install chromium chromium-driver)"
  fi
fi
lint=(src tests); typed=(src/stepd)
[ -d benchmarks ] && lint+=(benchmarks) && typed+=(benchmarks)  # benchmarks are code too
echo "== ruff";  .venv/bin/ruff check "${lint[@]}"
echo "== mypy";  .venv/bin/mypy --strict "${typed[@]}"
# Two processes (the machine has 2 cores; most tests wait on servers): 8.6 min instead of 15.4.
echo "== pytest"; .venv/bin/pytest -q -n 2 --durations=25 "$@"
