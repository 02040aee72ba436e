"""Content policy and secret redaction: what of a prompt/answer may be stored, and scrubbed how.

`store_content` (the `ContentPolicy`):

- `none`: prompt and output are never stored; only their sha256 hashes.
- `review_only` (default): stored only on `pending_review` rows, so a reviewer can judge them.
- `all`: stored on every row.

Hashes are always stored, computed from the raw text (so equal prompts match across rows).
Whatever text is stored is first passed through `redact()`, which replaces secrets with
`[REDACTED:<kind>]`: OpenAI/Anthropic style `sk-...` keys, `Bearer ...` tokens, AWS access key
ids, GitHub/Slack/Google/Groq/Hugging Face/NVIDIA/Stripe tokens, JWTs, this gateway's own `gwk_`
keys, `api_key=...` / `password=...` style assignments (also in JSON and YAML), passwords in URLs,
PEM private key blocks, and generic long high-entropy tokens: at least 32 characters of the
base64/base64url alphabet, mixing upper and lower case, with at least one digit in 16 (min. 3)
and Shannon entropy >= 4 bits/char, so code identifiers survive. Pure hex strings (git SHAs,
hashes, UUIDs) are deliberately not treated as secrets unless they sit in a `key=value` pair.

All patterns are compiled once at import, and each runs only when a cheap substring test says it
can match. `prepare_row()` is what the sink runs per record (off the event loop): column values,
content policy, redaction, and clean-up of values PostgreSQL would reject (NUL characters, lone
surrogates, NaN/Infinity inside JSON).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Literal

from core.records import AuditRecord

ContentPolicy = Literal["none", "review_only", "all"]
CONTENT_POLICIES: tuple[str, ...] = ("none", "review_only", "all")

_KEY_NAMES = (
    r"api[_-]?key|apikey|x-api-key|access[_-]?key(?:[_-]?id)?|secret[_-]?access[_-]?key|"
    r"access[_-]?token|auth[_-]?token|refresh[_-]?token|id[_-]?token|bearer[_-]?token|"
    r"client[_-]?secret|secret(?:[_-]?key)?|private[_-]?key|password|passwd|passphrase|pwd|token"
)

# (kind, literals, pattern, group to replace or 0 for the whole match). A pattern only runs when
# one of its literals occurs in the text (lower-cased for the case-insensitive ones): `in` is far
# cheaper than a regex scan. Order matters: specific shapes first, so that the generic passes
# never see them.
_PATTERNS: list[tuple[str, tuple[str, ...], re.Pattern[str], int]] = [
    (
        "private_key",
        ("PRIVATE KEY",),
        re.compile(
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:[\s\S]*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|[\s\S]*\Z)"
        ),
        0,
    ),
    ("jwt", ("eyJ",), re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), 0),
    ("bearer", ("bearer",), re.compile(r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{8,}=*)"), 1),
    ("basic_auth", ("basic",), re.compile(r"(?i)\bbasic\s+([A-Za-z0-9+/]{12,}={0,2})"), 1),
    ("api_key", ("sk-",), re.compile(r"\bsk-[A-Za-z0-9][A-Za-z0-9_\-]{15,}"), 0),
    ("api_key", ("_live_", "_test_"), re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"), 0),
    ("gateway_key", ("gwk_",), re.compile(r"\bgwk_[A-Za-z0-9_\-]{16,}"), 0),
    (
        "aws_key",
        ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "A3T"),
        re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),
        0,
    ),
    (
        "github_token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
        0,
    ),
    ("slack_token", ("xox",), re.compile(r"\bxox[abprse]-[A-Za-z0-9-]{10,}"), 0),
    ("google_key", ("AIza",), re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), 0),
    ("api_key", ("gsk_", "hf_", "csk_"), re.compile(r"\b(?:gsk|hf|csk)_[A-Za-z0-9]{20,}"), 0),
    ("api_key", ("nvapi-",), re.compile(r"\bnvapi-[A-Za-z0-9_\-]{20,}"), 0),
    ("url_password", ("://",), re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:([^\s@/]+)@"), 1),
    (
        "secret",
        ("key", "token", "secret", "pass", "pwd"),
        # key = value, key: value, "key": "value", key="value" (value up to quote/space/separator).
        re.compile(
            rf"(?i)(?<![A-Za-z0-9])(?:{_KEY_NAMES})(?![A-Za-z0-9])[\"']?\s*[:=]\s*[\"']?"
            r"(?!\[REDACTED)([^\s\"'&,;<>\[\]{}()]{4,})"
        ),
        1,
    ),
]
_CASE_INSENSITIVE = {"bearer", "basic_auth", "url_password", "secret"}

_TOKEN_CANDIDATE = re.compile(r"(?<![A-Za-z0-9_\-+/=])[A-Za-z0-9_\-+/]{32,}={0,2}(?![A-Za-z0-9_\-+/=])")
_HAS_LOWER = re.compile(r"[a-z]")
_HAS_UPPER = re.compile(r"[A-Z]")
_DIGITS = re.compile(r"[0-9]")


def _entropy(text: str) -> float:
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _looks_random(token: str) -> bool:
    body = token.rstrip("=")
    if not (_HAS_LOWER.search(body) and _HAS_UPPER.search(body)):
        return False
    # Random base62 has ~16% digits; identifiers (`createHttp2ServerV2Impl`) have one or two.
    if len(_DIGITS.findall(body)) < max(3, len(body) // 16):
        return False
    # A path or dotted identifier split into short words is not a token.
    if max(len(part) for part in re.split(r"[/_\-+]", body)) < 16:
        return False
    return _entropy(body) >= 4.0


def _replacer(kind: str, group: int) -> Callable[[re.Match[str]], str]:
    label = f"[REDACTED:{kind}]"

    def replace(match: re.Match[str]) -> str:
        if group == 0:
            return label
        start, end = match.span(group)
        whole_start = match.start()
        text = match.group(0)
        return text[: start - whole_start] + label + text[end - whole_start :]

    return replace


_REPLACERS = [
    (literals, kind in _CASE_INSENSITIVE, pattern, _replacer(kind, group))
    for kind, literals, pattern, group in _PATTERNS
]


def _redact_token(match: re.Match[str]) -> str:
    token = match.group(0)
    return "[REDACTED:token]" if _looks_random(token) else token


def redact(text: str) -> str:
    """`text` with secrets and key-like strings replaced by `[REDACTED:<kind>]`."""
    if not text:
        return text
    lowered = text.lower()
    for literals, ignore_case, pattern, replace in _REPLACERS:
        haystack = lowered if ignore_case else text
        if any(literal in haystack for literal in literals):
            text, count = pattern.subn(replace, text)
            if count:
                lowered = text.lower()
    return _TOKEN_CANDIDATE.sub(_redact_token, text)


def redact_json(value: Any) -> Any:
    """`value` (JSON: dicts, lists, scalars) with `redact()` applied to every string in it."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(v) for v in value]
    return value


def _clean_text(value: str) -> str:
    """`value` without NUL characters and lone surrogates (PostgreSQL rejects both)."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _clean_json(value: Any) -> Any:
    """JSON-safe copy: NaN/Infinity -> None, NUL characters stripped, unknown types -> str."""
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_clean_text(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    return str(value)


_JSON_COLUMNS = ("attempts", "steps", "validator_scores", "checks", "prompt_json")
_FLOAT_COLUMNS = ("confidence", "latency_ms", "ttft_ms", "cost")


def keeps_content(policy: ContentPolicy, status: str, spot_check: bool = False) -> bool:
    """`review_only` keeps what a reviewer must read: pending_review and spot-checked answers."""
    return policy == "all" or (policy == "review_only" and (status == "pending_review" or spot_check))


def prepare_row(record: AuditRecord, policy: ContentPolicy = "review_only") -> dict[str, Any]:
    """The row the sink writes for `record`: policy applied, secrets redacted, values cleaned."""
    row = record.to_row()
    if keeps_content(policy, record.status, record.spot_check):
        for name in ("prompt", "output"):
            if row[name] is not None:
                row[name] = redact(row[name])
        if row["prompt_json"] is not None:
            row["prompt_json"] = redact_json(row["prompt_json"])
    else:
        row["prompt"] = row["output"] = row["prompt_json"] = None
    for name, value in row.items():
        if isinstance(value, str):
            row[name] = _clean_text(value)
    for name in _JSON_COLUMNS:
        row[name] = _clean_json(row[name])
    for name in _FLOAT_COLUMNS:
        value = row[name]
        if value is not None and not math.isfinite(value):
            row[name] = None if name in ("confidence", "ttft_ms") else 0.0
    return row
