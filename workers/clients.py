"""Clients built from the settings: the only places that know where the FHIR and LLM servers are."""

from __future__ import annotations

from fhir_adapters.client import FhirAuth, FhirClient
from services.core.settings import Settings
from workers.llm_client import LlmClient


def fhir_client(settings: Settings, base_url: str | None = None) -> FhirClient:
    """A FHIR client for the configured server (or base_url)."""
    auth = FhirAuth(
        kind=settings.fhir_auth,
        username=settings.fhir_username,
        password=settings.fhir_password.get_secret_value() if settings.fhir_password else None,
        token=settings.fhir_token.get_secret_value() if settings.fhir_token else None,
    )
    return FhirClient(
        base_url or settings.fhir_base_url,
        auth=auth,
        timeout_s=settings.fhir_timeout_s,
        max_retries=settings.fhir_max_retries,
        page_limit=settings.fhir_page_limit,
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
