#!/usr/bin/env python3
"""Run a local sekmet-fhir R4 server (SQLite, simulator off, loopback only) for tests and the demo.

`python -m deploy.fhir_server serve --dir DIR [--port 8090]` runs one in the foreground.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from deploy.processes import stop

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
LOG_TAIL_CHARS = 4000


def base_url(port: int) -> str:
    """FHIR base URL of a server started here on `port`."""
    return f"http://{HOST}:{port}/fhir"


def sekmet_executable() -> Path:
    """The `sekmet` console script installed next to this interpreter."""
    return Path(sys.executable).parent / "sekmet"


def settings_dict(workdir: Path, port: int) -> dict[str, Any]:
    """Sekmet settings for a loopback server whose state all lives under `workdir`."""
    workdir = workdir.resolve()
    return {
        "base_url": base_url(port),
        "host": HOST,
        "port": port,
        "data_dir": str(workdir / "data"),
        "db_path": str(workdir / "data" / "sekmet.db"),
        "own_private_key_path": str(workdir / "keys" / "sekmet_private.pem"),
        # The simulator answers orders with invented results; a record under test must hold only what we load.
        "simulator": {"enabled": False},
        "server_auth": {"types": ["none"]},
        "validation": {"inbound": "strict"},
        # The traffic log stores every request and response body (patient data) in the database.
        "log_inbound": False,
    }


def write_settings(workdir: Path, port: int) -> Path:
    """Write `settings.yaml` for a server on 127.0.0.1:`port` into `workdir` and return its path."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "settings.yaml"
    # JSON is valid YAML, which keeps this module free of a YAML dependency.
    path.write_text(json.dumps(settings_dict(workdir, port), indent=2) + "\n", encoding="utf-8")
    return path


def is_up(port: int, timeout: float = 2.0) -> bool:
    """Whether a FHIR server answers `GET /metadata` on `port`."""
    try:
        return httpx.get(f"{base_url(port)}/metadata", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _server_env(settings: Path) -> dict[str, str]:
    env = {**os.environ, "SEKMET_CONFIG": str(settings)}
    # SEKMET_* variables override the settings file; a caller's environment must not redirect this server.
    for name in ("SEKMET_BASE_URL", "SEKMET_DB", "SEKMET_PUBLIC_URL", "SEKMET_PORT"):
        env.pop(name, None)
    return env


def _log_tail(log_path: Path) -> str:
    try:
        return log_path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return "(no log)"


def start(workdir: Path, port: int, timeout: float = START_TIMEOUT_S) -> subprocess.Popen[bytes]:
    """Start sekmet in the background with its state and `server.log` in `workdir`; return once it answers."""
    return start_with(workdir, port, {}, timeout)


def start_with(
    workdir: Path, port: int, overrides: dict[str, Any], timeout: float = START_TIMEOUT_S
) -> subprocess.Popen[bytes]:
    """Start sekmet with `overrides` over the loopback settings (auth, base URL); return once it answers
    (an unauthenticated /metadata: sekmet serves it to anyone)."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    settings = workdir / "settings.yaml"
    # JSON is valid YAML, which keeps this module free of a YAML dependency.
    settings.write_text(json.dumps({**settings_dict(workdir, port), **overrides}, indent=2) + "\n")
    command = [str(sekmet_executable()), "serve", "-c", str(settings)]
    return launch("sekmet", command, workdir, port, _server_env(settings), timeout)


def launch(
    name: str, command: list[str], workdir: Path, port: int, env: dict[str, str], timeout: float
) -> subprocess.Popen[bytes]:
    """Run a FHIR server's command with `server.log` in `workdir`; return once /metadata answers on `port`."""
    if is_up(port):
        raise RuntimeError(f"something already answers on {base_url(port)}")
    log_path = workdir / "server.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with status {proc.returncode}:\n{_log_tail(log_path)}")
        if is_up(port):
            return proc
        time.sleep(0.2)
    stop(proc)
    tail = _log_tail(log_path)
    raise TimeoutError(f"{name} did not answer on {base_url(port)} within {timeout:.0f} s:\n{tail}")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server in the foreground until interrupted")
    serve.add_argument("--dir", type=Path, required=True, help="directory for settings, database and log")
    serve.add_argument("--port", type=int, default=8090)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = _parse_args(argv)
    settings = write_settings(args.dir, args.port)
    print(f"FHIR base {base_url(args.port)} (settings {settings})", flush=True)
    os.chdir(args.dir)
    # exec, so that signals (Ctrl-C, SIGTERM from a supervisor) reach the server itself.
    executable = str(sekmet_executable())
    os.execve(executable, [executable, "serve", "-c", str(settings)], _server_env(settings))


if __name__ == "__main__":
    sys.exit(main())
