"""The audit explorer (admins).

    GET /ui/audit                 search: request_id, caller, task_type, status, tier, since, until
                                  (ISO 8601 or the browser's datetime-local), keyset pages (cursor)
    GET /ui/audit/{id}            one call's full record (and its review item, if any)
    GET /ui/audit/export.jsonl    the filtered set as JSON lines (at most 100,000 rows, streamed in pages)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response, StreamingResponse

from core.records import STATUSES
from proxy.routes.review import audit_json, review_json
from store import queries as q
from store.models import AuditLog, ReviewItem

from .web import HEADERS, PageError, db, render, require_user

router = APIRouter(include_in_schema=False)
FIELDS = ("request_id", "caller", "task_type", "status", "tier", "since", "until")
EXPORT_MAX = 100_000


def _time(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise PageError(400, "Bad search", f"{name} must be a date and time, e.g. 2026-12-01T09:00",
                        code="invalid_request") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _search(request: Request) -> dict[str, str]:
    params = {k: v.strip() for k in FIELDS if (v := request.query_params.get(k, "")).strip()}
    if params.get("status") and params["status"] not in STATUSES:
        raise PageError(400, "Bad search", f"status must be one of {', '.join(STATUSES)}", code="invalid_request")
    return params


def _page(session: Session, params: dict[str, str], cursor: int | None, limit: int) -> q.Page[AuditLog]:
    if params.get("request_id"):
        row = q.get_audit_by_request_id(session, params["request_id"])
        return q.Page(items=[row] if row is not None else [], next_cursor=None)
    return q.list_audit(session, caller=params.get("caller"), task_type=params.get("task_type"),
                        tier=params.get("tier"), status=params.get("status"),
                        since=_time(params.get("since"), "since"), until=_time(params.get("until"), "until"),
                        cursor=cursor, limit=limit)


def _cursor(request: Request) -> int | None:
    raw = request.query_params.get("cursor", "")
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


@router.get("/ui/audit")
async def audit_search(request: Request) -> Response:
    await require_user(request, admin=True)
    params = _search(request)
    for name in ("since", "until"):
        _time(params.get(name), name)
    page = await db(request, lambda s: _page(s, params, _cursor(request), 50))
    return render(request, "audit.html", rows=page.items, params=params, query=urlencode(params),
                  next_cursor=page.next_cursor, statuses=STATUSES)


@router.get("/ui/audit/export.jsonl")
async def audit_export(request: Request) -> Response:
    await require_user(request, admin=True)
    params = _search(request)
    for name in ("since", "until"):
        _time(params.get(name), name)

    async def lines() -> AsyncIterator[str]:
        cursor, sent = None, 0
        while sent < EXPORT_MAX:
            page = await db(request, lambda s, c=cursor: _page(s, params, c, q.MAX_PAGE))  # type: ignore[misc]
            for row in page.items:
                yield json.dumps(audit_json(row)) + "\n"
            sent += len(page.items)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers={**HEADERS, "content-disposition": 'attachment; filename="audit.jsonl"'})


def _record(session: Session, audit_id: int) -> tuple[AuditLog, ReviewItem | None]:
    row = q.get_audit(session, audit_id)
    if row is None:
        raise q.NotFound(f"audit record {audit_id} not found")
    item = session.scalars(select(ReviewItem).where(ReviewItem.audit_id == audit_id)).first()
    return row, item


@router.get("/ui/audit/{audit_id}")
async def audit_record(request: Request, audit_id: str) -> Response:
    await require_user(request, admin=True)
    if not audit_id.isdigit() or len(audit_id) > 18:
        raise PageError(404, "Not found", f"no audit record {audit_id!r}", code="not_found")
    row, item = await db(request, lambda s: _record(s, int(audit_id)))
    record: dict[str, Any] = audit_json(row)
    review = review_json(item) if item is not None else None
    return render(request, "audit_record.html", row=row, record=json.dumps(record, indent=2),
                  review=json.dumps(review, indent=2) if review else None, item=item)
