"""A second sekmet-fhir that requires SMART Backend Services tokens, for the client-auth tests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from deploy import fhir_server


def start_smart_server(workdir: Path, port: int, clients: list[dict[str, Any]]) -> subprocess.Popen[bytes]:
    """Start sekmet with server_auth smart only and these smart_clients; return once it answers."""
    auth = {"types": ["smart"], "smart_clients": clients, "token_lifetime": 3600}
    return fhir_server.start_with(workdir, port, {"server_auth": auth})
