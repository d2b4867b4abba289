"""The one error tree of ehr-summarizer.

EhrSumError                  root; `transient` says whether a retry may succeed
├── ConfigError              settings that cannot work
├── InputError               bad input from a user or a file (one line on the CLI, 400 over HTTP)
│   ├── TooLarge             more than a limit allows: bytes, nesting, events (413)
│   └── InputMismatch        input that contradicts an earlier request, e.g. a reused Idempotency-Key (422)
├── NotFoundError            a job or draft of ours that does not exist
├── AuthenticationError      a caller without valid credentials (401 over HTTP)
├── PermissionDenied         a caller whose token lacks the scope (403 over HTTP)
├── ConflictError            a state change that no longer applies (409 over HTTP)
│   └── ApprovalBlocked      approving statements whose check fails, without an override reason
├── FhirError                the FHIR server's answer, mirrored
│   ├── FhirUnavailable      unreachable, timed out, 429/5xx after retries (transient)
│   ├── FhirNotFound         404/410
│   ├── FhirAuthError        401/403
│   ├── FhirConflict         409/412 (version conflicts, failed preconditions)
│   └── OperationOutcomeError   any other 4xx, carrying the server's OperationOutcome
└── LlmError
    ├── LlmTransientError    unreachable, timed out, 429/5xx (transient)
    └── LlmPermanentError    4xx, output that does not fit the schema after a retry

Messages carry resource ids and status codes, never names, note text or clinical values.
"""

from __future__ import annotations

from typing import Any


class EhrSumError(Exception):
    """Root of every error this service raises on purpose."""

    transient: bool = False


class ConfigError(EhrSumError):
    """Settings that cannot work."""


class InputError(EhrSumError):
    """Bad input from a caller or a file."""


class TooLarge(InputError):
    """Input over a size, depth or count limit."""


class InputMismatch(InputError):
    """Input that contradicts what an earlier request with the same key said."""


class NotFoundError(EhrSumError):
    """A job or draft of ours that does not exist."""


class AuthenticationError(EhrSumError):
    """A caller without valid credentials."""


class PermissionDenied(EhrSumError):
    """A caller whose token lacks the scope a route needs."""


class ConflictError(EhrSumError):
    """A state change that no longer applies (the resource moved on)."""


class ApprovalBlocked(ConflictError):
    """A draft holds statements whose check fails now: edit or remove them, or give an override reason."""

    def __init__(self, message: str, *, locations: list[str]):
        super().__init__(message)
        self.locations = locations


class FhirError(EhrSumError):
    """An error answered by, or on the way to, the FHIR server."""

    def __init__(self, message: str, *, status: int | None = None, outcome: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.outcome = outcome


class FhirUnavailable(FhirError):
    """The FHIR server could not be reached or kept failing."""

    transient = True


class FhirNotFound(FhirError):
    """The FHIR server answered 404 or 410."""


class FhirAuthError(FhirError):
    """The FHIR server refused our credentials."""


class FhirConflict(FhirError):
    """The FHIR server answered 409 or 412."""


class OperationOutcomeError(FhirError):
    """Any other 4xx from the FHIR server, with its OperationOutcome."""


class LlmError(EhrSumError):
    """An error from the LLM server or its output."""


class LlmTransientError(LlmError):
    """The LLM server was unreachable, timed out or overloaded."""

    transient = True


class LlmPermanentError(LlmError):
    """The LLM server rejected the request or its output is unusable."""
