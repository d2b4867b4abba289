"""Settings, read once from the environment (prefix EHRSUM_) with embedded defaults.

Every EHRSUM_* variable in the environment must be a setting (or one of TOOLING_ENV): a misspelt name is
an error at process start, not a default silently used. Cross-field checks run at the same time.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

import httpx
from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.core.errors import ConfigError
from services.core.model_profiles import PROFILES

Language = Literal["en", "fr", "ko", "zh-Hant"]
TriageScale = Literal["esi", "ctas", "ktas"]

PREFIX = "EHRSUM_"
# EHRSUM_* names that are not service settings: the test, bench and demo tooling's own, and the chart's
# Redis password, which the kubelet expands into EHRSUM_BROKER_URL. The service never reads them.
TOOLING_ENV = frozenset(
    {
        "EHRSUM_CACHE",
        "EHRSUM_TEST_PG",
        "EHRSUM_TEST_REDIS",
        "EHRSUM_TEST_LLM_URL",
        "EHRSUM_BENCH_PG",
        "EHRSUM_BENCH_REDIS",
        "EHRSUM_FAULT_KILLS",
        "EHRSUM_REDIS_PASSWORD",
    }
)


class AdapterRoute(BaseModel):
    """Which note kinds and departments a LoRA adapter (its served name on the vLLM server) writes."""

    adapter: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kinds: list[str] = Field(default_factory=list, description="Note kinds (empty: any).")
    departments: list[str] = Field(
        default_factory=list,
        description="Encounter serviceType or location names, case-insensitive (empty: any).",
    )


class Settings(BaseSettings):
    """All configuration of the service; defaults run the embedded local stack."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_file=None, extra="forbid")

    data_dir: Path = Field(default=Path("var"), description="Where the embedded SQLite file lives.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite file when unset.")
    broker_url: str = "redis://127.0.0.1:6379/0"
    broker_visibility_timeout_s: int | None = Field(
        default=None, description="Redelivery delay of an unacked task; default 3x the LLM timeout."
    )

    fhir_base_url: str = "http://127.0.0.1:8090/fhir"
    fhir_auth: Literal["none", "basic", "bearer", "smart"] = "none"
    fhir_username: str | None = None
    fhir_password: SecretStr | None = None
    fhir_token: SecretStr | None = None
    fhir_client_id: str | None = Field(default=None, description="SMART Backend Services client id.")
    fhir_private_key_path: Path | None = Field(
        default=None, description="PEM key signing our client assertions."
    )
    fhir_key_alg: Literal["RS384", "ES384"] = "RS384"
    fhir_key_id: str | None = None
    fhir_scope: str = "system/*.rs system/*.cu"
    fhir_token_url: str | None = Field(
        default=None, description="Discovered from smart-configuration if unset."
    )
    fhir_timeout_s: float = 30.0
    fhir_max_retries: int = 4
    fhir_page_limit: int = 1000

    llm_base_url: str = "http://127.0.0.1:8000/v1"
    llm_model: str = "medgemma-27b"
    llm_profile: str = Field(
        default="medgemma-27b",
        description="Model profile (services.core.model_profiles): whether the model takes images.",
    )
    llm_adapters: list[AdapterRoute] = Field(
        default_factory=list,
        description="LoRA adapters by note kind and department, first match wins; else the base model.",
    )
    note_language: Language = Field(default="en", description="Language of the drafts.")
    department_languages: dict[str, Language] = Field(
        default_factory=dict, description="Draft language per department (encounter serviceType or location)."
    )
    guidelines_dir: Path | None = Field(
        default=None,
        description="The hospital's guideline library (Markdown, text, HTML, PlanDefinition/Library JSON).",
    )
    guidelines_fhir: bool = Field(
        default=False, description="Also read the active PlanDefinitions and Libraries of the FHIR server."
    )
    guidelines_max_file_bytes: int = Field(
        default=2_000_000, gt=0, description="A larger guideline file is skipped and listed."
    )
    triage_scale: TriageScale = Field(
        default="esi",
        description="The triage scale the hospital speaks: esi (US), ctas (Canada), ktas (Korea).",
    )
    department_triage_scales: dict[str, TriageScale] = Field(
        default_factory=dict,
        description="Triage scale per department (encounter serviceType or location) where a hospital mixes.",
    )
    llm_images: Literal["auto", "off"] = Field(
        default="auto", description="Send the record's image attachments to a multimodal profile (auto)."
    )
    image_max_bytes: int = Field(default=2_000_000, gt=0, description="Largest image attachment sent.")
    image_max_count: int = Field(default=4, ge=0, description="Most images sent with one prompt.")
    transcript_codes: list[str] = Field(
        default_factory=lambda: ["urn:ehr-summarizer:document-kind|visit-transcript"],
        description="DocumentReference type or category codings (system|code) that mark a visit transcript.",
    )
    transcript_max_bytes: int = Field(
        default=1_000_000,
        gt=0,
        description="Largest transcript read; the rest is left out, and the draft says so.",
    )
    transcript_max_turns: int = Field(
        default=1000, gt=0, description="Most turns read; later turns are left out, and the draft says so."
    )
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = 600.0
    llm_max_retries: int = 2
    llm_context_tokens: int = 32768
    llm_max_output_tokens: int = 2048
    llm_regenerations: int = Field(
        default=1,
        ge=0,
        le=1,
        description="Times an answer that fails verification is asked for again, with its violations "
        "(0: keep what passed of the first answer; each regeneration is a second model call).",
    )
    llm_temperature: float = 0.0
    note_max_statements: int = 6
    statement_max_chars: int = 400
    tokenizer_path: Path | None = Field(default=None, description="Served model's tokenizer dir, if local.")

    model_device_name: str = "MedGemma 27B"
    model_version: str = "google/medgemma-27b-it"
    model_weights_digest: str | None = None

    api_jwks_url: str | None = Field(
        default=None, description="JWKS of the identity provider for API tokens."
    )
    api_jwt_issuer: str | None = None
    api_jwt_audience: str = "ehr-summarizer"
    api_jwt_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "RS384", "ES256", "ES384"])
    api_jwks_cache_s: int = 300
    api_dev_token_enabled: bool = Field(
        default=False, description="Accept api_dev_token; never in production."
    )
    api_dev_token: SecretStr | None = None
    api_docs: bool = Field(
        default=False, description="Serve /docs, /redoc and /openapi.json (assets from the service itself)."
    )
    api_trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDRs of proxies whose X-Forwarded-For is believed (none by default).",
    )
    api_max_body_bytes: int = Field(default=65_536, gt=0, description="Largest request body of a /v1 route.")
    api_max_json_depth: int = Field(default=32, gt=0, description="Deepest JSON nesting a body may have.")
    api_rate_per_minute: int = Field(default=600, gt=0, description="Requests per minute per API caller.")
    api_max_header_bytes: int = Field(
        default=32_768, ge=4096, description="Largest request head (request line and headers): else 431."
    )
    api_header_timeout_s: float = Field(
        default=10.0, gt=0, description="Time a client has to send a request's head: else 408, closed."
    )
    api_keep_alive_s: float = Field(default=5.0, gt=0, description="Idle kept-alive connections are closed.")
    auth_failures_per_minute: int = Field(
        default=20,
        gt=0,
        description="Failed tokens or notification secrets per minute from one address before it gets 429.",
    )

    notification_secret: SecretStr | None = Field(
        default=None, description="Shared secret the FHIR server sends in Subscription.channel.header."
    )
    notification_secret_header: str = "X-Ehrsum-Secret"  # noqa: S105  (a header name)
    notification_endpoint_url: str = Field(
        default="http://127.0.0.1:8400/v1/notifications", description="Where the FHIR server reaches us."
    )
    notification_rate_per_minute: int = Field(default=1200, gt=0, description="Notifications per minute.")
    notification_max_body_bytes: int = Field(default=5_000_000, gt=0)
    notification_max_events: int = Field(
        default=100, gt=0, description="Most events (Bundle entries) one notification may carry."
    )
    subscription_criteria: list[str] = Field(
        default_factory=lambda: ["Encounter?status=in-progress", "DocumentReference"],
        description="R4 criteria-based rest-hook subscriptions that `ehrsum subscribe` registers.",
    )
    subscription_topics: list[str] = Field(
        default_factory=lambda: ["http://sekmet.dev/fhir/SubscriptionTopic/encounter-start"],
        description="R4 Backport topic canonicals that `ehrsum subscribe` registers.",
    )
    subscription_heartbeat_s: int = 300
    subscription_max_event_jump: int = Field(
        default=1000,
        gt=0,
        description="An event number further than this past the last one seen is not believed: it is "
        "recorded and caught up by `_lastUpdated`, and the counter follows the server's `$status` count.",
    )
    trigger_resource_types: list[str] = Field(
        default_factory=lambda: [
            "Encounter",
            "Observation",
            "DiagnosticReport",
            "Condition",
            "MedicationRequest",
        ],
        description="Changes to these resource types make a patient's summary due.",
    )
    polling: Literal["off", "auto", "always"] = Field(
        default="auto", description="`_lastUpdated` polling: auto = only while no subscription spoke lately."
    )
    poll_interval_s: float = 300.0
    poll_resource_types: list[str] = Field(
        default_factory=lambda: [
            "Encounter",
            "Observation",
            "DiagnosticReport",
            "Condition",
            "MedicationRequest",
            "DocumentReference",
        ]
    )
    subscription_stale_s: float = Field(
        default=900.0,
        description="No notification or heartbeat for this long: subscriptions count as silent.",
    )
    trigger_kinds: list[str] = Field(default_factory=lambda: ["progress"])
    debounce_s: float = Field(default=60.0, description="Events for one patient within this window: one job.")

    job_max_retries: int = 5
    job_retry_backoff_s: float = 15.0
    job_lease_s: float = Field(
        default=60.0,
        gt=0,
        description="A running job's claim; the worker renews it every third of this. A worker silent "
        "for longer is presumed lost and its job is taken over.",
    )
    job_requeue_after_s: float = Field(
        default=300.0,
        gt=0,
        description="A queued job not started this long after it was due is checked against the broker "
        "and queued again if the broker lost it (a Redis restart, an enqueue that failed).",
    )
    sweep_interval_s: float = Field(default=60.0, gt=0, description="How often beat runs the job sweeper.")
    worker_queues: list[str] = Field(
        default_factory=lambda: ["celery"],
        min_length=1,
        description="Celery queues a worker consumes; tasks are published to the first.",
    )
    review_client_id: str | None = Field(
        default=None, description="SMART public client id of the review app at /review (off when unset)."
    )
    review_url: str = Field(
        default="http://127.0.0.1:8400",
        description="Where clinicians' browsers reach this service; the SMART redirect URI is under it.",
    )
    review_scope: str = Field(
        default="openid fhirUser patient/*.rs patient/DocumentReference.cu patient/Provenance.u "
        "patient/AuditEvent.cu",
        description="Scopes the review app asks for (plus launch or launch/patient).",
    )
    review_launches_per_minute: int = Field(
        default=30, gt=0, description="Launches per minute per client address (each holds a pending session)."
    )
    review_frame_ancestors: str = Field(
        default="'self'", description="CSP frame-ancestors: the EHR origins allowed to embed the review app."
    )
    fhir_audit_events: bool = Field(
        default=True,
        description="Write a FHIR AuditEvent per AI run and per clinician decision (false: none written).",
    )
    otel_endpoint: str | None = Field(
        default=None,
        description="OpenTelemetry collector base URL; spans go to {endpoint}/v1/traces (OTLP over "
        "HTTP/protobuf). Unset: nothing is exported (trace ids are still kept with jobs and AuditEvents).",
    )
    review_max_body_bytes: int = Field(
        default=262_144, gt=0, description="Largest form a review page may post (an edited note)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @model_validator(mode="before")
    @classmethod
    def _only_known_names(cls, data: object) -> object:
        names = {f"{PREFIX}{name}".upper() for name in cls.model_fields} | TOOLING_ENV
        unknown = sorted(k for k in os.environ if k.upper().startswith(PREFIX) and k.upper() not in names)
        if unknown:
            raise ValueError(f"unknown variable {', '.join(unknown)} (not a setting; misspelt?)")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        needs = {
            "basic": ("fhir_username", "fhir_password"),
            "bearer": ("fhir_token",),
            "smart": ("fhir_client_id", "fhir_private_key_path"),
        }.get(self.fhir_auth, ())
        missing = [f"{PREFIX}{n.upper()}" for n in needs if not getattr(self, n)]
        if missing:
            raise ValueError(f"{PREFIX}FHIR_AUTH={self.fhir_auth} needs {' and '.join(missing)}")
        if self.llm_profile not in PROFILES:
            raise ValueError(
                f"{PREFIX}LLM_PROFILE: unknown profile {self.llm_profile!r} (known: {', '.join(PROFILES)})"
            )
        if self.api_dev_token_enabled and not self.api_dev_token:
            raise ValueError(f"{PREFIX}API_DEV_TOKEN_ENABLED needs {PREFIX}API_DEV_TOKEN")
        for name in (
            "fhir_base_url",
            "llm_base_url",
            "notification_endpoint_url",
            "api_jwks_url",
            "fhir_token_url",
            "otel_endpoint",
        ):
            value = getattr(self, name)
            if value is not None and not _is_http_url(value):
                raise ValueError(f"{PREFIX}{name.upper()} must be an absolute http(s) URL")
        for proxy in self.api_trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as exc:
                raise ValueError(f"{PREFIX}API_TRUSTED_PROXIES: {proxy!r} is not an address or CIDR") from exc
        return self

    def sqlalchemy_url(self) -> str:
        """The database URL, defaulting to a SQLite file under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ehrsum.db').resolve()}"


def _is_http_url(value: str) -> bool:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        return False
    return url.scheme in ("http", "https") and bool(url.host)


def describe(error: ValidationError) -> str:
    """A validation error of the settings as one line naming the variables."""
    parts = []
    for err in error.errors():
        name = f"{PREFIX}{err['loc'][0]}".upper() + ": " if err["loc"] else ""
        parts.append(name + str(err["msg"]).removeprefix("Value error, "))
    return "; ".join(parts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; ConfigError (one line) when they cannot work."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(f"configuration: {describe(exc)}") from None
