#!/usr/bin/env bash
# Quick start 1: install stepd into .venv and run it on the embedded default
# (SQLite file ./stepd.db). Extra arguments go to `stepd serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
port=${STEPD_PORT:-8080}
args=("$@")
for i in "${!args[@]}"; do  # the port this server will listen on, for the hint below
  case "${args[$i]}" in
    --port) port=${args[$((i + 1))]:-$port} ;;
    --port=*) port=${args[$i]#--port=} ;;
  esac
done
if [ ! -f stepd.db ] && [ -z "${STEPD_DATABASE_URL:-}" ]; then
  token=$(.venv/bin/stepd tokens create "${USER:-admin}" --admin)
  echo "A token for ${USER:-admin} (admin): $token"
  echo "  export STEPD_URL=http://127.0.0.1:$port STEPD_TOKEN=$token"
fi
exec .venv/bin/stepd serve "$@"
