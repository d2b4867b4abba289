"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from services.api.outcomes import install_handlers
from services.api.routes import router
from services.core.db import init_db


def create_app() -> FastAPI:
    """Build the app; tables are created on start-up."""
    app = FastAPI(
        title="ehr-summarizer",
        version="0.1.0",
        description="Summaries of a patient's FHIR record, written back as draft DocumentReferences.",
        on_startup=[init_db],
    )
    install_handlers(app)
    app.include_router(router)
    return app
