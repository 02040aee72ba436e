"""The human review queue (reviewer and admin keys) and the audit log (admin keys) over HTTP,
plus the offline upload.

    GET  /v1/review              review items (filters: state, task_type, tier, caller), oldest first
    GET  /v1/review/{id}         one item, with its audit row (prompt/output, when stored)
    POST /v1/review/{id}         a verdict: {verdict: approve|reject|correct, corrected_output?, score?, notes?}
    GET  /v1/audit               audit rows (filters: caller, task_type, tier, status, since, until, offline),
                                 newest first
    GET  /v1/audit/{id}          one audit row
    POST /v1/audit/offline       (any caller key) calls the client SDK answered offline:
                                 {"records": [...]} -> {"accepted": n}

Lists page with `limit` (default 50, at most 500) and `cursor` (the `next_cursor` of the previous
page; null on the last page). Every database call runs in a worker thread; when the database is
unreachable the answer is 503 (`database_unavailable`) and nothing is changed: a verdict is only
ever recorded by a successful conditional UPDATE, never assumed.

`review_queue_summary(app.state)` is what `/health` shows about the database and the queue; it is
cached for a few seconds and bounded in time, so `/health` stays cheap when the database is slow.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import State
from starlette.responses import Response

from core.errors import Conflict, DatabaseUnavailable, InvalidRequest, NotFound
from core.records import STATUSES, AuditRecord
from proxy.auth import Caller, require_admin, require_model_caller, require_reviewer
from proxy.http import read_json
from proxy.schemas import validate
from proxy.services import Gateway
from store import queries as q
from store.db import session_factory
from store.models import AuditLog, ReviewItem

log = logging.getLogger("gateway.review")
router = APIRouter()

T = TypeVar("T")
_JSON = "application/json"
DEFAULT_LIMIT = 50
MAX_RECORDS = 500  # per offline upload
DB_TIMEOUT_S = 10.0  # a hung database must not hold a request (or /health) for long
SUMMARY_TTL_S = 5.0
SUMMARY_TIMEOUT_S = 2.0
MAX_ID = 2**63 - 1  # BIGINT: a larger cursor or id would be a database error, not "no such item"


# -- database access ----------------------------------------------------------------------------


def _sessions(request: Request) -> sessionmaker[Session]:
    """The session factory for this app's engine, built once (per lifespan) and kept on app.state."""
    gw: Gateway = request.app.state.gateway
    cached = getattr(request.app.state, "review_sessions", None)
    if cached is None or cached[0] is not gw.engine:
        cached = (gw.engine, session_factory(gw.engine))
        request.app.state.review_sessions = cached
    factory: sessionmaker[Session] = cached[1]
    return factory


async def _db(request: Request, work: Callable[[Session], T]) -> T:
    """Run `work(session)` in a worker thread; database outages become 503, store errors 4xx."""
    sessions = _sessions(request)

    def run() -> T:
        with sessions() as session:
            return work(session)

    try:
        return await asyncio.wait_for(asyncio.to_thread(run), DB_TIMEOUT_S)
    except (sa_exc.DBAPIError, sa_exc.TimeoutError, TimeoutError) as exc:
        reason = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        log.warning("review/audit database call failed on %s: %s", request.url.path, reason)
        raise DatabaseUnavailable(
            f"the audit database is unavailable ({reason}); try again later (retrying a verdict is safe: "
            "it is recorded at most once)",
            headers={"retry-after": "5"},
        ) from None
    except q.NotFound as exc:
        raise NotFound(str(exc)) from None
    except (q.NotPending, q.Conflict) as exc:
        raise Conflict(str(exc)) from None
    except q.InvalidInput as exc:
        raise InvalidRequest(str(exc)) from None


async def _admin(request: Request) -> Caller:
    gw: Gateway = request.app.state.gateway
    caller = (await gw.admit(request)).caller
    require_admin(caller)
    return caller


async def _reviewer(request: Request) -> Caller:
    gw: Gateway = request.app.state.gateway
    caller = (await gw.admit(request)).caller
    require_reviewer(caller)
    return caller


# -- query parameters ---------------------------------------------------------------------------


def _params(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    params = dict(request.query_params)
    for name in params:
        if name not in allowed:
            raise InvalidRequest(f"unknown query parameter '{name}'; this route takes {', '.join(allowed)}",
                                 param=name)
    return {name: value for name, value in params.items() if value != ""}


def _int(params: dict[str, str], name: str, *, default: int | None = None, low: int = 0,
         high: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be an integer, not {raw!r}", param=name) from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidRequest(f"'{name}' must be {bounds}", param=name)
    return value


def _paging(params: dict[str, str]) -> tuple[int | None, int]:
    cursor = _int(params, "cursor", high=MAX_ID)
    limit = _int(params, "limit", default=DEFAULT_LIMIT, low=1, high=q.MAX_PAGE)
    assert limit is not None
    return cursor, limit


def _time(params: dict[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace(" ", "+"))  # an unescaped '+' arrives as a space
    except ValueError:
        raise InvalidRequest(f"'{name}' must be an ISO 8601 timestamp, e.g. 2025-01-31T12:00:00Z",
                             param=name) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _bool(params: dict[str, str], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None:
        return None
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidRequest(f"'{name}' must be true or false", param=name)


def _choice(params: dict[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    value = params.get(name)
    if value is not None and value not in choices:
        raise InvalidRequest(f"'{name}' must be one of {', '.join(choices)}", param=name)
    return value


def _item_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_ID:
        raise NotFound(f"no item with id {raw!r}")
    return int(raw)


# -- serialisation ------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def _columns(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        out[column.key] = _iso(value) if isinstance(value, datetime) else value
    return out


def audit_json(row: AuditLog) -> dict[str, Any]:
    return {"object": "audit_record", **_columns(row)}


def review_json(item: ReviewItem, audit: AuditLog | None = None) -> dict[str, Any]:
    out = {"object": "review_item", **_columns(item)}
    if audit is not None:
        out["audit"] = audit_json(audit)
    return out


def _answer(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), media_type=_JSON, status_code=status)


def _page(page: q.Page[Any], render: Callable[[Any], dict[str, Any]]) -> Response:
    return _answer({"object": "list", "data": [render(row) for row in page.items], "next_cursor": page.next_cursor})


# -- review queue -------------------------------------------------------------------------------


@router.get("/v1/review")
async def list_review(request: Request) -> Response:
    await _reviewer(request)
    params = _params(request, ("state", "task_type", "tier", "caller", "limit", "cursor"))
    cursor, limit = _paging(params)
    state = _choice(params, "state", q.REVIEW_STATES)
    page = await _db(request, lambda s: q.list_review_items(
        s, state=state, task_type=params.get("task_type"), tier=params.get("tier"), caller=params.get("caller"),
        cursor=cursor, limit=limit))
    return _page(page, review_json)


def _item_with_audit(session: Session, item_id: int) -> tuple[ReviewItem, AuditLog | None]:
    item = q.get_review_item(session, item_id)
    if item is None:
        raise q.NotFound(f"review item {item_id} not found")
    return item, q.get_audit(session, item.audit_id)


@router.get("/v1/review/{item_id}")
async def get_review(request: Request, item_id: str) -> Response:
    await _reviewer(request)
    number = _item_id(item_id)
    item, audit = await _db(request, lambda s: _item_with_audit(s, number))
    return _answer(review_json(item, audit))


Text = Annotated[str, StringConstraints(max_length=200_000)]


class VerdictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: Literal["approve", "reject", "correct"]
    corrected_output: Text | None = None
    score: float | None = Field(default=None, ge=0, le=10)
    notes: Annotated[str, StringConstraints(max_length=20_000)] | None = None


@router.post("/v1/review/{item_id}", openapi_extra={"requestBody": {
    "required": True, "content": {_JSON: {"schema": VerdictBody.model_json_schema()}}}})
async def review_verdict(request: Request, item_id: str) -> Response:
    caller = await _reviewer(request)
    gw: Gateway = request.app.state.gateway
    number = _item_id(item_id)
    body: VerdictBody = validate(VerdictBody, await read_json(request, gw.settings.limits.max_body_bytes))
    if body.verdict == "correct" and not body.corrected_output:
        raise InvalidRequest("a 'correct' verdict needs corrected_output", param="corrected_output")
    if body.verdict != "correct" and body.corrected_output is not None:
        raise InvalidRequest("corrected_output is only for a 'correct' verdict", param="corrected_output")

    def apply(session: Session) -> tuple[ReviewItem, AuditLog | None]:
        item = q.apply_verdict(session, number, body.verdict, reviewer=caller.name,
                               corrected_output=body.corrected_output, score=body.score, notes=body.notes)
        return item, q.get_audit(session, item.audit_id)

    item, audit = await _db(request, apply)
    log.info("review item %d: %s by %s", number, body.verdict, caller.name)
    return _answer(review_json(item, audit))


# -- audit log ----------------------------------------------------------------------------------


@router.get("/v1/audit")
async def list_audit(request: Request) -> Response:
    await _admin(request)
    params = _params(request, ("caller", "task_type", "tier", "status", "since", "until", "offline",
                               "limit", "cursor"))
    cursor, limit = _paging(params)
    status = _choice(params, "status", STATUSES)
    since, until, offline = _time(params, "since"), _time(params, "until"), _bool(params, "offline")
    page = await _db(request, lambda s: q.list_audit(
        s, caller=params.get("caller"), task_type=params.get("task_type"), tier=params.get("tier"), status=status,
        since=since, until=until, offline=offline, cursor=cursor, limit=limit))
    return _page(page, audit_json)


@router.get("/v1/audit/{audit_id}")
async def get_audit(request: Request, audit_id: str) -> Response:
    await _admin(request)
    number = _item_id(audit_id)

    def read(session: Session) -> AuditLog:
        row = q.get_audit(session, number)
        if row is None:
            raise q.NotFound(f"audit record {number} not found")
        return row

    return _answer(audit_json(await _db(request, read)))


RequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:\-]{1,128}$")]


class OfflineRecord(BaseModel):
    """One call the client SDK answered offline (from its local model)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    request_id: RequestId
    created_at: datetime
    task_type: str | None = None
    model: str | None = None
    prompt: str | None = None
    output: str | None = None
    latency_ms: float = Field(default=0.0, ge=0)
    tokens_in: int = Field(default=0, ge=0)
    tokens_out: int = Field(default=0, ge=0)
    # Answered by a local model while the gateway was away: never scored or gated here, so never
    # `approved` by default (learning ignores offline rows either way; see docs/adr/0011).
    status: Literal["approved", "warning", "pending_review", "error"] = "warning"
    confidence: float | None = Field(default=None, ge=0, le=10)
    caller_label: str | None = Field(default=None, max_length=200)


class OfflineUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[OfflineRecord] = Field(max_length=MAX_RECORDS)


@router.post("/v1/audit/offline")
async def upload_offline(request: Request) -> Response:
    """Any caller may upload its own offline calls; they are recorded under the caller's name."""
    gw: Gateway = request.app.state.gateway
    caller = (await gw.admit(request)).caller
    require_model_caller(caller)
    upload: OfflineUpload = validate(OfflineUpload, await read_json(request, gw.settings.limits.max_body_bytes))
    if gw.sink is None:  # audit disabled in the config: nothing is recorded, say so
        return _answer({"accepted": 0, "audit": "disabled"})
    for record in upload.records:
        created = record.created_at if record.created_at.tzinfo else record.created_at.replace(tzinfo=UTC)
        gw.sink.submit(AuditRecord(
            request_id=record.request_id, created_at=created, route="offline",
            caller=f"{caller.name}:{record.caller_label}" if record.caller_label else caller.name,
            task_type=record.task_type, requested_model=record.model, served_model=record.model,
            confidence=record.confidence, status=record.status, latency_ms=record.latency_ms,
            tokens_in=record.tokens_in, tokens_out=record.tokens_out, prompt=record.prompt, output=record.output,
            offline=True,
        ))
    return _answer({"accepted": len(upload.records)})


# -- /health ------------------------------------------------------------------------------------


@dataclass
class _Summary:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    at: float = float("-inf")
    value: dict[str, Any] = field(default_factory=dict)


async def review_queue_summary(state: State) -> dict[str, Any]:
    """`{"database": {...}, "queue": {...}}` for `/health`, from `app.state` (cached SUMMARY_TTL_S).

    database: `{"state": "ok"|"down", "backend", "audit_spool_depth"}`; queue: `{"pending_review",
    "oldest_age_s"}` (both null while the database is down). Never raises; at most
    SUMMARY_TIMEOUT_S of waiting, once per TTL.
    """
    gw: Gateway = state.gateway
    summary: _Summary | None = getattr(state, "review_summary", None)
    if summary is None:
        summary = _Summary()
        state.review_summary = summary
    if time.monotonic() - summary.at < SUMMARY_TTL_S:
        return summary.value
    async with summary.lock:
        if time.monotonic() - summary.at < SUMMARY_TTL_S:  # another caller refreshed it meanwhile
            return summary.value
        database: dict[str, Any] = {"state": "ok", "backend": gw.engine.dialect.name}
        queue: dict[str, Any] = {"pending_review": None, "oldest_age_s": None}
        sessions = session_factory(gw.engine)

        def stats() -> tuple[int, float]:
            with sessions() as session:
                return q.pending_review_stats(session)

        try:
            count, age = await asyncio.wait_for(asyncio.to_thread(stats), SUMMARY_TIMEOUT_S)
            queue = {"pending_review": count, "oldest_age_s": round(age, 1)}
        except Exception as exc:  # down, hung, or not migrated yet: /health reports it, never fails
            database["state"] = "down"
            database["error"] = type(exc).__name__
        if gw.sink is not None:
            database["audit_spool_depth"] = gw.sink.spool_depth
        summary.value = {"database": database, "queue": queue}
        summary.at = time.monotonic()
        return summary.value
