"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from services.api.drafts import router as drafts_router
from services.api.metrics import router as metrics_router
from services.api.notifications import router as notifications_router
from services.api.outcomes import install_handlers
from services.api.routes import router
from services.api.security import check_config, install_security
from services.core.settings import get_settings
from services.schema import init_db


def create_app() -> FastAPI:
    """Build the app; tables are created on start-up."""
    check_config(get_settings())
    app = FastAPI(
        title="ehr-summarizer",
        version="0.1.0",
        description="Summaries of a patient's FHIR record, written back as draft DocumentReferences.",
        on_startup=[init_db],
    )
    install_handlers(app)
    install_security(app)
    app.include_router(router)
    app.include_router(notifications_router)
    app.include_router(drafts_router)
    app.include_router(metrics_router)
    return app
