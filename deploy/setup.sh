#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: the project's virtualenv with the service and its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: Python >= 3.11 is required (found $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# The review app's browser tests drive Debian's Chromium with its own chromedriver (no browser downloads),
# and trust their test CA through a throwaway NSS database made with certutil (libnss3-tools).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || ! command -v certutil >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    chromium chromium-driver libnss3-tools
fi
stamp=.venv/.ehrsum-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  touch "$stamp"
fi
# The second FHIR server of the tests (Medplum's fhir-router, Apache-2.0), from the pinned package-lock.
npm_stamp=deploy/medplum/node_modules/.ehrsum-installed
if [ ! -f "$npm_stamp" ] || [ deploy/medplum/package-lock.json -nt "$npm_stamp" ]; then
  if ! command -v npm >/dev/null; then
    echo "setup: npm (Node.js >= 20) is required for the tests' second FHIR server" >&2
    exit 1
  fi
  (cd deploy/medplum && npm ci --no-audit --no-fund --loglevel=error)
  touch "$npm_stamp"
fi
