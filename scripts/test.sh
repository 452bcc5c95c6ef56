#!/usr/bin/env bash
# Quick start 2: install what the tests need into .venv, then lint, type-check and test.
# PostgreSQL must answer on 127.0.0.1:5432 (database `test`); .ci/run starts it when it is down.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
lint=(src tests); [ -d benchmarks ] && lint+=(benchmarks)
echo "== ruff";  .venv/bin/ruff check "${lint[@]}"
echo "== mypy";  .venv/bin/mypy --strict src/stepd
echo "== pytest"; .venv/bin/pytest -q "$@"
