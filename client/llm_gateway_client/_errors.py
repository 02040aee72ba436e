"""The client's one exception tree. Every failure a caller can see is one of these.

    GatewayClientError                 base; `message` says what happened and what to do next
    ├── ConfigurationError             a bad argument or environment value (also a ValueError)
    ├── GatewayUnavailableError        the gateway could not be reached (connection refused, timeouts,
    │   │                              5xx after the retries) and no fallback was configured
    │   └── FallbackUnavailableError   ... and the local fallback (Ollama) failed too
    ├── RateLimitedError               429 after the retries, or a Retry-After above the cap; `retry_after`
    ├── AuthenticationError            401/403: the key is missing, unknown or not allowed here
    ├── BadRequestError                400/404/413/422 (any 4xx but 429): the gateway's own message
    └── UpstreamError                  the gateway answered 5xx (its providers failed) with no fallback,
                                       a malformed answer, or an error event / cut in a stream

Each error carries `status_code` (None when no HTTP answer came), the gateway's `error_type`,
`code` and `param` when it sent them, and `request_id` (the gateway's `x-request-id`) for support.
No key ever appears in a message.
"""

from __future__ import annotations


class GatewayClientError(Exception):
    """Base of every error this client raises."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_type = error_type
        self.code = code
        self.param = param
        self.request_id = request_id


class ConfigurationError(GatewayClientError, ValueError):
    """An argument or environment variable has a value the client cannot use."""


class GatewayUnavailableError(GatewayClientError):
    """The gateway could not be reached, and no fallback was configured (or allowed)."""


class FallbackUnavailableError(GatewayUnavailableError):
    """The gateway and the local fallback model both failed."""


class RateLimitedError(GatewayClientError):
    """The gateway rate-limited this caller; `retry_after` (seconds) is its hint, when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = 429,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, error_type=error_type, code=code, param=param,
                         request_id=request_id)
        self.retry_after = retry_after


class AuthenticationError(GatewayClientError):
    """401/403: check LLM_GATEWAY_API_KEY (or the `api_key` argument)."""


class BadRequestError(GatewayClientError):
    """The gateway rejected the request as malformed or impossible (not retried, no fallback)."""


class UpstreamError(GatewayClientError):
    """The gateway was reached but could not produce an answer."""
