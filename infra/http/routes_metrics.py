"""`GET /metrics`: relay, projection and consumer lag and open dead letters (死信) in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from infra.streams.status import PROMETHEUS_CONTENT_TYPE, metrics_text, status

router = APIRouter()


@router.get("/metrics", tags=["health"], response_class=Response)
async def metrics(request: Request) -> Response:
    system = request.app.state.system
    bootstrap = request.app.state.kafka_bootstrap
    report = await run_in_threadpool(status, system.database_url, bootstrap)
    return Response(metrics_text(report), media_type=PROMETHEUS_CONTENT_TYPE)
