#!/usr/bin/env bash
# The test command: set up, make sure Postgres and Redis answer, then run pytest (fixtures start the rest).
# With no arguments: the suite, then tests/fault in a session of its own. The fault tests start and kill
# their own workers on a broker db of their own, which a session-wide worker would otherwise compete for.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
bash deploy/services.sh --postgres
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
.venv/bin/python -m pytest -p no:cacheprovider -ra --durations=15 --ignore=tests/fault
exec .venv/bin/python -m pytest -p no:cacheprovider -ra tests/fault
