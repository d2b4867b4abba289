"""SMART Backend Services against sekmet-fhir's real token endpoint: RS384 and ES384, cache, one refresh."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from deploy import fhir_server as sekmet
from deploy.processes import stop
from fhir_adapters.client import FhirAuth, FhirClient
from fhir_adapters.smart_auth import SmartClientConfig, SmartTokenSource
from services.core.errors import FhirAuthError
from tests.conftest import free_port
from tests.support.sekmet_auth import start_smart_server

pytestmark = pytest.mark.integration
KEYS: dict[str, Any] = {
    "rs384": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "es384": ec.generate_private_key(ec.SECP384R1()),
}


def pem(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def jwk(name: str) -> dict[str, Any]:
    algo: Any = RSAAlgorithm if name == "rs384" else ECAlgorithm
    return {**json.loads(algo.to_jwk(KEYS[name].public_key())), "kid": name}


@pytest.fixture(scope="module")
def smart_fhir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    clients = [
        {"client_id": f"ehrsum-{name}", "jwks": {"keys": [jwk(name)]}, "scopes": "system/*.rs system/*.cu"}
        for name in KEYS
    ]
    proc = start_smart_server(tmp_path_factory.mktemp("sekmet-smart"), port, clients)
    yield sekmet.base_url(port)
    stop(proc)


def client_for(url: str, name: str) -> tuple[FhirClient, SmartTokenSource]:
    alg: Literal["RS384", "ES384"] = "RS384" if name == "rs384" else "ES384"
    config = SmartClientConfig(
        client_id=f"ehrsum-{name}",
        private_key_pem=pem(KEYS[name]),
        alg=alg,
        kid=name,
        scope="system/*.rs system/*.cu",
    )
    tokens = SmartTokenSource(url, config)
    return FhirClient(url, auth=FhirAuth(mode="smart", smart=tokens), max_retries=0), tokens


async def test_unauthenticated_requests_are_refused(smart_fhir: str) -> None:
    async with FhirClient(smart_fhir, max_retries=0) as client:
        with pytest.raises(FhirAuthError):
            await client.get_json("Patient", {"_count": "1"})


@pytest.mark.parametrize("name", ["rs384", "es384"])
async def test_token_by_signed_assertion_is_discovered_cached_and_used(smart_fhir: str, name: str) -> None:
    client, tokens = client_for(smart_fhir, name)
    async with client:
        for _ in range(3):
            await client.get_json("Patient", {"_count": "1"})
        created = await client.request("POST", "Basic", json={"resourceType": "Basic", "code": {"text": "t"}})
    assert created.status_code == 201
    assert tokens.fetches == 1 and (tokens._token_url or "").endswith("/auth/token")


async def test_a_refused_token_is_renewed_once(smart_fhir: str) -> None:
    client, tokens = client_for(smart_fhir, "rs384")
    async with client:
        await client.get_json("Patient", {"_count": "1"})
        tokens._token = "revoked-or-rotated"  # the server no longer accepts what we cached
        await client.get_json("Patient", {"_count": "1"})
    assert tokens.fetches == 2


async def test_an_unknown_client_is_an_auth_error(smart_fhir: str) -> None:
    config = SmartClientConfig(client_id="stranger", private_key_pem=pem(KEYS["rs384"]), alg="RS384")
    async with FhirClient(
        smart_fhir, auth=FhirAuth(mode="smart", smart=SmartTokenSource(smart_fhir, config))
    ) as c:
        with pytest.raises(FhirAuthError, match="invalid_client"):
            await c.get_json("Patient", {"_count": "1"})


def test_key_file_config(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(pem(KEYS["es384"]))
    config = SmartClientConfig.from_key_file(path, client_id="x", alg="ES384")
    assert (
        SmartTokenSource("http://fhir.test/fhir", config).assertion("http://fhir.test/token").count(".") == 2
    )
