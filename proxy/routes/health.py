"""Health: `/health` (cheap, cached summary), `/health/live`, `/health/ready`."""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Request
from starlette.responses import Response

from proxy.routes.review import review_queue_summary
from proxy.services import Gateway

router = APIRouter()

_CACHE_S = 2.0


def _summary(gw: Gateway) -> dict[str, object]:
    database: dict[str, object] = {"state": "ok" if gw.db_ready and (gw.sink is None or gw.sink.db_ok) else "down",
                                   "backend": gw.engine.dialect.name}
    if gw.sink is not None:
        database.update(audit_queue=gw.sink.queue_depth, audit_spool=gw.sink.spool_depth)
    redis: dict[str, object] = {"state": "not_configured"}
    if gw.redis is not None:
        redis = {"state": gw.redis.state, "last_error": gw.redis.last_error}
    local = gw.local.status() if gw.local is not None else {}
    degraded = database["state"] != "ok" or redis["state"] == "degraded" or (gw.local is not None and not gw.local.ok)
    status = "degraded" if degraded else "ok"
    if not gw.ready:
        status = "stopping" if gw.stopping else "starting"
    return {
        "status": status,
        "version": gw.version,
        "config_version": gw.settings.version,
        "learned_state_version": gw.state.current.version,
        "uptime_s": round(time.time() - gw.started_at, 1),
        "dependencies": {
            "router": {"state": "ok", "model_groups": sorted(gw.upstream.groups)},
            "database": database,
            "redis": redis,
            "local_models": local,
        },
        "deployments_left_out": gw.skipped,
    }


@router.get("/health")
async def health(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    now = time.monotonic()
    cached = getattr(request.app.state, "health_cache", None)
    if cached is None or now - cached[0] > _CACHE_S:
        body = _summary(gw)
        body["queue"] = (await review_queue_summary(request.app.state))["queue"]
        cached = (now, json.dumps(body).encode())
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
