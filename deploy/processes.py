"""Child processes of the demo and the tests: wait for an HTTP endpoint, stop cleanly."""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx


def wait_http(
    url: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Poll url until it answers 2xx; raise with the log's tail when the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"the process behind {url} exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(url, timeout=2, verify=verify).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s" + (f"; see {log}" if log else ""))


def answering(
    proc: subprocess.Popen[bytes],
    url: str,
    timeout: float,
    log: Path | None = None,
    verify: ssl.SSLContext | bool = True,
    halt: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> None:
    """Wait until a process just started answers at `url`; stop it (`halt`, else `stop`) if it never does."""
    try:
        wait_http(url, timeout, proc, log, verify=verify)
    except BaseException:
        (halt or stop)(proc)
        raise


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Terminate a child process, killing it if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll `check` until it returns something truthy; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    raise TimeoutError(f"{what} not seen within {timeout:.0f} s")
