"""Health: `/health` (cheap, cached summary), `/health/live`, `/health/ready`."""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Request
from starlette.responses import Response

from proxy.services import Gateway

router = APIRouter()

_CACHE_S = 2.0


def _summary(gw: Gateway) -> dict[str, object]:
    return {
        "status": "ok" if gw.ready else "starting",
        "version": gw.version,
        "config_version": gw.settings.version,
        "uptime_s": round(time.time() - gw.started_at, 1),
        "dependencies": {
            "router": {"state": "ok", "model_groups": sorted(gw.upstream.groups)},
            "database": {"state": "not_configured" if not gw.settings.database_url else "unknown"},
            "redis": {"state": "not_configured" if not gw.settings.redis_url else "unknown"},
        },
        "deployments_left_out": gw.skipped,
    }


@router.get("/health")
async def health(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    now = time.monotonic()
    cached = getattr(request.app.state, "health_cache", None)
    if cached is None or now - cached[0] > _CACHE_S:
        cached = (now, json.dumps(_summary(gw)).encode())
        request.app.state.health_cache = cached
    return Response(cached[1], media_type="application/json", status_code=200 if gw.ready else 503)


@router.get("/health/live")
async def live() -> Response:
    return Response(b'{"status":"alive"}', media_type="application/json")


@router.get("/health/ready")
async def ready(request: Request) -> Response:
    gw: Gateway | None = getattr(request.app.state, "gateway", None)
    ok = gw is not None and gw.ready
    return Response(json.dumps({"ready": ok}).encode(), media_type="application/json", status_code=200 if ok else 503)
