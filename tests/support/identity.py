"""A real identity provider for tests: a loopback server publishing a JWKS; tokens signed with its keys."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "ehr-summarizer"
ALL_SCOPES = "summaries.read summaries.write drafts.read drafts.approve metrics.read"


class IdentityProvider:
    """Serves /jwks.json with one RSA and one EC key; mints access tokens for the API."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP384R1())
        self.keys = {"rsa-1": self.rsa, "ec-1": self.ec}
        jwks = []
        for kid, key in self.keys.items():
            algo = RSAAlgorithm if kid.startswith("rsa") else ECAlgorithm
            jwk = json.loads(algo.to_jwk(key.public_key()))  # type: ignore[attr-defined]
            jwks.append({**jwk, "kid": kid, "use": "sig"})
        body = json.dumps({"keys": jwks}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body if self.path == "/jwks.json" else b"{}")

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        self.jwks_url = f"{self.issuer}/jwks.json"

    def start(self) -> IdentityProvider:
        """Serve in a daemon thread."""
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def env(self) -> dict[str, str]:
        """The API settings that trust this provider."""
        return {
            "EHRSUM_API_JWKS_URL": self.jwks_url,
            "EHRSUM_API_JWT_ISSUER": self.issuer,
            "EHRSUM_API_JWT_AUDIENCE": AUDIENCE,
        }

    def token(
        self,
        scopes: str = ALL_SCOPES,
        *,
        subject: str = "clinician-1",
        kid: str = "rsa-1",
        expires_in: int = 3600,
        audience: str = AUDIENCE,
        issuer: str | None = None,
        signer: Any = None,
        extra_claims: dict[str, Any] | None = None,
    ) -> str:
        """A signed access token; `signer` replaces the key (e.g. one the JWKS does not carry), `extra_claims`
        replace or add claims."""
        now = int(time.time())
        claims = {
            "iss": issuer or self.issuer,
            "aud": audience,
            "sub": subject,
            "scope": scopes,
            "iat": now,
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
            **(extra_claims or {}),
        }
        alg = "RS256" if kid.startswith("rsa") else "ES384"
        key: Any = signer or self.keys[kid]
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})

    def headers(self, scopes: str = ALL_SCOPES) -> dict[str, str]:
        """Authorization header with a fresh token."""
        return {"Authorization": f"Bearer {self.token(scopes)}"}
