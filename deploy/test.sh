#!/usr/bin/env bash
# The test command: set up, make sure Postgres and Redis answer, then run pytest (fixtures start the rest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
bash deploy/services.sh --postgres
exec .venv/bin/python -m pytest "$@"
