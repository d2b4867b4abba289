"""API security as an integrator meets it: JWTs from a real JWKS endpoint, scopes, and the audit trail."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlmodel import select

from services.api.security import verify_token
from services.audit.models import AuditOutcome, AuditRecord
from services.core.db import session_scope
from services.core.errors import AuthenticationError
from services.core.settings import get_settings
from tests.support.identity import IdentityProvider

pytestmark = pytest.mark.e2e


def status_with(api: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{api}/v1/summaries/some-job", headers=headers, timeout=10)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_health_needs_no_token(api: str) -> None:
    assert httpx.get(f"{api}/healthz", timeout=10).status_code == 200


def test_missing_token_is_401_with_a_bearer_challenge(api: str) -> None:
    answer = httpx.post(f"{api}/v1/summaries", json={"patient": "x"}, timeout=10)
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.json()["issue"][0]["code"] == "login"


@pytest.mark.parametrize(
    "variant", ["expired", "wrong-audience", "wrong-issuer", "unknown-key", "garbage", "ec-expired"]
)
def test_invalid_tokens_are_401(api: str, identity: IdentityProvider, variant: str) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tokens: dict[str, Callable[[], str]] = {
        "expired": lambda: identity.token(expires_in=-120),
        "wrong-audience": lambda: identity.token(audience="someone-else"),
        "wrong-issuer": lambda: identity.token(issuer="http://elsewhere"),
        "unknown-key": lambda: identity.token(signer=stranger),
        "garbage": lambda: "not.a.jwt",
        "ec-expired": lambda: identity.token(kid="ec-1", expires_in=-120),
    }
    token = tokens[variant]()
    answer = status_with(api, bearer(token))
    assert answer.status_code == 401, answer.text


def test_valid_rsa_and_ec_tokens_pass(api: str, identity: IdentityProvider) -> None:
    for kid in ("rsa-1", "ec-1"):
        answer = status_with(api, bearer(identity.token("summaries.read", kid=kid)))
        assert answer.status_code == 404  # authenticated; the job does not exist


def test_missing_scope_is_403(api: str, identity: IdentityProvider) -> None:
    read_only = bearer(identity.token("summaries.read"))
    answer = httpx.post(f"{api}/v1/summaries", json={"patient": "x"}, headers=read_only, timeout=10)
    assert answer.status_code == 403 and answer.json()["issue"][0]["code"] == "forbidden"


def test_dev_token_only_when_enabled(identity: IdentityProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHRSUM_API_DEV_TOKEN", "dev-secret")
    get_settings.cache_clear()
    try:
        with pytest.raises(AuthenticationError):
            verify_token("dev-secret", get_settings())
        monkeypatch.setenv("EHRSUM_API_DEV_TOKEN_ENABLED", "true")
        get_settings.cache_clear()
        assert verify_token("dev-secret", get_settings()).subject == "dev-token"
        with pytest.raises(AuthenticationError):
            verify_token("dev-secreT", get_settings())
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_api_actions_are_audited_without_phi(api: str, identity: IdentityProvider) -> None:
    token = identity.token("summaries.read", subject="auditor-7")
    status_with(api, bearer(token))
    httpx.post(f"{api}/v1/summaries", json={"patient": "x"}, headers=bearer(token), timeout=10)
    with session_scope() as session:
        rows = session.exec(select(AuditRecord).where(AuditRecord.actor == "auditor-7")).all()
    by_action = {r.action: r for r in rows}
    read = by_action["api GET /v1/summaries/{job_id}"]
    assert read.resource_ids == ["some-job"] and read.outcome == AuditOutcome.failure
    assert by_action["api POST /v1/summaries"].outcome == AuditOutcome.denied
