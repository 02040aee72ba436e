"""`/metrics` and `/v1/metrics`: Prometheus text format from this app's own registry."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from proxy.routes.review import review_queue_summary
from proxy.services import Gateway

router = APIRouter()


@router.get("/metrics")
@router.get("/v1/metrics")
async def metrics(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    review = await review_queue_summary(request.app.state)
    gw.metrics.refresh(gw, review["queue"])
    return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)
