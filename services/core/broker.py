"""The broker's Redis, for what Celery does not do for us: rate counters, queue depth, enqueue markers."""

from __future__ import annotations

from functools import lru_cache

import redis


@lru_cache(maxsize=4)
def broker_redis(url: str) -> redis.Redis:
    """One client (and connection pool) per broker URL, with short timeouts."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
