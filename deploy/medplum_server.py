#!/usr/bin/env python3
"""Run the tests' second FHIR server: Medplum's fhir-router (in memory) behind deploy/medplum/server.mjs.

`python -m deploy.medplum_server serve [--port 8091]` runs one in the foreground. `deploy/setup.sh` installs
its npm packages from the pinned package-lock.json; the state lives in memory and goes with the process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from deploy.fhir_server import START_TIMEOUT_S, base_url, launch

SHELL = Path(__file__).resolve().with_name("medplum")


def node_command(port: int) -> list[str]:
    """The command that serves the router on 127.0.0.1:`port`; RuntimeError when it is not installed."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed (Node.js 20 or newer runs the second FHIR server)")
    if not (SHELL / "node_modules" / "@medplum" / "fhir-router").is_dir():
        raise RuntimeError("the Medplum packages are missing: run `bash deploy/setup.sh`")
    return [node, str(SHELL / "server.mjs"), str(port)]


def start(workdir: Path, port: int, timeout: float = START_TIMEOUT_S) -> subprocess.Popen[bytes]:
    """Start the server in the background with `server.log` in `workdir`; return once it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    return launch("medplum fhir-router", node_command(port), workdir, port, dict(os.environ), timeout)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server in the foreground until interrupted")
    serve.add_argument("--port", type=int, default=8091)
    args = parser.parse_args(argv)
    command = node_command(args.port)
    print(f"FHIR base {base_url(args.port)}", flush=True)
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
