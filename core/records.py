"""`AuditRecord`: what the pipeline hands to the audit sink, one per call.

A plain slotted dataclass (built once per request on the hot path) mirroring the `audit_log`
columns. The sink turns it into a row off the hot path: `to_row()` gives the column values,
`prepare_row()` (store.redact) applies the content policy, and `row_to_json` / `row_from_json`
round-trip a row through the spool's JSON lines.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

# `unscored`: answered, but nothing judged the answer (embeddings; a stream that ended before it
# could be scored). No evidence is not approval, so such a call is never counted `approved`.
Status = Literal["approved", "warning", "pending_review", "unscored", "error"]
STATUSES: tuple[str, ...] = ("approved", "warning", "pending_review", "unscored", "error")


class AttemptRow(TypedDict, total=False):
    """One upstream call the router made for this request (retries and fallbacks included)."""

    tier: str
    provider: str
    deployment: str
    outcome: str  # ok | error class name | "timeout" | "rate_limited" ...
    latency_ms: float
    retry_after: float | None


class CascadeStep(TypedDict, total=False):
    """One tier the cascade tried: its answer's validator score, cost and latency."""

    tier: str
    model: str | None
    score: float | None
    cost: float
    latency_ms: float
    error: str  # the error class, when the tier failed instead of answering
    checks_ms: dict[str, float]  # time spent in checks that ran off the event loop (code execution)


def utcnow() -> datetime:
    return datetime.now(UTC)


def sha256_hex(text: str | None) -> str:
    return hashlib.sha256((text or "").encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class AuditRecord:
    """One call as the audit log stores it. Field names are the `audit_log` column names.

    `prompt` / `output` are the raw texts; the sink hashes them (when `prompt_hash` /
    `output_hash` are empty), then keeps or drops them by the content policy and redacts secrets
    before anything is written (database or spool).
    """

    request_id: str
    created_at: datetime = field(default_factory=utcnow)
    caller: str = ""
    route: str = ""
    task_type: str | None = None
    requested_model: str | None = None
    tier: str | None = None
    served_model: str | None = None
    provider: str | None = None
    deployment: str | None = None
    attempts: list[AttemptRow] = field(default_factory=list)
    escalations: int = 0
    steps: list[CascadeStep] = field(default_factory=list)
    validator_scores: dict[str, float] = field(default_factory=dict)
    confidence: float | None = None
    status: Status = "approved"
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    error_class: str | None = None
    session_id: str | None = None
    prompt_hash: str = ""
    output_hash: str = ""
    prompt: str | None = None
    output: str | None = None
    offline: bool = False
    spot_check: bool = False
    learned_version: int | None = None  # the learned-state version that decided this call
    route_reason: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    prompt_json: dict[str, Any] | None = None  # {messages, tools?}: content, like `prompt`

    @property
    def needs_review(self) -> bool:
        return self.status == "pending_review" or self.spot_check

    def to_row(self) -> dict[str, Any]:
        """The `audit_log` column values (no `id`), hashes filled in; content not yet filtered.

        Values are coerced to the column types (a pipeline handing an int where a str belongs
        must not make the database reject a whole batch); what cannot be coerced raises here.
        """
        if not isinstance(self.created_at, datetime):
            raise TypeError(f"created_at must be a datetime, not {type(self.created_at).__name__}")
        if not self.request_id:
            raise ValueError("request_id is required")
        return {
            "request_id": str(self.request_id),
            "created_at": self.created_at,
            "caller": str(self.caller or ""),
            "route": str(self.route or ""),
            "task_type": _opt_str(self.task_type),
            "requested_model": _opt_str(self.requested_model),
            "tier": _opt_str(self.tier),
            "served_model": _opt_str(self.served_model),
            "provider": _opt_str(self.provider),
            "deployment": _opt_str(self.deployment),
            "attempts": [dict(a) for a in self.attempts],
            "escalations": int(self.escalations),
            "steps": [dict(s) for s in self.steps],
            "validator_scores": dict(self.validator_scores),
            "confidence": _opt_float(self.confidence),
            "status": str(self.status),
            "latency_ms": float(self.latency_ms),
            "ttft_ms": _opt_float(self.ttft_ms),
            "tokens_in": int(self.tokens_in),
            "tokens_out": int(self.tokens_out),
            "cost": float(self.cost),
            "error_class": _opt_str(self.error_class),
            "session_id": _opt_str(self.session_id),
            "prompt_hash": str(self.prompt_hash or sha256_hex(_opt_str(self.prompt))),
            "output_hash": str(self.output_hash or sha256_hex(_opt_str(self.output))),
            "prompt": _opt_str(self.prompt),
            "output": _opt_str(self.output),
            "offline": bool(self.offline),
            "spot_check": bool(self.spot_check),
            "learned_version": None if self.learned_version is None else int(self.learned_version),
            "route_reason": _opt_str(self.route_reason),
            "checks": [dict(c) for c in self.checks],
            "prompt_json": dict(self.prompt_json) if self.prompt_json is not None else None,
        }


def _opt_str(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def row_to_json(row: dict[str, Any]) -> dict[str, Any]:
    """A row as JSON-safe values (the spool's line format): `created_at` as ISO-8601 UTC."""
    out = dict(row)
    created = out.get("created_at")
    if isinstance(created, datetime):
        out["created_at"] = created.isoformat()
    return out


def row_from_json(data: dict[str, Any]) -> dict[str, Any]:
    """Inverse of `row_to_json`."""
    row = dict(data)
    row.setdefault("spot_check", False)  # spooled before the column existed
    for name in ("route_reason", "checks", "prompt_json"):  # spooled before migration 0003
        row.setdefault(name, None)
    created = row.get("created_at")
    if isinstance(created, str):
        parsed = datetime.fromisoformat(created)
        row["created_at"] = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return row
