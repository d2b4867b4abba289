#!/usr/bin/env bash
# The test command: set up, make sure Postgres and Redis answer, then pytest (fixtures start the rest).
#
# With no arguments, the whole suite in lanes, and the wall time of each phase at the end:
#   1. one CPU vLLM for the whole run (base model + the test LoRA adapters), set up and started in the
#      background while
#   2. the fast lane runs: tests/unit and tests/helm (no servers), stopping at the first failure;
#   3. the suite (everything else but tests/fault), in two pytest processes on the shared vLLM, and beside
#      it tests/fault in a session of its own: its workers and beat kill and restart each other on a broker
#      db of their own, which a session-wide worker would otherwise compete for.
# With arguments: pytest with them (the fixtures start what the chosen tests need).
set -euo pipefail
cd "$(dirname "$0")/.."

began=$SECONDS
declare -a phases=()
mark() { phases+=("$(printf '  %-34s %5d s' "$1" $((SECONDS - $2)))"); }
report() {
  printf '\nwall time per phase:\n'
  printf '%s\n' "${phases[@]}"
  printf '  %-34s %5d s\n' "total" $((SECONDS - began))
}

t=$SECONDS
bash deploy/setup.sh
bash deploy/services.sh --postgres
mark "set-up" "$t"
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi

llm_pid=""
fault_pid=""
finish() {
  status=$?
  if [ -n "$fault_pid" ]; then
    kill -TERM "$fault_pid" 2>/dev/null || true
    wait "$fault_pid" 2>/dev/null || true
  fi
  if [ -n "$llm_pid" ]; then
    kill -TERM -- "-$llm_pid" 2>/dev/null || true
    wait "$llm_pid" 2>/dev/null || true
  fi
  report
  exit "$status"
}
trap finish EXIT

if [ -z "${EHRSUM_TEST_LLM_URL:-}" ]; then
  port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  llm_log=$(mktemp -t ehrsum-test-vllm.XXXXXX)
  setsid .venv/bin/python -m tests.support.shared_llm "$port" >"$llm_log" 2>&1 &
  llm_pid=$!
  export EHRSUM_TEST_LLM_URL="http://127.0.0.1:$port/v1"
  echo "test.sh: one CPU vLLM for the run at $EHRSUM_TEST_LLM_URL (log $llm_log)"
fi

pytest=(.venv/bin/python -m pytest -p no:cacheprovider -ra)
t=$SECONDS
"${pytest[@]}" -x tests/unit tests/helm
mark "fast lane (unit, helm)" "$t"

t=$SECONDS
until .venv/bin/python -m deploy.llm_cpu wait --url "$EHRSUM_TEST_LLM_URL" --timeout 10 2>/dev/null; do
  if { [ -n "$llm_pid" ] && ! kill -0 "$llm_pid" 2>/dev/null; } || ((SECONDS - t > 1200)); then
    echo "test.sh: the CPU vLLM did not come up" >&2
    [ -n "$llm_pid" ] && tail -n 40 "$llm_log" >&2
    exit 1
  fi
done
mark "vLLM ready (after the fast lane)" "$t"

# The suite in two pytest processes (pytest-xdist), a test file each at a time, each with its own servers,
# database and Redis db, and beside them tests/fault in a session of its own: the suite mostly waits on the
# CPU vLLM, whose decoding batches the requests of all three, and the fault tests mostly wait out kills,
# restarts and visibility timeouts. The fault session's output follows the suite's.
t=$SECONDS
fault_log=$(mktemp -t ehrsum-test-fault.XXXXXX)
"${pytest[@]}" --durations=10 tests/fault >"$fault_log" 2>&1 &
fault_pid=$!
suite_status=0
"${pytest[@]}" -n 2 --dist loadfile --durations=30 --ignore=tests/unit --ignore=tests/helm --ignore=tests/fault ||
  suite_status=$?
mark "suite (2 processes)" "$t"
fault_status=0
wait "$fault_pid" || fault_status=$?
fault_pid=""
printf '\n%s\n' "---- tests/fault (run beside the suite) ----"
cat "$fault_log"
mark "suite and fault session, side by side" "$t"
if [ "$suite_status" -ne 0 ] || [ "$fault_status" -ne 0 ]; then
  echo "test.sh: suite exit $suite_status, fault session exit $fault_status" >&2
  exit 1
fi
