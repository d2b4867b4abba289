"""Errors over HTTP as FHIR OperationOutcome."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.core.errors import ConflictError, EhrSumError, InputError, NotFoundError

FHIR_JSON = "application/fhir+json"
_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    412: "conflict",
    422: "invalid",
}


def operation_outcome(status: int, diagnostics: str, *, expression: list[str] | None = None) -> JSONResponse:
    """A JSONResponse carrying one OperationOutcome issue."""
    issue: dict[str, Any] = {
        "severity": "error",
        "code": _ISSUE_CODES.get(status, "exception" if status >= 500 else "processing"),
        "diagnostics": diagnostics,
    }
    if expression:
        issue["expression"] = expression
    body = {"resourceType": "OperationOutcome", "issue": [issue]}
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


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
        if isinstance(exc, NotFoundError):
            return operation_outcome(404, str(exc))
        if isinstance(exc, InputError):
            return operation_outcome(400, str(exc))
        if isinstance(exc, ConflictError):
            return operation_outcome(409, str(exc))
        return operation_outcome(503 if exc.transient else 500, str(exc))
