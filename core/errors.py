"""The gateway's one error tree. Every failure a caller can see is one of these.

    GatewayError                      500 api_error (only for bugs; never expected)
    ├── InvalidRequest                400 invalid_request_error   malformed JSON, wrong types, bad values
    │   └── ForbiddenParameter        400 invalid_request_error   api_base, api_key, mock_response, ...
    ├── AuthenticationFailed          401 authentication_error    missing or unknown key
    ├── PermissionDenied              403 permission_error        agent key on an admin route
    ├── NotFound                      404 not_found_error
    │   └── ModelNotFound             404 model_not_found
    ├── Conflict                      409 invalid_request_error   e.g. a verdict on an already reviewed item
    ├── PayloadTooLarge               413 invalid_request_error   body over limits.max_body_bytes
    ├── RateLimited                   429 rate_limit_error        caller limit, or every provider cooling down
    ├── DatabaseUnavailable           503 service_unavailable     review/audit routes while the DB is down
    └── UpstreamError                 502 upstream_error          provider failed, malformed answer
        ├── UpstreamUnavailable       503 service_unavailable     no deployment can serve now
        └── UpstreamTimeout           504 timeout                 the request's deadline passed

`to_body()` renders OpenAI's `{"error": {"message", "type", "param", "code"}}`; the Anthropic
routes render the same error with `to_anthropic_body()`. Messages are written for the caller and
never contain a provider or caller key: upstream text passes through `scrub()` first.
"""

from __future__ import annotations

import re
from typing import Any

from .upstream import Attempt

_SECRETISH = re.compile(
    r"(sk-[A-Za-z0-9_\-]{6,}|gsk_[A-Za-z0-9]{6,}|csk-[A-Za-z0-9]{6,}|nvapi-[A-Za-z0-9_\-]{6,}"
    r"|Bearer\s+[A-Za-z0-9._\-]+|(?:api[_-]?key|token|secret|password)[\"']?\s*[:=]\s*[\"']?[^\s\"',}]+)",
    re.IGNORECASE,
)


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove key-like strings and the given exact secrets from text that may reach a caller."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _SECRETISH.sub("[redacted]", text)


class GatewayError(Exception):
    status_code = 500
    error_type = "api_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}
        # The deployments tried before the failure (upstream errors); the audit records them.
        self.attempts: list[Attempt] = []

    def to_body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}

    def to_anthropic_body(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": _ANTHROPIC_TYPES.get(self.status_code, "api_error"),
                                           "message": self.message}}


class InvalidRequest(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class ForbiddenParameter(InvalidRequest):
    code = "forbidden_parameter"


class AuthenticationFailed(GatewayError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status_code = 403
    error_type = "permission_error"
    code = "insufficient_permissions"


class NotFound(GatewayError):
    status_code = 404
    error_type = "not_found_error"
    code = "not_found"


class ModelNotFound(NotFound):
    error_type = "invalid_request_error"
    code = "model_not_found"


class Conflict(GatewayError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class DatabaseUnavailable(GatewayError):
    status_code = 503
    error_type = "service_unavailable"
    code = "database_unavailable"


class UpstreamError(GatewayError):
    status_code = 502
    error_type = "upstream_error"
    code = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    status_code = 503
    error_type = "service_unavailable"
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status_code = 504
    error_type = "timeout"
    code = "upstream_timeout"


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
}
