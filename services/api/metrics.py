"""GET /metrics in Prometheus text format (a token with metrics.read; no PHI: counts and seconds only)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.api.security import MetricsRead
from services.metrics.collector import ServiceCollector

router = APIRouter()
_registry = CollectorRegistry(auto_describe=False)
_registry.register(ServiceCollector())


@router.get("/metrics", include_in_schema=False)
async def metrics(_: MetricsRead) -> Response:
    """Prometheus exposition of the service's metrics."""
    body = await asyncio.to_thread(generate_latest, _registry)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
