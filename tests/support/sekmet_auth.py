"""A second sekmet-fhir that requires SMART Backend Services tokens, for the client-auth tests."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from deploy import fhir_server
from deploy.processes import stop


def start_smart_server(workdir: Path, port: int, clients: list[dict[str, Any]]) -> subprocess.Popen[bytes]:
    """Start sekmet with server_auth smart only and these smart_clients; return once it answers."""
    auth = {"types": ["smart"], "smart_clients": clients, "token_lifetime": 3600}
    return start_sekmet(workdir, port, {"server_auth": auth})


def start_sekmet(workdir: Path, port: int, overrides: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start sekmet with these settings over the loopback defaults; return once it answers."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    settings = {**fhir_server.settings_dict(workdir, port), **overrides}
    path = workdir / "settings.yaml"
    path.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    log = (workdir / "server.log").open("ab")
    proc = subprocess.Popen(
        [str(fhir_server.sekmet_executable()), "serve", "-c", str(path)],
        cwd=workdir,
        env=fhir_server._server_env(path),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + fhir_server.START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sekmet exited with {proc.returncode}: see {workdir / 'server.log'}")
        if fhir_server.is_up(port):
            return proc
        time.sleep(0.2)
    stop(proc)
    raise TimeoutError("sekmet with auth did not start")
