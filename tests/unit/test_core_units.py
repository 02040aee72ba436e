"""Auth, limits, model names and the allowlist, in-process."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import AuthenticationFailed, ForbiddenParameter, ModelNotFound, RateLimited
from proxy.auth import Authenticator, key_digest, presented_key
from proxy.catalog import Catalog
from proxy.limits import Limiter
from proxy.settings import Settings
from proxy.upstream import _ALWAYS_FORBIDDEN, check_forbidden


def settings(**gateway) -> Settings:
    model_list = [
        {"model_name": t, "litellm_params": {"model": f"openai/{t}-m"}}
        for t in ("fast", "medium", "large", "external", "embeddings")
    ]
    return Settings(model_list=model_list, **gateway)


def test_key_is_read_from_bearer_or_x_api_key():
    assert presented_key("Bearer abc", None) == "abc"
    assert presented_key("bearer  abc ", None) == "abc"
    assert presented_key(None, "xyz") == "xyz"
    assert presented_key("Basic abc", None) is None


def test_authenticator_matches_hashed_keys(monkeypatch):
    monkeypatch.setenv("K1", "secret-one")
    auth = Authenticator(
        settings(
            callers=[
                {"name": "a", "key": "os.environ/K1"},
                {"name": "b", "role": "admin", "key_sha256": key_digest("two")},
            ]
        )
    )
    assert asyncio.run(auth.authenticate("Bearer secret-one", None)).name == "a"
    assert asyncio.run(auth.authenticate(None, "two")).is_admin
    with pytest.raises(AuthenticationFailed):
        asyncio.run(auth.authenticate("Bearer secret-on", None))
    with pytest.raises(AuthenticationFailed):
        asyncio.run(auth.authenticate(None, None))


def test_open_mode_accepts_anonymous():
    auth = Authenticator(settings(auth={"mode": "open"}))
    assert asyncio.run(auth.authenticate(None, None)).name == "anonymous"


def test_limiter_counts_requests_and_tokens_per_minute_window():
    now = [1_000_000.0]
    limiter = Limiter(clock=lambda: now[0])
    check = lambda rpm, tpm=None: asyncio.run(limiter.check("c", rpm, tpm))  # noqa: E731
    assert check(3).remaining == 2
    check(3)
    check(3)
    with pytest.raises(RateLimited) as info:
        check(3)
    assert 1 <= int(info.value.headers["Retry-After"]) <= 60
    assert asyncio.run(limiter.check("other", 3, None)).remaining == 2
    now[0] += 60  # the next window
    assert check(3).remaining == 2
    asyncio.run(limiter.add_tokens("c", 500))
    with pytest.raises(RateLimited) as info:
        check(100, 400)
    assert "tokens" in info.value.message


def test_catalog_resolves_tiers_aliases_and_deployments():
    s = settings(aliases={"gpt-*": "auto", "my-large": "large"})
    catalog = Catalog(s, {"fast", "medium", "large", "external", "embeddings", "fast-m"})
    assert catalog.resolve("auto").kind == "auto"
    assert catalog.resolve("gpt-4o").via_alias == "gpt-*"
    assert catalog.resolve("my-large").name == "large"
    assert catalog.resolve("medium").kind == "tier"
    with pytest.raises(ModelNotFound):
        catalog.resolve("claude-3")


def test_forbidden_keys_are_found_at_every_level():
    forbidden = frozenset(_ALWAYS_FORBIDDEN)
    check_forbidden({"model": "x", "temperature": 1, "metadata": {"task_type": "chat"}}, forbidden)
    for body in (
        {"api_base": "x"},
        {"extra_body": {"api_key": "x"}},
        {"metadata": {"mock_response": "x"}},
        {"litellm_foo": 1},
    ):
        with pytest.raises(ForbiddenParameter):
            check_forbidden(body, forbidden)
