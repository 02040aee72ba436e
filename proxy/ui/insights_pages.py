"""Insights: the page, the JSON routes its charts draw from, the learned-state history and roll-back.

    GET  /ui/insights                         the page (charts drawn by /ui/static/charts.js)
    GET  /v1/insights?days=30                 every figure (learning/insights.py) as one JSON object
    GET  /v1/insights/history?limit=50        learned-state versions: changes, reasons, sample counts
    GET  /v1/insights/history/diff?a=1&b=2    what differs between two versions' states
    POST /ui/insights/rollback                (admin, CSRF) form: version, confirm (the version again)

The JSON routes take a reviewer or admin key (`Authorization: Bearer`), or the console's session
cookie (the page's own fetches): the same routes a script would use.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, RedirectResponse, Response

from learning import insights as ins
from learning.costs import tier_prices
from proxy.auth import require_reviewer
from store import queries as q
from store.models import LearnedState

from .web import HEADERS, PageError, check_csrf, db, gateway, read_form, render, require_user

log = logging.getLogger("gateway.console")
router = APIRouter(include_in_schema=False)
MAX_DAYS = 366


async def _reader(request: Request) -> None:
    """A reviewer/admin key, or a signed-in console session."""
    if request.headers.get("authorization") or request.headers.get("x-api-key"):
        require_reviewer((await gateway(request).admit(request)).caller)
        return
    await require_user(request)


def _days(request: Request) -> int:
    raw = request.query_params.get("days", "30")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise PageError(400, "Bad request", f"days must be a whole number from 1 to {MAX_DAYS}",
                        code="invalid_request")
    return int(raw)


@router.get("/ui/insights")
async def insights_page(request: Request) -> Response:
    await require_user(request)
    return render(request, "insights.html", days=_days(request))


@router.get("/v1/insights")
async def insights_json(request: Request) -> Response:
    await _reader(request)
    days = _days(request)
    gw = gateway(request)
    prices = tier_prices(gw.settings.model_list, gw.settings.tiers)
    now = datetime.now(UTC)

    def compute(session: Session) -> dict[str, Any]:
        data = ins.load(session, now - timedelta(days=days))
        return {
            "object": "insights", "days": days, "since": (now - timedelta(days=days)).isoformat(),
            "prices": {tier: {"input": p.input, "output": p.output} for tier, p in prices.items()},
            "savings": ins.savings_figures(data.calls, prices),
            "escalations": ins.escalation_figures(data.calls),
            "confidence": ins.confidence_figures(data.calls, data.reviews),
            "queue": ins.queue_figures(data.reviews, now),
            "providers": ins.provider_figures(data.calls),
        }

    return JSONResponse(await db(request, compute), headers=HEADERS)


def _version_json(row: Any) -> dict[str, Any]:
    reasons = row.reasons or {}
    return {"version": row.version, "created_at": row.created_at.isoformat(), "source": row.source,
            "active": row.active, "summary": reasons.get("summary"), "changes": reasons.get("changes") or [],
            "notes": reasons.get("notes") or [], "based_on": reasons.get("based_on")}


@router.get("/v1/insights/history")
async def history(request: Request) -> Response:
    await _reader(request)
    raw = request.query_params.get("limit", "50")
    limit = int(raw) if raw.isdigit() else 50
    rows = await db(request, lambda s: q.list_learned_states(s, limit=limit))
    return JSONResponse({"object": "list", "data": [_version_json(r) for r in rows]}, headers=HEADERS)


@router.get("/v1/insights/history/diff")
async def diff(request: Request) -> Response:
    await _reader(request)
    versions = [request.query_params.get(n, "") for n in ("a", "b")]
    if not all(v.isdigit() and len(v) < 10 for v in versions):
        raise PageError(400, "Bad request", "a and b must be version numbers", code="invalid_request")
    a, b = (int(v) for v in versions)

    def read(session: Session) -> list[dict[str, Any]]:
        old, new = session.get(LearnedState, a), session.get(LearnedState, b)
        if old is None or new is None:
            raise q.NotFound(f"learned state version {a if old is None else b} not found")
        return ins.state_diff(old.state or {}, new.state or {})

    return JSONResponse({"object": "diff", "a": a, "b": b, "changes": await db(request, read)}, headers=HEADERS)


@router.post("/ui/insights/rollback")
async def rollback(request: Request) -> Response:
    user = await require_user(request, admin=True)
    form = await read_form(request)
    check_csrf(request, user, form)
    version, confirm = form.get("version", ""), form.get("confirm", "")
    if not version.isdigit() or confirm != version:
        raise PageError(400, "Not confirmed", "Type the version number again to confirm the roll-back.",
                        code="invalid_request")
    row = await db(request, lambda s: q.activate_learned_state(s, int(version)))
    log.warning("learned state rolled back to version %d by %s",
                                                 row.version, user.name)
    return RedirectResponse(f"/ui/insights?rolled_back={row.version}#history", status_code=303, headers=HEADERS)
