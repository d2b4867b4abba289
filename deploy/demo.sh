#!/usr/bin/env bash
# One command on a fresh machine: install what is missing, start the local stack, summarize a patient.
#   bash deploy/demo.sh        run the demo (the stack keeps running afterwards)
#   bash deploy/demo.sh stop   stop it
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "stop" ]; then
  bash deploy/setup.sh
  bash deploy/services.sh
fi
exec .venv/bin/python deploy/demo.py "$@"
