"""Errors over HTTP as FHIR OperationOutcome: one mapping from the error tree to status codes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.core.errors import (
    ApprovalBlocked,
    AuthenticationError,
    ConflictError,
    EhrSumError,
    FhirConflict,
    FhirError,
    FhirNotFound,
    InputError,
    InputMismatch,
    NotFoundError,
    PermissionDenied,
    TooLarge,
)

FHIR_JSON = "application/fhir+json"
_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    408: "timeout",
    409: "conflict",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    428: "required",
    431: "too-costly",
    429: "throttled",
    503: "transient",
}
BEARER_CHALLENGE = 'Bearer realm="ehr-summarizer"'


def outcome_body(status: int, diagnostics: str, *, expression: list[str] | None = None) -> dict[str, Any]:
    """An OperationOutcome with one issue for an HTTP status."""
    issue: dict[str, Any] = {
        "severity": "error",
        "code": _ISSUE_CODES.get(status, "exception" if status >= 500 else "processing"),
        "diagnostics": diagnostics,
    }
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def operation_outcome(status: int, diagnostics: str, *, expression: list[str] | None = None) -> JSONResponse:
    """A JSONResponse carrying one OperationOutcome issue."""
    body = outcome_body(status, diagnostics, expression=expression)
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def status_of(exc: EhrSumError) -> int:
    """The HTTP status of an error of ours: the caller's fault 4xx, the FHIR server's answer mirrored."""
    if isinstance(exc, AuthenticationError):
        return 401
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, InputMismatch):
        return 422
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, NotFoundError | FhirNotFound):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, FhirConflict):
        return exc.status or 409
    if exc.transient:
        return 503
    # The FHIR server refused or failed a request of ours: the gateway's fault, not the caller's.
    return 502 if isinstance(exc, FhirError) else 500


def install_handlers(app: FastAPI) -> None:
    """Register handlers so every error leaves as an OperationOutcome."""

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": err.get("msg", "invalid"),
                "expression": [".".join(str(p) for p in err.get("loc", ()))],
            }
            for err in exc.errors()
        ]
        body = {"resourceType": "OperationOutcome", "issue": issues}
        return JSONResponse(body, status_code=422, media_type=FHIR_JSON)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return operation_outcome(exc.status_code, str(exc.detail))

    @app.exception_handler(DataError)
    async def unstorable_input(_: Request, exc: DataError) -> JSONResponse:
        # e.g. a NUL byte in an id or a query: Postgres refuses it; the request changed nothing.
        return operation_outcome(400, "input holds characters the database cannot store")

    @app.exception_handler(EhrSumError)
    async def domain_error(_: Request, exc: EhrSumError) -> JSONResponse:
        status = status_of(exc)
        # A blocked approval names the statements to edit, remove or override (FHIRPath-like locations).
        where = exc.locations if isinstance(exc, ApprovalBlocked) else None
        response = operation_outcome(status, str(exc), expression=where)
        if status == 401:
            response.headers["WWW-Authenticate"] = BEARER_CHALLENGE
        elif status == 403:
            response.headers["WWW-Authenticate"] = 'Bearer error="insufficient_scope"'
        return response
