"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from services.api.census import router as census_router
from services.api.docs import OPENAPI_URL, install_docs
from services.api.drafts import router as drafts_router
from services.api.guard import install_guards
from services.api.metrics import router as metrics_router
from services.api.notifications import notifications_router
from services.api.outcomes import install_handlers
from services.api.request_spans import RequestSpans
from services.api.routes import router
from services.core import tracing
from services.core.settings import get_settings
from services.review.app import install_review
from services.schema import init_db


def create_app() -> FastAPI:
    """Build the app from the settings (validated first); tables are created on start-up."""
    settings = get_settings()
    tracing.configure("ehr-summarizer-api", settings.otel_endpoint)
    app = FastAPI(
        title="ehr-summarizer",
        version="0.1.0",
        description="Summaries of a patient's FHIR record, written back as draft DocumentReferences.",
        on_startup=[init_db],
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_URL if settings.api_docs else None,
    )
    # A redirect to the slash-less path would be built from the Host header the caller sent.
    app.router.redirect_slashes = False
    install_handlers(app)
    install_guards(app, settings)
    app.include_router(router)
    app.include_router(notifications_router(settings))
    app.include_router(drafts_router)
    app.include_router(census_router)
    app.include_router(metrics_router)
    install_review(app, settings)
    if settings.api_docs:
        install_docs(app)
    app.add_middleware(RequestSpans)  # added last: the outermost layer, so every answer has its span
    return app
