#!/usr/bin/env bash
# The long soak of the worker-kill fault test: KILLS whole-worker SIGKILLs mid-job (default 100; CI runs 20),
# then every job must end succeeded with exactly one draft. Prints the test's summary line.
#   bash bench/soak.sh [KILLS]
set -euo pipefail
cd "$(dirname "$0")/.."
EHRSUM_FAULT_KILLS="${1:-100}" exec bash deploy/test.sh tests/fault/test_worker_killed.py \
  -k whole-worker -s -q -p no:cacheprovider
