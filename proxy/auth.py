"""Who is calling: API key -> Caller, before anything else happens.

Keys are never kept in memory in the clear: the table holds sha256 digests, the presented key is
hashed whole, and every stored digest is compared with `hmac.compare_digest` without an early
exit, so neither the comparison nor the loop leaks how close a guess was. Extra key sources (the
database, later) plug in as `KeyLookup` callables.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.errors import AuthenticationFailed, PermissionDenied

from .settings import Settings, resolve_caller_keys

log = logging.getLogger("gateway.auth")


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    role: str  # "agent" | "reviewer" (review queue and console only) | "admin"
    rpm: int | None = None
    tpm: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_review(self) -> bool:
        return self.role in ("admin", "reviewer")


ANONYMOUS = Caller(name="anonymous", role="agent")

# An extra source of keys (e.g. the database): digest -> Caller or None.
KeyLookup = Callable[[str], Awaitable[Caller | None]]


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from `Authorization: Bearer <key>` or `x-api-key` (Anthropic SDKs send the latter)."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    return None


class Authenticator:
    def __init__(self, settings: Settings, extra_lookup: KeyLookup | None = None) -> None:
        self.open = settings.auth.mode == "open"
        self._table: list[tuple[bytes, Caller]] = [
            (bytes.fromhex(digest), Caller(c.name, c.role, c.rpm, c.tpm))
            for c, digest in resolve_caller_keys(settings)
        ]
        self._extra = extra_lookup
        if self.open:
            log.warning("AUTH IS OPEN: every request is accepted without a key (auth.mode=open). "
                        "Use this only on a developer machine.")
        elif not self._table and extra_lookup is None:
            log.warning("no caller keys are configured: every request will be refused with 401")

    async def authenticate(self, authorization: str | None, x_api_key: str | None) -> Caller:
        key = presented_key(authorization, x_api_key)
        if key is None:
            if self.open:
                return ANONYMOUS
            raise AuthenticationFailed("missing API key: send 'Authorization: Bearer <key>' or 'x-api-key'")
        digest = hashlib.sha256(key.encode()).digest()
        found: Caller | None = None
        for stored, caller in self._table:
            if hmac.compare_digest(stored, digest):
                found = caller
        if found is None and self._extra is not None:
            found = await self._extra(digest.hex())
        if found is not None:
            return found
        if self.open:
            return ANONYMOUS
        raise AuthenticationFailed("invalid API key")


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise PermissionDenied("this route needs an admin key")


def require_reviewer(caller: Caller) -> None:
    if not caller.can_review:
        raise PermissionDenied("this route needs a reviewer or admin key")


def require_model_caller(caller: Caller) -> None:
    """Reviewer keys judge answers; they do not ask for them."""
    if caller.role == "reviewer":
        raise PermissionDenied("a reviewer key may only use the review queue and the console (/ui), "
                               "not the model routes")
