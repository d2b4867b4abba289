"""DEVELOPMENT ONLY, NOT FOR PRODUCTION: a SMART App Launch authorization server in front of sekmet-fhir.

The EHR side of the review app for the demo and the tests. It signs in one fixed user without a password,
mints a launch for any patient on request (`/ehr/launch`), keeps its keys and codes in memory, binds to
loopback and speaks plain HTTP. A hospital uses its EHR's own authorization server.

sekmet-fhir 0.1.1 implements SMART Backend Services only: its `/auth/authorize` answers
`unsupported_response_type`, `/auth/token` takes `grant_type=client_credentials` only, and its
`.well-known/smart-configuration` lists no launch, PKCE or context capability; no launch context, `patient`
in the token response, `id_token` or `fhirUser`. This server supplies exactly that, following SMART App
Launch 2.x: EHR launch (`launch` resolved to the patient the EHR opened) and standalone launch
(`launch/patient`), public clients, PKCE S256 only, registered redirect URIs, `aud` checked against the FHIR
base, single-use codes, an RS256 `id_token` carrying `fhirUser`, and a JWKS for it.

Like an auth gateway in front of a FHIR server, it answers `{base}/.well-known/smart-configuration` itself
and forwards every other `/fhir` request unchanged to sekmet, which checks the access tokens as it checks
its own (HS256 with its signing key, audience, expiry, SMART scopes): the two share that key, as an
authorization server and its resource server do. Who called the FHIR server with which token is recorded.

`python -m deploy.smart_dev_server serve --dir DIR ...` runs it (and sekmet behind it) in the foreground;
`GET /ehr/launch?patient=ID` then opens the app in that patient's chart, as a clinician's click in an EHR
does (an EHR launch: `iss` and a fresh `launch` to the app's launch URL).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from deploy.fhir_server import start_with
from deploy.processes import stop

FORWARDED = ("authorization", "content-type", "accept", "if-match", "if-none-exist", "prefer")
RETURNED = ("content-type", "etag", "location", "last-modified")
CODE_LIFETIME_S = 60
TOKEN_LIFETIME_S = 3600
# A large transaction (a whole record) can take minutes on a busy machine.
FORWARD_TIMEOUT_S = 600


@dataclass
class Launch:
    """What the EHR has open when it launches an app: a patient, and who is signed in."""

    patient: str
    user: str


@dataclass
class SmartEhr:
    """The authorization server and FHIR gateway; `start()` also starts sekmet behind it."""

    workdir: Path
    client_id: str
    redirect_uri: str
    signed_in: Launch
    setup_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    launches: dict[str, Launch] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    # Some gateways drop If-Match: the app must compare versions itself (issue 19).
    drop_if_match: bool = False
    server: ThreadingHTTPServer | None = None
    sekmet: subprocess.Popen[bytes] | None = None
    upstream: str = ""
    app_launch_url: str = ""
    _secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    _key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    @property
    def root(self) -> str:
        """The authorization server's own URL (issuer of id_tokens)."""
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def fhir_base(self) -> str:
        """The FHIR base URL apps are launched with (`iss`)."""
        return f"{self.root}/fhir"

    def launch(self, patient: str, user: str | None = None) -> str:
        """Open a patient's chart in the EHR: the opaque `launch` value an EHR launch passes to the app."""
        value = secrets.token_urlsafe(16)
        self.launches[value] = Launch(patient, user or self.signed_in.user)
        return value

    def start(self, sekmet_port: int, port: int = 0) -> SmartEhr:
        """Serve on loopback `port` (0: a free one), start sekmet behind it on `sekmet_port`, share the
        token key."""
        ehr = self
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(ehr))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.upstream = f"http://127.0.0.1:{sekmet_port}"
        auth = {"types": ["smart", "bearer"], "tokens": [self.setup_token], "smart_clients": []}
        # Links and Locations name the gateway, the only base the app knows.
        self.sekmet = start_with(self.workdir, sekmet_port, {"base_url": self.fhir_base, "server_auth": auth})
        # sekmet signs and checks SMART access tokens with the HS256 key it keeps in its store.
        with sqlite3.connect(self.workdir / "data" / "sekmet.db") as db:
            db.execute("INSERT OR REPLACE INTO kv(k, v) VALUES ('jwt_secret', ?)", (self._secret,))
        return self

    def stop(self) -> None:
        """Stop sekmet and the server."""
        if self.sekmet is not None:
            stop(self.sekmet)
        if self.server is not None:
            self.server.shutdown()

    def ehr_launch(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """What an EHR does when a clinician opens the app in a patient's chart: a fresh `launch` for that
        patient and the signed-in user, and the browser sent to the app's launch URL with `iss`."""
        patient = query.get("patient", "")
        if not self.app_launch_url or not patient or "/" in patient:
            return 400, {"Content-Type": "text/plain"}, b"give ?patient=ID (and start with --app-launch-url)"
        params = urlencode({"iss": self.fhir_base, "launch": self.launch(patient)})
        return 302, {"Location": f"{self.app_launch_url}?{params}"}, b""

    def smart_configuration(self) -> dict[str, Any]:
        """SMART App Launch discovery document."""
        return {
            "issuer": self.root,
            "jwks_uri": f"{self.root}/auth/jwks",
            "authorization_endpoint": f"{self.root}/auth/authorize",
            "token_endpoint": f"{self.root}/auth/token",
            "token_endpoint_auth_methods_supported": ["none"],
            "grant_types_supported": ["authorization_code"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": [
                "openid",
                "fhirUser",
                "launch",
                "launch/patient",
                "patient/*.rs",
                "patient/*.cu",
            ],
            "capabilities": [
                "launch-ehr",
                "launch-standalone",
                "client-public",
                "context-ehr-patient",
                "context-standalone-patient",
                "sso-openid-connect",
                "permission-patient",
                "permission-v2",
            ],
        }

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """RFC 6749 4.1.1 with PKCE and SMART's launch and aud; the signed-in user consents."""
        if query.get("client_id") != self.client_id or query.get("redirect_uri") != self.redirect_uri:
            return 400, {"Content-Type": "text/plain"}, b"unknown client_id or unregistered redirect_uri"
        state = query.get("state", "")

        def error(code: str, description: str) -> tuple[int, dict[str, str], bytes]:
            params = urlencode({"error": code, "error_description": description, "state": state})
            return 302, {"Location": f"{self.redirect_uri}?{params}"}, b""

        scopes = query.get("scope", "").split()
        if query.get("response_type") != "code":
            return error("unsupported_response_type", "response_type must be code")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return error("invalid_request", "PKCE with code_challenge_method=S256 is required")
        if query.get("aud") != self.fhir_base:
            return error("invalid_request", "aud must be this FHIR server's base URL")
        if not state:
            return error("invalid_request", "state is required")
        if "launch" in scopes:
            context = self.launches.get(query.get("launch", ""))
            if context is None:
                return error("invalid_request", "unknown or missing launch")
        elif "launch/patient" in scopes:
            context = self.signed_in
        else:
            return error("invalid_scope", "launch or launch/patient is required for a patient context")
        code = secrets.token_urlsafe(24)
        self.codes[code] = {
            "challenge": query["code_challenge"],
            "scope": " ".join(scopes),
            "context": context,
            "nonce": query.get("nonce"),
            "expires": time.time() + CODE_LIFETIME_S,
        }
        return 302, {"Location": f"{self.redirect_uri}?{urlencode({'code': code, 'state': state})}"}, b""

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Exchange a code (single use, PKCE verified) for an access token, the patient and an id_token."""
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or grant["expires"] < time.time():
            return 400, {"error": "invalid_grant", "error_description": "unknown, used or expired code"}
        if form.get("client_id") != self.client_id or form.get("redirect_uri") != self.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "client_id or redirect_uri differ"}
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "code_verifier does not match"}
        context: Launch = grant["context"]
        now = int(time.time())
        claims = {"iat": now, "exp": now + TOKEN_LIFETIME_S, "jti": secrets.token_hex(8)}
        access = jwt.encode(
            {
                **claims,
                "iss": self.root,
                "aud": self.fhir_base,
                "sub": context.user,
                "client_id": self.client_id,
                "scope": grant["scope"],
            },
            self._secret,
            algorithm="HS256",
        )
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_S,
            "scope": grant["scope"],
            "patient": context.patient,
            "need_patient_banner": False,
        }
        if "openid" in grant["scope"].split():
            answer["id_token"] = jwt.encode(
                {
                    **claims,
                    "iss": self.root,
                    "aud": self.client_id,
                    "sub": context.user,
                    "fhirUser": f"{self.fhir_base}/{context.user}",
                    **({"nonce": grant["nonce"]} if grant["nonce"] else {}),
                },
                self._key,
                algorithm="RS256",
                headers={"kid": "ehr-1"},
            )
        return 200, answer

    def jwks(self) -> dict[str, Any]:
        """The id_token signing key."""
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**jwk, "kid": "ehr-1", "alg": "RS256", "use": "sig"}]}

    def caller_of(self, authorization: str) -> str:
        """Who a FHIR request came from: the token's client and user, or the setup token."""
        token = authorization.partition(" ")[2]
        if token == self.setup_token:
            return "setup"
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return "invalid"
        return f"{claims.get('client_id')}:{claims.get('sub')}"


def _handler(ehr: SmartEhr) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, body: dict[str, Any]) -> None:
            headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
            self._reply(status, headers, json.dumps(body).encode())

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _handle(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/fhir/.well-known/smart-configuration":
                self._json(200, ehr.smart_configuration())
            elif url.path == "/auth/authorize" and self.command == "GET":
                self._reply(*ehr.authorize(query))
            elif url.path == "/auth/token" and self.command == "POST":
                form = {k: v[0] for k, v in parse_qs(self._body().decode()).items()}
                self._json(*ehr.token(form))
            elif url.path == "/auth/jwks":
                self._json(200, ehr.jwks())
            elif url.path == "/ehr/launch" and self.command == "GET":
                self._reply(*ehr.ehr_launch(query))
            elif url.path.startswith("/fhir"):
                self._forward()
            else:
                self._reply(404, {"Content-Type": "text/plain"}, b"not found")

        def _forward(self) -> None:
            ehr.calls.append((self.command, self.path, ehr.caller_of(self.headers.get("Authorization", ""))))
            headers = {k: v for k, v in self.headers.items() if k.lower() in FORWARDED}
            if ehr.drop_if_match:
                headers = {k: v for k, v in headers.items() if k.lower() != "if-match"}
            response = httpx.request(
                self.command,
                f"{ehr.upstream}{self.path}",
                headers=headers,
                content=self._body(),
                timeout=FORWARD_TIMEOUT_S,
            )
            kept = {k: v for k, v in response.headers.items() if k.lower() in RETURNED}
            self._reply(response.status_code, kept, response.content)

        do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Run the server and sekmet behind it in the foreground until SIGTERM; the setup token goes to a file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run in the foreground")
    serve.add_argument("--dir", type=Path, required=True, help="sekmet's state, and the setup token file")
    serve.add_argument("--port", type=int, default=8093, help="this server (FHIR base: /fhir under it)")
    serve.add_argument("--sekmet-port", type=int, default=8090)
    serve.add_argument("--client-id", default="ehrsum-review")
    serve.add_argument("--redirect-uri", required=True, help="the app's registered redirect URI")
    serve.add_argument("--app-launch-url", required=True, help="where /ehr/launch sends the browser")
    serve.add_argument("--user", default="Practitioner/demo-clinician", help="the signed-in user")
    args = parser.parse_args(argv)
    ehr = SmartEhr(
        workdir=args.dir,
        client_id=args.client_id,
        redirect_uri=args.redirect_uri,
        signed_in=Launch(patient="", user=args.user),
        app_launch_url=args.app_launch_url,
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    ehr.start(args.sekmet_port, args.port)
    token = args.dir / "setup-token"
    token.write_text(ehr.setup_token + "\n")
    token.chmod(0o600)
    print(f"SMART dev server (not for production) at {ehr.root}, FHIR base {ehr.fhir_base}", flush=True)
    try:
        stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        ehr.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
