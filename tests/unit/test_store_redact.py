"""Content policy and secret redaction (store.redact): what reaches the audit log."""

from __future__ import annotations

import math

import pytest

from core.records import AuditRecord, sha256_hex
from store.redact import prepare_row, redact

SECRETS = {
    "openai": "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    "anthropic": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv-WxYz0123456789",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "github": "ghp_1234567890abcdefghijABCDEFGHIJ123456",
    "gateway": "gwk_Zx8Qw2Er4Ty6Ui8Op0As2Df4Gh6Jk8Lz",
    "groq": "gsk_ab12CD34ef56GH78ij90KL12mn34OP56",
    "google": "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "slack": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_known_key_shapes_are_redacted(kind: str) -> None:
    secret = SECRETS[kind]
    text = f"please use {secret} for the call"
    out = redact(text)
    assert secret not in out
    assert out.startswith("please use [REDACTED:")
    assert out.endswith(" for the call")


def test_bearer_tokens_keep_the_scheme() -> None:
    out = redact("curl -H 'Authorization: Bearer abc.DEF-123_xyz~9/+=' https://x")
    assert "abc.DEF" not in out
    assert "Bearer [REDACTED:bearer]" in out


@pytest.mark.parametrize(
    "text, secret",
    [
        ("api_key=hunter2hunter2", "hunter2hunter2"),
        ("password: correct-horse", "correct-horse"),
        ('{"password": "s3cr3t!", "user": "bob"}', "s3cr3t!"),
        ("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("client_secret = 'abcd1234efgh'", "abcd1234efgh"),
        ("DATABASE_URL=postgresql://app:pa55word@db:5432/prod", "pa55word"),
    ],
)
def test_key_value_secrets_are_redacted(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert "[REDACTED" in out


def test_json_keeps_its_other_fields() -> None:
    out = redact('{"password": "s3cr3t!", "user": "bob"}')
    assert '"user": "bob"' in out


def test_pem_private_key_block_is_redacted_whole() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc\n-----END RSA PRIVATE KEY-----"
    out = redact(f"key:\n{pem}\nthanks")
    assert "MIIE" not in out and "END RSA" not in out
    assert out == "key:\n[REDACTED:private_key]\nthanks"


def test_truncated_pem_block_is_redacted_to_the_end() -> None:
    out = redact("here -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA")
    assert out == "here [REDACTED:private_key]"


def test_generic_high_entropy_token_is_redacted() -> None:
    token = "Zq8Lw3Xv9Tb2Nm5Kp7Rj4Hs6Gd1Fc0Ya8Ue3Wi"
    assert redact(f"token {token} end") == "token [REDACTED:token] end"


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it",  # git SHA: hex, not a secret
        "id 123e4567-e89b-12d3-a456-426614174000",
        "def test_store_audit_sink_replays_the_spool_after_an_outage(): pass",
        "see /usr/lib/python3.11/site-packages/sqlalchemy/orm/session.py line 2",
        "max_tokens: 512, temperature: 0.2",
        "class createHttp2ServerConnectionFactoryV2Impl(AbstractSingletonProxyFactoryBean2):",
        "The quick brown fox jumps over the lazy dog. " * 20,
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def _record(**kw: object) -> AuditRecord:
    base: dict[str, object] = dict(
        request_id="r1", prompt=f"my key is {SECRETS['openai']}", output="answer", status="approved"
    )
    base.update(kw)
    return AuditRecord(**base)  # type: ignore[arg-type]


def test_review_only_policy_stores_content_only_for_pending_review() -> None:
    approved = prepare_row(_record(status="approved"), "review_only")
    assert approved["prompt"] is None and approved["output"] is None
    pending = prepare_row(_record(status="pending_review"), "review_only")
    assert pending["prompt"] == "my key is [REDACTED:api_key]"
    assert pending["output"] == "answer"


def test_hashes_are_always_stored_and_taken_from_the_raw_text() -> None:
    record = _record()
    for policy in ("none", "review_only", "all"):
        row = prepare_row(record, policy)  # type: ignore[arg-type]
        assert row["prompt_hash"] == sha256_hex(record.prompt)
        assert row["output_hash"] == sha256_hex("answer")


def test_policy_none_and_all() -> None:
    assert prepare_row(_record(status="pending_review"), "none")["prompt"] is None
    row = prepare_row(_record(status="approved"), "all")
    assert row["prompt"] == "my key is [REDACTED:api_key]"


def test_values_postgres_would_reject_are_cleaned() -> None:
    row = prepare_row(
        _record(
            status="pending_review",
            output="nul\x00byte \ud800",
            validator_scores={"json": math.nan, "len": 7.0},
            steps=[{"tier": "fast\x00", "score": math.inf}],
            confidence=math.nan,
        ),
        "all",
    )
    assert row["output"] == "nulbyte ?"
    assert row["validator_scores"] == {"json": None, "len": 7.0}
    assert row["steps"] == [{"tier": "fast", "score": None}]
    assert row["confidence"] is None
