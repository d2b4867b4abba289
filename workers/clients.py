"""Clients built from the settings: the only places that know where the FHIR and LLM servers are."""

from __future__ import annotations

import asyncio
from functools import lru_cache

from fhir_adapters.client import FhirAuth, FhirClient
from fhir_adapters.smart_auth import SmartClientConfig, SmartTokenSource
from services.audit.models import AuditOutcome
from services.audit.service import AuditEntry, record_batch_detached
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


class ExchangeAudit:
    """The audit entries of one client's FHIR exchanges (paths carry ids only; capability probes are not
    audited), written in batches off the event loop: never a commit per exchange on the loop."""

    BATCH = 200

    def __init__(self, actor: str = "ehr-summarizer"):
        self.actor = actor
        self.pending: list[AuditEntry] = []
        self.writes: list[asyncio.Future[None]] = []

    def __call__(self, method: str, path: str, status: int | None) -> None:
        if path == "metadata":
            return
        outcome = AuditOutcome.success if status is not None and status < 400 else AuditOutcome.failure
        action = "fhir read" if method in ("GET", "HEAD") else "fhir write"
        detail = str(status) if status is not None else "unreachable"
        self.pending.append(
            AuditEntry(self.actor, f"{action} {method}", outcome, (path,) if path else (), detail)
        )
        if len(self.pending) >= self.BATCH:
            self._write_pending()

    def _write_pending(self) -> None:
        batch, self.pending = self.pending, []
        self.writes.append(asyncio.get_running_loop().run_in_executor(None, record_batch_detached, batch))

    async def close(self) -> None:
        """Write what is pending and wait for every batch."""
        if self.pending:
            self._write_pending()
        writes, self.writes = self.writes, []
        await asyncio.gather(*writes)


def fhir_client(settings: Settings, base_url: str | None = None) -> FhirClient:
    """A FHIR client for the configured server (or base_url)."""
    url = base_url or settings.fhir_base_url
    audit = ExchangeAudit()
    auth = FhirAuth(
        mode=settings.fhir_auth,
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
        on_exchange=audit,
        on_close=audit.close,
    )


def clinician_client(settings: Settings, access_token: str, actor: str) -> FhirClient:
    """A FHIR client acting with a clinician's own SMART token (the review app), audited as them."""
    audit = ExchangeAudit(actor)
    return FhirClient(
        settings.fhir_base_url,
        auth=FhirAuth(mode="bearer", token=access_token),
        timeout_s=settings.fhir_timeout_s,
        max_retries=settings.fhir_max_retries,
        page_limit=settings.fhir_page_limit,
        on_exchange=audit,
        on_close=audit.close,
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
