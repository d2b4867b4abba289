"""Clients built from the settings: the only places that know where the FHIR and LLM servers are."""

from __future__ import annotations

from functools import lru_cache, partial

from fhir_adapters.client import FhirAuth, FhirClient
from fhir_adapters.smart_auth import SmartClientConfig, SmartTokenSource
from services.core.errors import ConfigError
from services.core.settings import Settings
from workers.llm_client import LlmClient


@lru_cache(maxsize=4)
def _token_source(url: str, config: SmartClientConfig, timeout_s: float) -> SmartTokenSource:
    return SmartTokenSource(url, config, timeout_s=timeout_s)


def smart_tokens(settings: Settings, url: str) -> SmartTokenSource:
    """One token source per server and registration, so a token outlives a single client (and job)."""
    if not settings.fhir_client_id or not settings.fhir_private_key_path:  # Settings checks it; for mypy
        raise ConfigError(
            "EHRSUM_FHIR_AUTH=smart needs EHRSUM_FHIR_CLIENT_ID and EHRSUM_FHIR_PRIVATE_KEY_PATH"
        )
    config = SmartClientConfig.from_key_file(
        settings.fhir_private_key_path,
        client_id=settings.fhir_client_id,
        alg=settings.fhir_key_alg,
        kid=settings.fhir_key_id,
        scope=settings.fhir_scope,
        token_url=settings.fhir_token_url,
    )
    return _token_source(url, config, settings.fhir_timeout_s)


def check_clients(settings: Settings) -> None:
    """What a client needs at first use, checked at process start: the SMART key must load (ConfigError)."""
    if settings.fhir_auth == "smart":
        smart_tokens(settings, settings.fhir_base_url)


def audit_exchange(method: str, path: str, status: int | None, *, actor: str = "ehr-summarizer") -> None:
    """Audit one FHIR read or write (the path carries ids only); capability probes are not audited."""
    if path == "metadata":
        return
    # Imported here: commands that never reach the FHIR server should not load the database layer.
    from services.audit.models import AuditOutcome
    from services.audit.service import record_detached

    outcome = AuditOutcome.success if status is not None and status < 400 else AuditOutcome.failure
    action = "fhir read" if method in ("GET", "HEAD") else "fhir write"
    record_detached(
        actor=actor,
        action=f"{action} {method}",
        outcome=outcome,
        resource_ids=[path] if path else [],
        detail=str(status) if status is not None else "unreachable",
    )


def fhir_client(settings: Settings, base_url: str | None = None) -> FhirClient:
    """A FHIR client for the configured server (or base_url)."""
    url = base_url or settings.fhir_base_url
    auth = FhirAuth(
        kind=settings.fhir_auth,
        username=settings.fhir_username,
        password=settings.fhir_password.get_secret_value() if settings.fhir_password else None,
        token=settings.fhir_token.get_secret_value() if settings.fhir_token else None,
        smart=smart_tokens(settings, url) if settings.fhir_auth == "smart" else None,
    )
    return FhirClient(
        url,
        auth=auth,
        timeout_s=settings.fhir_timeout_s,
        max_retries=settings.fhir_max_retries,
        page_limit=settings.fhir_page_limit,
        on_exchange=audit_exchange,
    )


def clinician_client(settings: Settings, access_token: str, actor: str) -> FhirClient:
    """A FHIR client acting with a clinician's own SMART token (the review app), audited as them."""
    return FhirClient(
        settings.fhir_base_url,
        auth=FhirAuth(kind="bearer", token=access_token),
        timeout_s=settings.fhir_timeout_s,
        max_retries=settings.fhir_max_retries,
        page_limit=settings.fhir_page_limit,
        on_exchange=partial(audit_exchange, actor=actor),
    )


def llm_client(settings: Settings, base_url: str | None = None) -> LlmClient:
    """An LLM client for the configured endpoint (or base_url)."""
    return LlmClient(
        base_url or settings.llm_base_url,
        settings.llm_model,
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
    )
