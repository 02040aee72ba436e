"""The queue and one item (reviewers and admins).

    GET  /ui/queue                      filters: task_type, tier, caller, kind (pending_review|spot_check),
                                        age (lt1h|1h-24h|gt24h|gt7d), state (pending|approved|rejected|corrected);
                                        keyset pages: cursor (next), before (previous)
    GET  /ui/items/{id}                 one item; `?fragment=1`: only the item's panel (the keyboard flow)
    POST /ui/items/{id}/verdict         JSON {verdict: approve|reject|correct, corrected_output?, notes?}
                                        + x-csrf-token -> {item, next_id}; 409 when someone decided first
    GET  /ui/demonstrations.jsonl       corrected answers as chat demonstrations (also GET /v1/review/demonstrations)

The filters ride along in the query string of every link, so j/k and "next after a verdict" stay
inside the reviewer's filter.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response, StreamingResponse

from proxy.auth import require_reviewer
from proxy.routes.review import VerdictBody
from store import console as sc
from store import queries as q
from store.models import AuditLog, ReviewItem

from .views import item_view, row_summary
from .web import HEADERS, PageError, User, check_csrf, db, gateway, render, require_user

log = logging.getLogger("gateway.console")
router = APIRouter(include_in_schema=False)

AGES: dict[str, tuple[float | None, float | None]] = {
    "lt1h": (None, 3600.0), "1h-24h": (3600.0, 86400.0), "gt24h": (86400.0, None), "gt7d": (7 * 86400.0, None),
}
FILTERS = ("task_type", "tier", "caller", "kind", "age", "state")
PAGE = 50


def _filters(request: Request) -> dict[str, str]:
    return {k: v for k in FILTERS if (v := request.query_params.get(k, ""))}


def _queue_filter(params: dict[str, str]) -> sc.QueueFilter:
    age = params.get("age")
    if age is not None and age not in AGES:
        raise PageError(400, "Bad filter", f"age must be one of {', '.join(AGES)}", code="invalid_request")
    low, high = AGES.get(age or "", (None, None))
    try:
        return sc.QueueFilter(state=params.get("state", "pending"), task_type=params.get("task_type"),
                              tier=params.get("tier"), caller=params.get("caller"), kind=params.get("kind"),
                              min_age_s=low, max_age_s=high)
    except q.InvalidInput as exc:
        raise PageError(400, "Bad filter", str(exc), code="invalid_request") from None


def _int(raw: str | None, name: str) -> int | None:
    if raw in (None, ""):
        return None
    assert raw is not None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise PageError(400, "Bad request", f"{name} must be a number", code="invalid_request")
    return int(raw)


@router.get("/ui/queue")
async def queue(request: Request) -> Response:
    await require_user(request)
    params = _filters(request)
    flt = _queue_filter(params)
    cursor = _int(request.query_params.get("cursor"), "cursor")
    before = _int(request.query_params.get("before"), "before")

    def read(session: Session) -> tuple[q.Page[ReviewItem], int, dict[str, dict[str, int]]]:
        page = sc.queue_page(session, flt, cursor=cursor, before=before, limit=PAGE)
        return page, sc.queue_total(session, flt), sc.queue_counts(session, flt)

    page, total, counts = await db(request, read)
    query = urlencode(params)
    first = page.items[0].id if page.items else None
    return render(request, "queue.html", items=page.items, total=total, counts=counts, filters=params,
                  query=query, next_cursor=page.next_cursor, prev_before=first if (cursor or before) else None,
                  ages=list(AGES), states=q.REVIEW_STATES)


def _load_item(session: Session, item_id: int, flt: sc.QueueFilter) -> dict[str, Any]:
    item = q.get_review_item(session, item_id)
    if item is None:
        raise q.NotFound(f"review item {item_id} not found")
    audit = q.get_audit(session, item.audit_id)
    return {"item": item, "audit": audit, "next_id": sc.neighbour(session, flt, item_id, forward=True),
            "prev_id": sc.neighbour(session, flt, item_id, forward=False), "position": None,
            "remaining": sc.queue_total(session, flt)}


@router.get("/ui/items/{item_id}")
async def item_page(request: Request, item_id: str) -> Response:
    await require_user(request)
    number = _int(item_id, "item id")
    assert number is not None
    params = _filters(request)
    flt = _queue_filter(params)
    loaded = await db(request, lambda s: _load_item(s, number, flt))
    view = item_view(loaded["item"], loaded["audit"])
    template = "_item.html" if request.query_params.get("fragment") == "1" else "item.html"
    return render(request, template, view=view, filters=params, query=urlencode(params),
                  next_id=loaded["next_id"], prev_id=loaded["prev_id"], remaining=loaded["remaining"])


def _decide(session: Session, item_id: int, body: VerdictBody, user: User, flt: sc.QueueFilter) -> dict[str, Any]:
    try:
        item = q.apply_verdict(session, item_id, body.verdict, reviewer=user.name,
                               corrected_output=body.corrected_output, score=body.score, notes=body.notes)
    except q.NotPending:
        current = q.get_review_item(session, item_id)
        assert current is not None
        return {"conflict": True, "item": current, "next_id": sc.neighbour(session, flt, item_id)}
    return {"conflict": False, "item": item, "next_id": sc.neighbour(session, flt, item_id)}


@router.post("/ui/items/{item_id}/verdict")
async def verdict(request: Request, item_id: str) -> Response:
    user = await require_user(request)
    check_csrf(request, user)
    number = _int(item_id, "item id")
    assert number is not None
    flt = _queue_filter(_filters(request))
    raw = await request.body()
    if len(raw) > gateway(request).settings.limits.max_body_bytes:
        raise PageError(413, "Too large", "The verdict is too large.", code="request_too_large")
    try:
        body = VerdictBody.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PageError(400, "Bad verdict", f"{'.'.join(map(str, first['loc']))}: {first['msg']}",
                        code="invalid_request") from None
    if body.verdict == "correct" and not (body.corrected_output or "").strip():
        raise PageError(400, "Bad verdict", "a correction needs the corrected answer", code="invalid_request")
    if body.verdict != "correct" and body.corrected_output is not None:
        raise PageError(400, "Bad verdict", "corrected_output is only for a correction", code="invalid_request")
    result = await db(request, lambda s: _decide(s, number, body, user, flt))
    item: ReviewItem = result["item"]
    summary = row_summary(item)
    if result["conflict"]:
        who = item.reviewer or "someone"
        return JSONResponse({"error": {
            "message": f"{who} already decided this item ({item.state}, {item.updated_at:%H:%M:%S} UTC); "
                       "your verdict was not recorded and nothing was overwritten.",
            "type": "invalid_request_error", "param": None, "code": "already_decided"},
            "item": summary, "next_id": result["next_id"]}, status_code=409, headers=HEADERS)
    log.info("review item %d: %s by %s (console)", number, body.verdict, user.name)
    return JSONResponse({"item": summary, "next_id": result["next_id"]}, headers=HEADERS)


# -- demonstrations -----------------------------------------------------------------------------


def demonstration(item: ReviewItem, audit: AuditLog | None) -> dict[str, Any]:
    """A corrected answer as a chat demonstration: the prompt's messages + the reviewer's answer."""
    messages: list[dict[str, Any]] = []
    tools = None
    if audit is not None and audit.prompt_json:
        messages = list(audit.prompt_json.get("messages") or [])
        tools = audit.prompt_json.get("tools")
    elif audit is not None and audit.prompt:
        messages = [{"role": "user", "content": audit.prompt}]
    out: dict[str, Any] = {"messages": [*messages, {"role": "assistant", "content": item.corrected_output}]}
    if tools:
        out["tools"] = tools
    out["metadata"] = {"review_item": item.id, "request_id": item.request_id, "task_type": item.task_type,
                       "tier": item.tier, "reviewer": item.reviewer, "notes": item.notes,
                       "rejected_answer": audit.output if audit is not None else None,
                       "decided_at": item.updated_at.isoformat()}
    return out


def _demonstrations(session: Session, limit: int = 10_000) -> list[str]:
    stmt = (select(ReviewItem, AuditLog).join(AuditLog, AuditLog.id == ReviewItem.audit_id, isouter=True)
            .where(ReviewItem.state == "corrected").order_by(ReviewItem.id).limit(limit))
    return [json.dumps(demonstration(item, audit)) + "\n" for item, audit in session.execute(stmt)]


def _jsonl(lines: list[str], filename: str) -> Response:
    def chunks() -> Iterator[str]:
        yield from lines

    return StreamingResponse(chunks(), media_type="application/x-ndjson",
                             headers={**HEADERS, "content-disposition": f'attachment; filename="{filename}"'})


@router.get("/ui/demonstrations.jsonl")
async def demonstrations_page(request: Request) -> Response:
    await require_user(request)
    return _jsonl(await db(request, _demonstrations), "demonstrations.jsonl")


@router.get("/v1/review/demonstrations")
async def demonstrations_api(request: Request) -> Response:
    """Corrected answers as JSON lines (reviewer or admin key): the fine-tuning and learner export."""
    require_reviewer((await gateway(request).admit(request)).caller)
    return _jsonl(await db(request, _demonstrations), "demonstrations.jsonl")
