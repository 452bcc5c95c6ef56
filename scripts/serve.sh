#!/usr/bin/env bash
# Quick start 1: install stepd into .venv and run it on the embedded default
# (SQLite file ./stepd.db). Extra arguments go to `stepd serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
if [ ! -f stepd.db ] && [ -z "${STEPD_DATABASE_URL:-}" ]; then
  token=$(.venv/bin/stepd tokens create "${USER:-admin}" --admin)
  echo "A token for ${USER:-admin} (admin): $token"
  echo "  export STEPD_URL=http://127.0.0.1:8080 STEPD_TOKEN=$token"
fi
exec .venv/bin/stepd serve "$@"
