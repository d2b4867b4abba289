"""Run checkov with every network connection refused and recorded (run by the checkov venv's python).

checkov can call its platform (policy metadata, guidelines) and PyPI (update check). The environment set by
test_checkov.py turns those off; this wrapper proves it: any socket connection other than a Unix socket,
and any name lookup, is written to the file named by CHECKOV_NET_LOG and refused.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
import warnings
from typing import Any

_LOG = os.environ["CHECKOV_NET_LOG"]
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _record(what: str) -> None:
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()} {what}\n")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if self.family == socket.AF_UNIX:
        _connect(self, address)
        return
    _record(f"connect {address!r}")
    raise OSError("network access is disabled for checkov in the test suite")


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if self.family == socket.AF_UNIX:
        return _connect_ex(self, address)
    _record(f"connect_ex {address!r}")
    return 111  # ECONNREFUSED


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    _record(f"getaddrinfo {host!r}")
    raise socket.gaierror(socket.EAI_NONAME, "name resolution is disabled for checkov in the test suite")


socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
socket.getaddrinfo = _guarded_getaddrinfo

if __name__ == "__main__":
    checkov_main = importlib.import_module("checkov.main")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=SyntaxWarning)
        sys.exit(checkov_main.Checkov().run())
