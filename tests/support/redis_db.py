"""Redis dbs claimed per test session, so concurrent sessions on one machine never take each other's tasks."""

from __future__ import annotations

import atexit
import os
from typing import cast

import redis

MAIN_SESSION_DBS = (9, 1, 2, 3, 4, 5, 6, 7, 8)
FAULT_SESSION_DBS = (10, 11, 12, 15)  # 13 and 14 are the benchmarks'


def claim_redis_db(base_url: str, candidates: tuple[int, ...]) -> str:
    """The URL of the first candidate db no live session holds; released when this process exits."""
    base = base_url.rsplit("/", 1)[0]
    admin = redis.Redis.from_url(f"{base}/0")
    for db in candidates:
        key = f"ehrsum:test-broker-db:{db}"
        holder = cast(bytes | None, admin.get(key))
        if holder is not None and not _alive(holder):
            # A session killed before its exit hook ran (a timeout, SIGKILL) left its claim behind.
            admin.delete(key)
        if admin.set(key, os.getpid(), nx=True, ex=3 * 3600):
            atexit.register(admin.delete, key)
            return f"{base}/{db}"
    raise RuntimeError(f"every test Redis db ({', '.join(map(str, candidates))}) is held by another session")


def _alive(holder: bytes) -> bool:
    """Whether the process that claimed a db (its pid, on this machine) still runs."""
    try:
        os.kill(int(holder), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
