"""TLS for outgoing HTTP: one verifying context per process."""

from __future__ import annotations

import ssl
from functools import lru_cache

import httpx


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """httpx's default verifying context (CA bundle, SSL_CERT_FILE / SSL_CERT_DIR), built once.

    Every client would otherwise build its own, and loading the CA bundle costs ~30 ms of CPU: a job
    makes three clients.
    """
    return httpx.create_ssl_context()
